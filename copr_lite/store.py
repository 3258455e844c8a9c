"""Every SQL statement of copr_lite. Functions take a sqlite3.Connection and run on a DB thread.

Call write functions through `Database.write(fn, ...)` (one IMMEDIATE transaction each) and
read functions through `Database.read(fn, ...)`; neither kind awaits anything itself.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from dataclasses import dataclass
from typing import NamedTuple

from .models import ApiCredential, Build, BuildChroot, Project, User
from .states import BUILT_CODES, UNFINISHED_CODES, State, can_move, derive_build_state

# ---------------------------------------------------------------- users and credentials


def count_users(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM users").fetchone()[0])


def create_user(
    conn: sqlite3.Connection, name: str, password_hash: str | None, is_admin: bool
) -> User:
    """Insert a user; raises sqlite3.IntegrityError when the name is taken."""
    now = int(time.time())
    cur = conn.execute(
        "INSERT INTO users (name, password_hash, is_admin, created_on) VALUES (?, ?, ?, ?)",
        (name, password_hash, int(is_admin), now),
    )
    return User(int(cur.lastrowid or 0), name, is_admin, now)


def get_user(conn: sqlite3.Connection, name: str) -> User | None:
    row = conn.execute(
        "SELECT id, name, is_admin, created_on FROM users WHERE name = ?", (name,)
    ).fetchone()
    return User.from_row(row) if row else None


def get_user_by_id(conn: sqlite3.Connection, user_id: int) -> User | None:
    row = conn.execute(
        "SELECT id, name, is_admin, created_on FROM users WHERE id = ?", (user_id,)
    ).fetchone()
    return User.from_row(row) if row else None


def get_password_hash(conn: sqlite3.Connection, name: str) -> tuple[User, str | None] | None:
    row = conn.execute(
        "SELECT id, name, is_admin, created_on, password_hash FROM users WHERE name = ?", (name,)
    ).fetchone()
    return (User.from_row(row), row["password_hash"]) if row else None


def set_password_hash(conn: sqlite3.Connection, user_id: int, password_hash: str) -> None:
    conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))


def list_users(conn: sqlite3.Connection) -> list[tuple[User, int | None]]:
    """Every user with the expiry of their API token (None: no token)."""
    rows = conn.execute(
        "SELECT u.id, u.name, u.is_admin, u.created_on, t.expires_on FROM users u"
        " LEFT JOIN api_tokens t ON t.user_id = u.id ORDER BY u.name"
    ).fetchall()
    return [(User.from_row(row), row["expires_on"]) for row in rows]


def set_api_token(
    conn: sqlite3.Connection, user_id: int, login: str, token_hash: str, expires_on: int
) -> None:
    """Replace the user's API credential: the previous one stops working at once."""
    conn.execute(
        "INSERT INTO api_tokens (user_id, login, token_hash, created_on, expires_on)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT(user_id) DO UPDATE SET login = excluded.login,"
        " token_hash = excluded.token_hash, created_on = excluded.created_on,"
        " expires_on = excluded.expires_on",
        (user_id, login, token_hash, int(time.time()), expires_on),
    )


def get_api_credential(conn: sqlite3.Connection, login: str) -> ApiCredential | None:
    row = conn.execute(
        "SELECT u.id, u.name, u.is_admin, u.created_on, t.login, t.token_hash, t.expires_on"
        " FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.login = ?",
        (login,),
    ).fetchone()
    if row is None:
        return None
    return ApiCredential(User.from_row(row), row["login"], row["token_hash"], row["expires_on"])


def get_api_login(conn: sqlite3.Connection, user_id: int) -> tuple[str, int] | None:
    """The user's API login and token expiry, if they have a token."""
    row = conn.execute(
        "SELECT login, expires_on FROM api_tokens WHERE user_id = ?", (user_id,)
    ).fetchone()
    return (row[0], row[1]) if row else None


# ---------------------------------------------------------------- web sessions


def create_session(conn: sqlite3.Connection, id_hash: str, user_id: int, expires_on: int) -> None:
    now = int(time.time())
    conn.execute("DELETE FROM sessions WHERE expires_on < ?", (now,))
    conn.execute(
        "INSERT INTO sessions (id_hash, user_id, created_on, expires_on) VALUES (?, ?, ?, ?)",
        (id_hash, user_id, now, expires_on),
    )


