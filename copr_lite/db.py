"""The SQLite connections: one writer behind a lock, one reader, pragmas, migrations on open.

Every write is one synchronous function run on the writer's thread inside
`BEGIN IMMEDIATE ... COMMIT`, so a whole transaction costs one thread hop and no other
coroutine can interleave with it. Reads run on a second connection (WAL lets it read while the
writer writes), also as one function per request where a request needs several queries.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from . import migrations

log = logging.getLogger(__name__)
T = TypeVar("T")

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
    "PRAGMA synchronous=NORMAL",
)


class DatabaseError(Exception):
    """The database cannot be used (too new, unreadable); worded for the operator."""


def connect_sync(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection with our pragmas (CLI commands and migrations use it)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    for pragma in PRAGMAS:
        conn.execute(pragma)
    return conn


class Database:
    """The store's connections. Use `await Database.open(path)` and `await db.close()`."""

    def __init__(self, path: Path, writer: aiosqlite.Connection, reader: aiosqlite.Connection):
        self.path = path
        self._writer = writer
        self._reader = reader
        self._write_lock = asyncio.Lock()
        # Committed write transactions of this process: a cheap "has anything changed?"
        # marker for caches of read answers (AnswerCache).
        self.writes = 0

    @classmethod
    async def open(cls, path: Path) -> Database:
        """Open (creating if needed) and migrate the database at `path`."""
        try:
            conn = connect_sync(path)
        except sqlite3.Error as exc:
            raise DatabaseError(f"cannot open database {path}: {exc}") from None
        try:
            migrations.migrate(conn)
        except migrations.SchemaTooNew as exc:
            raise DatabaseError(str(exc)) from None
        except sqlite3.Error as exc:
            raise DatabaseError(f"cannot use database {path}: {exc}") from None
        finally:
            conn.close()
        writer = await _connect(path)
        reader = await _connect(path)
        return cls(path, writer, reader)

    async def close(self) -> None:
        await self._reader.close()
        await self._writer.close()

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(conn, *args, **kwargs)` as one IMMEDIATE transaction on the writer thread."""
        if kwargs:
            fn = functools.partial(fn, **kwargs)
        async with self._write_lock:
            # aiosqlite's _execute runs a callable on the connection's own thread; it is
            # the one hop that keeps a whole transaction off the event loop.
            try:
                return await self._writer._execute(run_in_transaction, self._writer._conn, fn, args)
            finally:
                self.writes += 1

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(conn, *args, **kwargs)` on the reader thread (several queries, one hop)."""
        return await self._reader._execute(fn, self._reader._conn, *args, **kwargs)

    async def fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """One read query; rows support index and name access."""
        return list(await self._reader.execute_fetchall(sql, params))

    async def fetchone(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        rows = await self._reader.execute_fetchall(sql, params)
        for row in rows:
            return row
        return None


def run_in_transaction(conn: sqlite3.Connection, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    """Run `fn(conn, *args)` inside BEGIN IMMEDIATE; commit, or roll back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn, *args)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


async def _connect(path: Path) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    for pragma in PRAGMAS:
        await conn.execute(pragma)
    return conn
