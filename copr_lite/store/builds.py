"""Builds and their chroots: submitting, reading, state changes, the monitor's
latest_builds table, cancelling and deleting."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass

from ..models import Build, BuildChroot, LatestBuild, SourcePackage
from ..states import UNFINISHED_CODES, State, can_move, derive_build_state


@dataclass(frozen=True)
class NewBuild:
    """What new_build stores for each source: an SRPM URL, an uploaded file, or a package
    source (`source_type` 'scm' or 'custom' with its settings, see sources.py)."""

    source_url: str
    srpm_path: str | None = None
    source_type: str = "link"
    source: Mapping[str, object] | None = None

    @property
    def stored_type(self) -> str:
        return "upload" if self.srpm_path is not None else self.source_type


def insert_builds(
    conn: sqlite3.Connection,
    project_id: int,
    submitter_id: int,
    sources: list[NewBuild],
    chroots: list[str],
    *,
    memory_reqs: int,
    timeout: int,
    enable_net: bool,
    repos: str,
    background: bool,
) -> list[int]:
    """Insert one build per source, each with its chroots in `importing`."""
    now = int(time.time())
    ids = []
    importing = State.IMPORTING.code
    for source in sources:
        cur = conn.execute(
            "INSERT INTO builds (project_id, submitter_id, source_url, srpm_path, source_type,"
            " source_json, memory_reqs, timeout, enable_net, repos, background, submitted_on)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                project_id,
                submitter_id,
                source.source_url,
                source.srpm_path,
                source.stored_type,
                json.dumps(dict(source.source or {}), sort_keys=True),
                memory_reqs,
                timeout,
                int(enable_net),
                repos,
                int(background),
                now,
            ),
        )
        build_id = int(cur.lastrowid or 0)
        conn.executemany(
            "INSERT INTO build_chroots (build_id, chroot, status) VALUES (?, ?, ?)",
            [(build_id, chroot, importing) for chroot in chroots],
        )
        ids.append(build_id)
    return ids


def set_source_url(conn: sqlite3.Connection, build_id: int, url: str) -> None:
    conn.execute("UPDATE builds SET source_url = ? WHERE id = ?", (url, build_id))


def get_build_state(conn: sqlite3.Connection, build_id: int) -> tuple[bool, list[int]] | None:
    """(canceled flag, chroot state codes) of a build: what its derived state needs."""
    row = conn.execute(
        "SELECT b.canceled, group_concat(bc.status) FROM builds b"
        " LEFT JOIN build_chroots bc ON bc.build_id = b.id WHERE b.id = ? GROUP BY b.id",
        (build_id,),
    ).fetchone()
    if row is None:
        return None
    return bool(row[0]), [int(code) for code in row[1].split(",")] if row[1] else []


BUILD_COLUMNS = (
    "b.id, b.project_id, u.name AS owner_name, p.name AS project_name,"
    " s.name AS submitter_name, b.source_url, b.srpm_path, b.srpm_sha256, b.pkg_name,"
    " b.pkg_epoch, b.pkg_version, b.pkg_release, b.memory_reqs, b.timeout, b.enable_net,"
    " b.repos, b.background, b.canceled, b.submitted_on, b.started_on, b.ended_on,"
    " b.source_type, b.source_json"
)
BUILD_JOINS = (
    " FROM builds b JOIN projects p ON p.id = b.project_id JOIN users u ON u.id = p.owner_id"
    " LEFT JOIN users s ON s.id = b.submitter_id"
)


def get_build(conn: sqlite3.Connection, build_id: int) -> Build | None:
    """A build with its chroots and built packages (two queries, one thread hop)."""
    row = conn.execute(f"SELECT {BUILD_COLUMNS}{BUILD_JOINS} WHERE b.id = ?", (build_id,))
    row = row.fetchone()
    if row is None:
        return None
    chroots = conn.execute(
        "SELECT bc.chroot, bc.status, bc.started_on, bc.ended_on, bc.fail_reason, bc.attempts,"
        " bc.pruned_on,"
        " (SELECT group_concat(name || ' ' || version, char(10)) FROM built_packages bp"
        "   WHERE bp.build_id = bc.build_id AND bp.chroot = bc.chroot) AS built"
        " FROM build_chroots bc WHERE bc.build_id = ? ORDER BY bc.chroot",
        (build_id,),
    ).fetchall()
    return Build.from_row(row, [BuildChroot.from_row(c) for c in chroots])


def project_builds_page(
    conn: sqlite3.Connection, project_id: int, offset: int, limit: int
) -> list[Build]:
    """One page of the project's builds, newest first."""
    ids = [
        row[0]
        for row in conn.execute(
            "SELECT id FROM builds WHERE project_id = ? ORDER BY id DESC LIMIT ? OFFSET ?",
            (project_id, limit, offset),
        )
    ]
    return _builds_by_ids(conn, ids)


