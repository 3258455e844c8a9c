"""The SQLite connections: one writer task, one reader, pragmas, migrations on open.

Every write is one synchronous function run on the writer's thread inside
`BEGIN IMMEDIATE ... COMMIT` (its own savepoint when several are batched), so a transaction
costs one thread hop and no other coroutine can interleave with it. Writes that arrive while
one is running are committed together by the next hop (group commit). Reads run on a second
connection (WAL lets it read while the writer writes), also as one function per request where
a request needs several queries.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import aiosqlite

from . import changes, migrations

log = logging.getLogger(__name__)
T = TypeVar("T")
P = ParamSpec("P")

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
    "PRAGMA synchronous=NORMAL",
)


def _on_thread(
    connection: aiosqlite.Connection, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> Awaitable[T]:
    """`fn(*args, **kwargs)` on the connection's own thread (aiosqlite's `_execute`, which
    is untyped: typed here once)."""
    execute: Callable[..., Awaitable[T]] = connection._execute
    return execute(fn, *args, **kwargs)


# Most milliseconds a read on the event loop waits for a lock before it moves to a thread.
POINT_BUSY_MS = 20


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

    def __init__(
        self,
        path: Path,
        writer: aiosqlite.Connection,
        reader: aiosqlite.Connection,
        point: sqlite3.Connection,
    ):
        self.path = path
        self._writer = writer
        self._reader = reader
        self._point = point  # used on the event loop itself: see read_point
        self._drainer: asyncio.Task[None] | None = None
        # Writes waiting for the writer thread; one hop runs them all (group commit).
        self._queued: list[tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]]] = []
        # Write functions run by this process: the sequence number caches of read answers
        # (AnswerCache) compare against; each batch passes its changed tags to the listeners.
        self.writes = 0
        self._listeners: list[Callable[[set[changes.Tag], int], None]] = []

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
        await _on_thread(writer, changes.install, writer._conn)
        reader = await _connect(path)
        point = connect_sync(path)
        point.execute(f"PRAGMA busy_timeout={POINT_BUSY_MS}")
        return cls(path, writer, reader, point)

    def on_change(self, listener: Callable[[set[changes.Tag], int], None]) -> None:
        """Call `listener(tags, writes)` after each committed batch that changed rows
        answers are made of (see `changes`); `writes` is the new `self.writes`."""
        self._listeners.append(listener)

    async def close(self) -> None:
        if self._drainer is not None:
            await self._drainer
        await self._reader.close()
        await self._writer.close()
        self._point.close()

    async def write(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run `fn(conn, *args, **kwargs)` atomically on the writer thread.

        Writes that arrive while the writer is busy are run together in the next
        BEGIN IMMEDIATE transaction, each inside its own savepoint: one that raises is rolled
        back alone and its caller gets the exception. Concurrent writers thus share one
        thread hop and one commit, instead of queueing for a hop each.
        """
        job: Callable[..., T] = functools.partial(fn, **kwargs) if kwargs else fn
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queued.append((job, args, future))
        # One drainer task is the single writer; a caller that is cancelled while waiting
        # does not stop it (its job still runs, as a started transaction would).
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name="copr-lite-db-writer")
        return await future

    async def _drain(self) -> None:
        while self._queued:
            batch, self._queued = self._queued, []
            await self._run_batch(batch)

    async def _run_batch(
        self, batch: list[tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]]]
    ) -> None:
        jobs = [(fn, args) for fn, args, _ in batch]
        tags: set[changes.Tag] = set()
        try:
            # aiosqlite's _execute runs a callable on the connection's own thread: the one
            # hop that keeps the whole transaction off the event loop.
            outcomes, tags = await _on_thread(self._writer, run_batch, self._writer._conn, jobs)
        except BaseException as exc:  # the transaction itself failed: every job did
            outcomes = [(False, exc)] * len(batch)
        finally:
            self.writes += len(batch)
            if tags:
                for listener in self._listeners:
                    listener(tags, self.writes)
        for (_, _, future), (ok, value) in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    async def write_unseen(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run `fn(conn, *args, **kwargs)` in its own transaction on the writer thread, not
        counted in `writes`: for writes no cached answer depends on (the health probe). The
        writer thread runs one call at a time, so it never interleaves with a batch."""
        conn = self._writer._conn
        return await _on_thread(self._writer, lambda: run_in_transaction(conn, fn, *args, **kwargs))

    async def read(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run `fn(conn, *args, **kwargs)` on the reader thread (several queries, one hop)."""
        return await _on_thread(self._reader, fn, self._reader._conn, *args, **kwargs)

    async def read_point(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run `fn(conn, *args, **kwargs)` on the event loop itself: only for a few rows read
        by their key (a build's state), never anything that scans. Such a query takes about
        10 us; the hop to the reader thread and back costs twice that in CPU, which is most of
        a hot read's cost (bench/api.py, build_status of random builds). In WAL mode a read
        does not wait for writers; when the database is busy anyway (recovery after a crash),
        it goes to the reader thread instead of holding up the loop."""
        try:
            return fn(self._point, *args, **kwargs)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            return await self.read(fn, *args, **kwargs)

    async def fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """One read query; rows support index and name access."""
        return list(await self._reader.execute_fetchall(sql, params))

    async def fetchone(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        rows = await self._reader.execute_fetchall(sql, params)
        for row in rows:
            return row
        return None


def run_batch(
    conn: sqlite3.Connection, jobs: list[tuple[Callable[..., Any], tuple[Any, ...]]]
) -> tuple[list[tuple[bool, Any]], set[changes.Tag]]:
    """Run write jobs in one IMMEDIATE transaction, each in a savepoint so that one which
    raises is undone alone. Returns (ok, result or exception) per job, and the tags of what
    the committed jobs changed."""
    outcomes: list[tuple[bool, Any]] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for fn, args in jobs:
            conn.execute("SAVEPOINT job")
            try:
                result = fn(conn, *args)
            except Exception as exc:
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                outcomes.append((False, exc))
            else:
                conn.execute("RELEASE job")
                outcomes.append((True, result))
        tags = changes.collect(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return outcomes, tags


def run_in_transaction(
    conn: sqlite3.Connection,
    fn: Callable[Concatenate[sqlite3.Connection, P], T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """Run `fn(conn, *args, **kwargs)` inside BEGIN IMMEDIATE; commit, or roll back on any
    error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn, *args, **kwargs)
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
