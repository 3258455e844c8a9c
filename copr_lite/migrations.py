"""Numbered, forward-only schema migrations, recorded in the one-row `schema_version` table.

Append a new `Migration` to `MIGRATIONS` to change the schema; never edit a released one.
Each step runs in its own transaction. A database whose version is higher than the newest
step here was written by a newer copr_lite, and is refused.

Plugins keep tables of their own with their own numbered steps (the `register_migrations`
hook fills a `MigrationRegistry`); each plugin's version is a row of `plugin_schema_versions`,
and its steps run after the core's, by the same rules.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "users, tokens, sessions, projects, chroots, permissions, builds, packages",
        """
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            password_hash TEXT,
            is_admin INTEGER NOT NULL DEFAULT 0,
            created_on INTEGER NOT NULL
        );
        -- One API credential per user; only a hash of the token is stored.
        CREATE TABLE api_tokens (
            user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
            login TEXT NOT NULL UNIQUE,
            token_hash TEXT NOT NULL,
            created_on INTEGER NOT NULL,
            expires_on INTEGER NOT NULL
        );
        CREATE TABLE sessions (
            id_hash TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            created_on INTEGER NOT NULL,
            expires_on INTEGER NOT NULL
        );
        CREATE INDEX sessions_user ON sessions(user_id);
        CREATE TABLE projects (
            id INTEGER PRIMARY KEY,
            owner_id INTEGER NOT NULL REFERENCES users(id),
            name TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            instructions TEXT NOT NULL DEFAULT '',
            repos TEXT NOT NULL DEFAULT '',
            homepage TEXT NOT NULL DEFAULT '',
            contact TEXT NOT NULL DEFAULT '',
            auto_createrepo INTEGER NOT NULL DEFAULT 1,
            build_enable_net INTEGER NOT NULL DEFAULT 1,
            unlisted_on_hp INTEGER NOT NULL DEFAULT 0,
            persistent INTEGER NOT NULL DEFAULT 0,
            auto_prune INTEGER NOT NULL DEFAULT 1,
            use_bootstrap_container INTEGER NOT NULL DEFAULT 0,
            created_on INTEGER NOT NULL,
            UNIQUE (owner_id, name)
        );
        CREATE TABLE project_chroots (
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            chroot TEXT NOT NULL,
            buildroot_pkgs TEXT,
            PRIMARY KEY (project_id, chroot)
        ) WITHOUT ROWID;
        CREATE TABLE permissions (
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('builder', 'admin')),
            PRIMARY KEY (project_id, user_id, role)
        ) WITHOUT ROWID;
        CREATE INDEX permissions_user ON permissions(user_id);
        CREATE TABLE builds (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            submitter_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
            source_url TEXT NOT NULL,
            srpm_path TEXT,
            srpm_sha256 TEXT,
            pkg_name TEXT,
            pkg_epoch INTEGER,
            pkg_version TEXT,
            pkg_release TEXT,
            memory_reqs INTEGER NOT NULL,
            timeout INTEGER NOT NULL,
            enable_net INTEGER NOT NULL,
            repos TEXT NOT NULL DEFAULT '',
            background INTEGER NOT NULL DEFAULT 0,
            canceled INTEGER NOT NULL DEFAULT 0,
            submitted_on INTEGER NOT NULL,
            started_on INTEGER,
            ended_on INTEGER
        );
        CREATE INDEX builds_project ON builds(project_id, id);
        CREATE INDEX builds_project_ended ON builds(project_id, ended_on);
        CREATE TABLE build_chroots (
            build_id INTEGER NOT NULL REFERENCES builds(id) ON DELETE CASCADE,
            chroot TEXT NOT NULL,
            status INTEGER NOT NULL,
            started_on INTEGER,
            ended_on INTEGER,
            fail_reason TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (build_id, chroot)
        ) WITHOUT ROWID;
        CREATE INDEX build_chroots_status ON build_chroots(status, build_id);
        CREATE TABLE built_packages (
            build_id INTEGER NOT NULL,
            chroot TEXT NOT NULL,
            name TEXT NOT NULL,
            epoch INTEGER,
            version TEXT NOT NULL,
            release TEXT NOT NULL,
            arch TEXT NOT NULL,
            FOREIGN KEY (build_id, chroot)
                REFERENCES build_chroots(build_id, chroot) ON DELETE CASCADE
        );
        CREATE INDEX built_packages_build ON built_packages(build_id, chroot);
        -- The newest non-canceled build of each package in each chroot of a project, kept
        -- up to date on every change, so the monitor costs packages x chroots, not builds.
        CREATE TABLE latest_builds (
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            pkg_name TEXT NOT NULL,
            chroot TEXT NOT NULL,
            build_id INTEGER NOT NULL REFERENCES builds(id) ON DELETE CASCADE,
            PRIMARY KEY (project_id, pkg_name, chroot)
        ) WITHOUT ROWID;
        CREATE INDEX latest_builds_build ON latest_builds(build_id);
        CREATE INDEX builds_project_pkg ON builds(project_id, pkg_name, id);
        """,
    ),
    Migration(
        2,
        "workers: credentials of remote build machines (now the remote plugin's own step)",
        # The `workers` table belongs to the remote plugin, whose first step creates it (IF
        # NOT EXISTS: databases that ran this step when it made the table keep theirs).
        "",
    ),
    Migration(
        3,
        "permission requests, chroot repositories, package records",
        """
        -- A role is 'request'ed by a user and 'approved' by the project's owner or admins;
        -- only approved roles allow anything. Existing grants are approved.
        ALTER TABLE permissions ADD COLUMN state TEXT NOT NULL DEFAULT 'approved'
            CHECK (state IN ('request', 'approved'));
        -- Extra repositories a chroot's builds use besides the project's.
        ALTER TABLE project_chroots ADD COLUMN repos TEXT NOT NULL DEFAULT '';
        -- One row per package name a project has built (API v3 packages).
        CREATE TABLE packages (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            UNIQUE (project_id, name)
        );
        INSERT OR IGNORE INTO packages (project_id, name)
            SELECT project_id, pkg_name FROM builds WHERE pkg_name IS NOT NULL ORDER BY id;
        """,
    ),
    Migration(
        4,
        "retention settings, pruned chroots, disk usage",
        """
        -- Retention (README "Retention"): auto_prune already exists; days before a
        -- superseded succeeded build goes, how many finished builds per package stay
        -- (0: unlimited), and days the results (logs) of failed builds stay.
        ALTER TABLE projects ADD COLUMN prune_days INTEGER NOT NULL DEFAULT 14;
        ALTER TABLE projects ADD COLUMN keep_last INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE projects ADD COLUMN failed_log_days INTEGER NOT NULL DEFAULT 30;
        -- Bytes of the project's results tree, kept up to date with every change.
        ALTER TABLE projects ADD COLUMN disk_bytes INTEGER NOT NULL DEFAULT 0;
        -- A package's own retention; NULL takes the project's value.
        CREATE TABLE package_settings (
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            pkg_name TEXT NOT NULL,
            auto_prune INTEGER,
            prune_days INTEGER,
            keep_last INTEGER,
            failed_log_days INTEGER,
            PRIMARY KEY (project_id, pkg_name)
        ) WITHOUT ROWID;
        -- Bytes of each chroot's result directory and of each build's import; a pruned
        -- chroot's directory is gone (its row stays while another chroot of the build does).
        ALTER TABLE build_chroots ADD COLUMN disk_bytes INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE build_chroots ADD COLUMN pruned_on INTEGER;
        ALTER TABLE builds ADD COLUMN import_bytes INTEGER NOT NULL DEFAULT 0;
        -- Written by /healthz to prove the database takes writes.
        CREATE TABLE health_probe (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            written_on INTEGER NOT NULL
        );
        """,
    ),
    Migration(
        5,
        "package sources, build sources, incoming webhooks",
        """
        -- A package's source (sources.py): 'unset' for a package only built from SRPMs,
        -- 'scm' or 'custom'; its settings as JSON; whether a forge push rebuilds it; the
        -- options its builds take (timeout, chroot_denylist) as JSON.
        ALTER TABLE packages ADD COLUMN source_type TEXT NOT NULL DEFAULT 'unset';
        ALTER TABLE packages ADD COLUMN source_json TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE packages ADD COLUMN webhook_rebuild INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE packages ADD COLUMN options_json TEXT NOT NULL DEFAULT '{}';
        -- What a build is made from: 'link' (an SRPM URL), 'upload', 'scm' or 'custom'
        -- (then the source's settings as they were when it was submitted).
        ALTER TABLE builds ADD COLUMN source_type TEXT NOT NULL DEFAULT 'link';
        ALTER TABLE builds ADD COLUMN source_json TEXT NOT NULL DEFAULT '{}';
        UPDATE builds SET source_type = 'upload' WHERE source_url LIKE '%/srpm-builds/%';
        -- The secret of the project's incoming webhooks; NULL until one is generated.
        ALTER TABLE projects ADD COLUMN webhook_secret TEXT;
        -- Every incoming webhook delivery, with what it did. A forge's delivery id is
        -- taken once per project, so a replayed delivery builds nothing.
        CREATE TABLE webhook_deliveries (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            forge TEXT NOT NULL,
            delivery_id TEXT,
            event TEXT NOT NULL,
            received_on INTEGER NOT NULL,
            status INTEGER NOT NULL,
            outcome TEXT NOT NULL,
            build_ids TEXT NOT NULL DEFAULT '[]'
        );
        CREATE UNIQUE INDEX webhook_deliveries_once
            ON webhook_deliveries(project_id, forge, delivery_id) WHERE delivery_id IS NOT NULL;
        CREATE INDEX webhook_deliveries_project ON webhook_deliveries(project_id, id);
        """,
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version


class SchemaTooNew(Exception):
    """The database was migrated by a newer copr_lite than this one."""


def current_version(conn: sqlite3.Connection) -> int:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL,"
        " updated_on INTEGER NOT NULL)"
    )
    row = conn.execute("SELECT version FROM schema_version WHERE id = 1").fetchone()
    return row[0] if row else 0


def migrate(conn: sqlite3.Connection, steps: tuple[Migration, ...] = MIGRATIONS) -> list[Migration]:
    """Apply the steps newer than the database's version; return the ones applied."""
    record = (
        "INSERT INTO schema_version (id, version, updated_on) VALUES (1, ?, ?)"
        " ON CONFLICT(id) DO UPDATE SET version = excluded.version,"
        " updated_on = excluded.updated_on"
    )
    return _apply(conn, current_version(conn), steps, record, (), "this copr_lite")


class MigrationRegistry:
    """Each plugin's own migrations, by plugin name."""

    def __init__(self) -> None:
        self._steps: dict[str, tuple[Migration, ...]] = {}

    def add(self, plugin: str, steps: Sequence[Migration]) -> None:
        """Register `plugin`'s steps, numbered from 1 upwards, oldest first."""
        if plugin in self._steps:
            raise ValueError(f"migrations of {plugin!r} are already registered")
        versions = [step.version for step in steps]
        if versions != list(range(1, len(versions) + 1)):
            raise ValueError(f"migrations of {plugin!r} must be numbered 1, 2, 3...")
        self._steps[plugin] = tuple(steps)

    def plugins(self) -> dict[str, tuple[Migration, ...]]:
        return dict(self._steps)


def plugin_version(conn: sqlite3.Connection, plugin: str) -> int:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS plugin_schema_versions ("
        " plugin TEXT PRIMARY KEY, version INTEGER NOT NULL, updated_on INTEGER NOT NULL)"
    )
    row = conn.execute(
        "SELECT version FROM plugin_schema_versions WHERE plugin = ?", (plugin,)
    ).fetchone()
    return row[0] if row else 0


def migrate_plugins(
    conn: sqlite3.Connection, registry: MigrationRegistry
) -> list[tuple[str, Migration]]:
    """Apply each plugin's steps newer than its recorded version; return the ones applied."""
    record = (
        "INSERT INTO plugin_schema_versions (plugin, version, updated_on) VALUES (?, ?, ?)"
        " ON CONFLICT(plugin) DO UPDATE SET version = excluded.version,"
        " updated_on = excluded.updated_on"
    )
    applied = []
    for plugin, steps in registry.plugins().items():
        version = plugin_version(conn, plugin)
        for step in _apply(conn, version, steps, record, (plugin,), f"the plugin {plugin} here"):
            applied.append((plugin, step))
    return applied


def _apply(
    conn: sqlite3.Connection,
    version: int,
    steps: Sequence[Migration],
    record: str,
    key: tuple[str, ...],
    who: str,
) -> list[Migration]:
    """Run the steps newer than `version`, each in its own transaction with its `record`."""
    newest = steps[-1].version if steps else 0
    if version > newest:
        raise SchemaTooNew(
            f"the database is at schema version {version}{' of ' + key[0] if key else ''}, "
            f"but {who} only knows up to {newest}: upgrade copr_lite or use another data "
            "directory"
        )
    applied = []
    for step in steps:
        if step.version <= version:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(step.sql):
                conn.execute(statement)
            conn.execute(record, (*key, step.version, int(time.time())))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        log.info(
            "migrated database%s to version=%d (%s)",
            f" plugin={key[0]}" if key else "",
            step.version,
            step.description,
        )
        applied.append(step)
    return applied


def _statements(sql: str) -> list[str]:
    """Split a migration script into statements (executescript would commit on its own)."""
    statements, buffer = [], ""
    for line in sql.splitlines(keepends=True):
        if line.strip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
