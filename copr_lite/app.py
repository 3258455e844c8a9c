"""The app factory: assembly only."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import aiohttp_jinja2
import jinja2
import pluggy
from aiohttp import web

from .auth import PasswordHasher, TokenCache
from .build_states import BuildStates
from .cache import AnswerCache
from .config import Config
from .control import control_context
from .db import Database
from .engine import Dispatcher
from .keys import (
    ANSWERS,
    BUILD_STATES,
    BUILDERS,
    CONFIG,
    DB,
    DISPATCHER,
    GUARD,
    HASHER,
    MONITOR,
    PLUGINS,
    PUBLISHER,
    SERVICES,
    START_DISPATCHER,
    TOKEN_CACHE,
)
from .middlewares import error_middleware, normalize_path_middleware
from .monitor import MonitorRows
from .plugins import call_each, collect_migrations, fire, load_plugins
from .publisher import Publisher
from .resources import resource_dir
from .retention import prune
from .services import Services
from .signing import Signer
from .throttle import Guard
from .views import setup_routes
from .views.results import stop_live_logs

log = logging.getLogger(__name__)

# Form and JSON bodies are limited separately (spec A21); this is the transport ceiling.
BODY_SLACK = 1024 * 1024


def create_app(
    config: Config,
    *,
    plugins: Iterable[object] = (),
    load_entrypoints: bool = True,
    start_dispatcher: bool = True,
) -> web.Application:
    """Build the application for `config`; resources open in its cleanup context.

    `start_dispatcher=False` keeps builds where they are (for tests that arrange states).

    Raises ConfigError for a settings problem only the plugins can see (an undeclared
    `[plugin:...]` section or key, a chroot mapped to a builder no plugin registered) and
    plugins.PluginError when a plugin cannot be loaded or fails to register; both are one
    line for the operator. Nothing is created on disk here.
    """
    app = web.Application(
        middlewares=[error_middleware, normalize_path_middleware],
        client_max_size=config.upload_size_limit + BODY_SLACK,
        # aiohttp would decode a compressed body in its parser, where a broken one or an
        # encoding it lacks (br, zstd) is answered in plain text or as a 500 from the
        # handler; the app refuses any Content-Encoding itself instead (forms.py).
        handler_args={"auto_decompress": False},
    )
    app[CONFIG] = config
    app[TOKEN_CACHE] = TokenCache()
    app[GUARD] = Guard(config)
    loaded = load_plugins(config, plugins, load_entrypoints)
    app[PLUGINS] = loaded.pm
    app[BUILDERS] = loaded.builders
    signer = Signer(config.gnupg_home, key_length=config.key_length) if config.sign else None
    app[PUBLISHER] = Publisher(
        config.data_dir / "results", signer, functools.partial(_published, loaded.pm)
    )
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(resource_dir("templates"))),
        autoescape=jinja2.select_autoescape(default=True),
    )
    setup_routes(app)
    call_each(loaded.pm, "register_routes", app=app)
    # Open live-log streams end at shutdown instead of holding it for a minute.
    app.on_shutdown.append(stop_live_logs)
    app.cleanup_ctx.append(_password_hasher)
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(control_context)
    app[START_DISPATCHER] = start_dispatcher
    app.cleanup_ctx.append(_dispatcher)
    app.cleanup_ctx.append(_daily_prune)
    return app


async def _published(pm: pluggy.PluginManager, chroot_dir: Path, seconds: float) -> None:
    owner, project, chroot = chroot_dir.parts[-3:]
    await fire(
        pm, "repository_published", owner=owner, project=project, chroot=chroot, seconds=seconds
    )


async def _password_hasher(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    app[HASHER] = PasswordHasher(config.password_hash_threads, config.password_hash_queue)
    yield
    app[HASHER].close()


async def _database(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    config.data_dir.mkdir(parents=True, exist_ok=True)
    db = await Database.open(config.db_path, collect_migrations(app[PLUGINS]))
    app[DB] = db
    app[ANSWERS] = AnswerCache(db)
    app[BUILD_STATES] = BuildStates(db, app[ANSWERS])
    app[MONITOR] = MonitorRows(app[ANSWERS])
    log.info("database open path=%s", config.db_path)
    yield
    await db.close()


async def _dispatcher(app: web.Application) -> AsyncIterator[None]:
    dispatcher = Dispatcher(app[CONFIG], app[DB], app[PLUGINS], app[BUILDERS], app[PUBLISHER])
    app[DISPATCHER] = dispatcher
    app[SERVICES] = Services(app[DB], app[CONFIG], dispatcher, app[PUBLISHER])
    if app[START_DISPATCHER]:
        await dispatcher.start()
    await fire(app[PLUGINS], "startup", app=app)
    yield
    await dispatcher.stop()
    signer = app[PUBLISHER].signer
    if signer is not None:
        await signer.close()  # after the dispatcher: nothing signs any more


# The first scheduled prune waits this long after start: a restarted server serves first.
FIRST_PRUNE_DELAY = 600.0


async def _daily_prune(app: web.Application) -> AsyncIterator[None]:
    """Apply the retention rules every `prune_interval_hours` (0: never on its own)."""
    hours = app[CONFIG].prune_interval_hours
    task = None
    if hours and app[START_DISPATCHER]:
        task = asyncio.create_task(_prune_every(app, hours * 3600.0), name="copr-lite-prune")
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _prune_every(app: web.Application, interval: float) -> None:
    await asyncio.sleep(FIRST_PRUNE_DELAY)
    while True:
        try:
            await prune(app[DB], app[PUBLISHER], upload_dir=app[CONFIG].upload_dir)
        except Exception:
            log.exception("the scheduled prune failed; it runs again in %.0f s", interval)
        await asyncio.sleep(interval)
