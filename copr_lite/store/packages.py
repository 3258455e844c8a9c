"""API v3 lists: a project's packages, build ids, build states and built packages."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from ..models import Build, BuiltPackage
from ..states import UNFINISHED_CODES, State
from .builds import _builds_by_ids


@dataclass(frozen=True)
class Package:
    """A package of a project: a name it has built or defined, its source ('unset' for one
    only built from SRPMs), and its newest and newest succeeded build when asked for."""

    id: int
    name: str
    latest: Build | None
    latest_succeeded: Build | None
    source_type: str = "unset"
    source: dict[str, Any] = field(default_factory=dict)
    webhook_rebuild: bool = False
    options: dict[str, Any] = field(default_factory=dict)


_PACKAGE_COLUMNS = "id, name, source_type, source_json, webhook_rebuild, options_json"


def _package(row: sqlite3.Row, latest: Build | None, succeeded: Build | None) -> Package:
    return Package(
        row["id"],
        row["name"],
        latest,
        succeeded,
        row["source_type"],
        json.loads(row["source_json"]),
        bool(row["webhook_rebuild"]),
        json.loads(row["options_json"]),
    )


def packages_page(
    conn: sqlite3.Connection,
    project_id: int,
    name: str | None,
    offset: int,
    limit: int,
    with_builds: bool,
) -> list[Package]:
    """The project's packages by name (or the one called `name`), with their newest builds
    when `with_builds`."""
    where, params = ("AND name = ?", (name,)) if name is not None else ("", ())
    rows = conn.execute(
        f"SELECT {_PACKAGE_COLUMNS} FROM packages WHERE project_id = ? {where}"
        " ORDER BY name LIMIT ? OFFSET ?",
        (project_id, *params, limit, offset),
    ).fetchall()
    packages = []
    for row in rows:
        latest = succeeded = None
        if with_builds:
            latest, succeeded = _package_builds(conn, project_id, row["name"])
        packages.append(_package(row, latest, succeeded))
    return packages


def get_package(conn: sqlite3.Connection, project_id: int, name: str) -> Package | None:
    """The project's package called `name` (without its builds), or None."""
    row = conn.execute(
        f"SELECT {_PACKAGE_COLUMNS} FROM packages WHERE project_id = ? AND name = ?",
        (project_id, name),
    ).fetchone()
    return _package(row, None, None) if row is not None else None


def save_package(
    conn: sqlite3.Connection,
    project_id: int,
    name: str,
    source_type: str,
    source: dict[str, Any],
    webhook_rebuild: bool,
    options: dict[str, Any],
) -> None:
    """Create or update the project's package `name` with its source and build options."""
    conn.execute(
        "INSERT INTO packages (project_id, name, source_type, source_json, webhook_rebuild,"
        " options_json) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (project_id, name) DO UPDATE SET"
        " source_type = excluded.source_type, source_json = excluded.source_json,"
        " webhook_rebuild = excluded.webhook_rebuild, options_json = excluded.options_json",
        (
            project_id,
            name,
            source_type,
            json.dumps(source, sort_keys=True),
            int(webhook_rebuild),
            json.dumps(options, sort_keys=True),
        ),
    )


def defined_packages(conn: sqlite3.Connection, project_id: int) -> list[Package]:
    """The project's packages that have a source (scm or custom), by name."""
    return _with_source(conn, project_id, "")


def webhook_packages(conn: sqlite3.Connection, project_id: int) -> list[Package]:
    """The project's packages with a source that a forge push may rebuild."""
    return _with_source(conn, project_id, " AND webhook_rebuild = 1")


def _with_source(conn: sqlite3.Connection, project_id: int, condition: str) -> list[Package]:
    rows = conn.execute(
        f"SELECT {_PACKAGE_COLUMNS} FROM packages WHERE project_id = ?"
        f" AND source_type != 'unset'{condition} ORDER BY name",
        (project_id,),
    ).fetchall()
    return [_package(row, None, None) for row in rows]


def _package_builds(
    conn: sqlite3.Connection, project_id: int, name: str
) -> tuple[Build | None, Build | None]:
    newest = conn.execute(
        "SELECT max(id) FROM builds WHERE project_id = ? AND pkg_name = ?", (project_id, name)
    ).fetchone()[0]
    marks = ", ".join("?" for _ in UNFINISHED_CODES)
    # Succeeded: every chroot ended succeeded or skipped, none failed or canceled.
    good = conn.execute(
        "SELECT max(b.id) FROM builds b WHERE b.project_id = ? AND b.pkg_name = ?"
        " AND b.canceled = 0 AND EXISTS (SELECT 1 FROM build_chroots WHERE build_id = b.id)"
        " AND NOT EXISTS (SELECT 1 FROM build_chroots WHERE build_id = b.id"
        f"  AND (status IN ({marks}) OR status NOT IN (?, ?)))",
        (project_id, name, *UNFINISHED_CODES, State.SUCCEEDED.code, State.SKIPPED.code),
    ).fetchone()[0]
    found = {b.id: b for b in _builds_by_ids(conn, sorted({i for i in (newest, good) if i}))}
    return found.get(newest), found.get(good)


def project_build_ids(conn: sqlite3.Connection, project_id: int, package: str | None) -> list[int]:
    """Ids of the project's builds (of `package`, when given), newest first."""
    if package is None:
        rows = conn.execute(
            "SELECT id FROM builds WHERE project_id = ? ORDER BY id DESC", (project_id,)
        )
    else:
        rows = conn.execute(
            "SELECT id FROM builds WHERE project_id = ? AND pkg_name = ? ORDER BY id DESC",
            (project_id, package),
        )
    return [row[0] for row in rows]


def builds_newest_first(conn: sqlite3.Connection, ids: list[int]) -> list[Build]:
    return _builds_by_ids(conn, ids)


def build_states(conn: sqlite3.Connection, ids: list[int]) -> dict[int, tuple[bool, list[int]]]:
    """(canceled, chroot codes) of each given build, for filtering by derived state."""
    found: dict[int, tuple[bool, list[int]]] = {}
    for build_id, canceled, codes in conn.execute(
        "SELECT b.id, b.canceled, group_concat(bc.status) FROM json_each(?) w"
        " JOIN builds b ON b.id = w.value LEFT JOIN build_chroots bc ON bc.build_id = b.id"
        " GROUP BY b.id",
        (json.dumps(ids),),
    ):
        found[build_id] = (bool(canceled), [int(c) for c in codes.split(",")] if codes else [])
    return found


def built_package_rows(conn: sqlite3.Connection, build_id: int) -> list[BuiltPackage]:
    """Each package a build published, by chroot, name and arch."""
    return [
        BuiltPackage(*row)
        for row in conn.execute(
            "SELECT chroot, name, epoch, version, release, arch FROM built_packages"
            " WHERE build_id = ? ORDER BY chroot, name, arch",
            (build_id,),
        )
    ]


def delete_package(conn: sqlite3.Connection, project_id: int, name: str) -> bool:
    return (
        conn.execute(
            "DELETE FROM packages WHERE project_id = ? AND name = ?", (project_id, name)
        ).rowcount
        > 0
    )
