"""Every key under which the app or a request keeps a shared object.

The types of the objects are imported only for type checking, so that any module may import
its keys without importing the modules that define those objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy
from aiohttp import web

if TYPE_CHECKING:
    from .auth import PasswordHasher, TokenCache
    from .build_states import BuildStates
    from .builders import BuilderRegistry
    from .cache import AnswerCache
    from .config import Config
    from .db import Database
    from .engine import Dispatcher
    from .models import User
    from .monitor import MonitorRows
    from .publisher import Publisher
    from .services import Services
    from .throttle import Guard

CONFIG: web.AppKey[Config] = web.AppKey("config")
PLUGINS = web.AppKey("plugins", pluggy.PluginManager)
BUILDERS: web.AppKey[BuilderRegistry] = web.AppKey("builders")
DISPATCHER: web.AppKey[Dispatcher] = web.AppKey("dispatcher")
PUBLISHER: web.AppKey[Publisher] = web.AppKey("publisher")
SERVICES: web.AppKey[Services] = web.AppKey("services")
START_DISPATCHER = web.AppKey("start_dispatcher", bool)
DB: web.AppKey[Database] = web.AppKey("db")
TOKEN_CACHE: web.AppKey[TokenCache] = web.AppKey("token_cache")
ANSWERS: web.AppKey[AnswerCache] = web.AppKey("answers")
BUILD_STATES: web.AppKey[BuildStates] = web.AppKey("build_states")
MONITOR: web.AppKey[MonitorRows] = web.AppKey("monitor")
HASHER: web.AppKey[PasswordHasher] = web.AppKey("hasher")
GUARD: web.AppKey[Guard] = web.AppKey("guard")

# Set on a request by the session middleware for web pages (None: anonymous).
CURRENT_USER: web.RequestKey[User] = web.RequestKey("current_user")
# A CSRF token minted during this request, to be set as a cookie on the response.
NEW_CSRF = web.RequestKey("new_csrf", str)
