"""Retention: which build results to remove, and removing them (`prune`).

The unit is one chroot of one build (its result directory). The rules, per project package
(the SRPM's name, `builds.pkg_name`, never a binary RPM's name) and chroot, with the
package's own settings where it has them, else the project's:

- A package's newest succeeded build in a chroot is never removed.
- keep_last N (0: unlimited): only the N newest finished builds stay.
- auto_prune on: a succeeded build goes once a newer succeeded build exists and it ended more
  than prune_days ago; a failed (or canceled, or skipped) one goes failed_log_days after it
  ended. auto_prune off: nothing goes by age.
- Unfinished chroots are never touched, and count for nothing.

A removed chroot keeps its row (state and fail reason stay readable, marked pruned); a build
whose chroots are all removed is deleted (rows, import, SRPM). Uploaded SRPMs no build
refers to any more (its import copied the file, or the build was deleted before that) go
too, once they are older than UPLOAD_GRACE. The server prunes once a day
and on demand (`python -m copr_lite prune`, which asks the running server over its control
socket, see control.py): the repository locks of the publisher are per process, so only the
process that runs createrepo_c may remove published files.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sqlite3
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from . import store
from .db import Database
from .models import ChrootRow, Policy
from .publisher import Publisher
from .states import State

log = logging.getLogger(__name__)
DAY = 86400
# An upload younger than this may belong to a request whose build is not stored yet.
UPLOAD_GRACE = 3600.0


@dataclass(frozen=True)
class Removal:
    row: ChrootRow
    reason: str


@dataclass
class Plan:
    """What a prune removes: chroot result directories, and the builds left with none."""

    removals: list[Removal] = field(default_factory=list)
    builds: list[int] = field(default_factory=list)
    bytes_freed: int = 0
    uploads: list[str] = field(default_factory=list)  # stray upload directories, by name

    def lines(self, dry_run: bool) -> list[str]:
        """One line per removal, then a total (the CLI prints these)."""
        items = [
            *self._items(),
            *(f"upload {name}: no build refers to it" for name in self.uploads),
        ]
        out = [("would remove " if dry_run else "removed ") + line for line in items]
        verb = "would free" if dry_run else "freed"
        out.append(
            f"{len(self.removals)} chroot result(s), {len(self.builds)} whole build(s): "
            f"{verb} {self.bytes_freed} bytes ({human_bytes(self.bytes_freed)})"
        )
        return out

    def _items(self) -> list[str]:
        return [
            f"build {r.row.build_id} {r.row.owner}/{r.row.project} {r.row.pkg_name or '-'} "
            f"{r.row.chroot} {r.row.state.value} {r.row.disk_bytes} bytes: {r.reason}"
            for r in self.removals
        ]

    def to_json(self) -> dict[str, object]:
        return {
            "removals": [
                {
                    "build_id": r.row.build_id,
                    "project": f"{r.row.owner}/{r.row.project}",
                    "package": r.row.pkg_name,
                    "chroot": r.row.chroot,
                    "state": r.row.state.value,
                    "bytes": r.row.disk_bytes,
                    "reason": r.reason,
                }
                for r in self.removals
            ],
            "builds_deleted": self.builds,
            "bytes_freed": self.bytes_freed,
            "uploads": self.uploads,
        }


def referenced_uploads(conn: sqlite3.Connection, upload_dir: Path) -> set[str]:
    """The names of the upload directories builds still read their SRPM from."""
    prefix = f"{upload_dir}/"
    rows = conn.execute(
        "SELECT srpm_path FROM builds WHERE substr(srpm_path, 1, ?) = ?", (len(prefix), prefix)
    )
    return {Path(row[0]).parent.name for row in rows}


def old_uploads(upload_dir: Path, now: float) -> list[Path]:
    """Upload directories older than UPLOAD_GRACE, by name. Blocks."""
    try:
        entries = list(os.scandir(upload_dir))
    except FileNotFoundError:
        return []
    return sorted(
        Path(entry.path)
        for entry in entries
        if entry.is_dir(follow_symlinks=False)
        and now - entry.stat(follow_symlinks=False).st_mtime > UPLOAD_GRACE
    )


async def sweep_uploads(db: Database, upload_dir: Path, dry_run: bool) -> list[str]:
    """The old upload directories no build refers to, removed unless `dry_run`; their names.
    The builds are only read when an old upload exists (imports remove their uploads)."""
    old = await asyncio.to_thread(old_uploads, upload_dir, time.time())
    if not old:
        return []
    referenced = await db.read(referenced_uploads, upload_dir)
    stray = [path for path in old if path.name not in referenced]
    if stray and not dry_run:
        await asyncio.to_thread(_remove_trees, stray)
    return [path.name for path in stray]


def _remove_trees(paths: list[Path]) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover - the loop returns at GiB


def load(conn: sqlite3.Connection) -> tuple[list[ChrootRow], dict[tuple[int, str | None], Policy]]:
    """Every build chroot and every package's effective policy (on a database thread)."""
    return store.retention_rows(conn)


