"""The results tree `<data_dir>/results`, laid out like Copr's backend:

    <owner>/<project>/pubkey.gpg                           the project's public key
    <owner>/<project>/pubkey-<key id>.gpg                  keys it had before a rotation
    <owner>/<project>/<chroot>/repodata/...
    <owner>/<project>/<chroot>/<8-digit build id>-<pkg>/   builder-live.log, *.rpm,
                                                           results.json, success | fail
    <owner>/<project>/srpm-builds/<8-digit build id>/      the import's log and SRPM

The publisher owns every write to this tree: it hands out directories (names checked, never
outside the tree), appends to live logs, writes the `success`/`fail` markers and results.json,
and runs `createrepo_c` per chroot directory, one run at a time per directory. It serves
nothing: `views/results.py` does.

A chroot repository lists only the RPMs of build directories that carry a `success` marker
(createrepo_c gets an explicit package list), so a running, failed or canceled build never
reaches dnf, even half-written.

Publishing does not list the chroot directory: the publisher remembers what each
repository lists (after the first run of each chroot directory in the process, which lists
every build directory), callers name the build directories they add and withdraw, and
createrepo_c gets the package list from memory and keeps the metadata of every package it
already lists without looking at its file again (`--update --skip-stat`). Whatever that
cannot vouch for (a directory published again, whose files may have changed under the same
names; a failed run; no metadata yet; a run asked for without naming what changed, as after
signing) is published from scratch as before.

With a `Signer`, every createrepo_c run is followed by `repodata/repomd.xml.asc`, a detached
signature with the project's key (when it has one yet; the key's arrival re-signs), and
`sign_project()` signs everything a project has published (a new key, or a project published
before signing existed).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, NamedTuple

from .builders import PackageInfo
from .signing import ProjectKey, Signer, SigningError

log = logging.getLogger(__name__)

# Owner, project, chroot and package names as they may appear in a path (spec A16).
NAME_RE = re.compile(r"^[A-Za-z0-9_+-][A-Za-z0-9_.+-]{0,254}$")
MAX_BUILD_ID = 2**63 - 1

LIVE_LOG = "builder-live.log"
LIVE_LOG_GZ = "builder-live.log.gz"  # the log once its chroot ended (as Copr keeps it)
RESULTS_JSON = "results.json"
SUCCESS = "success"
FAIL = "fail"
REPODATA = "repodata"
STALE_REPODATA = ".repodata"  # createrepo_c's temporary dir; left behind by a crashed run
SRPM_BUILDS = "srpm-builds"

CREATEREPO = "createrepo_c"
CREATEREPO_TIMEOUT = 3600.0


class _RepoState:
    """The lock of one chroot directory, how many updates were asked for / covered, what
    the next run must change, and what the repository lists.

    A run covers every request made before it started, so requests that pile up while
    one run works are all served by the next single run (coalescing).
    """

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.requested = 0
        self.covered = 0
        self.full = False  # a run from scratch was asked for
        self.added: set[str] = set()  # build directory names to publish
        self.removed: set[str] = set()  # build directory names to withdraw
        # Build directory name -> its lines of the package list ("<dir>/<rpm>\n" each),
        # as the repository lists them after the last run; None when not known (no run in
        # this process yet, or the last one failed). Changed only by the run holding `lock`.
        self.published: dict[str, str] | None = None


# One state per chroot directory, shared by every Publisher of the process (so a second
# instance cannot race the first); removed with its project.
_REPO_STATES: dict[str, _RepoState] = {}


class _Update(NamedTuple):
    """One createrepo_c run: what the repository lists afterwards, the file listing its
    packages, and whether the metadata of listed packages is reused without a look at
    their files (--skip-stat)."""

    listing: dict[str, str]
    pkglist: Path
    trusted: bool


class PublishError(Exception):
    """createrepo_c failed; the message carries its own words."""


def check_name(name: str, what: str = "name") -> str:
    """`name` if it is safe as one path component, else ValueError."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValueError(f"invalid {what} for a results path: {name!r}")
    return name


def check_build_id(build_id: int) -> int:
    if isinstance(build_id, bool) or not isinstance(build_id, int):
        raise ValueError(f"invalid build id: {build_id!r}")
    if not 0 <= build_id <= MAX_BUILD_ID:
        raise ValueError(f"invalid build id: {build_id!r}")
    return build_id


