from __future__ import annotations

import sqlite3

import pytest
from copr_lite._plugins.remote import accounts as remote_accounts

from copr_lite import migrations
from copr_lite.db import Database, DatabaseError, connect_sync
from copr_lite.migrations import MIGRATIONS, Migration, MigrationRegistry


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


# The core's step 2 as it was released, when it made the remote plugin's table itself: the
# plugin's first step without its IF NOT EXISTS.
RELEASED_STEP_2 = Migration(
    2,
    "workers: credentials of remote build machines",
    remote_accounts.MIGRATIONS[0].sql.replace(" IF NOT EXISTS", ""),
)


def schema(conn: sqlite3.Connection) -> dict[str, list[tuple[str, ...]]]:
    """Every table's columns (name, type, not null, default, primary key) and indexes."""
    names = sorted(tables(conn) - {"schema_version", "plugin_schema_versions"})
    described = {}
    for name in names:
        columns = conn.execute(f"PRAGMA table_info({name})").fetchall()
        indexes = conn.execute(f"PRAGMA index_list({name})").fetchall()
        described[name] = [tuple(map(str, row)) for row in [*columns, *indexes]]
    return described


def test_the_workers_table_is_the_same_on_fresh_and_existing_databases(tmp_path):
    """Databases migrated when the core made `workers` and fresh ones, where the remote
    plugin's own step makes it, end in the same schema and versions."""
    plugin_steps = MigrationRegistry()
    plugin_steps.add("remote", remote_accounts.MIGRATIONS)
    existing = connect_sync(tmp_path / "existing.sqlite3")
    assert "IF NOT EXISTS" not in RELEASED_STEP_2.sql
    migrations.migrate(existing, (MIGRATIONS[0], RELEASED_STEP_2))
    existing.execute("INSERT INTO workers (name, token_hash, created_on) VALUES ('b1', 'h', 1)")
    migrations.migrate(existing)
    assert migrations.migrate_plugins(existing, plugin_steps) == [
        ("remote", remote_accounts.MIGRATIONS[0])
    ]
    fresh = connect_sync(tmp_path / "fresh.sqlite3")
    migrations.migrate(fresh)
    migrations.migrate_plugins(fresh, plugin_steps)

    assert "workers" in tables(fresh)
    assert schema(existing) == schema(fresh)
    for conn in (existing, fresh):
        assert migrations.current_version(conn) == migrations.LATEST_VERSION
        assert migrations.plugin_version(conn, "remote") == 1
        assert migrations.migrate_plugins(conn, plugin_steps) == []
    assert [tuple(r) for r in existing.execute("SELECT name FROM workers")] == [("b1",)]


def test_a_plugin_version_newer_than_its_steps_is_refused(tmp_path):
    conn = connect_sync(tmp_path / "db.sqlite3")
    steps = MigrationRegistry()
    steps.add("notes", [Migration(1, "notes", "CREATE TABLE notes (text TEXT);")])
    migrations.migrate_plugins(conn, steps)
    conn.execute("UPDATE plugin_schema_versions SET version = 4 WHERE plugin = 'notes'")
    with pytest.raises(migrations.SchemaTooNew, match="version 4 of notes, but the plugin notes"):
        migrations.migrate_plugins(conn, steps)
    with pytest.raises(ValueError, match="numbered 1, 2, 3"):
        MigrationRegistry().add("bad", [Migration(2, "two", "")])
