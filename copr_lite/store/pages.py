"""The web UI's pages, each read in one thread hop."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from ..models import Build, LatestBuild, Project, User
from ..states import State
from .builds import _builds_by_ids, get_build, monitor
from .projects import PROJECT_COLUMNS, get_project_with_roles
from .users import get_user

QUEUED_CODES: tuple[int, ...] = (State.IMPORTING.code, State.PENDING.code)
ACTIVE_CODES: tuple[int, ...] = (State.STARTING.code, State.RUNNING.code)


@dataclass(frozen=True)
class HomeSummary:
    recent: list[Build]
    running: list[Build]
    queued_chroots: int
    running_chroots: int


def home_summary(conn: sqlite3.Connection, recent: int, running: int) -> HomeSummary:
    """The home page: the newest builds of listed projects, the builds with a chroot
    starting or running, and how many chroots wait (importing, pending) or run."""
    counts = dict.fromkeys(QUEUED_CODES + ACTIVE_CODES, 0)
    marks = ", ".join("?" for _ in counts)
    for status, count in conn.execute(
        f"SELECT status, count(*) FROM build_chroots WHERE status IN ({marks}) GROUP BY status",
        tuple(counts),
    ):
        counts[status] = count
    recent_ids = [
        row[0]
        for row in conn.execute(
            "SELECT b.id FROM builds b JOIN projects p ON p.id = b.project_id"
            " WHERE p.unlisted_on_hp = 0 ORDER BY b.id DESC LIMIT ?",
            (recent,),
        )
    ]
    running_ids = [
        row[0]
        for row in conn.execute(
            "SELECT DISTINCT build_id FROM build_chroots WHERE status IN (?, ?)"
            " ORDER BY build_id DESC LIMIT ?",
            (*ACTIVE_CODES, running),
        )
    ]
    builds = {b.id: b for b in _builds_by_ids(conn, sorted({*recent_ids, *running_ids}))}
    return HomeSummary(
        [builds[i] for i in recent_ids if i in builds],
        [builds[i] for i in running_ids if i in builds],
        sum(counts[c] for c in QUEUED_CODES),
        sum(counts[c] for c in ACTIVE_CODES),
    )


@dataclass(frozen=True)
class ProjectRow:
    project: Project
    chroots: list[str]
    builds: int
    last_state: tuple[bool, list[int]] | None  # the newest build's (canceled, chroot codes)


def projects_page(
    conn: sqlite3.Connection, owner: str | None, offset: int, limit: int
) -> tuple[User | None, list[ProjectRow], int] | None:
    """One page of projects (all, or `owner`'s), newest first, each with its chroots, its
    number of builds and its newest build's state; with the owner and the total. None when
    `owner` does not exist."""
    user = None
    if owner is not None:
        user = get_user(conn, owner)
        if user is None:
            return None
    where, params = ("WHERE p.owner_id = ?", (user.id,)) if user else ("", ())
    total = conn.execute(f"SELECT count(*) FROM projects p {where}", params).fetchone()[0]
    rows = conn.execute(
        f"SELECT {PROJECT_COLUMNS},"
        " (SELECT group_concat(chroot, ' ') FROM project_chroots WHERE project_id = p.id)"
        "   AS chroots,"
        " (SELECT count(*) FROM builds WHERE project_id = p.id) AS build_count,"
        " (SELECT b.canceled || ':' || coalesce((SELECT group_concat(status) FROM build_chroots"
        "    WHERE build_id = b.id), '') FROM builds b WHERE b.project_id = p.id"
        "    ORDER BY b.id DESC LIMIT 1) AS last_state"
        f" FROM projects p JOIN users u ON u.id = p.owner_id {where}"
        " ORDER BY p.id DESC LIMIT ? OFFSET ?",
        (*params, limit, offset),
    ).fetchall()
    result = []
    for row in rows:
        last = None
        if row["last_state"] is not None:
            canceled, _, codes = row["last_state"].partition(":")
            last = (canceled == "1", [int(c) for c in codes.split(",") if c])
        result.append(
            ProjectRow(
                Project.from_row(row),
                sorted((row["chroots"] or "").split()),
                row["build_count"],
                last,
            )
        )
    return user, result, total


@dataclass(frozen=True)
class ProjectOverview:
    project: Project
    roles: frozenset[str]
    chroots: tuple[str, ...]
    buildroot_pkgs: dict[str, str]
    latest: list[LatestBuild]  # the monitor: newest build of each package in each chroot
    builds: list[Build]  # the requested page, newest first
    total_builds: int


def project_overview(
    conn: sqlite3.Connection,
    owner: str,
    name: str,
    user_id: int | None,
    offset: int,
    limit: int,
) -> ProjectOverview | None:
    """Everything the project page shows, in one thread hop."""
    found = get_project_with_roles(conn, owner, name, user_id)
    if found is None:
        return None
    project, roles, chroots = found
    packages = {
        row[0]: row[1] or ""
        for row in conn.execute(
            "SELECT chroot, buildroot_pkgs FROM project_chroots WHERE project_id = ?",
            (project.id,),
        )
    }
    latest, builds = monitor(conn, project.id, (offset, limit))
    total = conn.execute(
        "SELECT count(*) FROM builds WHERE project_id = ?", (project.id,)
    ).fetchone()[0]
    return ProjectOverview(project, roles, chroots, packages, latest, builds, total)


def build_with_roles(
    conn: sqlite3.Connection, build_id: int, user_id: int | None
) -> tuple[Build, Project, frozenset[str]] | None:
    """A build, its project and the roles `user_id` holds on that project."""
    build = get_build(conn, build_id)
    if build is None:
        return None
    found = get_project_with_roles(conn, build.owner_name, build.project_name, user_id)
    if found is None:
        return None
    return build, found[0], found[1]
