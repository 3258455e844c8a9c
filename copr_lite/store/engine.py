"""The dispatcher's queries: imports, pending chroots, finishing and recovering chroots."""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

from ..models import PendingChroot, SourcePackage
from ..states import UNFINISHED_CODES, State
from .builds import set_build_package, set_chroot_state


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
    package: SourcePackage,
) -> None:
    """Record the imported SRPM and its header; its importing chroots become pending."""
    conn.execute(
        "UPDATE builds SET srpm_path = ?, srpm_sha256 = ? WHERE id = ?",
        (srpm_path, sha256, build_id),
    )
    set_build_package(conn, build_id, package)
    for chroot in _importing_chroots(conn, build_id):
        set_chroot_state(conn, build_id, chroot, State.PENDING)


def import_failed(conn: sqlite3.Connection, build_id: int, reason: str) -> bool:
    """Fail the build's importing chroots; True when that finished the build."""
    moved = False
    for chroot in _importing_chroots(conn, build_id):
        moved |= set_chroot_state(conn, build_id, chroot, State.FAILED, fail_reason=reason)
    return moved and build_is_finished(conn, build_id)


def _importing_chroots(conn: sqlite3.Connection, build_id: int) -> list[str]:
    """The build's chroots that wait for its SRPM import."""
    return [
        row[0]
        for row in conn.execute(
            "SELECT chroot FROM build_chroots WHERE build_id = ? AND status = ?",
            (build_id, State.IMPORTING.code),
        )
    ]


def pending_candidates(conn: sqlite3.Connection, per_owner: int) -> list[PendingChroot]:
    """The first few pending chroots of every owner (normal builds before background ones,
    oldest first), so the dispatcher can choose fairly between owners."""
    rows = conn.execute(
        "SELECT owner_id, build_id, chroot FROM ("
        " SELECT p.owner_id, bc.build_id, bc.chroot, row_number() OVER ("
        "   PARTITION BY p.owner_id ORDER BY b.background, bc.build_id, bc.chroot) AS rank"
        " FROM build_chroots bc JOIN builds b ON b.id = bc.build_id"
        " JOIN projects p ON p.id = b.project_id WHERE bc.status = ?)"
        " WHERE rank <= ? ORDER BY rank, build_id",
        (State.PENDING.code, per_owner),
    ).fetchall()
    return [PendingChroot(*row) for row in rows]


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