@dataclass(frozen=True)
class BuildFilter:
    """What the builds list may be narrowed to (None: any) and its order."""

    state: State | None = None
    package: str | None = None
    chroot: str | None = None
    submitter: str | None = None
    sort: str = "id"  # a key of BUILD_SORTS
    descending: bool = True


# Columns the builds list sorts by; ties are broken by the build id, newest first.
BUILD_SORTS = {
    "id": "b.id",
    "package": "coalesce(b.pkg_name, '')",
    "submitter": "coalesce(s.name, '')",
    "submitted": "b.submitted_on",
    "ended": "coalesce(b.ended_on, 9223372036854775807)",
}


def filtered_builds_page(
    conn: sqlite3.Connection, project_id: int, wanted: BuildFilter, offset: int, limit: int
) -> tuple[list[Build], int]:
    """One page of the project's builds narrowed by `wanted`, and how many match."""
    where: list[str] = ["b.project_id = ?"]
    params: list[object] = [project_id]
    if wanted.package is not None:
        where.append("b.pkg_name = ?")
        params.append(wanted.package)
    if wanted.submitter is not None:
        where.append("s.name = ?")
        params.append(wanted.submitter)
    if wanted.chroot is not None:
        where.append(
            "EXISTS (SELECT 1 FROM build_chroots c WHERE c.build_id = b.id AND c.chroot = ?)"
        )
        params.append(wanted.chroot)
    rows = conn.execute(
        "SELECT b.id, b.canceled, (SELECT group_concat(status) FROM build_chroots c"
        "  WHERE c.build_id = b.id) AS codes"
        " FROM builds b LEFT JOIN users s ON s.id = b.submitter_id"
        f" WHERE {' AND '.join(where)}"
        f" ORDER BY {BUILD_SORTS[wanted.sort]} {'DESC' if wanted.descending else 'ASC'},"
        " b.id DESC",
        params,
    ).fetchall()
    if wanted.state is not None:
        # The build's state is derived from its chroots, so it is filtered here.
        name = wanted.state.value
        rows = [
            r
            for r in rows
            if derive_build_state(
                bool(r["canceled"]), [int(c) for c in (r["codes"] or "").split(",") if c]
            )
            == name
        ]
    ids = [r["id"] for r in rows[offset : offset + limit]]
    builds = {b.id: b for b in _builds_by_ids(conn, ids)}
    return [builds[i] for i in ids if i in builds], len(rows)


def build_facets(conn: sqlite3.Connection, project_id: int) -> tuple[list[str], list[str]]:
    """The package names and submitters the project's builds have, for the list's filters."""
    packages = [
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT pkg_name FROM builds WHERE project_id = ? AND pkg_name IS NOT NULL"
            " ORDER BY pkg_name",
            (project_id,),
        )
    ]
    submitters = [
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT u.name FROM builds b JOIN users u ON u.id = b.submitter_id"
            " WHERE b.project_id = ? ORDER BY u.name",
            (project_id,),
        )
    ]
    return packages, submitters