def build_dir_name(build_id: int, pkg_name: str) -> str:
    """`00000042-hello`: the directory of one build in one chroot."""
    return f"{check_build_id(build_id):08d}-{check_name(pkg_name, 'package name')}"


class Publisher:
    """Paths in, and writes to, the results tree rooted at `results_root`."""

    def __init__(
        self,
        results_root: Path,
        signer: Signer | None = None,
        on_published: Callable[[Path, float], Awaitable[None]] | None = None,
    ) -> None:
        self.root = Path(results_root)
        self.signer = signer
        # Told (chroot dir, seconds) after each createrepo_c run (the server fires a hook).
        self.on_published = on_published

    # ------------------------------------------------------------------ paths

    def project_dir(self, owner: str, project: str) -> Path:
        return self.root / check_name(owner, "owner") / check_name(project, "project")

    def chroot_dir(self, owner: str, project: str, chroot: str) -> Path:
        if chroot == SRPM_BUILDS:
            raise ValueError(f"invalid chroot for a results path: {chroot!r}")
        return self.project_dir(owner, project) / check_name(chroot, "chroot")

    def build_dir(
        self, owner: str, project: str, chroot: str, build_id: int, pkg_name: str
    ) -> Path:
        return self.chroot_dir(owner, project, chroot) / build_dir_name(build_id, pkg_name)

    def import_dir(self, owner: str, project: str, build_id: int) -> Path:
        return self.project_dir(owner, project) / SRPM_BUILDS / f"{check_build_id(build_id):08d}"

    def pubkey_path(self, owner: str, project: str) -> Path:
        return self.project_dir(owner, project) / "pubkey.gpg"

    def old_pubkey_path(self, owner: str, project: str, key_id: str) -> Path:
        return self.project_dir(owner, project) / f"pubkey-{key_id}.gpg"

    def _inside(self, path: Path) -> Path:
        """`path` made absolute, or ValueError when it is not strictly inside the tree."""
        root = self.root.resolve()
        resolved = Path(path).resolve()
        if resolved == root or not resolved.is_relative_to(root):
            raise ValueError(f"{path} is not inside the results tree {root}")
        return resolved

    # ------------------------------------------------------------------ build results

    def live_log(self, build_dir: Path) -> LiveLog:
        """An open LiveLog on `<build_dir>/builder-live.log` (the directory is created)."""
        return LiveLog(Path(build_dir) / LIVE_LOG)

    async def finish_build_dir(
        self,
        build_dir: Path,
        *,
        build_id: int,
        chroot: str,
        status: str,
        packages: Sequence[PackageInfo] = (),
        files: Sequence[Path] = (),
        fail_reason: str | None = None,
    ) -> None:
        """Write `results.json` (Copr's format) and the `success` or `fail` marker.

        `status` is "succeeded" or "failed" (an `Outcome` works too); the `fail` marker holds
        `fail_reason`. A marker of the other outcome left by an earlier attempt is removed.
        `files` (what the builder reported) should lie inside `build_dir`; others are
        reported in the server log (they are not published either way).
        """
        status = str(status)
        if status not in ("succeeded", "failed"):
            raise ValueError(f"status must be 'succeeded' or 'failed', not {status!r}")
        build_dir = self._inside(build_dir)
        for f in files:
            path = Path(f) if Path(f).is_absolute() else build_dir / f
            if not path.resolve().is_relative_to(build_dir):
                log.warning(
                    "build %s %s: result file %s is outside %s", build_id, chroot, f, build_dir
                )
        results = {
            "packages": [
                {
                    "name": p.name,
                    "epoch": p.epoch,
                    "version": p.version,
                    "release": p.release,
                    "arch": p.arch,
                }
                for p in packages
            ]
        }
        reason = (fail_reason or "build failed").strip() if status == "failed" else ""
        await asyncio.to_thread(_write_results, build_dir, results, status, reason)
        log.info(
            "build dir finished build_id=%s chroot=%s status=%s dir=%s",
            build_id,
            chroot,
            status,
            build_dir,
        )

    async def seal_build_dir(self, build_dir: Path) -> int:
        """A chroot ended: compress its builder-live.log to builder-live.log.gz (the plain
        file goes only once the compressed one is in place, so a reader always finds one of
        them) and return the bytes the directory now holds."""
        build_dir = self._inside(build_dir)
        return await asyncio.to_thread(_seal, build_dir)

    async def tree_size(self, path: Path) -> int:
        """Bytes of the files under `path` inside the tree (0 when it does not exist)."""
        return await asyncio.to_thread(tree_size, self._inside(path))

    async def discard(self, build_dir: Path, *, keep_log: bool = False) -> None:
        """Remove a build directory (the partial results of a canceled or re-queued build);
        with `keep_log`, its builder-live.log stays, so a canceled build's log can be read."""
        build_dir = self._inside(build_dir)
        await asyncio.to_thread(_discard_dir, build_dir, keep_log)

    async def remove_builds(self, chroot_dir: Path, build_dirs: Sequence[Path]) -> None:
        """Remove build directories of one chroot (logs included) and republish it when a
        removed one was published. The removal waits for a createrepo_c run of the chroot
        in progress, so no run is handed a package that vanishes under it."""
        chroot_dir = self._inside(chroot_dir)
        dirs = [self._inside(d) for d in build_dirs]
        published = []
        state = _repo_state(chroot_dir)
        async with state.lock:
            for build_dir in dirs:
                if await asyncio.to_thread((build_dir / SUCCESS).is_file):
                    published.append(build_dir.name)
                await asyncio.to_thread(_discard_dir, build_dir, False)
        if published:
            await self.createrepo(chroot_dir, remove=published)

    async def remove_project(self, owner: str, project: str) -> None:
        """Remove everything published for a project (results, logs, imports, key), after
        any createrepo_c run on one of its chroots has finished."""
        path = self.project_dir(owner, project)
        chroot_dirs = await asyncio.to_thread(_subdirs, path)
        states = [_repo_state(chroot_dir) for chroot_dir in chroot_dirs]
        async with contextlib.AsyncExitStack() as stack:
            for state in states:  # sorted dirs: one order for everyone
                await stack.enter_async_context(state.lock)
            await asyncio.to_thread(shutil.rmtree, path, True)
            for chroot_dir in chroot_dirs:
                _REPO_STATES.pop(str(chroot_dir), None)
            for state in states:  # a run still waiting for the lock starts from scratch
                state.published = None
        with contextlib.suppress(OSError):  # the owner's dir, when it was the last project
            await asyncio.to_thread(path.parent.rmdir)

    # ------------------------------------------------------------------ repositories

    async def createrepo(
        self, chroot_dir: Path, *, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> None:
        """Update `<chroot_dir>/repodata`: publish the build directories named in `add`
        (those with a `success` marker) and withdraw those in `remove` (already removed or
        about to be). Without either, (re)create it from the RPMs of every succeeded build
        directory, as after signing them anew.

        Creates the directory (and an empty repository) when needed. Runs of one directory
        never overlap; a stale `.repodata/` of a crashed run is removed first. Raises
        PublishError with createrepo_c's message when it fails.
        """
        chroot_dir = self._inside(chroot_dir)
        for name in (*add, *remove):
            check_name(name, "build directory")
        state = _repo_state(chroot_dir)
        state.requested += 1
        ticket = state.requested
        state.full = state.full or not (add or remove)
        state.added.update(add)
        state.removed.update(remove)
        async with state.lock:
            if state.covered >= ticket:
                return  # a run that started after this request has already published it
            starting_at = state.requested
            full, added, removed = state.full, state.added, state.removed
            state.full, state.added, state.removed = False, set(), set()
            started = time.monotonic()
            try:
                update = await asyncio.to_thread(
                    _plan_update, chroot_dir, None if full else state.published, added, removed
                )
                if update is not None:
                    try:
                        await _run_createrepo(chroot_dir, update.pkglist, update.trusted)
                    finally:
                        await asyncio.to_thread(_unlink, update.pkglist)
            except BaseException:
                state.published = None  # whatever the metadata holds now, start afresh
                raise
            if update is not None:
                state.published = update.listing
                await self._sign_repomd(chroot_dir)
            state.covered = starting_at
        if self.on_published is not None:
            await self.on_published(chroot_dir, time.monotonic() - started)

    async def _sign_repomd(self, chroot_dir: Path) -> None:
        """Sign the repomd.xml createrepo_c just wrote. Without a key yet, a stale signature
        is removed (the key's arrival signs it); a failure is a PublishError."""
        if self.signer is None:
            return
        owner, project = chroot_dir.relative_to(self.root.resolve()).parts[:2]
        repomd = chroot_dir / REPODATA / "repomd.xml"
        key = await asyncio.to_thread(self.signer.current, owner, project)
        if key is None:
            await asyncio.to_thread(_unlink, repomd.with_name("repomd.xml.asc"))
            return
        try:
            await self.signer.sign_detached(key, repomd)
        except SigningError as exc:
            await asyncio.to_thread(_unlink, repomd.with_name("repomd.xml.asc"))
            raise PublishError(f"could not sign {repomd}: {exc}") from None

    # ------------------------------------------------------------------ signing

    async def publish_keys(self, owner: str, project: str, key: ProjectKey) -> None:
        """Export the project's public key to pubkey.gpg, and each earlier one to
        pubkey-<key id>.gpg (clients that still hold an old key can fetch it)."""
        if self.signer is None:
            return
        current = await self.signer.export(key.fingerprint)
        files = {self.pubkey_path(owner, project): current}
        for fpr in key.previous:
            with contextlib.suppress(SigningError):  # a key deleted by hand: nothing to keep
                old = await self.signer.export(fpr)
                files[self.old_pubkey_path(owner, project, fpr[-16:].lower())] = old
        for path, data in files.items():
            await asyncio.to_thread(_write_new_file, path, data)

    async def sign_project(self, owner: str, project: str, key: ProjectKey) -> int:
        """Sign every SRPM and published RPM of the project with `key`, rebuilding and
        signing each chroot's repository after its RPMs (signing changed the packages'
        checksums). Returns how many packages were signed."""
        if self.signer is None:
            return 0
        project_dir = self.project_dir(owner, project)
        chroot_dirs = [
            d for d in await asyncio.to_thread(_subdirs, project_dir) if d.name != SRPM_BUILDS
        ]
        # SRPMs first: a signed repomd.xml then means the whole project is signed.
        srpms = await asyncio.to_thread(_import_srpms, project_dir / SRPM_BUILDS)
        await self.signer.sign_rpms(key, srpms)
        signed = len(srpms)
        for chroot_dir in chroot_dirs:
            files = await asyncio.to_thread(_published_files, chroot_dir)
            await self.signer.sign_rpms(key, files)
            signed += len(files)
            await self.createrepo(chroot_dir)
        return signed


class LiveLog:
    """`builder-live.log`, appended line by line and flushed at once, so readers (the SSE
    stream, /results/) see each line as soon as it is written.

    Use `await live_log.write(line)` as a builder's `ctx.log`. A write + flush of one line
    is a single small write(2) into the page cache (a few microseconds), cheaper than a
    thread hop, so it happens on the loop. Writes after `close()` are dropped.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] | None = os.fdopen(
            _open_append(self.path), "a", encoding="utf-8", errors="replace", newline="\n"
        )

    async def write(self, line: str) -> None:
        fh = self._fh
        if fh is None:
            return
        fh.write(line.rstrip("\n") + "\n")
        fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    @property
    def closed(self) -> bool:
        return self._fh is None

    def __enter__(self) -> LiveLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _repo_state(chroot_dir: Path) -> _RepoState:
    """The repository state of one (resolved) chroot directory."""
    key = str(chroot_dir)
    state = _REPO_STATES.get(key)
    if state is None:
        state = _REPO_STATES[key] = _RepoState()
    return state


# ---------------------------------------------------------------------- blocking helpers


def _subdirs(path: Path) -> list[Path]:
    """The resolved subdirectories of `path`, sorted (none when it does not exist)."""
    try:
        with os.scandir(path) as entries:
            found = [Path(e.path).resolve() for e in entries if e.is_dir(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(found)


# Builders write into their build directory, so a name there may be a planted symlink:
# files the server writes are opened without following one.
_APPEND_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_append(path: Path) -> int:
    """An append fd on `path`; a symlink in its place is replaced by a regular file."""
    try:
        return os.open(path, _APPEND_FLAGS, 0o644)
    except OSError as exc:
        if not path.is_symlink():
            raise exc from None
    path.unlink()
    return os.open(path, _APPEND_FLAGS | os.O_EXCL, 0o644)


def _write_atomic(path: Path, data: str | bytes) -> None:
    """Write a new file (never through a symlink) and rename it over `path`; text is
    written as UTF-8."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        _unlink(Path(tmp))
        raise


def _write_new_file(path: Path, data: bytes) -> None:
    """`_write_atomic`, making the directory first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, data)


def _write_results(build_dir: Path, results: dict[str, Any], status: str, reason: str) -> None:
    build_dir.mkdir(parents=True, exist_ok=True)
    _write_atomic(build_dir / RESULTS_JSON, json.dumps(results, indent=4) + "\n")
    if status == "succeeded":
        _unlink(build_dir / FAIL)
        _write_atomic(build_dir / SUCCESS, "")
    else:
        _unlink(build_dir / SUCCESS)
        _write_atomic(build_dir / FAIL, reason + "\n")


def tree_size(path: Path) -> int:
    """Bytes of the regular files under `path` (symlinks not followed; 0 when missing)."""
    total = 0
    try:
        entries = list(os.scandir(path))
    except (FileNotFoundError, NotADirectoryError):
        return 0
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                total += tree_size(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                total += entry.stat(follow_symlinks=False).st_size
        except FileNotFoundError:  # removed while we looked
            continue
    return total


def compress_log(build_dir: Path) -> None:
    """builder-live.log -> builder-live.log.gz, atomically; the plain file is removed last."""
    plain = build_dir / LIVE_LOG
    if plain.is_symlink() or not plain.is_file():
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{LIVE_LOG_GZ}.", dir=build_dir)
    try:
        with (
            open(plain, "rb") as src,
            os.fdopen(fd, "wb") as raw,
            gzip.GzipFile(filename=LIVE_LOG, mode="wb", fileobj=raw, mtime=0) as dst,
        ):
            shutil.copyfileobj(src, dst, 1024 * 1024)
        os.chmod(tmp, 0o644)
        os.replace(tmp, build_dir / LIVE_LOG_GZ)
    except BaseException:
        _unlink(Path(tmp))
        raise
    _unlink(plain)


def _seal(build_dir: Path) -> int:
    if build_dir.is_dir():
        compress_log(build_dir)
    return tree_size(build_dir)


def _discard_dir(build_dir: Path, keep_log: bool) -> None:
    if not keep_log:
        shutil.rmtree(build_dir, ignore_errors=True)
        return
    if not build_dir.is_dir():
        return
    for entry in build_dir.iterdir():
        if entry.name in (LIVE_LOG, LIVE_LOG_GZ) and entry.is_file() and not entry.is_symlink():
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def rpm_files(build_dir: Path) -> list[Path]:
    """The RPMs (and SRPMs) directly in `build_dir`: what its `success` marker publishes."""
    try:
        with os.scandir(build_dir) as entries:
            return sorted(
                Path(e.path)
                for e in entries
                if e.name.endswith(".rpm") and e.is_file(follow_symlinks=False)
            )
    except FileNotFoundError:
        return []


def _published_files(chroot_dir: Path) -> list[Path]:
    return [chroot_dir / rel for rel in _published_packages(chroot_dir)]


def _import_srpms(srpm_builds: Path) -> list[Path]:
    return [f for d in _subdirs(srpm_builds) for f in rpm_files(d)]


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _published_packages(chroot_dir: Path) -> list[str]:
    """The RPMs (relative paths) of the build directories that carry a `success` marker."""
    return sorted(
        f"{name}/{rpm}" for name, rpms in _succeeded_dirs(chroot_dir).items() for rpm in rpms
    )


def _succeeded_dirs(chroot_dir: Path) -> dict[str, list[str]]:
    """Every build directory that carries a `success` marker, with its RPMs' names."""
    found = {}
    with os.scandir(chroot_dir) as entries:
        for entry in entries:
            if entry.name.startswith(".") or entry.name == REPODATA:
                continue
            if not entry.is_dir(follow_symlinks=False):
                continue
            rpms = _succeeded_rpms(Path(entry.path))
            if rpms is not None:
                found[entry.name] = rpms
    return found


def _succeeded_rpms(build_dir: Path) -> list[str] | None:
    """The RPM names of a build directory with a `success` marker (None: no marker)."""
    if not (build_dir / SUCCESS).is_file():
        return None
    return [path.name for path in rpm_files(build_dir)]


def _prepare_repo_dir(chroot_dir: Path) -> None:
    """Create the dir and drop a stale `.repodata/`."""
    chroot_dir.mkdir(parents=True, exist_ok=True)
    stale = chroot_dir / STALE_REPODATA
    if stale.exists() or stale.is_symlink():
        log.warning("removing stale %s (a createrepo_c run did not finish)", stale)
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale)
        else:
            stale.unlink()


