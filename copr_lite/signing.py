"""Package and repository signing: one GnuPG key per project, kept on the server.

The keyring is `<data_dir>/gnupg` (mode 0700, only the server's user reads it); one RSA key
per project, made in the background when the project is created (key generation takes
about a second and must never hold a request), with uid
`<owner>_<project> (copr_lite) <owner#project@copr-lite>` and **no expiry**: Copr users'
most repeated complaint is keys expiring on projects nobody touches. Which key belongs to a
project is recorded in `<gnupg>/projects/<owner>/<project>.json` (its fingerprint, and the
fingerprints it had before a rotation), so a uid shared by an old and a new key is never
ambiguous.

What is signed: every RPM and SRPM before it is published (`rpmsign --addsign`), and every
`repodata/repomd.xml` each time createrepo_c rewrites it (`repomd.xml.asc`, detached and
armored, for dnf's `repo_gpgcheck`). The public key is exported to
`<results>/<owner>/<project>/pubkey.gpg`; after a rotation the old one stays at
`pubkey-<key id>.gpg` beside it.

Debian's rpm names a `gpg2` binary that does not exist, so rpmsign always gets
`__gpg` set to the real gpg. Each keyring has one gpg-agent; `close()` stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .processes import run_captured

log = logging.getLogger(__name__)

GPG = "gpg"
RPMSIGN = "rpmsign"
GPG_TIME_LIMIT = 300.0  # a 4096-bit key takes about a second; starved machines take longer
SIGN_TIME_LIMIT = 600.0
SIGN_BATCH = 200  # files per rpmsign run (a whole project is re-signed after a rotation)
_FPR_RE = re.compile(r"^[0-9A-F]{40}$")


class SigningError(Exception):
    """A key could not be made or a file could not be signed; the message says why."""


@dataclass(frozen=True)
class ProjectKey:
    """A project's current key and the fingerprints of the keys it replaced."""

    fingerprint: str
    previous: tuple[str, ...] = ()
    adopted: bool = False  # its published packages and repositories were signed with it

    @property
    def key_id(self) -> str:
        return self.fingerprint[-16:].lower()


