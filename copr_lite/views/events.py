"""Live updates of the web UI: one server-sent events stream per page.

`/builds/<id>/events` carries everything a build page shows live: the build's state (the
same JSON as `/builds/<id>/state`) whenever it changes, and the new lines of the import log
and of every chroot's log. `/events/builds?ids=1,2,3` carries the states of the builds a
list page shows (home, project, builds list). One connection per page keeps a team's tabs
under the browser's six connections per host.

A state is sent before the log lines read after it, and a line that announces an end
("Finished: ...", "Imported ...", "Import failed: ...") is held until the database has that
end, so the badge never lags the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from .. import store
from ..config import Config
from ..errors import BadRequest
from ..keys import CONFIG, DB
from ..models import Build
from ..publisher import LIVE_LOG, NAME_RE, SRPM_BUILDS, build_dir_name
from ..states import State, derive_build_state
from .common import build_id_of, start_event_stream
from .results import LogReader, locate, results_root, stopping_event

EVENTS_POLL = 0.25  # seconds between looks at the logs and the build's state
LIST_POLL = 1.0  # seconds between looks at the states of a list page's builds
KEEPALIVE = 15.0  # seconds of silence before a comment line
DURATION_EVERY = 5.0  # seconds between state events that only move a running build's times
CHUNK = 256 * 1024  # most log bytes read at once from one log
HOLD_LIMIT = 10.0  # most seconds an end-announcing line waits for its state
# A page gets at most the last LOG_WINDOW bytes of a log it opens: a browser cannot show a
# mock log of hundreds of megabytes line by line. The lines before are counted, so numbers
# stay right, and left to the raw log.
LOG_WINDOW = 4 * 1024 * 1024
MAX_LIST_IDS = 200  # builds one list stream follows
IMPORT_LOG = ""  # the log key of the import (chroot logs are keyed by chroot name)
_IDS = re.compile(r"^[0-9]{1,19}(,[0-9]{1,19}){0,199}$")
_RESUME = re.compile(r"^[0-9]+:[0-9]+(\.[0-9]+:[0-9]+)*$")


BuildView = Callable[[Config, Build], dict[str, Any]]


def add_event_routes(router: web.UrlDispatcher, build_view: BuildView) -> None:
    """`build_view(config, build)` is the JSON of a build's live state (web.build_view)."""

    async def build_events(request: web.Request) -> web.StreamResponse:
        return await stream_build(request, build_view)

    router.add_get("/builds/{build_id}/events", build_events)
    router.add_get("/events/builds", list_events)


def sse(event: str, data: Any, event_id: str | None = None) -> bytes:
    text = json.dumps(data, separators=(",", ":"))
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {text}\n\n".encode()


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing() or stopping_event(request.app).is_set()


async def _pause(request: web.Request, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping_event(request.app).wait(), seconds)


# ---------------------------------------------------------------- one build


@dataclass
class LogCursor:
    """Where the stream stands in one log: bytes and lines sent so far."""

    key: str  # IMPORT_LOG or a chroot name
    offset: int = 0
    lines: int = 0
    held_since: float | None = None
    skipped: int = 0  # lines left out at the start of a long log, not sent yet as a note
    reader: LogReader | None = field(default=None, repr=False, compare=False)

    def read(self, root: Path, rel: str, offset: int, limit: int) -> tuple[int, bytes] | None:
        """Bytes of the log from `offset`: builder-live.log, or the .gz it becomes when
        its chroot ends (see results.LogReader)."""
        if self.reader is None:
            self.reader = LogReader(root)
        return self.reader.read(rel, offset, limit)

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()


def _log_path(build: Build, key: str) -> str | None:
    """The log's path under the results tree (None: a chroot log before the import)."""
    if key == IMPORT_LOG:
        return f"{build.owner_name}/{build.project_name}/{SRPM_BUILDS}/{build.id:08d}/{LIVE_LOG}"
    if not build.pkg_name or not NAME_RE.match(build.pkg_name):
        return None
    directory = build_dir_name(build.id, build.pkg_name)
    return f"{build.owner_name}/{build.project_name}/{key}/{directory}/{LIVE_LOG}"


def _ended(build: Build, key: str) -> bool:
    """Whether the state a log's last line announces is stored: the import has ended (no
    chroot importing), or the chroot is in a terminal state."""
    if key == IMPORT_LOG:
        return all(c.status is not State.IMPORTING for c in build.chroots)
    return any(c.chroot == key and c.status.terminal for c in build.chroots)


def _announces_end(key: str, line: bytes) -> bool:
    if key == IMPORT_LOG:
        return line.startswith((b"Imported ", b"Import failed"))
    return line.startswith(b"Finished: ")


