"""Remote workers' credentials and what they last reported."""

from __future__ import annotations

import sqlite3
import time

from ..models import Worker

WORKER_COLUMNS = "id, name, created_on, revoked_on, last_seen, serves, builder, host"


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
    found = conn.execute(f"SELECT {WORKER_COLUMNS} FROM workers WHERE name = ?", (name,)).fetchone()
    return Worker.from_row(found)


def get_worker_by_token(conn: sqlite3.Connection, token_hash: str) -> Worker | None:
    """The worker holding the token whose SHA-256 is `token_hash` (revoked ones too)."""
    row = conn.execute(
        f"SELECT {WORKER_COLUMNS} FROM workers WHERE token_hash = ?", (token_hash,)
    ).fetchone()
    return Worker.from_row(row) if row else None


def list_workers(conn: sqlite3.Connection) -> list[Worker]:
    rows = conn.execute(f"SELECT {WORKER_COLUMNS} FROM workers ORDER BY name").fetchall()
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
