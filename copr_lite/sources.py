"""Making an SRPM from a package's source: a git repository or a custom script.

Copr's package sources besides an SRPM, with Copr's field names (API v3):

- ``scm``: ``clone_url`` (http, https or git), ``committish`` (branch, tag or commit; empty:
  the default branch), ``subdirectory``, ``spec`` (inside the subdirectory; empty: the one
  ``*.spec`` there), ``scm_type`` (``git``), ``source_build_method`` (``rpkg`` or
  ``make_srpm``; tito is not supported).
- ``custom``: ``script``, ``chroot``, ``builddeps``, ``resultdir``, ``repos``. The script runs
  with the host's tools: ``chroot`` and ``builddeps`` are kept but only informational.

`parse_source()` checks and normalises those fields into the stored source dict;
`make_srpm()` makes the SRPM of one. How it is made:

1. The server clones (``git clone`` as a child process, never in the sandbox): the clone
   URL's host is resolved and checked once with the SRPM address policy
   (`srpm.check_url`), and git connects to those addresses only: ``http.curloptResolve``
   pins http(s), and a git:// URL is rewritten to the checked address. Only the URL's
   protocol is allowed, no redirects, no hooks, no submodules, no prompts, no user or system
   git configuration. The committish is checked out detached; credentials in the URL are
   removed from the clone's configuration and from every logged line.
2. ``rpkg``: the spec's sources that are URLs and are not in the repository are downloaded
   by the server with `srpm.download` (same address policy), then ``rpmbuild -bs`` runs in
   the sandbox. rpkg's own templating (``{{{ }}}`` macros) is not supported.
   ``make_srpm``: ``make -f .copr/Makefile srpm outdir=... spec=...`` in the sandbox, in the
   subdirectory, as Copr runs it. ``custom``: the script runs in the sandbox in an empty
   directory; its result directory must then hold one SRPM, or a spec (and sources) made
   into one as for rpkg.
3. Every sandboxed step runs in bubblewrap (`copr_lite.sandbox`) without network, with the
   work directory as ``/build``. One time limit covers all steps; the work directory may
   grow to `WORK_SIZE_FACTOR` times the SRPM size limit (checked while each step runs), and
   the SRPM itself must be within the limit.

Exactly one SRPM comes out, a regular file (never a link out of the work directory), moved
into the output directory under a name `srpm.srpm_file_name` accepts. Every failure raises
`srpm.SrpmError` with one line saying why.
"""

from __future__ import annotations

import asyncio
import collections
import os
import posixpath
import re
import shutil
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from yarl import URL

from . import processes, sandbox
from .builders import LogWriter, run_logged
from .errors import BadRequest
from .forms import check_repos, literal_address, validation_error
from .rpmtools import last_line
from .srpm import SrpmError, check_url, download, public_url, srpm_file_name

T = TypeVar("T")

SOURCE_TYPES = ("scm", "custom")
SCM_TYPES = ("git",)
BUILD_METHODS = ("rpkg", "make_srpm")
CLONE_SCHEMES = ("http", "https", "git")
SCRIPT_LIMIT = 64 * 1024
FIELD_LIMIT = 1024  # clone URL, paths, committish, chroot
BUILDDEPS_LIMIT = 4 * 1024
DEFAULT_CUSTOM_CHROOT = "fedora-latest-x86_64"
GIT_PORT = 9418
# The work directory (clone, downloads, what the steps write) may hold this many times the
# SRPM size limit: a repository's history and a build's scratch files outgrow its SRPM.
WORK_SIZE_FACTOR = 4
INSIDE = "/build"  # where the work directory is inside the sandbox
_SIZE_POLL = 0.5
_TAIL = 200  # output lines kept to explain a failure
_SOURCE_TAG = re.compile(r"^(?:source|patch)\d*\s*:\s*(\S.*?)\s*$", re.IGNORECASE)
_COMMITTISH = re.compile(r"^[^\s\x00-\x1f\x7f~^:?*\[\\-][^\s\x00-\x1f\x7f~^:?*\[\\]*$")


# ---------------------------------------------------------------- parse_source


def _text(values: Mapping[str, object], key: str, limit: int = FIELD_LIMIT) -> str:
    value = values.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise validation_error(key, "Must be text.")
    if len(value.encode()) > limit:
        raise validation_error(key, f"At most {limit} bytes.")
    return value.strip()


