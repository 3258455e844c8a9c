"""Projects, their chroots and permissions, and the project and package search."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass

from ..models import Project
from ..states import BUILT_CODES

PROJECT_COLUMNS = (
    "p.id, p.owner_id, u.name AS owner_name, p.name, p.description, p.instructions, p.repos,"
    " p.homepage, p.contact, p.auto_createrepo, p.build_enable_net, p.unlisted_on_hp,"
    " p.persistent, p.auto_prune, p.use_bootstrap_container, p.created_on,"
    " p.prune_days, p.keep_last, p.failed_log_days, p.disk_bytes"
)


def get_project(conn: sqlite3.Connection, owner: str, name: str) -> Project | None:
    row = conn.execute(
        f"SELECT {PROJECT_COLUMNS} FROM projects p JOIN users u ON u.id = p.owner_id"
        " WHERE u.name = ? AND p.name = ?",
        (owner, name),
    ).fetchone()
    return Project.from_row(row) if row else None


def project_roles(conn: sqlite3.Connection, project_id: int, user_id: int) -> frozenset[str]:
    """The roles ('builder', 'admin') granted to the user on the project."""
    rows = conn.execute(
        "SELECT role FROM permissions WHERE project_id = ? AND user_id = ? AND state = 'approved'",
        (project_id, user_id),
    ).fetchall()
    return frozenset(row[0] for row in rows)


def grant(conn: sqlite3.Connection, project_id: int, user_id: int, role: str) -> None:
    set_permission(conn, project_id, user_id, role, "approved")


def set_permission(
    conn: sqlite3.Connection, project_id: int, user_id: int, role: str, state: str
) -> None:
    """Set a user's role on a project to 'request' or 'approved', or remove it ('nothing')."""
    if state == "nothing":
        conn.execute(
            "DELETE FROM permissions WHERE project_id = ? AND user_id = ? AND role = ?",
            (project_id, user_id, role),
        )
        return
    conn.execute(
        "INSERT INTO permissions (project_id, user_id, role, state) VALUES (?, ?, ?, ?)"
        " ON CONFLICT DO UPDATE SET state = excluded.state",
        (project_id, user_id, role, state),
    )


def permission_states(conn: sqlite3.Connection, project_id: int) -> dict[str, dict[str, str]]:
    """{user name: {role: 'request' or 'approved'}} of everyone with a role on the project."""
    found: dict[str, dict[str, str]] = {}
    for name, role, state in conn.execute(
        "SELECT u.name, pe.role, pe.state FROM permissions pe JOIN users u ON u.id = pe.user_id"
        " WHERE pe.project_id = ? ORDER BY u.name, pe.role",
        (project_id,),
    ):
        found.setdefault(name, {})[role] = state
    return found


def get_project_with_roles(
    conn: sqlite3.Connection, owner: str, name: str, user_id: int | None
) -> tuple[Project, frozenset[str], tuple[str, ...]] | None:
    """The project, the roles `user_id` holds on it, and its enabled chroots (sorted)."""
    row = conn.execute(
        f"SELECT {PROJECT_COLUMNS},"
        " (SELECT group_concat(role) FROM permissions"
        "   WHERE project_id = p.id AND user_id = ? AND state = 'approved') AS roles,"
        " (SELECT group_concat(chroot, ' ') FROM"
        "   (SELECT chroot FROM project_chroots WHERE project_id = p.id ORDER BY chroot))"
        "   AS chroots"
        " FROM projects p JOIN users u ON u.id = p.owner_id WHERE u.name = ? AND p.name = ?",
        (user_id, owner, name),
    ).fetchone()
    if row is None:
        return None
    roles = frozenset(row["roles"].split(",")) if row["roles"] else frozenset()
    chroots = tuple(row["chroots"].split()) if row["chroots"] else ()
    return Project.from_row(row), roles, chroots


def create_project(
    conn: sqlite3.Connection, owner_id: int, fields: dict[str, object], chroots: list[str]
) -> int:
    """Insert a project and its chroots; raises sqlite3.IntegrityError on a taken name."""
    columns = ["owner_id", "created_on", *fields]
    values = [owner_id, int(time.time()), *fields.values()]
    marks = ", ".join("?" for _ in columns)
    cur = conn.execute(f"INSERT INTO projects ({', '.join(columns)}) VALUES ({marks})", values)
    project_id = int(cur.lastrowid or 0)
    conn.executemany(
        "INSERT INTO project_chroots (project_id, chroot) VALUES (?, ?)",
        [(project_id, chroot) for chroot in chroots],
    )
    return project_id


MODIFIABLE_PROJECT_FIELDS = frozenset(
    {
        "description",
        "instructions",
        "repos",
        "homepage",
        "contact",
        "auto_createrepo",
        "build_enable_net",
        "unlisted_on_hp",
        "persistent",
        "auto_prune",
        "use_bootstrap_container",
        "prune_days",
        "keep_last",
        "failed_log_days",
    }
)


