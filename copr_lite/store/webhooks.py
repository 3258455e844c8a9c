"""Incoming webhook deliveries: each one recorded with what it did."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class Delivery:
    """One incoming webhook delivery of a project.

    Attributes:
        id: our id of the delivery.
        forge: github, gitlab, gitea, forgejo or custom.
        delivery_id: the forge's id of it (None when it sent none, or it was refused).
        event: what the forge said happened ("push", "tag", "ping"...).
        received_on: Unix time.
        status: the HTTP status it was answered with.
        outcome: one line saying what it did or why it did nothing.
        build_ids: the builds it started.
    """

    id: int
    forge: str
    delivery_id: str | None
    event: str
    received_on: int
    status: int
    outcome: str
    build_ids: tuple[int, ...]


# Deliveries kept per project (the newest); a forge redelivers recent ones only, so older
# delivery ids need not be kept.
KEEP_DELIVERIES = 1000


def record_delivery(
    conn: sqlite3.Connection,
    project_id: int,
    forge: str,
    delivery_id: str | None,
    event: str,
    received_on: int,
    status: int,
    outcome: str,
) -> int | None:
    """Record a delivery; its id, or None when the project already has this forge's
    delivery id (a replay: the unique index webhook_deliveries_once says so). The project's
    deliveries beyond the newest KEEP_DELIVERIES are removed."""
    try:
        cursor = conn.execute(
            "INSERT INTO webhook_deliveries (project_id, forge, delivery_id, event, received_on,"
            " status, outcome) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (project_id, forge, delivery_id, event, received_on, status, outcome),
        )
    except sqlite3.IntegrityError:
        if delivery_id is None:
            raise
        return None
    conn.execute(
        "DELETE FROM webhook_deliveries WHERE project_id = ? AND id <= (SELECT id FROM"
        " webhook_deliveries WHERE project_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
        (project_id, project_id, KEEP_DELIVERIES),
    )
    return cursor.lastrowid


def set_delivery_outcome(
    conn: sqlite3.Connection, delivery: int, status: int, outcome: str, build_ids: list[int]
) -> None:
    conn.execute(
        "UPDATE webhook_deliveries SET status = ?, outcome = ?, build_ids = ? WHERE id = ?",
        (status, outcome, json.dumps(build_ids), delivery),
    )


def recent_deliveries(conn: sqlite3.Connection, project_id: int, limit: int) -> list[Delivery]:
    """The project's newest deliveries first."""
    rows = conn.execute(
        "SELECT id, forge, delivery_id, event, received_on, status, outcome, build_ids"
        " FROM webhook_deliveries WHERE project_id = ? ORDER BY id DESC LIMIT ?",
        (project_id, limit),
    ).fetchall()
    return [
        Delivery(
            row["id"],
            row["forge"],
            row["delivery_id"],
            row["event"],
            row["received_on"],
            row["status"],
            row["outcome"],
            tuple(json.loads(row["build_ids"])),
        )
        for row in rows
    ]
