"""The builder contract: a job in, a ChrootResult out, a live log, cancellation.

A builder is any object with a `name`, a `concurrency` (None: no limit of its own) and
`async def build(job, ctx) -> ChrootResult`.
It builds `job.srpm` for `job.chroot` and leaves the produced files in `ctx.result_dir`,
writes progress through `await ctx.log(line)`, never touches the database, and when the
task is cancelled (`asyncio.CancelledError`: user cancel or timeout) stops every process it
started before re-raising. `run_logged()` does that for a subprocess.
"""

from __future__ import annotations

import asyncio
import enum
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from . import processes
from .rpmheader import read_nevra

# Chroot os names whose version gives a dist macro, e.g. fedora-40 -> .fc40, epel-9 -> .el9.
_DIST = {
    "fedora": ("fc", "fedora"),
    "epel": ("el", "rhel"),
    "rhel": ("el", "rhel"),
    "centos-stream": ("el", "rhel"),
    "almalinux": ("el", "rhel"),
    "rocky": ("el", "rhel"),
    "opensuse-tumbleweed": ("", "suse_version"),
}
RAWHIDE_VERSION = "42"


@dataclass(frozen=True)
class Chroot:
    """A chroot name split into its parts, with the macros a build for it needs."""

    name: str
    os: str
    version: str
    arch: str

    @classmethod
    def parse(cls, name: str) -> Chroot:
        """`fedora-40-x86_64` -> os fedora, version 40, arch x86_64 (os may contain '-')."""
        base, _, arch = name.rpartition("-")
        os_name, _, version = base.rpartition("-")
        if not os_name or not version or not arch:
            raise ValueError(f"not a chroot name: {name!r}")
        return cls(name, os_name, version, arch)

    @property
    def numeric_version(self) -> str:
        return RAWHIDE_VERSION if self.version == "rawhide" else self.version

    @property
    def dist(self) -> str:
        """The %dist macro value: fedora-40 -> .fc40, epel-9 -> .el9."""
        short, _ = _DIST.get(self.os, ("", ""))
        return f".{short}{self.numeric_version}" if short else ""

    @property
    def macros(self) -> dict[str, str]:
        """rpm macros describing the target: dist, and fedora/rhel with the version."""
        macros = {"dist": self.dist} if self.dist else {}
        _, os_macro = _DIST.get(self.os, ("", ""))
        if os_macro and self.numeric_version.isdigit():
            macros[os_macro] = self.numeric_version
        return macros


@dataclass(frozen=True)
class PackageInfo:
    """Name, epoch, version, release and arch of one RPM, read from its header."""

    name: str
    epoch: int | None
    version: str
    release: str
    arch: str

    @property
    def nevra(self) -> str:
        epoch = f"{self.epoch}:" if self.epoch else ""
        return f"{self.name}-{epoch}{self.version}-{self.release}.{self.arch}"


@dataclass(frozen=True)
class BuildJob:
    """Everything a builder needs to build one chroot of one build.

    Attributes:
        build_id: the build's id (for log lines and names; not a database handle).
        owner, project: the project the build belongs to.
        chroot: the target, with its ``name``, ``os``, ``version``, ``arch``, ``dist``
            and rpm ``macros``.
        srpm: the source RPM to build, on local disk; read it, do not change it.
        package: name, epoch, version and release read from the SRPM header (arch
            ``src``); None only for a job made by hand without one.
        buildroot_pkgs: packages the chroot's settings ask to have in the buildroot
            (``"name"`` or ``"name >= 1.2"``), installed with the BuildRequires.
        distro_repos: the chroot's distribution repositories, each a baseurl or
            ``metalink=<url>`` (``$releasever`` and ``$basearch`` may appear in them).
        repos: repository URLs to build against after those: the project's own results
            repository for this chroot first, then the project's additional repositories.
        local_repos: URLs of `repos` this machine holds on disk (the server's own results),
            with their directories: a local builder may read those instead of fetching.
        enable_net: whether the build may use the network.
        memory_reqs: memory in MiB the build may use.
        timeout: seconds the build may take; the core cancels the task when they pass,
            so a builder need not enforce it (it may pass it on, as the container builder
            does to podman).
    """

    build_id: int
    owner: str
    project: str
    chroot: Chroot
    srpm: Path
    package: PackageInfo | None
    buildroot_pkgs: tuple[str, ...] = ()
    repos: tuple[str, ...] = ()
    distro_repos: tuple[str, ...] = ()
    local_repos: Mapping[str, Path] = field(default_factory=dict)
    enable_net: bool = False
    memory_reqs: int = 2048
    timeout: int = 18000


