"""Every key under which the app or a request keeps a shared object."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy
from aiohttp import web

from .auth import PasswordHasher, TokenCache
from .builders import BuilderRegistry
from .cache import AnswerCache
from .config import Config
from .db import Database
from .models import User
from .throttle import Guard

if TYPE_CHECKING:
    from .engine import Dispatcher
    from .monitor import MonitorRows
    from .publisher import Publisher

CONFIG = web.AppKey("config", Config)
PLUGINS = web.AppKey("plugins", pluggy.PluginManager)
BUILDERS = web.AppKey("builders", BuilderRegistry)
DISPATCHER: web.AppKey[Dispatcher] = web.AppKey("dispatcher")
PUBLISHER: web.AppKey[Publisher] = web.AppKey("publisher")
START_DISPATCHER = web.AppKey("start_dispatcher", bool)
DB = web.AppKey("db", Database)
TOKEN_CACHE = web.AppKey("token_cache", TokenCache)
ANSWERS = web.AppKey("answers", AnswerCache)
MONITOR: web.AppKey[MonitorRows] = web.AppKey("monitor")
HASHER = web.AppKey("hasher", PasswordHasher)
GUARD = web.AppKey("guard", Guard)

# Set on a request by the session middleware for web pages (None: anonymous).
CURRENT_USER = web.RequestKey("current_user", User)
# A CSRF token minted during this request, to be set as a cookie on the response.
NEW_CSRF = web.RequestKey("new_csrf", str)