def plan_removals(
    rows: list[ChrootRow], policies: dict[tuple[int, str | None], Policy], now: int
) -> Plan:
    """Apply the rules (module docstring) to every build chroot; pure."""
    groups: dict[tuple[int, str | None, str], list[ChrootRow]] = defaultdict(list)
    for row in rows:
        groups[(row.project_id, row.pkg_name, row.chroot)].append(row)
    plan = Plan()
    for (project_id, pkg_name, _), group in groups.items():
        policy = policies.get((project_id, pkg_name), Policy())
        group.sort(key=lambda r: r.build_id, reverse=True)
        succeeded = [r.build_id for r in group if r.state is State.SUCCEEDED]
        newest_succeeded = max(succeeded, default=None)
        kept = [r for r in group if r.state.terminal and r.pruned_on is None]
        for rank, row in enumerate(kept):
            if row.build_id == newest_succeeded:
                continue
            reason = _reason(row, rank, policy, newest_succeeded, now)
            if reason is not None:
                plan.removals.append(Removal(row, reason))
    removed = {(r.row.build_id, r.row.chroot) for r in plan.removals}
    chroots_of: dict[int, list[ChrootRow]] = defaultdict(list)
    for row in rows:
        chroots_of[row.build_id].append(row)
    for build_id, chroots in sorted(chroots_of.items()):
        if all(c.pruned_on is not None or (build_id, c.chroot) in removed for c in chroots):
            plan.builds.append(build_id)
            plan.bytes_freed += chroots[0].import_bytes
    plan.bytes_freed += sum(r.row.disk_bytes for r in plan.removals)
    plan.removals.sort(key=lambda r: (r.row.build_id, r.row.chroot))
    return plan


def _reason(
    row: ChrootRow, rank: int, policy: Policy, newest_succeeded: int | None, now: int
) -> str | None:
    if policy.keep_last and rank >= policy.keep_last:
        return f"only the {policy.keep_last} newest finished builds are kept"
    if not policy.auto_prune:
        return None
    age = now - (row.ended_on or now)
    if row.state is State.SUCCEEDED:
        superseded = newest_succeeded is not None and newest_succeeded > row.build_id
        if superseded and age > policy.prune_days * DAY:
            return f"superseded by build {newest_succeeded} and older than {policy.prune_days} days"
        return None
    if age > policy.failed_log_days * DAY:
        return f"{row.state.value} more than {policy.failed_log_days} days ago"
    return None


async def prune(
    db: Database, publisher: Publisher, *, upload_dir: Path | None = None, dry_run: bool = False
) -> Plan:
    """Find what the rules remove and (unless `dry_run`) remove it: the database first (one
    transaction), then the files, republishing each chroot that lost a published build;
    with `upload_dir`, then the stray uploads in it."""
    rows, policies = await db.read(load)
    plan = plan_removals(rows, policies, int(time.time()))
    if not dry_run and (plan.removals or plan.builds):
        await _remove(db, publisher, plan, rows)
    if upload_dir is not None:
        plan.uploads = await sweep_uploads(db, upload_dir, dry_run)
    if not dry_run and (plan.removals or plan.builds or plan.uploads):
        log.info(
            "pruned chroots=%d builds=%d bytes=%d uploads=%d",
            len(plan.removals),
            len(plan.builds),
            plan.bytes_freed,
            len(plan.uploads),
        )
    return plan


async def _remove(db: Database, publisher: Publisher, plan: Plan, rows: list[ChrootRow]) -> None:
    """Carry out the plan's removals: the database (one transaction), then the files."""
    chroots = [(r.row.build_id, r.row.chroot) for r in plan.removals]
    await db.write(store.apply_prune, chroots, plan.builds, int(time.time()))
    by_chroot: dict[Path, list[Path]] = defaultdict(list)
    for removal in plan.removals:
        row = removal.row
        if row.pkg_name is None:
            continue  # the import failed: no chroot directory exists
        path = publisher.build_dir(row.owner, row.project, row.chroot, row.build_id, row.pkg_name)
        by_chroot[path.parent].append(path)
    for chroot_dir, build_dirs in by_chroot.items():
        await publisher.remove_builds(chroot_dir, build_dirs)
    deleted = set(plan.builds)
    for row in rows:
        if row.build_id in deleted:
            deleted.discard(row.build_id)
            await publisher.discard(publisher.import_dir(row.owner, row.project, row.build_id))
