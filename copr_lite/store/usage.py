"""Disk usage of builds and projects, per-package retention settings and pruning, and
the counts /metrics and /healthz read."""

from __future__ import annotations

import sqlite3

from ..models import ChrootRow, Policy
from ..states import UNFINISHED_CODES, State
from .builds import delete_builds, get_build


def record_chroot_bytes(conn: sqlite3.Connection, build_id: int, chroot: str, size: int) -> None:
    """The chroot's result directory now holds `size` bytes; its project's total follows."""
    row = conn.execute(
        "SELECT bc.disk_bytes, b.project_id FROM build_chroots bc JOIN builds b"
        " ON b.id = bc.build_id WHERE bc.build_id = ? AND bc.chroot = ?",
        (build_id, chroot),
    ).fetchone()
    if row is None:  # deleted meanwhile
        return
    conn.execute(
        "UPDATE build_chroots SET disk_bytes = ? WHERE build_id = ? AND chroot = ?",
        (size, build_id, chroot),
    )
    conn.execute(
        "UPDATE projects SET disk_bytes = max(0, disk_bytes + ?) WHERE id = ?",
        (size - row["disk_bytes"], row["project_id"]),
    )


def record_import_bytes(conn: sqlite3.Connection, build_id: int, size: int) -> None:
    """The build's import directory (SRPM and log) holds `size` bytes."""
    row = conn.execute(
        "SELECT import_bytes, project_id FROM builds WHERE id = ?", (build_id,)
    ).fetchone()
    if row is None:
        return
    conn.execute("UPDATE builds SET import_bytes = ? WHERE id = ?", (size, build_id))
    conn.execute(
        "UPDATE projects SET disk_bytes = max(0, disk_bytes + ?) WHERE id = ?",
        (size - row["import_bytes"], row["project_id"]),
    )


def disk_usage(conn: sqlite3.Connection) -> tuple[int, list[tuple[str, str, int]]]:
    """(total bytes, (owner, project, bytes) of each project, largest first)."""
    rows = conn.execute(
        "SELECT u.name, p.name, p.disk_bytes FROM projects p JOIN users u ON u.id = p.owner_id"
        " ORDER BY p.disk_bytes DESC, u.name, p.name"
    ).fetchall()
    return sum(row[2] for row in rows), [(row[0], row[1], row[2]) for row in rows]


def chroot_counts(conn: sqlite3.Connection) -> tuple[dict[State, int], dict[str, int]]:
    """(number of build chroots in each state, pending chroots per chroot name): what
    /metrics reports of the builds and the queue."""
    states = {
        State.from_code(code): count
        for code, count in conn.execute(
            "SELECT status, count(*) FROM build_chroots GROUP BY status"
        )
    }
    pending = {
        chroot: count
        for chroot, count in conn.execute(
            "SELECT chroot, count(*) FROM build_chroots WHERE status = ? GROUP BY chroot",
            (State.PENDING.code,),
        )
    }
    return states, pending


def probe_write(conn: sqlite3.Connection, now: int) -> None:
    """A real write that changes nothing anyone reads (/healthz: the database is writable)."""
    conn.execute(
        "INSERT INTO health_probe (id, written_on) VALUES (1, ?)"
        " ON CONFLICT(id) DO UPDATE SET written_on = excluded.written_on",
        (now,),
    )


RETENTION_FIELDS = ("auto_prune", "prune_days", "keep_last", "failed_log_days")


def package_settings(conn: sqlite3.Connection, project_id: int) -> dict[str, dict[str, int | None]]:
    """Each package's own retention settings (None: the project's value)."""
    rows = conn.execute(
        f"SELECT pkg_name, {', '.join(RETENTION_FIELDS)} FROM package_settings"
        " WHERE project_id = ? ORDER BY pkg_name",
        (project_id,),
    ).fetchall()
    return {row["pkg_name"]: {key: row[key] for key in RETENTION_FIELDS} for row in rows}


def set_package_settings(
    conn: sqlite3.Connection, project_id: int, pkg_name: str, values: dict[str, int | None]
) -> None:
    """Store a package's retention settings (None: the project's); all None removes the row."""
    if all(values.get(key) is None for key in RETENTION_FIELDS):
        conn.execute(
            "DELETE FROM package_settings WHERE project_id = ? AND pkg_name = ?",
            (project_id, pkg_name),
        )
        return
    conn.execute(
        f"INSERT INTO package_settings (project_id, pkg_name, {', '.join(RETENTION_FIELDS)})"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET"
        + ", ".join(f" {key} = excluded.{key}" for key in RETENTION_FIELDS),
        (project_id, pkg_name, *(values.get(key) for key in RETENTION_FIELDS)),
    )