class Signer:
    """Makes project keys and signs with them, in the keyring `home`."""

    def __init__(self, home: Path, *, key_length: int = 4096) -> None:
        self.home = Path(home)
        self.key_length = key_length
        # Keyring changes (new keys, deleted keys) one at a time; signing runs alongside.
        self._keyring_lock = asyncio.Lock()
        # One rpmsign at a time per key: two runs on the same file (a build's own signing
        # and the signing of a project's earlier builds when its key arrives) would both
        # have gpg write the same temporary signature file, and the second asks on a tty.
        self._rpmsign_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._pending: dict[tuple[str, str], asyncio.Task[ProjectKey]] = {}
        self._used = False

    # ------------------------------------------------------------------ keys

    def _state_path(self, owner: str, project: str) -> Path:
        return self.home / "projects" / owner / f"{project}.json"

    def uid(self, owner: str, project: str) -> str:
        return f"{owner}_{project} (copr_lite) <{owner}#{project}@copr-lite>"

    def current(self, owner: str, project: str) -> ProjectKey | None:
        """The project's key as recorded, or None when it has none yet (blocking: small)."""
        try:
            data = json.loads(self._state_path(owner, project).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        fpr = str(data.get("fingerprint", ""))
        if not _FPR_RE.match(fpr):
            return None
        previous = tuple(str(p) for p in data.get("previous", ()) if _FPR_RE.match(str(p)))
        return ProjectKey(fpr, previous, bool(data.get("adopted", False)))

    def _record(self, owner: str, project: str, key: ProjectKey) -> None:
        path = self._state_path(owner, project)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = {
            "fingerprint": key.fingerprint,
            "previous": list(key.previous),
            "adopted": key.adopted,
        }
        fd, tmp = tempfile.mkstemp(prefix=".state.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)

    async def mark_adopted(self, owner: str, project: str, key: ProjectKey) -> ProjectKey:
        done = ProjectKey(key.fingerprint, key.previous, adopted=True)
        await asyncio.to_thread(self._record, owner, project, done)
        return done

    async def key(self, owner: str, project: str, *, wait: float | None = None) -> ProjectKey:
        """The project's key, made first when it has none; one generation per project even
        when many ask at once. With `wait`, SigningError after that many seconds (the
        generation goes on in the background)."""
        found = await asyncio.to_thread(self.current, owner, project)
        if found is not None:
            return found
        task = self._pending.get((owner, project))
        if task is None:
            task = asyncio.create_task(
                self._generate(owner, project, previous=()), name=f"key-{owner}-{project}"
            )
            self._pending[(owner, project)] = task
            task.add_done_callback(lambda _t: self._pending.pop((owner, project), None))
        try:
            async with asyncio.timeout(wait):
                return await asyncio.shield(task)
        except TimeoutError:
            raise SigningError(
                f"the key of {owner}/{project} was not ready after {wait:g} s"
            ) from None

    async def rotate(self, owner: str, project: str) -> tuple[ProjectKey, ProjectKey | None]:
        """Make a new key for the project: (new key, old key or None). The old key stays in
        the keyring, recorded as previous, so its public key can still be exported for
        clients that hold it (pubkey-<key id>.gpg) and `key show` lists it."""
        old = await asyncio.to_thread(self.current, owner, project)
        previous = (old.fingerprint, *old.previous) if old is not None else ()
        new = await self._generate(owner, project, previous=previous)
        return new, old

    async def _generate(self, owner: str, project: str, *, previous: tuple[str, ...]) -> ProjectKey:
        await asyncio.to_thread(self._prepare_home)
        params = "\n".join(
            (
                "%no-protection",
                "Key-Type: RSA",
                f"Key-Length: {self.key_length}",
                "Key-Usage: sign",
                f"Name-Real: {owner}_{project}",
                "Name-Comment: copr_lite",
                f"Name-Email: {owner}#{project}@copr-lite",
                "Expire-Date: 0",
                "%commit",
                "",
            )
        )
        loop = asyncio.get_running_loop()
        async with self._keyring_lock:
            started = loop.time()
            with tempfile.NamedTemporaryFile("w", dir=self.home, suffix=".params") as fh:
                fh.write(params)
                fh.flush()
                out = await self._gpg("--status-fd", "1", "--gen-key", fh.name)
            fpr = next(
                (
                    line.split()[3]
                    for line in out.splitlines()
                    if line.startswith("[GNUPG:] KEY_CREATED ") and len(line.split()) > 3
                ),
                None,
            )
            if fpr is None or not _FPR_RE.match(fpr):
                raise SigningError(f"gpg did not report the new key of {owner}/{project}")
            key = ProjectKey(fpr, previous)
            await asyncio.to_thread(self._record, owner, project, key)
        log.info(
            "project key created owner=%s project=%s key=%s bits=%d seconds=%.2f",
            owner,
            project,
            key.key_id,
            self.key_length,
            loop.time() - started,
        )
        return key

    async def describe(self, fingerprint: str) -> str:
        """`algorithm/bits, created <date>, uid` of a key, as lines for `key show`."""
        out = await self._gpg("--with-colons", "--list-keys", fingerprint)
        bits = created = uid = "?"
        for line in out.splitlines():
            fields = line.split(":")
            if fields[0] == "pub" and len(fields) > 5:
                bits, created = fields[2], fields[5]
            elif fields[0] == "uid" and len(fields) > 9 and uid == "?":
                uid = fields[9]
        when = "?"
        if created.isdigit():
            when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(int(created)))
        return f"algorithm:   RSA {bits} bits\ncreated:     {when}\nuid:         {uid}"

    async def export(self, fingerprint: str) -> bytes:
        """The armored public key."""
        out = await self._gpg("--armor", "--export", fingerprint)
        if "BEGIN PGP PUBLIC KEY BLOCK" not in out:
            raise SigningError(f"gpg exported no public key {fingerprint}")
        return out.encode()

    async def forget(self, owner: str, project: str) -> None:
        """Delete the project's keys from the keyring (its project was deleted)."""
        key = await asyncio.to_thread(self.current, owner, project)
        if key is None:
            return
        async with self._keyring_lock:
            for fpr in (key.fingerprint, *key.previous):
                with contextlib.suppress(SigningError):
                    await self._gpg("--yes", "--delete-secret-and-public-key", fpr)
            await asyncio.to_thread(self._state_path(owner, project).unlink, True)

    # ------------------------------------------------------------------ signing

    async def sign_rpms(self, key: ProjectKey, files: Sequence[Path]) -> None:
        """Sign RPMs/SRPMs in place with `key` (an existing signature is replaced); one
        rpmsign run per SIGN_BATCH files, whose start-up is most of the cost."""
        async with self._rpmsign_locks[key.fingerprint]:
            for start in range(0, len(files), SIGN_BATCH):
                await self._rpmsign(key, files[start : start + SIGN_BATCH])

    async def _rpmsign(self, key: ProjectKey, files: Sequence[Path]) -> None:
        # rpmsign has gpg write `<file>.sig` beside each file and removes it afterwards; a
        # run that was killed (a canceled build, a shutdown) leaves it, and gpg would then
        # ask on a tty whether to overwrite it. Only this lock's holder writes them.
        await asyncio.to_thread(_remove_signature_files, files)
        await asyncio.to_thread(self._prepare_home)
        with (
            tempfile.TemporaryDirectory(dir=self.home, prefix="rpmdb.") as dbpath,
            _signature_files_removed(files),
        ):
            argv = [
                RPMSIGN,
                "--addsign",
                "--define",
                f"__gpg {shutil.which(GPG) or '/usr/bin/gpg'}",
                "--define",
                f"_gpg_path {self.home}",
                "--define",
                f"_gpg_name {key.fingerprint}",
                "--define",
                f"_dbpath {dbpath}",
                *[str(f) for f in files],
            ]
            await _run_tool(RPMSIGN, argv, SIGN_TIME_LIMIT)

    async def sign_detached(self, key: ProjectKey, path: Path) -> None:
        """Write `<path>.asc`, an armored detached signature of `path` (atomically)."""
        target = path.with_name(path.name + ".asc")
        tmp = path.with_name(f".{path.name}.asc.tmp")
        await self._gpg(
            "--yes",
            "--local-user",
            key.fingerprint,
            "--armor",
            "--detach-sign",
            "--output",
            str(tmp),
            str(path),
        )
        await asyncio.to_thread(os.replace, tmp, target)

    # ------------------------------------------------------------------ plumbing

    def _prepare_home(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.home, 0o700)  # gpg refuses (warns on) a group/world-readable home
        self._used = True

    async def _gpg(self, *args: str) -> str:
        await asyncio.to_thread(self._prepare_home)
        argv = [GPG, "--homedir", str(self.home), "--batch", "--no-tty", *args]
        out = await _run_tool(GPG, argv, GPG_TIME_LIMIT)
        return out.decode("utf-8", "replace")

    async def close(self) -> None:
        """Stop key generations still running and the keyring's gpg-agent."""
        tasks = list(self._pending.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._used and shutil.which("gpgconf"):
            with contextlib.suppress(OSError, TimeoutError):
                await run_captured(
                    ["gpgconf", "--homedir", str(self.home), "--kill", "gpg-agent"],
                    time_limit=10,
                )


def _remove_signature_files(files: Sequence[Path]) -> None:
    for path in files:
        path.with_name(path.name + ".sig").unlink(missing_ok=True)


@contextlib.contextmanager
def _signature_files_removed(files: Sequence[Path]) -> Iterator[None]:
    """After a failed or cancelled rpmsign, no `<file>.sig` is left to be published."""
    try:
        yield
    except BaseException:
        _remove_signature_files(files)  # a few unlink calls: not worth a thread hop
        raise


async def _run_tool(tool: str, argv: list[str], time_limit: float) -> bytes:
    """Run gpg or rpmsign; its stdout, or SigningError saying why it failed."""
    try:
        status, out, err = await run_captured(argv, time_limit=time_limit)
    except FileNotFoundError:
        raise SigningError(f"{tool} is not installed") from None
    except TimeoutError:
        raise SigningError(f"{tool} took longer than {time_limit:g} s") from None
    if status != 0:
        # Both tools say what went wrong on stderr; stdout only where stderr is silent.
        message = _last_words(err if err.strip() else out)
        raise SigningError(f"{tool} failed (exit {status}): {message}")
    return out


def _last_words(raw: bytes) -> str:
    lines = [
        line.strip()
        for line in raw.decode("utf-8", "replace").splitlines()
        if line.strip() and "GPG_TTY" not in line  # rpmsign's harmless no-tty warning
    ]
    return "; ".join(lines[-3:]) or "no message"