def build_chroot_states(
    conn: sqlite3.Connection, ids: list[int]
) -> dict[int, tuple[bool, list[tuple[str, int]]]]:
    """(canceled, [(chroot, state code)]) of each of the builds that exists."""
    found: dict[int, tuple[bool, list[tuple[str, int]]]] = {}
    for build_id, canceled, chroot, status in conn.execute(
        "SELECT b.id, b.canceled, bc.chroot, bc.status FROM json_each(?) w"
        " JOIN builds b ON b.id = w.value LEFT JOIN build_chroots bc ON bc.build_id = b.id"
        " ORDER BY b.id, bc.chroot",
        (json.dumps(ids),),
    ):
        entry = found.setdefault(build_id, (bool(canceled), []))
        if chroot is not None:
            entry[1].append((chroot, status))
    return found


def package_counts(conn: sqlite3.Connection, project_id: int) -> dict[str, int]:
    """How many builds each package of the project has."""
    return dict(
        conn.execute(
            "SELECT pkg_name, count(*) FROM builds WHERE project_id = ? AND pkg_name IS NOT NULL"
            " GROUP BY pkg_name",
            (project_id,),
        ).fetchall()
    )


def _builds_by_ids(conn: sqlite3.Connection, ids: list[int]) -> list[Build]:
    """Builds (newest first) with chroots and built packages, in three queries."""
    if not ids:
        return []
    wanted = json.dumps(ids)
    chroots: dict[int, list[BuildChroot]] = {}
    for row in conn.execute(
        "SELECT bc.build_id, bc.chroot, bc.status, bc.started_on, bc.ended_on,"
        " bc.fail_reason, bc.attempts, bc.pruned_on,"
        " NULL AS built FROM json_each(?) w JOIN build_chroots bc ON bc.build_id = w.value",
        (wanted,),
    ):
        chroots.setdefault(row[0], []).append(BuildChroot.from_row(row))
    built: dict[int, list[str]] = {}
    for build_id, text in conn.execute(
        "SELECT bp.build_id, bp.name || ' ' || bp.version FROM json_each(?) w"
        " JOIN built_packages bp ON bp.build_id = w.value",
        (wanted,),
    ):
        built.setdefault(build_id, []).append(text)
    rows = conn.execute(
        f"SELECT {BUILD_COLUMNS}{BUILD_JOINS}"
        " WHERE b.id IN (SELECT value FROM json_each(?)) ORDER BY b.id DESC",
        (wanted,),
    ).fetchall()
    builds = []
    for row in rows:
        build = Build.from_row(row, chroots.get(row["id"], []))
        names = list(dict.fromkeys(built.get(row["id"], [])))
        builds.append(dataclasses.replace(build, built_packages=tuple(names)))
    return builds


def get_builds(conn: sqlite3.Connection, ids: list[int]) -> list[Build]:
    """The given builds (oldest first) with their chroots and built packages."""
    return sorted(_builds_by_ids(conn, ids), key=lambda build: build.id)


def monitor(
    conn: sqlite3.Connection, project_id: int, page: tuple[int, int] | None
) -> tuple[list[LatestBuild], list[Build]]:
    """The newest non-canceled build of every package in every chroot (from latest_builds,
    so the cost follows packages x chroots), and the builds it refers to, or `page`
    (offset, limit) of the whole history."""
    latest = latest_builds(conn, project_id)
    if page is not None:
        return latest, project_builds_page(conn, project_id, *page)
    ids = sorted({row.build_id for row in latest}, reverse=True)
    return latest, _builds_by_ids(conn, ids)


def latest_builds(conn: sqlite3.Connection, project_id: int) -> list[LatestBuild]:
    """The newest non-canceled build of every package in every chroot of the project, by
    package name and chroot."""
    rows = conn.execute(
        "SELECT l.pkg_name, l.chroot, l.build_id, bc.status, b.pkg_version, b.pkg_release"
        " FROM latest_builds l"
        " JOIN build_chroots bc ON bc.build_id = l.build_id AND bc.chroot = l.chroot"
        " JOIN builds b ON b.id = l.build_id"
        " WHERE l.project_id = ? ORDER BY l.pkg_name, l.chroot",
        (project_id,),
    ).fetchall()
    return [LatestBuild.from_row(row) for row in rows]


