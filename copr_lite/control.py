"""Operator commands that must run inside the server, and the data directory's lock.

Removing published files races createrepo_c, whose locks live in the process that runs it.
So the process that owns the data directory (the server) holds `<data_dir>/.lock` (flock)
and answers a few commands on a Unix socket, `<data_dir>/control.sock` (mode 0600: whoever
may read the data directory may ask). `python -m copr_lite prune` asks the server there;
with no server running it takes the lock itself and does the same work in its own process,
and a server that starts meanwhile refuses to until it is done.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

import aiohttp
from aiohttp import web

from . import retention, services
from .config import Config
from .errors import CoprLiteError
from .keys import CONFIG, DB, PUBLISHER, SERVICES
from .models import User

log = logging.getLogger(__name__)

# A Unix socket's path is at most 107 bytes on Linux.
MAX_SOCKET_PATH = 107
CONTROL_TIMEOUT = 3600.0


class DataDirBusy(Exception):
    """Another process holds the data directory's lock."""


class ControlError(Exception):
    """The server refused a command; the message says why."""


# Locks this process holds: path -> (open file, holders). Apps of one process on one data
# directory (tests do that) share the lock; other processes are kept out.
_HELD: dict[Path, tuple[IO[bytes], int]] = {}


class DataDirLock:
    """An exclusive flock on `<data_dir>/.lock` against other processes, released by
    `release()` or at exit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._held = False

    def acquire(self) -> bool:
        """Take the lock now or raise DataDirBusy. True when this call took it from the
        system, False when this process held it already (through another holder)."""
        key = self.path.resolve()
        if key in _HELD:
            fh, holders = _HELD[key]
            _HELD[key] = (fh, holders + 1)
            self._held = True
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "ab")  # noqa: SIM115  (held open while locked)
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise DataDirBusy(
                "another copr_lite process (a server, prune or restore) is using "
                f"{self.path.parent}"
            ) from None
        _HELD[key] = (fh, 1)
        self._held = True
        return True

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        key = self.path.resolve()
        fh, holders = _HELD[key]
        if holders > 1:
            _HELD[key] = (fh, holders - 1)
        else:
            del _HELD[key]
            fh.close()


# ---------------------------------------------------------------- the server side


async def control_context(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: hold the data directory's lock and serve the control socket."""
    config = app[CONFIG]
    lock = DataDirLock(config.lock_path)
    first = lock.acquire()
    runner: web.AppRunner | None = None
    path = config.control_socket
    try:
        if not first:
            pass  # another app of this process owns the data directory and its socket
        elif len(str(path)) > MAX_SOCKET_PATH:
            log.warning(
                "control socket path too long (%d bytes): `prune` needs the server stopped",
                len(str(path)),
            )
        else:
            control = web.Application()
            control.router.add_post("/prune", functools.partial(_prune, app))
            control.router.add_post("/delete-builds", functools.partial(_delete_builds, app))
            runner = web.AppRunner(control, access_log=None)
            await runner.setup()
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # left by a server that was killed
            site = web.UnixSite(runner, str(path))
            await site.start()
            os.chmod(path, 0o600)
        yield
    finally:
        if runner is not None:
            await runner.cleanup()
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        lock.release()


async def _prune(app: web.Application, request: web.Request) -> web.Response:
    dry_run = request.query.get("dry_run") == "1"
    upload_dir = app[CONFIG].upload_dir
    plan = await retention.prune(app[DB], app[PUBLISHER], upload_dir=upload_dir, dry_run=dry_run)
    return web.json_response({**plan.to_json(), "lines": plan.lines(dry_run), "dry_run": dry_run})


# The operator at the command line (who may read the data directory) acts as an admin.
OPERATOR = User(0, "(operator)", True, 0)


async def _delete_builds(app: web.Application, request: web.Request) -> web.Response:
    try:
        ids = [int(part) for part in request.query.get("ids", "").split(",") if part]
        deleted = await services.delete_builds(app[SERVICES], OPERATOR, ids)
    except (ValueError, CoprLiteError) as exc:
        message = exc.message if isinstance(exc, CoprLiteError) else "ids: whole numbers"
        return web.json_response({"error": message}, status=400)
    return web.json_response({"deleted": deleted})


# ---------------------------------------------------------------- the command's side


async def ask_server(config: Config, command: str, **query: str) -> dict[str, Any] | None:
    """POST `command` to the running server's control socket; None when no server answers
    there (no socket, or nobody listening)."""
    path = config.control_socket
    if not path.exists():
        return None
    connector = aiohttp.UnixConnector(path=str(path))
    timeout = aiohttp.ClientTimeout(total=CONTROL_TIMEOUT)
    try:
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
            session.post(f"http://copr-lite/{command}", params=query) as response,
        ):
            answer: dict[str, Any] = await response.json()
            if response.status != 200:
                raise ControlError(str(answer.get("error", response.reason)))
            return answer
    except (aiohttp.ClientConnectorError, FileNotFoundError, ConnectionRefusedError):
        return None
