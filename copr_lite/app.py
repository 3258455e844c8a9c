"""The app factory: assembly only."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp_jinja2
import jinja2
from aiohttp import web

from .auth import TokenCache
from .config import Config
from .db import Database
from .keys import CONFIG, DB, TOKEN_CACHE
from .middlewares import error_middleware, normalize_path_middleware
from .resources import resource_dir
from .views import setup_routes

log = logging.getLogger(__name__)

# Form and JSON bodies are limited separately (spec A21); this is the transport ceiling.
BODY_SLACK = 1024 * 1024


def create_app(config: Config) -> web.Application:
    """Build the application for `config`; resources open in its cleanup context."""
    app = web.Application(
        middlewares=[error_middleware, normalize_path_middleware],
        client_max_size=config.upload_size_limit + BODY_SLACK,
    )
    app[CONFIG] = config
    app[TOKEN_CACHE] = TokenCache()
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(resource_dir("templates"))),
        autoescape=jinja2.select_autoescape(default=True),
    )
    setup_routes(app)
    app.cleanup_ctx.append(_database)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    config.data_dir.mkdir(parents=True, exist_ok=True)
    db = await Database.open(config.db_path)
    app[DB] = db
    log.info("database open path=%s", config.db_path)
    yield
    await db.close()