def project_packages(conn: sqlite3.Connection, project_id: int) -> list[str]:
    """The names of the packages the project has built (imported SRPMs)."""
    return [
        row[0]
        for row in conn.execute(
            "SELECT DISTINCT pkg_name FROM builds WHERE project_id = ? AND pkg_name IS NOT NULL"
            " ORDER BY pkg_name",
            (project_id,),
        )
    ]


def retention_rows(
    conn: sqlite3.Connection,
) -> tuple[list[ChrootRow], dict[tuple[int, str | None], Policy]]:
    """Every build chroot with what retention needs, and the effective retention of every
    package (its own settings over its project's)."""
    chroots = conn.execute(
        "SELECT b.project_id, u.name AS owner, p.name AS project, b.id AS build_id,"
        " b.pkg_name, bc.chroot, bc.status, bc.ended_on, bc.disk_bytes, bc.pruned_on,"
        " b.import_bytes"
        " FROM build_chroots bc JOIN builds b ON b.id = bc.build_id"
        " JOIN projects p ON p.id = b.project_id JOIN users u ON u.id = p.owner_id"
    ).fetchall()
    policies = conn.execute(
        "SELECT p.id AS project_id, k.pkg_name,"
        + ", ".join(f" coalesce(s.{key}, p.{key}) AS {key}" for key in RETENTION_FIELDS)
        + " FROM projects p"
        " JOIN (SELECT DISTINCT project_id, pkg_name FROM builds) k ON k.project_id = p.id"
        " LEFT JOIN package_settings s ON s.project_id = p.id AND s.pkg_name = k.pkg_name"
    ).fetchall()
    rows = [
        ChrootRow(
            r["project_id"],
            r["owner"],
            r["project"],
            r["build_id"],
            r["pkg_name"],
            r["chroot"],
            State.from_code(r["status"]),
            r["ended_on"],
            r["disk_bytes"],
            r["pruned_on"],
            r["import_bytes"],
        )
        for r in chroots
    ]
    effective = {
        (r["project_id"], r["pkg_name"]): Policy(
            bool(r["auto_prune"]), r["prune_days"], r["keep_last"], r["failed_log_days"]
        )
        for r in policies
    }
    return rows, effective


def apply_prune(
    conn: sqlite3.Connection, chroots: list[tuple[int, str]], build_ids: list[int], now: int
) -> list[int]:
    """Mark the chroots pruned (their bytes leave the project's usage), then delete the
    builds among `build_ids` whose chroots are all pruned. Returns the builds deleted."""
    terminal = tuple(s.code for s in State if s.terminal)
    marks = ", ".join("?" for _ in terminal)
    for build_id, chroot in chroots:
        row = conn.execute(
            "SELECT bc.disk_bytes, b.project_id FROM build_chroots bc JOIN builds b"
            " ON b.id = bc.build_id WHERE bc.build_id = ? AND bc.chroot = ?"
            f" AND bc.pruned_on IS NULL AND bc.status IN ({marks})",
            (build_id, chroot, *terminal),
        ).fetchone()
        if row is None:
            continue
        conn.execute(
            "UPDATE build_chroots SET pruned_on = ?, disk_bytes = 0"
            " WHERE build_id = ? AND chroot = ?",
            (now, build_id, chroot),
        )
        conn.execute(
            "UPDATE projects SET disk_bytes = max(0, disk_bytes - ?) WHERE id = ?",
            (row["disk_bytes"], row["project_id"]),
        )
    whole = [
        build
        for build in (get_build(conn, build_id) for build_id in build_ids)
        if build is not None and all(c.pruned_on is not None for c in build.chroots)
    ]
    return delete_builds(conn, whole)


def unfinished_builds(conn: sqlite3.Connection, project_id: int) -> list[int]:
    marks = ", ".join("?" for _ in UNFINISHED_CODES)
    return [
        row[0]
        for row in conn.execute(
            "SELECT DISTINCT b.id FROM builds b JOIN build_chroots bc ON bc.build_id = b.id"
            f" WHERE b.project_id = ? AND bc.status IN ({marks})",
            (project_id, *UNFINISHED_CODES),
        )
    ]