def _plan_update(
    chroot_dir: Path,
    published: dict[str, str] | None,
    added: set[str],
    removed: set[str],
) -> _Update | None:
    """What the next createrepo_c run of `chroot_dir` does; None when nothing changes.

    Incremental (looking only at the added build directories, and changing `published`
    in place) when the repository's contents are known and its metadata exists, unless a
    build directory is published again: its files may have changed under names the
    metadata lists, which `--skip-stat` would not notice. Otherwise from scratch (every
    build directory looked at).
    """
    _prepare_repo_dir(chroot_dir)
    incremental = (
        published is not None
        and (chroot_dir / REPODATA / "repomd.xml").is_file()
        and not any(name in published for name in added)
    )
    if published is None or not incremental:
        listing = {name: _lines(name, rpms) for name, rpms in _succeeded_dirs(chroot_dir).items()}
        return _Update(listing, _pkglist(listing), trusted=False)
    changed = False
    for name in removed:
        changed |= published.pop(name, None) is not None
    for name in sorted(added - removed):
        rpms = _succeeded_rpms(chroot_dir / name)
        if rpms is not None:
            published[name] = _lines(name, rpms)
            changed = True
    return _Update(published, _pkglist(published), trusted=True) if changed else None


def _lines(build_dir: str, rpms: list[str]) -> str:
    return "".join(f"{build_dir}/{rpm}\n" for rpm in rpms)


