"""Encoded answers of reads, each valid until something it depends on changes.

An answer declares what it depends on as tags (`copr_lite.changes`: a build, a project, a
package of a project, ...). Every committed write batch reports the tags it changed, with
the database's write count after it; the cache keeps, per tag, the count of its last change.
An answer computed from a snapshot taken at write count N is valid while none of its tags
changed after N. Take the snapshot before reading: a write that lands during the
computation leaves the answer already stale (for later requests).

Concurrent requests for an answer that is being computed wait for that one computation
(single flight) instead of each doing it.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Hashable
from typing import Any, NamedTuple

import orjson
from aiohttp import web

from .changes import USERS, Tag
from .db import Database


class Fresh(NamedTuple):
    """A computed answer and the tags it depends on (besides `changes.USERS`)."""

    body: bytes
    depends_on: Collection[Tag]


class _Entry(NamedTuple):
    snapshot: int  # the write count before the answer was read
    depends_on: tuple[Tag, ...]
    body: bytes


class AnswerCache:
    """At most `entries` answers of at most `size` bytes in all; least recently used go."""

    # Tags remembered before the oldest are forgotten (and every older answer with them).
    MAX_TAGS = 50_000

    def __init__(self, db: Database, entries: int = 4096, size: int = 32 * 1024 * 1024) -> None:
        self._db = db
        self._max_entries = entries
        self._max_bytes = size
        self._bytes = 0
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._changed: dict[Tag, int] = {}
        # Answers from before this write count are not trusted (their tags were forgotten).
        self._floor = 0
        self._flights: dict[Hashable, asyncio.Future[_Entry]] = {}
        db.on_change(self._on_change)

    @property
    def version(self) -> int:
        """The snapshot to take before reading what an answer is computed from."""
        return self._db.writes

    def _on_change(self, tags: set[Tag], writes: int) -> None:
        if len(self._changed) + len(tags) > self.MAX_TAGS:
            self._changed.clear()
            self._floor = writes
        for tag in tags:
            self._changed[tag] = writes

    def changed_after(self, snapshot: int, tag: Tag) -> bool:
        """Whether `tag` (or everything, or `changes.USERS`) changed after `snapshot`."""
        if snapshot < self._floor:
            return True
        changed = self._changed
        return changed.get(USERS, 0) > snapshot or changed.get(tag, 0) > snapshot

    def valid(self, snapshot: int, depends_on: Collection[Tag]) -> bool:
        """Whether what was read at `snapshot` is still what the tags hold."""
        if snapshot < self._floor:
            return False
        changed = self._changed
        if changed.get(USERS, 0) > snapshot:
            return False
        return all(changed.get(tag, 0) <= snapshot for tag in depends_on)

    def get(self, key: Hashable) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if not self.valid(entry.snapshot, entry.depends_on):
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry.body

    def put(self, key: Hashable, snapshot: int, depends_on: Collection[Tag], body: bytes) -> None:
        self._drop(key)
        self._entries[key] = _Entry(snapshot, tuple(depends_on), body)
        self._bytes += len(body)
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry.body)

    async def answer(self, key: Hashable, compute: Callable[[], Awaitable[Fresh]]) -> bytes:
        """The cached answer under `key`, or the one `compute()` makes (and it is kept).

        Requests that arrive while the same key is computed wait for that computation. Its
        answer serves a request that arrived after it began only if nothing it depends on
        changed since; otherwise the request computes anew. An exception of `compute`
        reaches every request that waited for it; nothing is kept then.
        """
        arrived = self.version
        while True:
            body = self.get(key)
            if body is not None:
                return body
            flight = self._flights.get(key)
            if flight is None:
                # The first request computes in its own task (no task per miss); others wait.
                return await self._lead(key, compute)
            try:
                # Shielded: a waiter that goes away does not cancel the computation.
                entry = await asyncio.shield(flight)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                continue  # the computing request went away: compute in this one
            if arrived <= entry.snapshot or self.valid(entry.snapshot, entry.depends_on):
                return entry.body

    async def _lead(self, key: Hashable, compute: Callable[[], Awaitable[Fresh]]) -> bytes:
        snapshot = self.version
        flight: asyncio.Future[_Entry] = asyncio.get_running_loop().create_future()
        self._flights[key] = flight
        try:
            fresh = await compute()
        except asyncio.CancelledError:
            flight.cancel()
            raise
        except BaseException as exc:
            flight.set_exception(exc)
            flight.exception()  # retrieved: the waiters (if any) get it raised
            raise
        finally:
            del self._flights[key]
        entry = _Entry(snapshot, tuple(fresh.depends_on), fresh.body)
        if self.valid(snapshot, entry.depends_on):
            self.put(key, snapshot, entry.depends_on, entry.body)
        flight.set_result(entry)
        return entry.body


Computed = tuple[Any, Collection[Tag]]


async def cached_json(
    cache: AnswerCache, key: Hashable, compute: Callable[[], Awaitable[Computed]]
) -> web.Response:
    """A JSON answer from `cache`, computed (and kept) when it is not there or something it
    depends on changed. `compute` returns the answer and those tags."""

    async def encoded() -> Fresh:
        answer, depends_on = await compute()
        return Fresh(orjson.dumps(answer), depends_on)

    body = await cache.answer(key, encoded)
    return web.Response(body=body, content_type="application/json")
