"""`backup DEST` and `restore SRC`: a consistent copy of a data directory, taken while the
server runs, and brought back as `./data`.

A backup is made in this order, so that it is consistent as of one moment, the snapshot:
1. the database, through SQLite's online backup API (a consistent copy while the server
   writes; pages changed meanwhile are copied again);
2. the results the snapshot knows as finished: each build chroot's directory once the
   snapshot has it in a terminal state (a chroot still running then is re-queued on the
   restored server, as after a crash), each import once its build left `importing`, and the
   projects' public keys. Repository metadata is not copied: restore rebuilds it from
   exactly what was copied;
3. the signing keyring (`gnupg/`: the project keys and which project has which);
4. uploaded SRPMs still waiting for their import (`uploads/`).
`backup.json` records what was copied and what vanished meanwhile (a build deleted by its
user between the snapshot and the copy).

`restore SRC` copies all of it to `./data` (which must not exist or be empty), points the
builds' SRPM paths at it, and runs createrepo_c (and signs) for every chroot.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import stat
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import migrations
from .config import Config
from .publisher import LIVE_LOG, LIVE_LOG_GZ, REPODATA, SRPM_BUILDS, STALE_REPODATA, Publisher
from .signing import Signer
from .states import State

DB_NAME = "copr-lite.sqlite3"
MANIFEST = "backup.json"
FORMAT = 1
PAGES_PER_STEP = 1024


class BackupError(Exception):
    """The backup or restore cannot go on; worded for the operator."""


class Progress:
    """One status line, rewritten in place on a terminal; silent otherwise."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._last = 0.0

    def show(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._last < 0.1):
            return
        self._last = now
        sys.stderr.write(f"\r\033[K{text}")
        sys.stderr.flush()

    def done(self, text: str) -> None:
        if self.enabled:
            sys.stderr.write(f"\r\033[K{text}\n")
            sys.stderr.flush()


@dataclass
class Copied:
    files: int = 0
    bytes: int = 0
    vanished: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- backup


def backup(config: Config, dest: Path, progress: Progress) -> dict[str, object]:
    """Copy the data directory of `config` to `dest` (new or empty); returns the manifest."""
    db_path = config.db_path
    if not db_path.is_file():
        raise BackupError(f"no database at {db_path}")
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} is not empty")
    dest.mkdir(parents=True, exist_ok=True)
    started = time.time()
    _backup_database(db_path, dest / DB_NAME, progress)
    snapshot = _snapshot_contents(dest / DB_NAME)
    copied = Copied()
    _copy_results(config.data_dir / "results", dest / "results", snapshot, copied, progress)
    keyring = config.gnupg_home
    if keyring.is_dir():
        _copy_tree(keyring, dest / "gnupg", copied, progress)
    uploads = config.upload_dir
    if uploads.is_dir():
        _copy_tree(uploads, dest / "uploads", copied, progress)
    manifest: dict[str, object] = {
        "format": FORMAT,
        "created_on": int(started),
        "schema_version": snapshot.version,
        "data_dir": str(config.data_dir.resolve()),
        "files": copied.files,
        "bytes": copied.bytes + (dest / DB_NAME).stat().st_size,
        "vanished": copied.vanished,
    }
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    progress.done(f"backup done: {copied.files} files, {manifest['bytes']} bytes in {dest}")
    return manifest


def _backup_database(source: Path, target: Path, progress: Progress) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.execute("PRAGMA busy_timeout = 10000")

        def report(status: int, remaining: int, total: int) -> None:
            done = total - remaining
            progress.show(f"database: {done}/{total} pages ({100 * done // max(total, 1)} %)")

        src.backup(dst, pages=PAGES_PER_STEP, progress=report)
        dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
    finally:
        dst.close()
        src.close()
    progress.done(f"database copied ({target.stat().st_size} bytes)")


@dataclass(frozen=True)
class Snapshot:
    """What the database snapshot knows: its schema version, every project's chroots
    (owner, project, chroot), every finished and not pruned build chroot (owner, project,
    chroot, build dir name), and every import that ended (owner, project, 8-digit id)."""

    version: int
    project_chroots: set[tuple[str, str, str]]
    chroots: set[tuple[str, str, str, str]]
    imports: set[tuple[str, str, str]]


def _snapshot_contents(db: Path) -> Snapshot:
    conn = sqlite3.connect(db)
    try:
        version = migrations.current_version(conn)
        project_chroots = project_chroot_names(conn)
        terminal = tuple(s.code for s in State if s.terminal)
        marks = ", ".join("?" for _ in terminal)
        chroots = {
            (owner, project, chroot, f"{build_id:08d}-{pkg}")
            for owner, project, chroot, build_id, pkg in conn.execute(
                "SELECT u.name, p.name, bc.chroot, b.id, b.pkg_name FROM build_chroots bc"
                " JOIN builds b ON b.id = bc.build_id JOIN projects p ON p.id = b.project_id"
                " JOIN users u ON u.id = p.owner_id WHERE b.pkg_name IS NOT NULL"
                f" AND bc.pruned_on IS NULL AND bc.status IN ({marks})",
                terminal,
            )
        }
        imports = {
            (owner, project, f"{build_id:08d}")
            for owner, project, build_id in conn.execute(
                "SELECT u.name, p.name, b.id FROM builds b JOIN projects p"
                " ON p.id = b.project_id JOIN users u ON u.id = p.owner_id"
                " WHERE NOT EXISTS (SELECT 1 FROM build_chroots bc WHERE bc.build_id = b.id"
                " AND bc.status = ?)",
                (State.IMPORTING.code,),
            )
        }
    finally:
        conn.close()
    return Snapshot(version, project_chroots, chroots, imports)


