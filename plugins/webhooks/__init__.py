"""Built-in plugin "webhooks": outgoing webhooks, a signed JSON POST per build event.

Per project, its owner (or one of its admins) sets a target URL and a secret; on a build's
start (`build.started`, once per build), each chroot's end (`chroot.ended`) and the build's
end (`build.ended`) the server POSTs the event there, signed with the secret
(`X-Copr-Lite-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`). Failed
deliveries are retried with a growing wait until `give_up_seconds` after the event. README.md
("Outgoing webhooks") documents it for users.

Everything comes through hooks, as a third-party plugin's would: its table (its own
migration), its settings, its routes (the API under /api_3/webhook/outgoing/ and the page
/coprs/<owner>/<project>/webhooks/outgoing/, named "outgoing-webhooks"), its OpenAPI paths,
and the event hooks, which only queue a delivery row; the outbox task sends them.

Modules: `tables` (the tables and their SQL), `settings`, `payloads` (event bodies and the
signature), `outbox` (queuing and the sending task), `targets` (permission and field checks
shared by `api` and `page`), `api`, `api_description`, `page` (and its template).

Every app loads its own copy of this module (plugins are loaded per app), so `_outbox` below
belongs to one server; the submodules hold no state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from copr_lite import hookimpl
from copr_lite.keys import CONFIG, DB

from . import api, api_description, page, payloads, tables
from .outbox import Outbox
from .settings import WebhookSettings

if TYPE_CHECKING:
    from copr_lite.builders import ChrootResult
    from copr_lite.config import PluginSettingsRegistry
    from copr_lite.migrations import MigrationRegistry
    from copr_lite.models import Build
    from copr_lite.states import State

NAME = "webhooks"
_outbox: Outbox | None = None


@hookimpl
def register_settings(registry: PluginSettingsRegistry) -> None:
    registry.add(NAME, WebhookSettings)


@hookimpl
def register_migrations(registry: MigrationRegistry) -> None:
    registry.add(NAME, tables.MIGRATIONS)


@hookimpl
def register_routes(app: web.Application) -> None:
    api.add_routes(app.router)
    page.add_routes(app)
    # Sending stops at shutdown, while the database is still open; events that happen
    # while the server stops are still queued, and go out after the next start.
    app.on_shutdown.append(_stop_sending)


@hookimpl
def register_api_paths(paths: dict[str, Any]) -> None:
    paths.update(api_description.api_paths())


@hookimpl
def startup(app: web.Application) -> None:
    global _outbox
    config = app[CONFIG]
    _outbox = Outbox(app[DB], config, config.plugin_settings(NAME, WebhookSettings))
    app[api.OUTBOX] = _outbox
    _outbox.start()


async def _stop_sending(app: web.Application) -> None:
    if _outbox is not None:
        await _outbox.stop()


@hookimpl
def chroot_started(build: Build, chroot: str) -> Any:
    return _outbox.queue(payloads.BUILD_STARTED, build) if _outbox else None


@hookimpl
def chroot_finished(build: Build, chroot: str, result: ChrootResult | None, state: State) -> Any:
    return _outbox.queue(payloads.CHROOT_ENDED, build, chroot) if _outbox else None


@hookimpl
def build_finished(build: Build) -> Any:
    return _outbox.queue(payloads.BUILD_ENDED, build) if _outbox else None