def monitor_packages(
    conn: sqlite3.Connection, project_id: int, current: list[str]
) -> tuple[list[str], list[LatestBuild], list[Build]]:
    """The names of the packages in the project's monitor (sorted), and the latest_builds
    rows (as `monitor` gives them) of every package but those in `current`, with the builds
    they refer to (newest first); read in one transaction, so they agree."""
    conn.execute("BEGIN")
    try:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT pkg_name FROM latest_builds WHERE project_id = ?"
                " ORDER BY pkg_name",
                (project_id,),
            )
        ]
        wanted = sorted(set(names) - set(current))
        if not wanted:
            return names, [], []
        params: tuple[str, ...]
        where, params = "", ()
        if current:
            where = " AND l.pkg_name IN (SELECT value FROM json_each(?))"
            params = (json.dumps(wanted),)
        rows = conn.execute(
            "SELECT l.pkg_name, l.chroot, l.build_id, bc.status, b.pkg_version, b.pkg_release"
            " FROM latest_builds l"
            " JOIN build_chroots bc ON bc.build_id = l.build_id AND bc.chroot = l.chroot"
            " JOIN builds b ON b.id = l.build_id"
            f" WHERE l.project_id = ?{where} ORDER BY l.pkg_name, l.chroot",
            (project_id, *params),
        ).fetchall()
        latest = [LatestBuild.from_row(row) for row in rows]
        ids = sorted({row.build_id for row in latest}, reverse=True)
        return names, latest, _builds_by_ids(conn, ids)
    finally:
        conn.execute("COMMIT")


def _refresh_latest(conn: sqlite3.Connection, build_id: int, chroots: list[str]) -> None:
    """Recompute latest_builds for this build's package in `chroots` (after a change)."""
    row = conn.execute(
        "SELECT project_id, pkg_name FROM builds WHERE id = ?", (build_id,)
    ).fetchone()
    if row is None or row["pkg_name"] is None:
        return
    _refresh_package_latest(conn, row["project_id"], row["pkg_name"], chroots)


def _refresh_package_latest(
    conn: sqlite3.Connection, project_id: int, pkg_name: str, chroots: list[str]
) -> None:
    """Point latest_builds at the newest non-canceled build of the package per chroot."""
    canceled = State.CANCELED.code
    for chroot in chroots:
        newest = conn.execute(
            "SELECT b.id FROM builds b JOIN build_chroots bc"
            " ON bc.build_id = b.id AND bc.chroot = ? AND bc.status != ?"
            " WHERE b.project_id = ? AND b.pkg_name = ? ORDER BY b.id DESC LIMIT 1",
            (chroot, canceled, project_id, pkg_name),
        ).fetchone()
        if newest is None:
            conn.execute(
                "DELETE FROM latest_builds WHERE project_id = ? AND pkg_name = ? AND chroot = ?",
                (project_id, pkg_name, chroot),
            )
        else:
            conn.execute(
                "INSERT INTO latest_builds (project_id, pkg_name, chroot, build_id)"
                " VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET build_id = excluded.build_id",
                (project_id, pkg_name, chroot, newest[0]),
            )


def set_build_package(conn: sqlite3.Connection, build_id: int, package: SourcePackage) -> None:
    """Record the package read from the SRPM header; the build joins the monitor."""
    conn.execute(
        "UPDATE builds SET pkg_name = ?, pkg_epoch = ?, pkg_version = ?, pkg_release = ?"
        " WHERE id = ?",
        (package.name, package.epoch, package.version, package.release, build_id),
    )
    conn.execute(
        "INSERT OR IGNORE INTO packages (project_id, name)"
        " SELECT project_id, ? FROM builds WHERE id = ?",
        (package.name, build_id),
    )
    chroots = [
        r[0]
        for r in conn.execute("SELECT chroot FROM build_chroots WHERE build_id = ?", (build_id,))
    ]
    _refresh_latest(conn, build_id, chroots)