def _resume_point(header: str | None, keys: list[str]) -> list[tuple[int, int]]:
    """(offset, lines) of each log from a Last-Event-ID `o:l.o:l...`, else zeros."""
    if header and _RESUME.match(header):
        pairs = [tuple(int(n) for n in part.split(":")) for part in header.split(".")]
        if len(pairs) == len(keys):
            return [(p[0], p[1]) for p in pairs]
    return [(0, 0)] * len(keys)


def _event_id(cursors: list[LogCursor]) -> str:
    return ".".join(f"{c.offset}:{c.lines}" for c in cursors)


def _decode(line: bytes) -> str:
    return line.decode("utf-8", "replace").replace("\r", "")


def _read_log(root: Path, build: Build, cursor: LogCursor, now: float) -> tuple[list[str], bool]:
    """The complete new lines of a log (stopping before an end-announcing line whose end
    is not stored yet), and whether the log is read to its end. Runs on a thread."""
    rel = _log_path(build, cursor.key)
    if rel is None:
        return [], True
    size = _log_size(root, rel)  # a cheap look first: most ticks find nothing new
    if size is None or size == cursor.offset:
        return [], True
    if cursor.offset == 0 and size > LOG_WINDOW:
        _skip_to_window(root, rel, cursor, size)
    lines: list[str] = []
    while True:
        got = cursor.read(root, rel, cursor.offset, CHUNK)
        if got is None:
            return lines, True
        size, data = got
        if size < cursor.offset:  # the log was replaced (a re-queued build): start over
            cursor.offset, cursor.lines = 0, 0
            continue
        *complete, _ = data.split(b"\n")
        for line in complete:
            if _announces_end(cursor.key, line) and not _ended(build, cursor.key):
                if cursor.held_since is None:
                    cursor.held_since = now
                if now - cursor.held_since < HOLD_LIMIT:
                    return lines, False
            cursor.held_since = None
            cursor.offset += len(line) + 1
            cursor.lines += 1
            lines.append(_decode(line))
        if len(data) < CHUNK:
            return lines, True
        if not complete:  # one line longer than CHUNK: send it in pieces
            cursor.offset += len(data)
            lines.append(_decode(data))


def _log_size(root: Path, rel: str) -> int | None:
    """The log's size in bytes: builder-live.log's, or once compressed, the size the gzip
    trailer records (modulo 4 GiB: a bigger log just skips less). None: neither exists."""
    try:
        return os.stat(root / rel).st_size
    except OSError:
        pass
    found = locate(root, rel + ".gz")
    if found is None or found[1]:
        return None
    try:
        with open(found[0], "rb") as fh:
            fh.seek(-4, os.SEEK_END)
            return int.from_bytes(fh.read(4), "little")
    except OSError:
        return None


def _skip_to_window(root: Path, rel: str, cursor: LogCursor, size: int) -> None:
    """Move a new cursor past the lines before the log's last LOG_WINDOW bytes."""
    until = size - LOG_WINDOW
    offset = lines = 0
    while offset < until:
        got = cursor.read(root, rel, offset, min(CHUNK * 4, until - offset))
        if got is None or not got[1]:
            break
        chunk = got[1]
        last = chunk.rfind(b"\n")
        if last < 0:  # what is left before the window is one line: it is sent whole
            break
        lines += chunk.count(b"\n")
        offset += last + 1
    cursor.offset, cursor.lines, cursor.skipped = offset, lines, lines


def _read_logs(
    root: Path, build: Build, cursors: list[LogCursor], now: float, finished: bool
) -> tuple[list[bytes], bool]:
    """The `log` events of every log's new lines, and whether all are read to their end
    (then, once the build is `finished`, with each last line that has no newline). One
    thread hop per tick for all of a build's logs."""
    events: list[bytes] = []
    all_read = True
    for cursor in cursors:
        first = cursor.lines + 1
        lines, at_end = _read_log(root, build, cursor, now)
        all_read &= at_end
        if lines:
            data: dict[str, Any] = {"log": cursor.key, "first": first, "lines": lines}
            if cursor.skipped:
                data["first"] = cursor.skipped + 1
                data["skipped"], cursor.skipped = cursor.skipped, 0
            events.append(sse("log", data, _event_id(cursors)))
    if finished and all_read:
        for cursor in cursors:
            first = cursor.lines + 1
            tail = _read_tail(root, build, cursor)
            if tail is not None:
                data = {"log": cursor.key, "first": first, "lines": [tail]}
                events.append(sse("log", data, _event_id(cursors)))
    return events, all_read


def _read_tail(root: Path, build: Build, cursor: LogCursor) -> str | None:
    """A last line without its newline, once the log's chroot has ended."""
    rel = _log_path(build, cursor.key)
    if rel is None:
        return None
    got = cursor.read(root, rel, cursor.offset, CHUNK)
    if got is None or not got[1]:
        return None
    cursor.offset += len(got[1])
    cursor.lines += 1
    return _decode(got[1])