def _pkglist(listing: dict[str, str]) -> Path:
    """A temporary file listing the RPMs of `listing`, one relative path a line."""
    fd, name = tempfile.mkstemp(prefix="copr-lite-pkglist-", suffix=".txt")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("".join(listing.values()))
    return Path(name)


async def _run_createrepo(chroot_dir: Path, pkglist: Path, trusted: bool = False) -> None:
    """createrepo_c on `chroot_dir` with exactly the packages of `pkglist`, reusing the
    metadata of each package it lists already: when its file's size and time are unchanged,
    or, `trusted`, without looking at the file at all."""
    argv = [CREATEREPO, "--update", "--pkglist", str(pkglist)]
    if trusted:
        argv.append("--skip-stat")
    argv.append(str(chroot_dir))
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except FileNotFoundError:
        raise PublishError(f"{CREATEREPO} is not installed") from None
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), CREATEREPO_TIMEOUT)
    except BaseException as exc:
        # Never release the lock while createrepo_c still writes into the directory.
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await asyncio.shield(proc.wait())
        if isinstance(exc, TimeoutError):
            raise PublishError(
                f"{CREATEREPO} on {chroot_dir} took longer than {CREATEREPO_TIMEOUT:.0f} s"
            ) from None
        raise
    if proc.returncode != 0:
        lines = [
            line.strip()
            for line in out.decode("utf-8", "replace").splitlines()
            if line.strip() and not _is_progress(line)
        ]
        message = "; ".join(lines[-3:]) or f"exit status {proc.returncode}"
        raise PublishError(f"{CREATEREPO} failed on {chroot_dir}: {message}")
    log.info("createrepo done dir=%s", chroot_dir)


_PROGRESS = (
    "Directory walk",
    "Loaded information",
    "Temporary output repo path",
    "Preparing sqlite DBs",
    "Pool started",
    "Pool finished",
)


def _is_progress(line: str) -> bool:
    return line.strip().startswith(_PROGRESS)
