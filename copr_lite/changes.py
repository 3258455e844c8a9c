"""What each write transaction changed, as tags that cached answers depend on.

Temporary triggers on the writer connection note every changed row of the tables that API
answers are made of in a temporary table; `collect` reads and empties it at the end of the
transaction (a savepoint that is rolled back takes its notes with it). So every write is
covered, whichever code makes it, and a cached answer is evicted only when something it
declared to depend on changed.

Tags (plain tuples, cheap to hash):

- `build_tag(id)`: the build's row, its chroots or its built packages changed.
- `project_tag(id)`: anything in the project: its row, its chroots, any of its builds.
- `package_tag(project id, name)`: a build of that package in the project, or its
  latest_builds rows (the monitor's row of the package).
- `chroots_tag(id)`: the project's row or its enabled chroots.
- `owner_tag(user id)`: one of the user's projects (its row or chroots).
- `ALL_PROJECTS`: any project's row or chroots (a project was added, changed or removed).
- `USERS`: a user was added, renamed or removed; every answer depends on it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

Tag = tuple[str, int] | tuple[str, int, str]

USERS: Tag = ("users", 0)
ALL_PROJECTS: Tag = ("projects", 0)


def build_tag(build_id: int) -> Tag:
    return ("build", build_id)


def project_tag(project_id: int) -> Tag:
    return ("project", project_id)


def package_tag(project_id: int, pkg_name: str) -> Tag:
    return ("package", project_id, pkg_name)


def chroots_tag(project_id: int) -> Tag:
    return ("chroots", project_id)


def owner_tag(owner_id: int) -> Tag:
    return ("owner", owner_id)


# (kind, number, text): 'build' rows are resolved to their project and package in
# `collect`, which needs one query instead of one per trigger firing. No unique key: an
# upsert's conflict policy would override a trigger's OR IGNORE; `collect` deduplicates.
_TABLE = (
    "CREATE TEMP TABLE IF NOT EXISTS changed_rows ("
    " kind TEXT NOT NULL, num INTEGER NOT NULL, txt TEXT NOT NULL DEFAULT '')"
)


def _note(kind: str, num: str, txt: str = "''") -> str:
    return f"INSERT INTO changed_rows VALUES ('{kind}', {num}, {txt});"


# Columns of `projects` kept up to date as builds come and go (disk usage): a change of
# them alone is the project's and its lists', never its chroots' (whose change makes the
# monitor read every package again).
USAGE_COLUMNS = ("disk_bytes",)


def _triggers(project_columns: list[str]) -> list[str]:
    """CREATE TEMP TRIGGER statements: for each table answers are made of, what each
    changed row image (OLD, NEW) notes."""
    per_row: dict[str, Callable[[str], str]] = {
        "builds": lambda r: (
            _note("build", f"{r}.id")
            + _note("project", f"{r}.project_id")
            + f"INSERT INTO changed_rows SELECT 'package', {r}.project_id, {r}.pkg_name"
            f" WHERE {r}.pkg_name IS NOT NULL;"
        ),
        "build_chroots": lambda r: _note("build", f"{r}.build_id"),
        "built_packages": lambda r: _note("build", f"{r}.build_id"),
        "latest_builds": lambda r: (
            _note("package", f"{r}.project_id", f"{r}.pkg_name")
            + _note("project", f"{r}.project_id")
        ),
        "projects": lambda r: (
            _note("project", f"{r}.id")
            + _note("chroots", f"{r}.id")
            + _note("owner", f"{r}.owner_id")
            + _note("projects", "0")
        ),
        "project_chroots": lambda r: (
            _note("project", f"{r}.project_id")
            + _note("chroots", f"{r}.project_id")
            + _note("projects", "0")
            + "INSERT INTO changed_rows SELECT 'owner', owner_id, '' FROM projects"
            f" WHERE id = {r}.project_id;"
        ),
        # A package's own retention settings (API v1 project detail).
        "package_settings": lambda r: _note("project", f"{r}.project_id"),
        # API v3 lists a project's packages from this table.
        "packages": lambda r: (
            _note("package", f"{r}.project_id", f"{r}.name") + _note("project", f"{r}.project_id")
        ),
    }
    settings = [c for c in project_columns if c not in USAGE_COLUMNS]
    statements = []
    for table, body in per_row.items():
        for event, rows in (("INSERT", ("NEW",)), ("UPDATE", ("OLD", "NEW")), ("DELETE", ("OLD",))):
            if table == "projects" and event == "UPDATE":
                event = f"UPDATE OF {', '.join(settings)}"
            statements.append(
                f"CREATE TEMP TRIGGER IF NOT EXISTS note_{table}_{event.split()[0].lower()}"
                f" AFTER {event} ON main.{table} BEGIN {''.join(body(r) for r in rows)} END"
            )
    usage = [c for c in project_columns if c in USAGE_COLUMNS]
    if usage:
        statements.append(
            "CREATE TEMP TRIGGER IF NOT EXISTS note_projects_usage"
            f" AFTER UPDATE OF {', '.join(usage)} ON main.projects BEGIN "
            + _note("project", "NEW.id")
            + _note("owner", "NEW.owner_id")
            + _note("projects", "0")
            + " END"
        )
    for event in ("INSERT", "UPDATE OF name", "DELETE"):
        name = event.split()[0].lower()
        statements.append(
            f"CREATE TEMP TRIGGER IF NOT EXISTS note_users_{name} AFTER {event} ON main.users"
            f" BEGIN {_note('users', '0')} END"
        )
    return statements


def install(conn: sqlite3.Connection) -> None:
    """Create the notes table and triggers on this connection (the writer's)."""
    conn.execute(_TABLE)
    columns = [row[1] for row in conn.execute("PRAGMA main.table_info(projects)")]
    for statement in _triggers(columns):
        conn.execute(statement)


def collect(conn: sqlite3.Connection) -> set[Tag]:
    """The tags of everything changed since the last call; empties the notes. Run inside
    the write transaction, so notes of a rolled-back savepoint are already gone."""
    rows = conn.execute("SELECT DISTINCT kind, num, txt FROM changed_rows").fetchall()
    if not rows:
        return set()
    conn.execute("DELETE FROM changed_rows")
    tags: set[Tag] = set()
    builds = []
    for kind, num, txt in rows:
        if kind == "package":
            tags.add(package_tag(num, txt))
        else:
            tags.add((kind, num))
            if kind == "build":
                builds.append(num)
    if builds:
        # A changed chroot or package row of a build changes its project and package.
        for project_id, pkg_name in conn.execute(
            "SELECT project_id, pkg_name FROM builds WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(builds),),
        ):
            tags.add(project_tag(project_id))
            if pkg_name is not None:
                tags.add(package_tag(project_id, pkg_name))
    return tags