class Outcome(enum.StrEnum):
    """How a build ended, as the builder reports it in ``ChrootResult.status``.

    The core records it as the chroot's ``State`` (``SUCCEEDED`` or ``FAILED``).
    Cancellation and timeouts are not outcomes: the
    builder's task is cancelled and it re-raises ``asyncio.CancelledError``.
    """

    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class ChrootResult:
    """What a builder returns from ``build()``.

    Attributes:
        status: the ``Outcome``.
        packages: name, epoch, version, release and arch of each RPM in `files`, as
            ``read_rpm_headers(files)`` gives them; empty for a failure.
        files: the RPM files it left in ``ctx.result_dir``, which are published.
        fail_reason: for a failure, one line saying why; shown in the API's
            ``fail_reasons`` and the web UI.

    ``ChrootResult.failed("reason")`` is the short way to report a failure.
    """

    status: Outcome
    packages: tuple[PackageInfo, ...] = ()
    files: tuple[Path, ...] = ()
    fail_reason: str | None = None

    @classmethod
    def failed(cls, reason: str) -> ChrootResult:
        """A failed result with `reason` and nothing built."""
        return cls(Outcome.FAILED, fail_reason=reason)


LogWriter = Callable[[str], Awaitable[None]]


@dataclass
class BuildContext:
    """Where a builder works: `result_dir` (what it produces), `work_dir` (scratch, removed
    afterwards), and `log(line)`, whose lines reach builder-live.log as they come."""

    result_dir: Path
    work_dir: Path
    log: LogWriter


@runtime_checkable
class Builder(Protocol):
    """What a builder plugin provides: any object with these members (no base class
    needed). Register it with ``registry.add(builder)`` in the ``register_builders`` hook.

    Attributes:
        name: the name ``[chroots]`` in copr-lite.ini maps chroots to, e.g. ``mock``;
            unique among the registered builders.
        concurrency: at most this many of its builds run at once, within the server's
            ``[builds] concurrency``; None: no limit of its own, the server's alone. Read
            each time a chroot is about to start. A builder lacking the attribute (one
            written before it existed) is registered and counts as None, but fails the
            conformance kit's "protocol" check.
    """

    name: str
    concurrency: int | None

    async def build(self, job: BuildJob, ctx: BuildContext) -> ChrootResult:
        """Build `job.srpm` for `job.chroot`, leaving the RPMs in `ctx.result_dir`.

        Write progress with ``await ctx.log(line)``; use `ctx.work_dir` as scratch. Never
        touch the database: return a ChrootResult and the core records and publishes it.
        On ``asyncio.CancelledError`` (a cancel or the timeout), stop every process you
        started, then re-raise; ``run_logged()`` does that for a subprocess. Several jobs
        may run at once, so keep no per-job state on the builder.
        """
        ...


class BuilderRegistry:
    """Builders by name; filled by the `register_builders` hook."""

    def __init__(self) -> None:
        self._builders: dict[str, Builder] = {}

    def add(self, builder: Builder) -> None:
        if not all(hasattr(builder, member) for member in ("name", "build")):
            raise TypeError(f"{builder!r} is not a Builder (needs .name and async .build())")
        if builder.name in self._builders:
            raise ValueError(f"a builder named {builder.name!r} is already registered")
        self._builders[builder.name] = builder

    def get(self, name: str) -> Builder | None:
        return self._builders.get(name)

    def names(self) -> list[str]:
        return sorted(self._builders)

    def concurrency(self, name: str) -> int | None:
        """The `concurrency` of the builder called `name`: None when it has no limit of
        its own, lacks the attribute, or no builder has that name."""
        limit: int | None = getattr(self._builders.get(name), "concurrency", None)
        return limit


