"""Worker credentials: the `workers` table, its migration and the functions on it.

Every function takes the connection first and runs through the core's `Database.read` /
`Database.write` (or the command line's `cli.read_with` / `cli.write`); none opens a
connection. Only a hash of each token is stored.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass

from copr_lite.migrations import Migration
from copr_lite.models import FromColumns

WORKER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

# Databases made before the remote builder had its own migrations got this table from core
# schema step 2; IF NOT EXISTS makes step 1 here a no-op there, so every database ends with
# the same table.
MIGRATIONS = (
    Migration(
        1,
        "workers: credentials of remote build machines",
        """
        -- One row per worker token (`worker-token create NAME`); only its hash is stored.
        -- serves, builder, host and last_seen are what the worker last reported.
        CREATE TABLE IF NOT EXISTS workers (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            token_hash TEXT NOT NULL UNIQUE,
            created_on INTEGER NOT NULL,
            revoked_on INTEGER,
            last_seen INTEGER,
            serves TEXT NOT NULL DEFAULT '',
            builder TEXT NOT NULL DEFAULT '',
            host TEXT NOT NULL DEFAULT ''
        );
        """,
    ),
)

COLUMNS = "id, name, created_on, revoked_on, last_seen, serves, builder, host"


@dataclass(frozen=True, slots=True)
class Worker(FromColumns):
    """A remote build machine's credential and what it last reported (the `workers` table)."""

    id: int
    name: str
    created_on: int
    revoked_on: int | None
    last_seen: int | None
    serves: str  # comma-separated chroot patterns, e.g. "epel-9-x86_64,*-aarch64"
    builder: str
    host: str


class WorkerExists(Exception):
    """A worker of that name holds a token that is not revoked."""


def create_worker(conn: sqlite3.Connection, name: str, token_hash: str) -> Worker:
    """Store a new worker credential. A revoked worker's name is reused (its row gets the new
    token); raises WorkerExists when the name holds a live token."""
    now = int(time.time())
    row = conn.execute("SELECT revoked_on FROM workers WHERE name = ?", (name,)).fetchone()
    if row is not None and row["revoked_on"] is None:
        raise WorkerExists(name)
    conn.execute(
        "INSERT INTO workers (name, token_hash, created_on) VALUES (?, ?, ?)"
        " ON CONFLICT(name) DO UPDATE SET token_hash = excluded.token_hash,"
        " created_on = excluded.created_on, revoked_on = NULL, last_seen = NULL,"
        " serves = '', builder = '', host = ''",
        (name, token_hash, now),
    )
    found = conn.execute(f"SELECT {COLUMNS} FROM workers WHERE name = ?", (name,)).fetchone()
    return Worker.from_row(found)


def get_worker_by_token(conn: sqlite3.Connection, token_hash: str) -> Worker | None:
    """The worker holding the token whose SHA-256 is `token_hash` (revoked ones too)."""
    row = conn.execute(
        f"SELECT {COLUMNS} FROM workers WHERE token_hash = ?", (token_hash,)
    ).fetchone()
    return Worker.from_row(row) if row else None


def list_workers(conn: sqlite3.Connection) -> list[Worker]:
    rows = conn.execute(f"SELECT {COLUMNS} FROM workers ORDER BY name").fetchall()
    return [Worker.from_row(row) for row in rows]


def revoke_worker(conn: sqlite3.Connection, name: str) -> bool:
    """Revoke a worker's token; False when there is no live token of that name."""
    cur = conn.execute(
        "UPDATE workers SET revoked_on = ? WHERE name = ? AND revoked_on IS NULL",
        (int(time.time()), name),
    )
    return cur.rowcount > 0


def worker_seen(
    conn: sqlite3.Connection,
    worker_id: int,
    when: int,
    report: tuple[str, str, str] | None = None,
) -> None:
    """Record a worker's last request; `report` = (serves, builder, host) from a claim."""
    if report is None:
        conn.execute("UPDATE workers SET last_seen = ? WHERE id = ?", (when, worker_id))
    else:
        conn.execute(
            "UPDATE workers SET last_seen = ?, serves = ?, builder = ?, host = ? WHERE id = ?",
            (when, *report, worker_id),
        )
