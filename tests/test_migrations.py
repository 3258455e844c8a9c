from __future__ import annotations

import sqlite3

import pytest

from copr_lite import migrations
from copr_lite.db import Database, DatabaseError, connect_sync
from copr_lite.migrations import MIGRATIONS, Migration


def tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {row[0] for row in rows}


def test_fresh_database_gets_every_table(tmp_path):
    conn = connect_sync(tmp_path / "db.sqlite3")
    applied = migrations.migrate(conn)
    assert [m.version for m in applied] == [m.version for m in MIGRATIONS]
    assert migrations.current_version(conn) == migrations.LATEST_VERSION
    assert {
        "users",
        "api_tokens",
        "sessions",
        "projects",
        "project_chroots",
        "permissions",
        "builds",
        "build_chroots",
        "built_packages",
        "latest_builds",
        "schema_version",
    } <= tables(conn)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    # Running again applies nothing.
    assert migrations.migrate(conn) == []


def test_upgrade_applies_only_the_new_steps(tmp_path):
    conn = connect_sync(tmp_path / "db.sqlite3")
    migrations.migrate(conn)
    conn.execute("INSERT INTO users (name, is_admin, created_on) VALUES ('keep', 0, 1)")
    step = Migration(
        migrations.LATEST_VERSION + 1, "add a column", "ALTER TABLE users ADD COLUMN email TEXT;"
    )
    applied = migrations.migrate(conn, (*MIGRATIONS, step))
    assert applied == [step]
    assert migrations.current_version(conn) == step.version
    assert [tuple(r) for r in conn.execute("SELECT name, email FROM users")] == [("keep", None)]


def test_a_failing_step_leaves_the_database_as_it_was(tmp_path):
    conn = connect_sync(tmp_path / "db.sqlite3")
    migrations.migrate(conn)
    bad = Migration(
        migrations.LATEST_VERSION + 1,
        "half-broken",
        "CREATE TABLE extra (id INTEGER);\nINSERT INTO nowhere VALUES (1);",
    )
    with pytest.raises(sqlite3.OperationalError):
        migrations.migrate(conn, (*MIGRATIONS, bad))
    assert migrations.current_version(conn) == migrations.LATEST_VERSION
    assert "extra" not in tables(conn)


async def test_newer_database_is_refused(tmp_path):
    path = tmp_path / "db.sqlite3"
    conn = connect_sync(path)
    migrations.migrate(conn)
    conn.execute("UPDATE schema_version SET version = 999")
    conn.close()
    with pytest.raises(DatabaseError, match=r"schema version 999.*only knows up to"):
        await Database.open(path)
