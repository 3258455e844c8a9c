"""Built-in plugin "remote": hands chroots to worker machines over HTTP.

A plugin package, not a core one: the core runs without it, and everything it adds comes
through hooks, as a third-party plugin's would: its builder, settings, routes (JSON errors
under `/worker/`), OpenAPI description, database table (its own migration) and commands
(`worker-token`, `worker`). Blocking it (`[plugins] blocklist = remote`) removes all of it.

Modules: `protocol` (every path and message, used by both sides), `accounts` (the workers
table), server side `queue`, `builder`, `api`, `uploads`, `api_description`; worker side
`client`, `log_shipper`, `job_run`, `worker`; `commands` for the command line.

Map chroots to it (`[chroots] fedora-41-aarch64 = remote`) and run
`python -m copr_lite worker --server URL --token TOKEN` on any number of machines. The
dispatcher calls `RemoteBuilder.build()` as it calls any builder; that coroutine puts the
job into this app's queue and waits for its outcome, while the worker API (routes under
`/worker/v1/`, protocol.py) lets workers take jobs and report:

- `POST /worker/v1/claim` (long poll): a job for one of the chroots the worker serves (names
  or fnmatch patterns such as `*-x86_64`), or `{"job": null}` when none came in time. The job
  names its SRPM (`GET /worker/v1/jobs/<id>/srpm`, with its sha256) and the heartbeat interval.
- `POST /worker/v1/jobs/<id>/log`: log lines, appended to builder-live.log as they come.
- `POST /worker/v1/jobs/<id>/heartbeat`: answers `{"canceled": bool}`; a canceled (or timed
  out) build answers true, and the worker stops it.
- `POST /worker/v1/jobs/<id>/result`: multipart, a JSON `manifest` part (`outcome`,
  `fail_reason`, `files`: name -> sha256) then one `file` part per RPM. The server hashes what
  it receives and reads every RPM header itself (the worker's word on packages is not taken);
  only then are the files moved into the build's result directory.
- `POST /worker/v1/jobs/<id>/release`: a stopping worker hands the job back.

A job id names one attempt by one worker: once a job is re-queued, the old worker's requests
on it answer 404 and that worker drops it. Attempts: a worker that sends no heartbeat for
`heartbeat_timeout` seconds loses the job, and a rejected upload (checksum mismatch, a file
that is not an RPM) ends the attempt the same way; either re-queues the job for any worker,
up to `max_attempts` in all, after which the chroot fails with every reason. A job handed
back by a stopping worker does not count as an attempt.

Workers authenticate with `Authorization: Bearer <token>` (`python -m copr_lite worker-token
create NAME`); only a hash of each token is stored. `GET /api/workers/` (system admins) shows
every worker, what it serves, its current jobs and its last heartbeat, and the queue.

Settings (`[plugin:remote]`, declared by `RemoteSettings`): `heartbeat_timeout` (seconds,
default 30), `heartbeat_interval` (default a third of the timeout), `max_attempts` (3),
`claim_wait` (longest long poll, 20 s), `max_upload_mb` (largest result upload, 4096).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from copr_lite import hookimpl
from copr_lite.keys import BUILDERS

from . import accounts, api_description
from .api import WorkerApi
from .builder import RemoteBuilder
from .commands import WORKER, WORKER_TOKEN
from .settings import RemoteSettings

if TYPE_CHECKING:
    from copr_lite.builders import BuilderRegistry
    from copr_lite.commands import CommandRegistry
    from copr_lite.config import Config, PluginSettingsRegistry
    from copr_lite.migrations import MigrationRegistry

NAME = "remote"


@hookimpl
def register_settings(registry: PluginSettingsRegistry) -> None:
    registry.add(NAME, RemoteSettings)


@hookimpl
def register_builders(registry: BuilderRegistry, config: Config) -> None:
    registry.add(RemoteBuilder(config.plugin_settings(NAME, RemoteSettings)))


@hookimpl
def register_migrations(registry: MigrationRegistry) -> None:
    registry.add(NAME, accounts.MIGRATIONS)


@hookimpl
def register_routes(app: web.Application) -> None:
    builder = app[BUILDERS].get(NAME)
    if isinstance(builder, RemoteBuilder):  # another plugin may have taken the name
        WorkerApi(builder).add_routes(app)


@hookimpl
def register_api_paths(paths: dict[str, Any]) -> None:
    paths.update(api_description.api_paths())


@hookimpl
def register_commands(registry: CommandRegistry) -> None:
    # Listed after the account commands, where they have always been.
    registry.add(WORKER, after="user")
    registry.add(WORKER_TOKEN, after="worker")
