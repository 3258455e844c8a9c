"""Encoded answers of heavy reads (monitor, project lists), valid until the next write.

Every write transaction of the server goes through `Database.write`, which counts them, so an
answer computed while the count was N is still right while it is N. Take the version before
reading: a write that lands during the computation leaves the entry already stale.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any

import orjson
from aiohttp import web

from .db import Database


class AnswerCache:
    def __init__(self, db: Database, size: int = 256) -> None:
        self._db = db
        self._size = size
        self._entries: dict[Hashable, tuple[int, bytes]] = {}

    @property
    def version(self) -> int:
        return self._db.writes

    def get(self, key: Hashable) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] != self._db.writes:
            return None
        return entry[1]

    def put(self, key: Hashable, version: int, body: bytes) -> None:
        if len(self._entries) >= self._size:
            self._entries.clear()
        self._entries[key] = (version, body)


async def cached_json(
    cache: AnswerCache, key: Hashable, compute: Callable[[], Awaitable[Any]]
) -> web.Response:
    """A JSON answer from `cache`, computed (and kept) when it is not there or a write
    happened since."""
    body = cache.get(key)
    if body is None:
        version = cache.version
        body = orjson.dumps(await compute())
        cache.put(key, version, body)
    return web.Response(body=body, content_type="application/json")
