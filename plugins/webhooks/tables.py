"""The plugin's two tables, their migration, and every SQL statement on them.

`outgoing_webhooks` holds one target per project; `outgoing_webhook_deliveries` one row per
event to send, with its state. Every function takes the connection first and runs through
the core's `Database.read` / `Database.write` (or `read_point` for one row by its key).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from copr_lite.migrations import Migration
from copr_lite.models import FromColumns

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"

MIGRATIONS = (
    Migration(
        1,
        "outgoing webhooks: one target per project, and its deliveries",
        """
        -- The target of a project's outgoing webhooks; the secret signs every request.
        CREATE TABLE outgoing_webhooks (
            project_id INTEGER PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
            url TEXT NOT NULL,
            secret TEXT NOT NULL,
            enabled INTEGER NOT NULL DEFAULT 1,
            created_on INTEGER NOT NULL,
            updated_on INTEGER NOT NULL
        );
        -- One event to deliver. payload is the exact body sent (the same on every attempt);
        -- once_key makes an event that must be sent once per build (build.started) unique.
        -- state: pending (next_attempt_on says when), delivered or failed (given up).
        CREATE TABLE outgoing_webhook_deliveries (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL
                REFERENCES outgoing_webhooks(project_id) ON DELETE CASCADE,
            event_id TEXT NOT NULL UNIQUE,
            event TEXT NOT NULL,
            build_id INTEGER NOT NULL,
            chroot TEXT,
            once_key TEXT UNIQUE,
            payload TEXT NOT NULL,
            created_on REAL NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_on REAL,
            last_attempt_on REAL,
            last_status INTEGER,
            last_error TEXT
        );
        CREATE INDEX outgoing_webhook_deliveries_queue
            ON outgoing_webhook_deliveries (state, project_id, id);
        """,
    ),
)


@dataclass(frozen=True, slots=True)
class Webhook(FromColumns):
    """A project's outgoing webhook target."""

    project_id: int
    url: str
    secret: str
    enabled: bool
    created_on: int
    updated_on: int


@dataclass(frozen=True, slots=True)
class Delivery(FromColumns):
    """One event to deliver, and how its delivery went so far."""

    id: int
    event_id: str
    event: str
    build_id: int
    chroot: str | None
    created_on: float
    state: str
    attempts: int
    next_attempt_on: float | None
    last_attempt_on: float | None
    last_status: int | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class Due:
    """A delivery to attempt now, with where it goes (read when it is attempted)."""

    id: int
    event_id: str
    event: str
    project_id: int
    project: str  # owner/name, for the log
    payload: str
    created_on: float
    attempts: int
    url: str
    secret: str


WEBHOOK_COLUMNS = "project_id, url, secret, enabled, created_on, updated_on"
DELIVERY_COLUMNS = (
    "id, event_id, event, build_id, chroot, created_on, state, attempts, next_attempt_on,"
    " last_attempt_on, last_status, last_error"
)


# ---------------------------------------------------------------- targets


def get_webhook(conn: sqlite3.Connection, project_id: int) -> Webhook | None:
    row = conn.execute(
        f"SELECT {WEBHOOK_COLUMNS} FROM outgoing_webhooks WHERE project_id = ?", (project_id,)
    ).fetchone()
    return Webhook.from_row(row) if row else None


def is_enabled(conn: sqlite3.Connection, project_id: int) -> bool:
    """Whether the project has an enabled webhook (one row by its key: for `read_point`)."""
    row = conn.execute(
        "SELECT enabled FROM outgoing_webhooks WHERE project_id = ?", (project_id,)
    ).fetchone()
    return bool(row and row[0])


def save_webhook(
    conn: sqlite3.Connection, project_id: int, url: str, secret: str, enabled: bool, now: int
) -> tuple[Webhook, bool]:
    """Create or change a project's webhook; returns it and whether it is new. Disabling it
    gives up its pending deliveries."""
    created = get_webhook(conn, project_id) is None
    conn.execute(
        "INSERT INTO outgoing_webhooks (project_id, url, secret, enabled, created_on, updated_on)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(project_id) DO UPDATE SET url = excluded.url,"
        " secret = excluded.secret, enabled = excluded.enabled, updated_on = excluded.updated_on",
        (project_id, url, secret, int(enabled), now, now),
    )
    if not enabled:
        conn.execute(
            "UPDATE outgoing_webhook_deliveries SET state = ?, next_attempt_on = NULL,"
            " last_error = 'the webhook was disabled' WHERE project_id = ? AND state = ?",
            (FAILED, project_id, PENDING),
        )
    webhook = get_webhook(conn, project_id)
    assert webhook is not None
    return webhook, created