def get_session_user(conn: sqlite3.Connection, id_hash: str, now: int) -> User | None:
    row = conn.execute(
        "SELECT u.id, u.name, u.is_admin, u.created_on FROM sessions s"
        " JOIN users u ON u.id = s.user_id WHERE s.id_hash = ? AND s.expires_on >= ?",
        (id_hash, now),
    ).fetchone()
    return User.from_row(row) if row else None


def delete_session(conn: sqlite3.Connection, id_hash: str) -> None:
    conn.execute("DELETE FROM sessions WHERE id_hash = ?", (id_hash,))


def delete_user_sessions(conn: sqlite3.Connection, user_id: int) -> int:
    """End every web session of the user; returns how many there were."""
    return conn.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,)).rowcount


# ---------------------------------------------------------------- projects and permissions

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


def update_project(
    conn: sqlite3.Connection, project_id: int, fields: dict[str, object]
) -> sqlite3.Row:
    """Change the given fields; returns the stored description, instructions and repos."""
    unknown = set(fields) - MODIFIABLE_PROJECT_FIELDS
    if unknown:
        raise ValueError(f"not modifiable: {sorted(unknown)}")
    if fields:
        assignments = ", ".join(f"{name} = ?" for name in fields)
        conn.execute(
            f"UPDATE projects SET {assignments} WHERE id = ?", (*fields.values(), project_id)
        )
    row: sqlite3.Row = conn.execute(
        "SELECT description, instructions, repos FROM projects WHERE id = ?", (project_id,)
    ).fetchone()
    return row


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


def search_projects(
    conn: sqlite3.Connection,
    words: list[str],
    owner_part: str | None,
    name_part: str | None,
    limit: int,
) -> list[sqlite3.Row]:
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
    return rows


def search_packages(conn: sqlite3.Connection, words: list[str], limit: int) -> list[sqlite3.Row]:
    """Packages whose name holds every word, each with its project and its newest build
    (id, canceled flag, chroot state codes); exact names first."""
    if not words:
        return []
    where = " AND ".join("pkg_name LIKE ? ESCAPE '\\'" for _ in words)
    return conn.execute(
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


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# ---------------------------------------------------------------- builds


@dataclass(frozen=True)
class NewBuild:
    """What new_build stores for each SRPM (one build per URL or uploaded file)."""

    source_url: str
    srpm_path: str | None = None


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
            "INSERT INTO builds (project_id, submitter_id, source_url, srpm_path, memory_reqs,"
            " timeout, enable_net, repos, background, submitted_on)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                project_id,
                submitter_id,
                source.source_url,
                source.srpm_path,
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
    " b.repos, b.background, b.canceled, b.submitted_on, b.started_on, b.ended_on"
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
) -> tuple[list[sqlite3.Row], list[Build]]:
    """The newest non-canceled build of every package in every chroot (from latest_builds,
    so the cost follows packages x chroots), and the builds it refers to, or `page`
    (offset, limit) of the whole history."""
    latest = latest_builds(conn, project_id)
    if page is not None:
        return latest, project_builds_page(conn, project_id, *page)
    ids = sorted({row["build_id"] for row in latest}, reverse=True)
    return latest, _builds_by_ids(conn, ids)


def latest_builds(conn: sqlite3.Connection, project_id: int) -> list[sqlite3.Row]:
    """The newest non-canceled build of every package in every chroot of the project:
    pkg_name, chroot, build_id, status, pkg_version, pkg_release."""
    return conn.execute(
        "SELECT l.pkg_name, l.chroot, l.build_id, bc.status, b.pkg_version, b.pkg_release"
        " FROM latest_builds l"
        " JOIN build_chroots bc ON bc.build_id = l.build_id AND bc.chroot = l.chroot"
        " JOIN builds b ON b.id = l.build_id"
        " WHERE l.project_id = ? ORDER BY l.pkg_name, l.chroot",
        (project_id,),
    ).fetchall()


