"""The writer: concurrent writes share a transaction, yet each succeeds or fails alone."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from copr_lite.db import Database


@pytest.fixture
async def db(tmp_path):
    database = await Database.open(tmp_path / "db.sqlite3")
    await database.write(lambda conn: conn.execute("CREATE TABLE t (v INTEGER UNIQUE)"))
    yield database
    await database.close()


def insert(conn: sqlite3.Connection, value: int) -> int:
    conn.execute("INSERT INTO t (v) VALUES (?)", (value,))
    conn.execute("INSERT INTO t (v) VALUES (?)", (value + 1000,))
    return value


async def values(db: Database) -> list[int]:
    return [row[0] for row in await db.fetchall("SELECT v FROM t ORDER BY v")]


async def test_concurrent_writes_all_commit(db):
    results = await asyncio.gather(*(db.write(insert, i) for i in range(200)))
    assert results == list(range(200))
    assert len(await values(db)) == 400
    assert db.writes == 201


async def test_a_failing_write_is_undone_alone(db):
    await db.write(insert, 5)
    outcomes = await asyncio.gather(
        db.write(insert, 1), db.write(insert, 5), db.write(insert, 7), return_exceptions=True
    )
    assert outcomes[0] == 1
    assert isinstance(outcomes[1], sqlite3.IntegrityError)
    assert outcomes[2] == 7
    # The failing job (5 exists) left nothing behind; the others committed both rows.
    assert await values(db) == [1, 5, 7, 1001, 1005, 1007]


async def test_a_cancelled_caller_does_not_stop_the_writer(db):
    first = asyncio.create_task(db.write(insert, 1))
    second = asyncio.create_task(db.write(insert, 2))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == 2
    await asyncio.sleep(0.05)
    assert 2 in await values(db)