# ---------------------------------------------------------------- helpers for builders


async def run_logged(
    argv: Sequence[str],
    log: LogWriter,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run a command in a session of its own, sending each output line to `log`.

    Returns the exit status. Cancelled at any point, from its start on, the whole session
    is stopped (processes.stop: SIGTERM, then SIGKILL) before CancelledError goes on.
    """
    proc = await processes.start(argv, cwd=cwd, env=env)
    assert proc.stdout is not None
    try:
        while line := await proc.stdout.readline():
            await log(line.decode("utf-8", "replace").rstrip("\n"))
        return await proc.wait()
    except BaseException:
        await processes.complete(processes.stop(proc))
        raise
    finally:
        # What the command left behind in its session (a daemon, a stray sandbox) goes too.
        processes.kill_session(proc.pid)


RPM_MAGIC = b"\xed\xab\xee\xdb"
_QUERY_FORMAT = "%{NAME}\\t%{EPOCHNUM}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{SOURCEPACKAGE}\\n"


def _read_headers_directly(paths: Sequence[Path]) -> list[PackageInfo]:
    return [PackageInfo(*read_nevra(Path(path))) for path in paths]


def is_rpm_file(path: Path) -> bool:
    """True when the file starts with the RPM lead (a 4-byte read; fine on the loop)."""
    with path.open("rb") as fh:
        return fh.read(len(RPM_MAGIC)) == RPM_MAGIC


async def built_result(files: Sequence[Path], ctx: BuildContext, none_left: str) -> ChrootResult:
    """The success of a build that left `files` (RPMs in ``ctx.result_dir``), each logged;
    a failure saying `none_left` when there are none, or when rpm cannot read one."""
    if not files:
        return ChrootResult.failed(none_left)
    try:
        headers = await read_rpm_headers(files)
    except ValueError as exc:
        return ChrootResult.failed(f"cannot read the built RPMs: {exc}")
    for path in files:
        await ctx.log(f"result: {path.name}")
    packages = tuple(p for p in headers if p.arch != "src")
    return ChrootResult(Outcome.SUCCEEDED, packages=packages, files=tuple(files))


async def read_rpm_headers(paths: Sequence[Path]) -> list[PackageInfo]:
    """Name, epoch, version, release and arch of RPM files ("src" for source packages).

    Raises ValueError when rpm cannot read one of them.
    """
    if not paths:
        return []
    # rpm -qp reads a text file as a manifest naming other files: only real RPMs pass.
    for path in paths:
        if not is_rpm_file(Path(path)):
            raise ValueError(f"{Path(path).name} is not an RPM file")
    try:
        return await asyncio.to_thread(_read_headers_directly, paths)
    except (ValueError, OSError):
        pass  # something unusual: let rpm itself read it (and word the error)
    with tempfile.TemporaryDirectory(prefix="copr-lite-rpmdb-") as dbpath:
        code, out, err = await processes.run_captured(
            [
                "rpm",
                "-qp",
                "--nosignature",
                "--nodigest",
                "--define",
                f"_dbpath {dbpath}",
                "--qf",
                _QUERY_FORMAT,
                *map(str, paths),
            ]
        )
    if code != 0:
        message = err.decode("utf-8", "replace").strip().splitlines()
        raise ValueError(message[-1] if message else "rpm could not read the package")
    packages = []
    for line in out.decode().splitlines():
        name, epoch, version, release, arch, source = line.split("\t")
        epoch_number = int(epoch) if epoch.isdigit() and int(epoch) else None
        packages.append(
            PackageInfo(name, epoch_number, version, release, "src" if source == "1" else arch)
        )
    return packages