def delete_webhook(conn: sqlite3.Connection, project_id: int) -> bool:
    """Remove a project's webhook and its deliveries; False when it had none."""
    cur = conn.execute("DELETE FROM outgoing_webhooks WHERE project_id = ?", (project_id,))
    return cur.rowcount > 0


# ---------------------------------------------------------------- deliveries


def add_delivery(
    conn: sqlite3.Connection,
    project_id: int,
    event_id: str,
    event: str,
    build_id: int,
    chroot: str | None,
    once_key: str | None,
    payload: str,
    now: float,
    keep: int,
) -> bool:
    """Queue an event for the project's webhook if it has an enabled one (False otherwise,
    or when an event with the same `once_key` is queued already). Finished deliveries
    beyond the newest `keep` of the project are removed."""
    cur = conn.execute(
        "INSERT OR IGNORE INTO outgoing_webhook_deliveries (project_id, event_id, event,"
        " build_id, chroot, once_key, payload, created_on, next_attempt_on)"
        " SELECT project_id, ?, ?, ?, ?, ?, ?, ?, ? FROM outgoing_webhooks"
        " WHERE project_id = ? AND enabled = 1",
        (event_id, event, build_id, chroot, once_key, payload, now, now, project_id),
    )
    if cur.rowcount == 0:
        return False
    conn.execute(
        "DELETE FROM outgoing_webhook_deliveries WHERE project_id = ? AND state != ? AND id <"
        " (SELECT MIN(id) FROM (SELECT id FROM outgoing_webhook_deliveries"
        "  WHERE project_id = ? AND state != ? ORDER BY id DESC LIMIT ?))",
        (project_id, PENDING, project_id, PENDING, keep),
    )
    return True


def list_deliveries(conn: sqlite3.Connection, project_id: int, limit: int) -> list[Delivery]:
    """The project's deliveries, newest first."""
    rows = conn.execute(
        f"SELECT {DELIVERY_COLUMNS} FROM outgoing_webhook_deliveries WHERE project_id = ?"
        " ORDER BY id DESC LIMIT ?",
        (project_id, limit),
    ).fetchall()
    return [Delivery.from_row(row) for row in rows]


def due_deliveries(
    conn: sqlite3.Connection, now: float, limit: int
) -> tuple[list[Due], float | None]:
    """The deliveries to attempt at `now` (oldest first), and when the next one falls due.

    Only the oldest pending delivery of each project is a candidate, so that a project's
    events reach its receiver in the order they happened, also across retries.
    """
    heads = (
        "FROM outgoing_webhook_deliveries d"
        " JOIN outgoing_webhooks w ON w.project_id = d.project_id AND w.enabled = 1"
        " WHERE d.id IN (SELECT MIN(id) FROM outgoing_webhook_deliveries WHERE state = ?"
        "  GROUP BY project_id)"
    )
    rows = conn.execute(
        "SELECT d.id, d.event_id, d.event, d.project_id,"
        " (SELECT u.name || '/' || p.name FROM projects p JOIN users u ON u.id = p.owner_id"
        "  WHERE p.id = d.project_id),"
        f" d.payload, d.created_on, d.attempts, w.url, w.secret {heads}"
        " AND d.next_attempt_on <= ? ORDER BY d.next_attempt_on, d.id LIMIT ?",
        (PENDING, now, limit),
    ).fetchall()
    later = conn.execute(
        f"SELECT MIN(d.next_attempt_on) {heads} AND d.next_attempt_on > ?", (PENDING, now)
    ).fetchone()[0]
    return [Due(*row) for row in rows], later


def record_attempt(
    conn: sqlite3.Connection,
    delivery_id: int,
    when: float,
    status: int | None,
    error: str | None,
    state: str,
    next_attempt_on: float | None,
) -> None:
    """Store the outcome of one attempt: the delivery's new state and its next try."""
    conn.execute(
        "UPDATE outgoing_webhook_deliveries SET attempts = attempts + 1, last_attempt_on = ?,"
        " last_status = ?, last_error = ?, state = ?, next_attempt_on = ? WHERE id = ?",
        (when, status, error, state, next_attempt_on, delivery_id),
    )