def project_chroot_names(conn: sqlite3.Connection) -> set[tuple[str, str, str]]:
    return {
        (owner, project, chroot)
        for owner, project, chroot in conn.execute(
            "SELECT u.name, p.name, pc.chroot FROM project_chroots pc"
            " JOIN projects p ON p.id = pc.project_id JOIN users u ON u.id = p.owner_id"
        )
    }


def _copy_results(
    root: Path, target: Path, snapshot: Snapshot, copied: Copied, progress: Progress
) -> None:
    chroots, imports = snapshot.chroots, snapshot.imports
    for owner, project in sorted({(c[0], c[1]) for c in snapshot.project_chroots}):
        project_dir = root / owner / project
        if not project_dir.is_dir():
            continue
        for entry in sorted(project_dir.iterdir()):
            if entry.is_file() and entry.name.startswith("pubkey"):
                _copy_file(entry, target / owner / project / entry.name, copied)
        for owner_, project_, chroot, name in sorted(chroots):
            if (owner_, project_) != (owner, project):
                continue
            source = project_dir / chroot / name
            if not source.is_dir():
                copied.vanished.append(f"{owner}/{project}/{chroot}/{name}")
                continue
            _copy_tree(source, target / owner / project / chroot / name, copied, progress)
        for owner_, project_, build in sorted(imports):
            if (owner_, project_) != (owner, project):
                continue
            source = project_dir / SRPM_BUILDS / build
            if source.is_dir():
                _copy_tree(source, target / owner / project / SRPM_BUILDS / build, copied, progress)


def _copy_tree(source: Path, target: Path, copied: Copied, progress: Progress) -> None:
    """Regular files and directories (no sockets, no symlinks), keeping modes."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copystat(source, target)
    try:
        entries = sorted(os.scandir(source), key=lambda e: e.name)
    except FileNotFoundError:
        copied.vanished.append(str(source))
        return
    for entry in entries:
        if entry.name in (REPODATA, STALE_REPODATA) or entry.name.startswith(".#"):
            continue
        try:
            mode = entry.stat(follow_symlinks=False).st_mode
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(mode):
            _copy_tree(Path(entry.path), target / entry.name, copied, progress)
        elif stat.S_ISREG(mode):
            _copy_file(Path(entry.path), target / entry.name, copied)
            progress.show(f"files: {copied.files} ({copied.bytes} bytes)")


def _copy_file(source: Path, target: Path, copied: Copied) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copy2(source, target, follow_symlinks=False)
    except FileNotFoundError:
        if source.name != LIVE_LOG:
            return  # removed between the listing and the copy
        # The chroot's log was compressed meanwhile: take the compressed one.
        source, target = source.with_name(LIVE_LOG_GZ), target.with_name(LIVE_LOG_GZ)
        try:
            shutil.copy2(source, target, follow_symlinks=False)
        except FileNotFoundError:
            return
    copied.files += 1
    copied.bytes += target.stat().st_size


# ---------------------------------------------------------------- restore


def restore(source: Path, data_dir: Path, progress: Progress) -> dict[str, object]:
    """Bring the backup at `source` back as `data_dir` (which must not exist or be empty)."""
    manifest_path = source / MANIFEST
    if not manifest_path.is_file() or not (source / DB_NAME).is_file():
        raise BackupError(f"{source} is not a copr_lite backup (no {MANIFEST} or {DB_NAME})")
    manifest: dict[str, object] = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{source}: unknown backup format {manifest.get('format')!r}")
    if data_dir.exists() and any(p.name != ".lock" for p in data_dir.iterdir()):
        raise BackupError(f"{data_dir} is not empty: restore into an empty directory")
    data_dir.mkdir(parents=True, exist_ok=True)
    copied = Copied()
    shutil.copy2(source / DB_NAME, data_dir / DB_NAME)
    conn = sqlite3.connect(data_dir / DB_NAME, isolation_level=None)
    try:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise BackupError(f"the backup's database is damaged: {check}")
        old, new = str(manifest["data_dir"]), str(data_dir.resolve())
        # Imported and uploaded SRPMs are found by path: point them at the new place.
        conn.execute(
            "UPDATE builds SET srpm_path = ? || substr(srpm_path, ?)"
            " WHERE substr(srpm_path, 1, ?) = ?",
            (new, len(old) + 1, len(old), old),
        )
    finally:
        conn.close()
    for name in ("results", "gnupg", "uploads"):
        if (source / name).is_dir():
            _copy_tree(source / name, data_dir / name, copied, progress)
    if (data_dir / "gnupg").is_dir():
        os.chmod(data_dir / "gnupg", 0o700)
    progress.done(f"restored {copied.files} files into {data_dir}")
    conn = sqlite3.connect(data_dir / DB_NAME)
    try:
        names = sorted(project_chroot_names(conn))
    finally:
        conn.close()
    root = data_dir / "results"
    root.mkdir(exist_ok=True)
    chroot_dirs = [
        Publisher(root).chroot_dir(owner, project, chroot) for owner, project, chroot in names
    ]
    asyncio.run(_republish(data_dir, chroot_dirs, progress))
    return manifest


async def _republish(data_dir: Path, chroot_dirs: list[Path], progress: Progress) -> None:
    keyring = data_dir / "gnupg"
    signer = Signer(keyring) if keyring.is_dir() else None
    publisher = Publisher(data_dir / "results", signer)
    try:
        for number, chroot_dir in enumerate(chroot_dirs, 1):
            progress.show(f"repositories: {number}/{len(chroot_dirs)} {chroot_dir.name}", True)
            await publisher.createrepo(chroot_dir)
    finally:
        if signer is not None:
            await signer.close()
    progress.done(f"rebuilt {len(chroot_dirs)} repositories")