def monitor_packages(
    conn: sqlite3.Connection, project_id: int, current: list[str]
) -> tuple[list[str], list[sqlite3.Row], list[Build]]:
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
        latest = conn.execute(
            "SELECT l.pkg_name, l.chroot, l.build_id, bc.status, b.pkg_version, b.pkg_release"
            " FROM latest_builds l"
            " JOIN build_chroots bc ON bc.build_id = l.build_id AND bc.chroot = l.chroot"
            " JOIN builds b ON b.id = l.build_id"
            f" WHERE l.project_id = ?{where} ORDER BY l.pkg_name, l.chroot",
            (project_id, *params),
        ).fetchall()
        ids = sorted({row["build_id"] for row in latest}, reverse=True)
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


def set_build_package(
    conn: sqlite3.Connection,
    build_id: int,
    name: str,
    epoch: int | None,
    version: str,
    release: str,
) -> None:
    """Record the package read from the SRPM header; the build joins the monitor."""
    conn.execute(
        "UPDATE builds SET pkg_name = ?, pkg_epoch = ?, pkg_version = ?, pkg_release = ?"
        " WHERE id = ?",
        (name, epoch, version, release, build_id),
    )
    conn.execute(
        "INSERT OR IGNORE INTO packages (project_id, name)"
        " SELECT project_id, ? FROM builds WHERE id = ?",
        (name, build_id),
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


# ---------------------------------------------------------------- disk usage and retention


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


def retention_rows(conn: sqlite3.Connection) -> tuple[list[sqlite3.Row], list[sqlite3.Row]]:
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
    return chroots, policies


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


# ---------------------------------------------------------------- the dispatcher's queries


def importing_builds(conn: sqlite3.Connection, limit: int) -> list[int]:
    """Builds whose chroots wait for the SRPM import, oldest first."""
    return [
        row[0]
        for row in conn.execute(
            "SELECT DISTINCT build_id FROM build_chroots WHERE status = ?"
            " ORDER BY build_id LIMIT ?",
            (State.IMPORTING.code, limit),
        )
    ]


def import_succeeded(
    conn: sqlite3.Connection,
    build_id: int,
    srpm_path: str,
    sha256: str,
    name: str,
    epoch: int | None,
    version: str,
    release: str,
) -> None:
    """Record the imported SRPM and its header; its importing chroots become pending."""
    conn.execute(
        "UPDATE builds SET srpm_path = ?, srpm_sha256 = ? WHERE id = ?",
        (srpm_path, sha256, build_id),
    )
    set_build_package(conn, build_id, name, epoch, version, release)
    for (chroot,) in conn.execute(
        "SELECT chroot FROM build_chroots WHERE build_id = ? AND status = ?",
        (build_id, State.IMPORTING.code),
    ).fetchall():
        set_chroot_state(conn, build_id, chroot, State.PENDING)


def import_failed(conn: sqlite3.Connection, build_id: int, reason: str) -> bool:
    """Fail the build's importing chroots; True when that finished the build."""
    moved = False
    for (chroot,) in conn.execute(
        "SELECT chroot FROM build_chroots WHERE build_id = ? AND status = ?",
        (build_id, State.IMPORTING.code),
    ).fetchall():
        moved |= set_chroot_state(conn, build_id, chroot, State.FAILED, fail_reason=reason)
    return moved and build_is_finished(conn, build_id)


def pending_candidates(conn: sqlite3.Connection, per_owner: int) -> list[sqlite3.Row]:
    """The first few pending chroots of every owner (normal builds before background ones,
    oldest first), so the dispatcher can choose fairly between owners."""
    return conn.execute(
        "SELECT owner_id, build_id, chroot FROM ("
        " SELECT p.owner_id, bc.build_id, bc.chroot, row_number() OVER ("
        "   PARTITION BY p.owner_id ORDER BY b.background, bc.build_id, bc.chroot) AS rank"
        " FROM build_chroots bc JOIN builds b ON b.id = bc.build_id"
        " JOIN projects p ON p.id = b.project_id WHERE bc.status = ?)"
        " WHERE rank <= ? ORDER BY rank, build_id",
        (State.PENDING.code, per_owner),
    ).fetchall()


def already_built(conn: sqlite3.Connection, build_id: int, chroot: str) -> int | None:
    """An earlier build of the same SRPM (by checksum) that succeeded in this chroot of the
    same project, if any."""
    # The same SRPM has the same package name: the (project, package) index narrows the
    # search to that package's builds instead of the project's.
    row = conn.execute(
        "SELECT o.id FROM builds b JOIN builds o ON o.project_id = b.project_id"
        "  AND o.pkg_name = b.pkg_name AND o.srpm_sha256 = b.srpm_sha256 AND o.id != b.id"
        " JOIN build_chroots oc ON oc.build_id = o.id AND oc.chroot = ? AND oc.status = ?"
        " WHERE b.id = ? AND b.srpm_sha256 IS NOT NULL LIMIT 1",
        (chroot, State.SUCCEEDED.code, build_id),
    ).fetchone()
    return row[0] if row else None


class ChrootFinish(NamedTuple):
    """What `finish_chroot` did: whether the state was stored (False: the chroot had moved
    on meanwhile, e.g. it was canceled) and whether that finished the whole build."""

    stored: bool
    build_done: bool


def finish_chroot(
    conn: sqlite3.Connection,
    build_id: int,
    chroot: str,
    state: State,
    fail_reason: str | None,
    packages: list[tuple[str, int | None, str, str, str]],
) -> ChrootFinish:
    """Store a chroot's state (terminal, or pending again) and its built packages.

    Writes are serialised, so for each build exactly one finishing write (or none, when the
    chroot was already terminal, e.g. canceled meanwhile) sees `build_done`.
    """
    if not set_chroot_state(conn, build_id, chroot, state, fail_reason=fail_reason):
        return ChrootFinish(stored=False, build_done=False)
    conn.executemany(
        "INSERT INTO built_packages (build_id, chroot, name, epoch, version, release, arch)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(build_id, chroot, *package) for package in packages],
    )
    return ChrootFinish(
        stored=True, build_done=state.terminal and build_is_finished(conn, build_id)
    )


def recover_interrupted(
    conn: sqlite3.Connection,
) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """Chroots a crash left starting/running: re-queued once (pending), then failed.
    Returns (requeued, failed)."""
    requeued, failed = [], []
    rows = conn.execute(
        "SELECT build_id, chroot, attempts FROM build_chroots WHERE status IN (?, ?)",
        (State.STARTING.code, State.RUNNING.code),
    ).fetchall()
    for build_id, chroot, attempts in rows:
        if attempts < 1:
            conn.execute(
                "UPDATE build_chroots SET attempts = attempts + 1, started_on = NULL"
                " WHERE build_id = ? AND chroot = ?",
                (build_id, chroot),
            )
            set_chroot_state(conn, build_id, chroot, State.PENDING)
            requeued.append((build_id, chroot))
        else:
            set_chroot_state(
                conn,
                build_id,
                chroot,
                State.FAILED,
                fail_reason="the server stopped twice while building this chroot",
            )
            failed.append((build_id, chroot))
    return requeued, failed


def build_is_finished(conn: sqlite3.Connection, build_id: int) -> bool:
    marks = ", ".join("?" for _ in UNFINISHED_CODES)
    row = conn.execute(
        f"SELECT count(*) FROM build_chroots WHERE build_id = ? AND status IN ({marks})",
        (build_id, *UNFINISHED_CODES),
    ).fetchone()
    return bool(row[0] == 0)


# ---------------------------------------------------------------- web UI pages (one read each)

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
    latest: list[sqlite3.Row]  # the monitor: newest build of each package in each chroot
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


# ---------------------------------------------------------------- API v3 lists


@dataclass(frozen=True)
class Package:
    """A package name a project has built, with its newest and newest succeeded build."""

    id: int
    name: str
    latest: Build | None
    latest_succeeded: Build | None


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
        f"SELECT id, name FROM packages WHERE project_id = ? {where}"
        " ORDER BY name LIMIT ? OFFSET ?",
        (project_id, *params, limit, offset),
    ).fetchall()
    packages = []
    for row in rows:
        latest = succeeded = None
        if with_builds:
            latest, succeeded = _package_builds(conn, project_id, row["name"])
        packages.append(Package(row["id"], row["name"], latest, succeeded))
    return packages


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


def built_package_rows(
    conn: sqlite3.Connection, build_id: int
) -> list[tuple[str, str, int | None, str, str, str]]:
    """(chroot, name, epoch, version, release, arch) of each package a build published."""
    return [
        tuple(row)
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