def _words(values: Mapping[str, object], key: str, limit: int) -> str:
    """Space-separated words, given as text or as a list of texts (copr-cli sends
    `builddeps` as a JSON list); stored space-joined."""
    value = values.get(key)
    if isinstance(value, list | tuple):
        if not all(isinstance(item, str) for item in value):
            raise validation_error(key, "Must be text or a list of texts.")
        value = " ".join(value)
    return " ".join(_text({key: value}, key, limit).split())


def _relative_path(values: Mapping[str, object], key: str) -> str:
    """A path inside the work tree: relative, without "..", normalised ("" for the top)."""
    text = _text(values, key)
    if not text:
        return ""
    if text.startswith("/") or "\\" in text or any(ord(c) < 32 for c in text):
        raise validation_error(key, "Must be a relative path inside the repository.")
    if ".." in text.split("/"):
        raise validation_error(key, "Must not contain '..'.")
    normal = posixpath.normpath(text)
    return "" if normal == "." else normal


def _clone_url(values: Mapping[str, object]) -> str:
    url = _text(values, "clone_url")
    if not url:
        raise validation_error("clone_url", "This field is required.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a bad port raises ValueError)
    except ValueError:
        raise validation_error("clone_url", "Not a valid URL.") from None
    if parts.scheme not in CLONE_SCHEMES:
        raise validation_error(
            "clone_url",
            "Only http, https and git URLs are cloned "
            f"('{public_url(url)}' is not one; ssh, file and local paths are refused).",
        )
    if not parts.hostname or any(c.isspace() for c in url):
        raise validation_error("clone_url", f"'{public_url(url)}' is not a valid URL.")
    return url


def _scm_source(values: Mapping[str, object]) -> dict[str, object]:
    clone_url = _clone_url(values)
    committish = _text(values, "committish")
    if committish and (not _COMMITTISH.match(committish) or ".." in committish):
        raise validation_error("committish", "Not a branch, tag or commit name.")
    subdirectory = _relative_path(values, "subdirectory")
    spec = _relative_path(values, "spec")
    if spec and not spec.endswith(".spec"):
        raise validation_error("spec", "RPM spec file must end with .spec")
    scm_type = _text(values, "scm_type") or "git"
    if scm_type == "svn":
        raise validation_error("scm_type", "SVN repositories are not supported: only git.")
    if scm_type not in SCM_TYPES:
        raise validation_error("scm_type", "Must be git.")
    method = _text(values, "source_build_method") or "rpkg"
    if method in ("tito", "tito_test"):
        raise validation_error(
            "source_build_method", f"{method} is not supported: use rpkg or make_srpm."
        )
    if method not in BUILD_METHODS:
        raise validation_error("source_build_method", "Must be rpkg or make_srpm.")
    return {
        "clone_url": clone_url,
        "committish": committish,
        "subdirectory": subdirectory,
        "spec": spec,
        "scm_type": scm_type,
        "source_build_method": method,
    }


def _custom_source(values: Mapping[str, object]) -> dict[str, object]:
    script = values.get("script")
    if not isinstance(script, str) or not script.strip():
        raise validation_error("script", "This field is required.")
    if len(script.encode()) > SCRIPT_LIMIT:
        raise validation_error("script", f"Maximum script size is {SCRIPT_LIMIT // 1024} KiB.")
    if "\x00" in script:
        raise validation_error("script", "Must not contain NUL characters.")
    chroot = _text(values, "chroot") or DEFAULT_CUSTOM_CHROOT
    builddeps = _words(values, "builddeps", BUILDDEPS_LIMIT)
    return {
        # As Copr keeps it: line ends made Unix ones, so a pasted script runs.
        "script": script.replace("\r\n", "\n"),
        "chroot": chroot,
        "builddeps": builddeps,
        "resultdir": _relative_path(values, "resultdir"),
        "repos": check_repos(_words(values, "repos", BUILDDEPS_LIMIT)),
    }


def parse_source(source_type: str, values: Mapping[str, object]) -> dict[str, object]:
    """Check and normalise a package source's settings as the API gives them (Copr's
    field names) into the stored source dict, defaults filled in. A bad field raises
    `forms.ValidationError`; an unknown source type BadRequest."""
    if source_type == "scm":
        return _scm_source(values)
    if source_type == "custom":
        return _custom_source(values)
    raise BadRequest(
        f"Unknown source type {str(source_type)[:40]!r}: one of {', '.join(SOURCE_TYPES)}."
    )


# ---------------------------------------------------------------- files


def tree_size(top: Path) -> int:
    """Bytes of the files under `top`, links not followed (a sparse file counts in full)."""
    total = 0
    for folder, dirs, files in os.walk(top):
        for name in files + dirs:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue  # removed meanwhile
    return total


def _size_text(size: int) -> str:
    mib = 1024 * 1024
    return f"{size / mib:.1f} MiB" if size >= mib else f"{size} bytes"


class _Work:
    """The work directory: where each part lives outside and inside the sandbox."""

    def __init__(self, work_dir: Path) -> None:
        self.top = work_dir.resolve()
        self.clone = self.top / "clone"
        self.script_dir = self.top / "workdir"
        self.srpm_dir = self.top / "srpm"
        self.downloads = self.top / "downloads"

    def inside(self, path: Path) -> str:
        """`path` (under the work directory) as the sandbox sees it."""
        relative = path.relative_to(self.top).as_posix()
        return INSIDE if relative == "." else f"{INSIDE}/{relative}"

    def real_dir(self, path: Path, what: str, missing: str | None = None) -> Path:
        """`path` resolved; SrpmError unless it is a directory inside the work directory
        (a link in a repository or left by a script must not lead the server out of it),
        saying `missing` when nothing is there. Blocks: run it in a thread."""
        if missing is not None and not os.path.lexists(path):
            raise SrpmError(missing)
        real = path.resolve()
        if not real.is_relative_to(self.top) or not real.is_dir():
            raise SrpmError(f"{what} is not a directory in the work tree")
        return real


# ---------------------------------------------------------------- making


def _secrets(url: URL) -> tuple[str, ...]:
    """What of `url`'s credentials must not appear in a log line: the password, and the
    user name when it is the token (no password, as forges take one); a short user name
    alone ("git") only where it stands before "@"."""
    found: list[str] = []
    for user, password in ((url.raw_user, url.raw_password), (url.user, url.password)):
        if password:
            found += [f"{user or ''}:{password}@", password]
        elif user:
            found += [f"{user}@", *([user] if len(user) >= 8 else [])]
    return tuple(dict.fromkeys(found))


class _Maker:
    """One SRPM being made: the steps, each logged, checked for size, and named so that a
    time-out says which step it stopped."""

    def __init__(
        self, work: _Work, allowed: tuple[str, ...], size_limit: int, log: LogWriter
    ) -> None:
        self.work = work
        self.allowed = allowed
        self.size_limit = size_limit
        self.work_limit = WORK_SIZE_FACTOR * size_limit
        self.log = log
        self.step = "starting"
        self.secrets: tuple[str, ...] = ()

    def redact(self, line: str) -> str:
        for secret in self.secrets:
            line = line.replace(secret, "***")
        return line

    async def say(self, line: str) -> None:
        await self.log(self.redact(line))

    async def sandboxed(self, argv: list[str], cwd: Path) -> list[str]:
        """`argv` run in bubblewrap, the work directory as /build (handed to the sandbox's
        user first), `cwd` (in it) the working directory."""
        await asyncio.to_thread(sandbox.hand_over, self.work.top)
        bind = ["--bind", str(self.work.top), INSIDE]
        inside = self.work.inside(cwd)
        return [*sandbox.bwrap_argv("bwrap", bind, home=INSIDE, cwd=inside), *argv]

    # ------------------------------------------------ running steps

    async def _check_size(self) -> None:
        size = await asyncio.to_thread(tree_size, self.work.top)
        if size > self.work_limit:
            raise SrpmError(
                f"{self.step}: the work tree grew over {_size_text(self.work_limit)} "
                f"({WORK_SIZE_FACTOR} x the SRPM size limit)"
            )

    async def _within_size(self, aw: Awaitable[T]) -> T:
        """Await `aw`, stopping it when the work tree outgrows its limit meanwhile."""
        task = asyncio.ensure_future(aw)
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=_SIZE_POLL)
                if not task.done():
                    await self._check_size()
            result = task.result()
        finally:
            if not task.done():
                task.cancel()
                await processes.complete(asyncio.wait({task}))
        await self._check_size()
        return result

    async def run(
        self,
        step: str,
        argv: list[str],
        *,
        sandboxed: bool = True,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Run one step's command, its output to the log; SrpmError if it fails. Sandboxed,
        it runs in bubblewrap without network with `cwd` (under the work dir) as its
        working directory."""
        self.step = step
        tail: collections.deque[str] = collections.deque(maxlen=_TAIL)

        async def log(line: str) -> None:
            line = self.redact(line)
            tail.append(line)
            await self.log(line)

        if sandboxed:
            argv = await self.sandboxed(argv, cwd or self.work.top)
            cwd = None
        await self.say(f"Running {step}")
        try:
            code = await self._within_size(run_logged(argv, log, cwd=cwd, env=env))
        except OSError as exc:
            raise SrpmError(f"{step}: cannot run {argv[0]}: {exc.strerror}") from None
        if code != 0:
            raise SrpmError(f"{step} failed with exit code {code}: {last_line(list(tail))}")

    async def capture(self, step: str, argv: list[str], cwd: Path) -> str:
        """Run a sandboxed command whose output is data: its stdout; stderr goes to the
        log."""
        self.step = step
        argv = await self.sandboxed(argv, cwd)
        code, out, err = await self._within_size(processes.run_captured(argv))
        errors = err.decode(errors="replace").splitlines()
        for line in errors:
            await self.say(line)
        if code != 0:
            raise SrpmError(f"{step} failed with exit code {code}: {last_line(errors)}")
        return out.decode(errors="replace")

    # ------------------------------------------------ git

    async def clone(self, source: Mapping[str, object]) -> Path:
        """Clone the repository and check out the committish; the clone's path."""
        text = str(source["clone_url"])
        shown = public_url(text)
        url = URL(text)
        self.secrets = _secrets(url)
        if url.scheme == "git" and url.explicit_port is None:
            url = url.with_port(GIT_PORT)
        committish = str(source.get("committish") or "")
        await self.say(f"Cloning {shown} ({committish or 'the default branch'})")
        self.step = "checking the clone URL"
        target = await check_url(url, self.allowed, CLONE_SCHEMES)
        addresses = [address for _family, address in target.addresses]
        await self.say(f"Connecting to {target.host} port {target.port} ({', '.join(addresses)})")
        config = [
            f"protocol.{url.scheme}.allow=always",
            "core.hooksPath=/dev/null",
            "http.followRedirects=false",
            "submodule.recurse=false",
            "credential.helper=",
            "transfer.credentialsInUrl=allow",
        ]
        clone_url = str(target.url)
        if url.scheme == "git":
            # git's own protocol resolves the name itself: connect to the checked address.
            first = addresses[0]
            clone_url = str(target.url.with_host(first))
        elif literal_address(target.host) is None:
            pinned = ",".join(f"[{a}]" if ":" in a else a for a in addresses)
            config.append(f"http.curloptResolve={target.host}:{target.port}:{pinned}")
        git = ["git", "-c", "protocol.allow=never"]
        for item in config:
            git += ["-c", item]
        env = {
            "PATH": sandbox.PATH,
            "HOME": str(self.work.top),
            "LANG": "C.UTF-8",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
        }
        clone = self.work.clone
        await self.run(
            "git clone",
            [*git, "clone", "--no-checkout", "--no-recurse-submodules", "--", clone_url,
             str(clone)],
            sandboxed=False,
            env=env,
        )  # fmt: skip
        # The credentials stay out of the tree the build steps see.
        await self.run(
            "git remote set-url",
            [*git, "-C", str(clone), "remote", "set-url", "origin", shown],
            sandboxed=False,
            env=env,
        )
        commit = await self._resolve(git, env, committish, shown)
        await self.run(
            "git checkout",
            [*git, "-C", str(clone), "checkout", "--quiet", "--detach", commit],
            sandboxed=False,
            env=env,
        )
        await self.say(f"Checked out {commit}")
        return clone

    async def _resolve(
        self, git: list[str], env: Mapping[str, str], committish: str, shown: str
    ) -> str:
        """The commit `committish` names (a tag, a branch of the remote, a commit)."""
        self.step = "git rev-parse"
        names = [f"origin/{committish}", committish] if committish else ["HEAD"]
        for name in names:
            code, out, _err = await processes.run_captured(
                [*git, "-C", str(self.work.clone), "rev-parse", "--verify", "--quiet",
                 f"{name}^{{commit}}"],
                env=env,
            )  # fmt: skip
            if code == 0:
                return out.decode().strip()
        if committish:
            raise SrpmError(f"{committish!r} is not a branch, tag or commit of {shown}")
        raise SrpmError(f"{shown} has no commits")

    # ------------------------------------------------ from a spec

    async def from_spec(self, folder: Path, spec: Path) -> None:
        """Download the spec's missing URL sources into `folder`, then rpmbuild -bs."""
        folder_in = self.work.inside(folder)
        spec_in = self.work.inside(spec)
        parsed = await self.capture(
            "rpmspec -P",
            ["rpmspec", "-P", "--define", f"_sourcedir {folder_in}", spec_in],
            folder,
        )
        for line in parsed.splitlines():
            match = _SOURCE_TAG.match(line)
            if match and "://" in match.group(1):
                await self._fetch_source(match.group(1), folder)
        await asyncio.to_thread(self.work.srpm_dir.mkdir, exist_ok=True)
        await self.run(
            "rpmbuild -bs",
            [
                "rpmbuild", "-bs", "--nodeps",
                "--define", f"_topdir {INSIDE}/top",
                "--define", "_tmppath /tmp",
                "--define", f"_sourcedir {folder_in}",
                "--define", f"_specdir {folder_in}",
                "--define", f"_srcrpmdir {self.work.inside(self.work.srpm_dir)}",
                spec_in,
            ],
            cwd=folder,
        )  # fmt: skip

    async def _fetch_source(self, value: str, folder: Path) -> None:
        """Download one URL source (named after its last path segment, as rpm names it)
        unless a file of that name is in `folder` already."""
        name = value.rsplit("/", 1)[-1]
        shown = public_url(value)
        if name in ("", ".", "..") or "\x00" in name:
            raise SrpmError(f"cannot tell the file name of the source {shown}")
        if await asyncio.to_thread(os.path.lexists, folder / name):
            await self.say(f"Source {name} is there already: not downloaded")
            return
        url = value.split("#", 1)[0]
        self.step = f"downloading {name}"
        await asyncio.to_thread(self.work.downloads.mkdir, exist_ok=True)
        part = self.work.downloads / name
        await download(
            url,
            part,
            allowed_networks=self.allowed,
            size_limit=self.size_limit,
            time_limit=86400.0,  # make_srpm's one time limit covers it
            log=self.say,
            what=f"the source {name}",
        )
        await self._check_size()
        # A rename onto a name nothing holds (links included): nothing is written through a
        # link the repository planted.
        real = await asyncio.to_thread(self.work.real_dir, folder, "the spec's folder")
        await asyncio.to_thread(part.rename, real / name)

    # ------------------------------------------------ the source types

    async def from_git(self, source: Mapping[str, object]) -> Path:
        clone = await self.clone(source)
        subdirectory = str(source.get("subdirectory") or "")
        shown = subdirectory or "the top of the repository"
        folder = await asyncio.to_thread(
            self.work.real_dir,
            clone / subdirectory,
            f"the subdirectory {subdirectory!r}",
            f"the subdirectory {subdirectory!r} is not in the repository",
        )
        spec_name = str(source.get("spec") or "")
        if source.get("source_build_method") == "make_srpm":
            makefile = clone / ".copr" / "Makefile"
            if not await asyncio.to_thread(makefile.is_file):
                raise SrpmError("make_srpm needs the file .copr/Makefile in the repository")
            spec_arg = (
                self.work.inside(folder / spec_name) if spec_name else self.work.inside(folder)
            )
            await asyncio.to_thread(self.work.srpm_dir.mkdir, exist_ok=True)
            await self.run(
                "make srpm",
                ["make", "-f", self.work.inside(makefile), "srpm",
                 f"outdir={self.work.inside(self.work.srpm_dir)}", f"spec={spec_arg}"],
                cwd=folder,
            )  # fmt: skip
            return self.work.srpm_dir
        spec = await asyncio.to_thread(self._spec, folder, spec_name, shown)
        await self.from_spec(folder, spec)
        return self.work.srpm_dir

    def _spec(self, folder: Path, name: str, shown: str, none: str = "no spec file") -> Path:
        """The spec `name` in `folder`, or the one spec there; blocks."""
        if name:
            spec = folder / name
            if not spec.is_file() or not spec.resolve().is_relative_to(self.work.top):
                raise SrpmError(f"no spec file {name} in {shown}")
            return spec
        specs = sorted(p for p in folder.glob("*.spec") if p.is_file())
        if not specs:
            raise SrpmError(f"{none} in {shown}")
        if len(specs) > 1:
            names = ", ".join(p.name for p in specs[:5])
            raise SrpmError(f"several spec files in {shown} ({names}): name one in spec")
        return specs[0]

    async def from_script(self, source: Mapping[str, object]) -> Path:
        script = str(source["script"])
        script_file = self.work.top / "script"
        await asyncio.to_thread(script_file.write_text, script)
        await asyncio.to_thread(script_file.chmod, 0o755)
        await asyncio.to_thread(self.work.script_dir.mkdir)
        await self.say(
            f"Custom script ({len(script.encode())} bytes) for {source.get('chroot')}; "
            "it runs with this server's tools, without network"
        )
        script_in = self.work.inside(script_file)
        argv = [script_in] if script.startswith("#!") else ["sh", script_in]
        await self.run("the custom script", argv, cwd=self.work.script_dir)
        resultdir = str(source.get("resultdir") or "")
        shown = f"the result directory {resultdir!r}" if resultdir else "the script's directory"
        folder = await asyncio.to_thread(
            self.work.real_dir,
            self.work.script_dir / resultdir,
            shown,
            f"the script did not make {shown}",
        )
        if await asyncio.to_thread(lambda: any(folder.glob("*.src.rpm"))):
            return folder
        spec = await asyncio.to_thread(
            self._spec, folder, "", shown, "the script left no SRPM and no spec file"
        )
        await self.from_spec(folder, spec)
        return self.work.srpm_dir

    # ------------------------------------------------ the result

    def deliver(self, folder: Path, out_dir: Path) -> Path:
        """Move the one SRPM in `folder` into `out_dir`; its new path."""
        found = sorted(folder.glob("*.src.rpm"))
        if not found:
            raise SrpmError(f"{self.step} produced no SRPM")
        if len(found) > 1:
            names = ", ".join(p.name for p in found[:5])
            raise SrpmError(f"{self.step} produced {len(found)} SRPMs, not one: {names}")
        (srpm,) = found
        if srpm.is_symlink() or not srpm.is_file():
            raise SrpmError(f"{srpm.name} is not a regular file")
        size = srpm.stat().st_size
        if size > self.size_limit:
            raise SrpmError(f"the SRPM is larger than {_size_text(self.size_limit)}")
        out_dir.mkdir(parents=True, exist_ok=True)
        dest = out_dir / srpm_file_name(srpm.name)
        shutil.move(srpm, dest)
        return dest


_TOOLS = {
    "bwrap": "bubblewrap (bwrap)",
    "git": "git",
    "rpmbuild": "rpmbuild",
    "rpmspec": "rpmspec",
    "make": "make",
}


def _missing_tools(source_type: str, source: Mapping[str, object]) -> list[str]:
    needed = ["bwrap", "rpmbuild", "rpmspec"]
    if source_type == "scm":
        needed.append("git")
        if source.get("source_build_method") == "make_srpm":
            needed.append("make")
    return [_TOOLS[tool] for tool in needed if shutil.which(tool) is None]


async def make_srpm(
    source_type: str,
    source: Mapping[str, object],
    work_dir: Path,
    out_dir: Path,
    *,
    allowed_networks: tuple[str, ...],
    size_limit: int,
    time_limit: float,
    log: LogWriter,
) -> Path:
    """Make the SRPM of `source` (a dict `parse_source` returned) under `work_dir`
    (scratch, removed by the caller) and leave it in `out_dir`; returns its path. Every
    step and the tools' output go to `log`. Raises SrpmError with one line saying why."""
    if source_type not in SOURCE_TYPES:
        raise SrpmError(f"unknown source type {source_type!r}")
    missing = _missing_tools(source_type, source)
    if missing:
        raise SrpmError(f"{', '.join(missing)} not installed on this server")
    await asyncio.to_thread(work_dir.mkdir, parents=True, exist_ok=True)
    maker = _Maker(_Work(work_dir), allowed_networks, size_limit, log)
    build: Callable[[Mapping[str, object]], Awaitable[Path]] = (
        maker.from_git if source_type == "scm" else maker.from_script
    )
    try:
        async with asyncio.timeout(time_limit) as limit:
            folder = await build(source)
    except TimeoutError:
        if not limit.expired():
            raise
        raise SrpmError(f"{maker.step} stopped: over the time limit of {time_limit:g} s") from None
    except OSError as exc:  # the server's own file system: full, or not writable
        raise SrpmError(f"{maker.step}: {exc.strerror or exc}") from None
    srpm = await asyncio.to_thread(maker.deliver, folder, out_dir)
    await maker.say(f"Made {srpm.name}")
    return srpm


__all__ = ["SOURCE_TYPES", "make_srpm", "parse_source", "tree_size"]