def update_project(conn: sqlite3.Connection, project_id: int, fields: dict[str, object]) -> None:
    """Change the given fields."""
    unknown = set(fields) - MODIFIABLE_PROJECT_FIELDS
    if unknown:
        raise ValueError(f"not modifiable: {sorted(unknown)}")
    if fields:
        assignments = ", ".join(f"{name} = ?" for name in fields)
        conn.execute(
            f"UPDATE projects SET {assignments} WHERE id = ?", (*fields.values(), project_id)
        )


def delete_project(conn: sqlite3.Connection, project_id: int) -> bool:
    """Remove the project with its chroots, permissions, builds and their rows.

    False when it was already gone: of concurrent deletes, exactly one sees True.
    """
    return conn.execute("DELETE FROM projects WHERE id = ?", (project_id,)).rowcount > 0


def get_chroot_packages(
    conn: sqlite3.Connection, project_id: int, chroot: str
) -> tuple[bool, str | None]:
    """(chroot enabled in the project?, its buildroot packages)."""
    row = conn.execute(
        "SELECT buildroot_pkgs FROM project_chroots WHERE project_id = ? AND chroot = ?",
        (project_id, chroot),
    ).fetchone()
    return (row is not None, row[0] if row else None)


def set_chroot_packages(
    conn: sqlite3.Connection, project_id: int, chroot: str, packages: str
) -> None:
    conn.execute(
        "UPDATE project_chroots SET buildroot_pkgs = ? WHERE project_id = ? AND chroot = ?",
        (packages, project_id, chroot),
    )


def get_chroot_settings(
    conn: sqlite3.Connection, project_id: int, chroot: str
) -> tuple[str, str] | None:
    """(buildroot packages, extra repositories) of an enabled chroot, or None."""
    row = conn.execute(
        "SELECT buildroot_pkgs, repos FROM project_chroots WHERE project_id = ? AND chroot = ?",
        (project_id, chroot),
    ).fetchone()
    return (row[0] or "", row[1] or "") if row else None


def set_chroot_repos(conn: sqlite3.Connection, project_id: int, chroot: str, repos: str) -> None:
    conn.execute(
        "UPDATE project_chroots SET repos = ? WHERE project_id = ? AND chroot = ?",
        (repos, project_id, chroot),
    )


def projects_by_ids(conn: sqlite3.Connection, ids: list[int]) -> list[tuple[Project, list[str]]]:
    """The given projects in the given order, each with its enabled chroots."""
    rows = conn.execute(
        f"SELECT {PROJECT_COLUMNS},"
        " (SELECT group_concat(chroot, ' ') FROM project_chroots WHERE project_id = p.id)"
        "   AS chroots"
        " FROM json_each(?) w JOIN projects p ON p.id = w.value"
        " JOIN users u ON u.id = p.owner_id ORDER BY w.key",
        (json.dumps(ids),),
    ).fetchall()
    return [(Project.from_row(row), sorted((row["chroots"] or "").split())) for row in rows]


def list_projects(conn: sqlite3.Connection, owner: str) -> list[tuple[Project, list[str]]]:
    """The owner's projects, newest first, each with its enabled chroots."""
    rows = conn.execute(
        f"SELECT {PROJECT_COLUMNS},"
        " (SELECT group_concat(chroot, ' ') FROM project_chroots WHERE project_id = p.id)"
        "   AS chroots"
        " FROM projects p JOIN users u ON u.id = p.owner_id WHERE u.name = ?"
        " ORDER BY p.id DESC",
        (owner,),
    ).fetchall()
    return [(Project.from_row(row), sorted((row["chroots"] or "").split())) for row in rows]