def _comparable(view: dict[str, Any]) -> str:
    """The view without its running durations (those change every second by themselves)."""
    copy = dict(view, duration="")
    copy["chroots"] = [dict(c, duration="") for c in view["chroots"]]
    return json.dumps(copy, sort_keys=True)


async def stream_build(request: web.Request, build_view: BuildView) -> web.StreamResponse:
    """GET /builds/<id>/events. Events: `state` (the build view), `log` ({"log": chroot,
    or "" for the import; "first": the number of its first line; "lines": [...]}), and a
    last `end` (the build's final state), after which the client closes. Each event's id
    says how far every log was sent, so a reconnecting EventSource resumes there."""
    build_id = build_id_of(request)
    db = request.app[DB]
    build = await db.read(store.get_build, build_id)
    if build is None:
        raise web.HTTPNotFound()
    config = request.app[CONFIG]
    root = results_root(config)
    keys = [IMPORT_LOG, *(c.chroot for c in build.chroots)]
    cursors = [
        LogCursor(key, offset, lines)
        for key, (offset, lines) in zip(
            keys, _resume_point(request.headers.get("Last-Event-ID"), keys), strict=True
        )
    ]
    response = await start_event_stream(request, "no-cache, no-store")
    loop = asyncio.get_running_loop()
    sent_view = ""
    last_sent = state_sent = loop.time()
    states = None  # the build's (canceled, chroot states) when `build` was read
    try:
        while not _gone(request):
            now = loop.time()
            # One query per tick; the whole build is read again only when a state moved.
            fresh_states = (await db.read(store.build_chroot_states, [build_id])).get(build_id)
            if fresh_states is None:  # deleted, with its project or alone
                await response.write(sse("end", "deleted"))
                return response
            if fresh_states != states:
                fresh = await db.read(store.get_build, build_id)
                if fresh is None:
                    continue
                build, states = fresh, fresh_states
            view = build_view(config, build)
            chunks: list[bytes] = []
            # A state goes out when it changed; a running build's durations every few seconds.
            comparable = _comparable(view)
            if comparable != sent_view or (
                not view["finished"] and now - state_sent >= DURATION_EVERY
            ):
                sent_view, state_sent = comparable, now
                chunks.append(sse("state", view, _event_id(cursors)))
            logs, all_read = await asyncio.to_thread(
                _read_logs, root, build, cursors, now, view["finished"]
            )
            chunks += logs
            if view["finished"] and all_read:
                chunks.append(sse("end", view["state"], _event_id(cursors)))
                await response.write(b"".join(chunks))
                await response.write_eof()
                return response
            if chunks:
                await response.write(b"".join(chunks))
                last_sent = now
            elif now - last_sent >= KEEPALIVE:
                await response.write(b": keepalive\n\n")
                last_sent = now
            await _pause(request, EVENTS_POLL)
    except ConnectionResetError:
        pass  # the page was closed
    finally:
        for cursor in cursors:
            cursor.close()
    return response


# ---------------------------------------------------------------- list pages


def _states_of(
    ids: list[int], found: dict[int, tuple[bool, list[tuple[str, int]]]]
) -> dict[str, Any]:
    states: dict[str, Any] = {}
    for build_id in ids:
        if build_id not in found:
            continue
        canceled, chroots = found[build_id]
        states[str(build_id)] = {
            "state": derive_build_state(canceled, (code for _, code in chroots)),
            "chroots": {name: State.from_code(code).value for name, code in chroots},
        }
    return states


async def list_events(request: web.Request) -> web.StreamResponse:
    """GET /events/builds?ids=1,2,3: `states` events ({"<id>": {"state": ..., "chroots":
    {chroot: state}}}) with the builds whose state changed (all of them first), until every
    one has ended; then `end`."""
    raw = request.query.get("ids", "")
    if not _IDS.match(raw):
        raise BadRequest(f"ids: up to {MAX_LIST_IDS} build ids, comma-separated.")
    ids = list(dict.fromkeys(int(n) for n in raw.split(",")))
    db = request.app[DB]
    response = await start_event_stream(request, "no-cache, no-store")
    loop = asyncio.get_running_loop()
    sent: dict[str, Any] = {}
    last_sent = loop.time()
    try:
        while not _gone(request):
            states = _states_of(ids, await db.read(store.build_chroot_states, ids))
            changed = {k: v for k, v in states.items() if sent.get(k) != v}
            now = loop.time()
            if changed:
                await response.write(sse("states", changed))
                sent.update(changed)
                last_sent = now
            if all(v["state"] in TERMINAL for v in states.values()):
                await response.write(sse("end", len(states)))
                await response.write_eof()
                return response
            if now - last_sent >= KEEPALIVE:
                await response.write(b": keepalive\n\n")
                last_sent = now
            await _pause(request, LIST_POLL)
    except ConnectionResetError:
        pass
    return response


TERMINAL = frozenset(s.value for s in State if s.terminal) | {"unknown"}