def set_chroot_state(
    conn: sqlite3.Connection,
    build_id: int,
    chroot: str,
    state: State,
    *,
    now: int | None = None,
    fail_reason: str | None = None,
) -> bool:
    """Move one build-chroot to `state` if the transition is allowed (returns whether it
    moved), stamping start/end times on the chroot and on the build."""
    now = int(time.time()) if now is None else now
    row = conn.execute(
        "SELECT status FROM build_chroots WHERE build_id = ? AND chroot = ?", (build_id, chroot)
    ).fetchone()
    if row is None or not can_move(State.from_code(row[0]), state):
        return False
    started = now if state in (State.STARTING, State.RUNNING) else None
    ended = now if state.terminal else None
    conn.execute(
        "UPDATE build_chroots SET status = ?, started_on = coalesce(started_on, ?),"
        " ended_on = ?, fail_reason = ? WHERE build_id = ? AND chroot = ?",
        (state.code, started, ended, fail_reason, build_id, chroot),
    )
    _update_build_times(conn, build_id)
    if state is State.CANCELED:
        _refresh_latest(conn, build_id, [chroot])
    return True


def _update_build_times(conn: sqlite3.Connection, build_id: int) -> None:
    """started_on: the first chroot start; ended_on: the last chroot end, once all ended."""
    marks = ", ".join("?" for _ in UNFINISHED_CODES)
    conn.execute(
        "UPDATE builds SET"
        " started_on = (SELECT min(started_on) FROM build_chroots WHERE build_id = ?1),"
        " ended_on = CASE WHEN EXISTS (SELECT 1 FROM build_chroots WHERE build_id = ?1"
        f"   AND status IN ({marks})) THEN NULL"
        "   ELSE (SELECT max(ended_on) FROM build_chroots WHERE build_id = ?1) END"
        " WHERE id = ?1".replace("?1", "?"),
        (build_id, build_id, *UNFINISHED_CODES, build_id, build_id),
    )


def cancel_build(conn: sqlite3.Connection, build_id: int) -> list[str]:
    """Cancel the build's unfinished chroots; returns them (empty: nothing to cancel)."""
    unfinished = [
        row[0]
        for row in conn.execute(
            f"SELECT chroot FROM build_chroots WHERE build_id = ?"
            f" AND status IN ({', '.join('?' for _ in UNFINISHED_CODES)})",
            (build_id, *UNFINISHED_CODES),
        )
    ]
    if not unfinished:
        return []
    conn.execute("UPDATE builds SET canceled = 1 WHERE id = ?", (build_id,))
    for chroot in unfinished:
        set_chroot_state(conn, build_id, chroot, State.CANCELED)
    return unfinished


def delete_builds(conn: sqlite3.Connection, builds: list[Build]) -> list[int]:
    """Delete `builds` (read in this transaction, all finished) with their chroots and
    packages, and let each package's next newest build take its place in latest_builds.
    Their bytes leave the project's disk usage.
    Returns the ids deleted: a build deleted meanwhile by another writer is not among them."""
    deleted = []
    for build in builds:
        conn.execute(
            "UPDATE projects SET disk_bytes = max(0, disk_bytes - (SELECT b.import_bytes"
            " + coalesce((SELECT sum(disk_bytes) FROM build_chroots WHERE build_id = b.id), 0)"
            " FROM builds b WHERE b.id = ?)) WHERE id = ?",
            (build.id, build.project_id),
        )
        if conn.execute("DELETE FROM builds WHERE id = ?", (build.id,)).rowcount:
            deleted.append(build.id)
    for build in builds:
        if build.id in deleted and build.pkg_name is not None:
            _refresh_package_latest(
                conn, build.project_id, build.pkg_name, [c.chroot for c in build.chroots]
            )
    return deleted