def all_project_names(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(owner, project) of every project, oldest first."""
    rows = conn.execute(
        "SELECT u.name AS owner, p.name AS name FROM projects p"
        " JOIN users u ON u.id = p.owner_id ORDER BY p.id"
    ).fetchall()
    return [(row["owner"], row["name"]) for row in rows]


def last_modified(conn: sqlite3.Connection, project_id: int) -> int | None:
    """ended_on of the newest ended build with a succeeded or skipped chroot (spec §4.2)."""
    marks = ", ".join("?" for _ in BUILT_CODES)
    row = conn.execute(
        "SELECT b.ended_on FROM builds b WHERE b.project_id = ? AND b.ended_on IS NOT NULL"
        " AND EXISTS (SELECT 1 FROM build_chroots bc WHERE bc.build_id = b.id"
        f"   AND bc.status IN ({marks}))"
        " ORDER BY b.ended_on DESC LIMIT 1",
        (project_id, *BUILT_CODES),
    ).fetchone()
    return row[0] if row else None


@dataclass(frozen=True)
class ProjectMatch:
    """A project the search found; `score` ranks the matches."""

    id: int
    username: str
    coprname: str
    description: str
    score: int


def search_projects(
    conn: sqlite3.Connection,
    words: list[str],
    owner_part: str | None,
    name_part: str | None,
    limit: int,
) -> list[ProjectMatch]:
    """Projects matching every word (owner, name, description, instructions), or the
    `owner/name` substrings; best matches first, then newest."""
    where, score, params, score_params = [], [], [], []
    if owner_part is not None:
        where.append("u.name LIKE ? ESCAPE '\\' AND p.name LIKE ? ESCAPE '\\'")
        params += [_like(owner_part), _like(name_part or "")]
        score.append("(length(u.name) + length(p.name)) * -1")
    for word in words:
        pattern = _like(word)
        where.append(
            "(u.name LIKE ?1 ESCAPE '\\' OR p.name LIKE ?1 ESCAPE '\\'"
            " OR p.description LIKE ?1 ESCAPE '\\' OR p.instructions LIKE ?1 ESCAPE '\\')".replace(
                "?1", "?"
            )
        )
        params += [pattern] * 4
        score.append(
            "(CASE WHEN lower(p.name) = lower(?) THEN 100 WHEN p.name LIKE ? ESCAPE '\\'"
            " THEN 10 WHEN u.name LIKE ? ESCAPE '\\' THEN 5 ELSE 1 END)"
        )
        score_params += [word, pattern, pattern]
    rows = conn.execute(
        "SELECT p.id, u.name AS username, p.name AS coprname, p.description,"
        f" {' + '.join(score) or '0'} AS score"
        " FROM projects p JOIN users u ON u.id = p.owner_id"
        f" WHERE {' AND '.join(where) or '1'}"
        " ORDER BY score DESC, p.id DESC LIMIT ?",
        (*score_params, *params, limit),
    ).fetchall()
    return [ProjectMatch(*row) for row in rows]


@dataclass(frozen=True)
class PackageMatch:
    """A package the search found, in its project, with its newest build: id, canceled
    flag, chroot state codes (comma-separated) and version-release."""

    username: str
    coprname: str
    pkg_name: str
    build_id: int
    canceled: bool
    codes: str | None
    version: str | None


def search_packages(conn: sqlite3.Connection, words: list[str], limit: int) -> list[PackageMatch]:
    """Packages whose name holds every word, each with its project and its newest build
    (id, canceled flag, chroot state codes); exact names first."""
    if not words:
        return []
    where = " AND ".join("pkg_name LIKE ? ESCAPE '\\'" for _ in words)
    rows = conn.execute(
        "WITH newest AS (SELECT project_id, pkg_name, max(id) AS build_id FROM builds"
        f"  WHERE {where} GROUP BY project_id, pkg_name)"
        " SELECT u.name AS username, p.name AS coprname, n.pkg_name, n.build_id, b.canceled,"
        " (SELECT group_concat(status) FROM build_chroots WHERE build_id = n.build_id) AS codes,"
        " b.pkg_version || coalesce('-' || b.pkg_release, '') AS version"
        " FROM newest n JOIN builds b ON b.id = n.build_id JOIN projects p ON p.id = n.project_id"
        " JOIN users u ON u.id = p.owner_id"
        " ORDER BY lower(n.pkg_name) = lower(?) DESC, n.build_id DESC LIMIT ?",
        (*[_like(w) for w in words], " ".join(words), limit),
    ).fetchall()
    return [PackageMatch(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6]) for r in rows]


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def set_project_chroots(conn: sqlite3.Connection, project_id: int, chroots: list[str]) -> None:
    """Enable exactly `chroots` (kept ones keep their buildroot packages)."""
    wanted = json.dumps(sorted(set(chroots)))
    conn.execute(
        "DELETE FROM project_chroots WHERE project_id = ?"
        " AND chroot NOT IN (SELECT value FROM json_each(?))",
        (project_id, wanted),
    )
    conn.execute(
        "INSERT OR IGNORE INTO project_chroots (project_id, chroot)"
        " SELECT ?, value FROM json_each(?)",
        (project_id, wanted),
    )


def webhook_secret(conn: sqlite3.Connection, project_id: int) -> str | None:
    """The secret of the project's incoming webhooks, or None before one is generated."""
    row = conn.execute("SELECT webhook_secret FROM projects WHERE id = ?", (project_id,)).fetchone()
    return row[0] if row is not None else None


def set_webhook_secret(conn: sqlite3.Connection, project_id: int, secret: str) -> None:
    conn.execute("UPDATE projects SET webhook_secret = ? WHERE id = ?", (secret, project_id))
