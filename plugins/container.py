"""Built-in builder "container": rebuild the SRPM with rpmbuild inside a fresh podman container.

Each chroot build gets its own container, created for it and removed after it, whatever the
outcome (success, failure, cancel, timeout):

- the image comes from the settings: `image.<chroot>` for that chroot, else `image`;
- no network (`--network=none`, only `lo`), unless the job enables it (podman's default
  network then);
- /tmp and /var/tmp are private tmpfs; the job's work directory is mounted read-write at
  /build and the SRPM read-only under /srpm;
- memory is limited to the job's `memory_reqs` MiB (`--memory`, no swap on top); the limit the
  container really got is read from its cgroup at start and the log says when the kernel does
  not enforce it;
- the job's timeout is also given to podman (`--timeout`), so conmon kills the container even
  if this server is gone by then;
- rpmbuild runs with a private `_topdir` and `_tmppath` under /build and the chroot's macros
  (`dist` .fc40 / .el9, `fedora` / `rhel`), building the binary RPMs and the rebuilt SRPM in
  one run (`rpmbuild -ra`).

Cancel and timeout (the task gets CancelledError) kill and remove the named container with
`podman kill` and `podman rm -f` (killing the podman client is not enough: the container runs
under conmon), then let the client exit; a final `podman rm -f --ignore` runs after every build.

BuildRequires. A package without BuildRequires or buildroot packages builds in one container
with a read-only root and a private rpm database. Otherwise the build has two phases:
*dependencies*, `dnf install` of the BuildRequires and the buildroot packages into the
container from the job's repositories (copr_lite.repos: the distribution's, the project's,
the additional ones; local ones mounted read-only), then *build*, rpmbuild checking them
against the container's rpm database. When every repository is local both run in the
build's container (no network needed); when one is fetched over the network, a first
container with `deps_network` downloads into the cache and the build's container installs
from it with `--cacheonly`, so rpmbuild never gets a network the build did not enable. The
cache (`cache_dir/<chroot>`, dnf's cachedir with keepcache) outlives the build; the dnf runs
of one chroot take turns (_CacheTurn: this process's builds and other processes of this
machine), because dnf's lock files hold a pid, which does not tell processes of two
containers apart. The script in the container prints DEPS_DONE or DEPS_FAILED between
the phases: the turn ends there, and a failure is reported with dnf's own error.

Arches follow the `rpmbuild` builder's rules (both use copr_lite.rpmtools): an
arch-specific package builds only for the host's arch.

The image needs `sh`, `cat`, `rpmbuild` and `dnf` (Fedora: `rpm-build`; Debian: `rpm`, `dnf`;
`python -m copr_lite builder-image` makes one offline). podman's defaults fail on some
kernels (crun with hybrid cgroups, ulimits above what the server may set), hence the
`runtime` and `ulimits` settings.

Settings (`[plugin:container]`, declared by `ContainerSettings`): `podman`, `runtime`
(`--runtime`, empty for podman's default), `ulimits` (`--ulimit` values), `image` (every
chroot without its own), `image.<chroot>` (one chroot's image, e.g.
`image.fedora-40-x86_64 = registry.example.org/fedora-rpmbuild:40`), `pull` (`--pull`),
`extra_args` (more `podman run` options, split like a shell would), `cache_dir` and
`deps_network`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import os
import secrets
import shlex
import shutil
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from copr_lite import (
    BuildContext,
    BuildJob,
    ChrootResult,
    builder_image,
    built_result,
    hookimpl,
    plugin_setting,
    processes,
    run_logged,
)
from copr_lite.repos import dependency_repos, dnf_config, releasever
from copr_lite.rpmtools import (
    arch_refusal,
    built_rpms,
    chroot_summary,
    failure_line,
    host_arch,
    last_line,
    move_results,
    prepare_build_dir,
    rpmbuild_args,
    short,
    srpm_facts,
)

if TYPE_CHECKING:
    from copr_lite.builders import BuilderRegistry, LogWriter
    from copr_lite.config import Config, PluginSettingsRegistry

DEFAULT_IMAGE = builder_image.IMAGE
DEFAULT_ULIMITS = "nofile=4096:4096 nproc=4096:4096"
PULL_POLICIES = ("always", "missing", "never", "newer")
NAME_PREFIX = "copr-lite-"
LABEL = "copr-lite.builder=container"
MEMORY_LINE = "copr-lite container: memory limit "
_ERROR_TAIL = 200  # output lines kept to explain a failure
_PODMAN_TIMEOUT = 60.0  # for podman kill / rm / image exists
# cgroup v1 reports "no limit" as a huge page-rounded number.
_UNLIMITED = 1 << 60

DNF_CONF = "/build/dnf.conf"
CACHE_IN = "/var/cache/copr-lite-dnf"  # the chroot's package cache inside the container
DEPS_START = "copr-lite: installing the build dependencies"
DEPS_DONE = "copr-lite: build dependencies installed"
DEPS_PRESENT = "copr-lite: the image provides every build dependency already"
DEPS_FAILED = "copr-lite: the build dependencies cannot be installed"
DEPS_FAILED_CODE = -1000  # not an exit status: the dependency phase failed

# Run first inside the container: report the memory limit the cgroup really has (v2, then
# v1), then exec the build with stderr joined to stdout so the log keeps their order.
_ENTRY = (
    "m=$(cat /sys/fs/cgroup/memory.max 2>/dev/null"
    " || cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || echo unknown); "
    f'echo "{MEMORY_LINE}$m"; exec "$@" 2>&1'
)


class _Outcome(NamedTuple):
    """How a container ended: its exit status (or DEPS_FAILED_CODE) and its last lines."""

    code: int
    lines: list[str]


def _deps_script(wanted: Sequence[str], dnf: list[str], then: list[str] | None) -> str:
    """Shell text: install the dependencies (unless the image already provides each one:
    rpm answers in milliseconds, dnf takes half a second), saying whether that worked, then
    exec `then`. rpm cannot check versioned or rich dependencies: dnf sees to those."""
    script = (
        f'echo "{DEPS_START}"; if rpm -q --whatprovides {shlex.join(wanted)} >/dev/null 2>&1; '
        f'then echo "{DEPS_PRESENT}"; '
        f'else {shlex.join(dnf)} || {{ echo "{DEPS_FAILED}"; exit 1; }}; fi; echo "{DEPS_DONE}"'
    )
    return f"{script}; exec {shlex.join(then)}" if then else script


class _CacheTurn:
    """A turn at a chroot's package cache: among this process's builds (an asyncio lock)
    and other processes of this machine sharing the directory (flock on a file in it).
    dnf's own lock files hold a pid, which does not tell processes of two containers
    apart. `release()` may be called more than once."""

    def __init__(self, lock: asyncio.Lock, fd: int) -> None:
        self._lock = lock
        self._fd: int | None = fd

    @classmethod
    async def take(cls, lock: asyncio.Lock, path: Path) -> _CacheTurn:
        await lock.acquire()
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        return cls(lock, fd)
                    except BlockingIOError:
                        await asyncio.sleep(0.1)
            except BaseException:
                os.close(fd)
                raise
        except BaseException:
            lock.release()
            raise

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None
            self._lock.release()


def dnf_error(lines: Sequence[str]) -> str:
    """dnf's own error, made one line: the last "Error: ..." with the lines that explain it
    (a dependency problem comes on the lines after a bare "Error:")."""
    for index in range(len(lines) - 1, -1, -1):
        if lines[index].startswith("Error:"):
            text = [lines[index].removeprefix("Error:").strip()]
            text += [line.strip() for line in lines[index + 1 : index + 4] if line.strip()]
            return short(" ".join(t for t in text if t and t != DEPS_FAILED))
    return podman_error([line for line in lines if line != DEPS_FAILED])


def podman_error(lines: Sequence[str]) -> str:
    """podman's own error ("Error: ..."), the last one, else the last non-empty line."""
    for line in reversed(lines):
        text = line.strip()
        if text.startswith("Error: "):
            return short(text.removeprefix("Error: "))
    return last_line(lines)


def memory_note(line: str, memory_mib: int) -> str | None:
    """What to say about the limit the container reported (`MEMORY_LINE` + value), or None
    when it is the one asked for."""
    value = line.removeprefix(MEMORY_LINE).strip()
    wanted = memory_mib * 1024 * 1024
    if value.isdigit() and int(value) < _UNLIMITED:
        if int(value) == wanted:
            return None
        return (
            f"warning: the container's memory limit is {int(value) // (1024 * 1024)} MiB, "
            f"not the {memory_mib} MiB asked for"
        )
    return (
        f"warning: the memory limit of {memory_mib} MiB is NOT enforced in this container "
        f"(its cgroup reports {value or 'nothing'}): podman and the OCI runtime cannot apply "
        "memory limits on this host, so the build may use all of the host's memory"
    )


def parse_ulimits(text: str) -> list[str]:
    return text.replace(",", " ").split()


@dataclass(frozen=True)
class ContainerSettings:
    podman: str = plugin_setting("podman", "The podman executable: a name on PATH or a path.")
    runtime: str = plugin_setting(
        "runc", "The OCI runtime (podman --runtime). Empty: podman's default (crun)."
    )
    ulimits: str = plugin_setting(
        DEFAULT_ULIMITS, "Space-separated podman --ulimit values for the build container."
    )
    image: str = plugin_setting(DEFAULT_IMAGE, "The image of every chroot without its own.")
    images: dict[str, str] = plugin_setting(  # noqa: RUF009  (a field with a default factory)
        {}, "The image of one chroot, e.g. image.fedora-40-x86_64 = ...", key="image.<chroot>"
    )
    pull: str = plugin_setting("missing", "podman's pull policy (--pull).", choices=PULL_POLICIES)
    extra_args: str = plugin_setting(
        "", "More `podman run` options, split like a shell would (e.g. --pids-limit 4096)."
    )
    cache_dir: str = plugin_setting(
        "",
        "Where downloaded build dependencies are kept, one directory per chroot, for the "
        "next build. Empty: <data_dir>/dnf-cache.",
    )
    deps_network: str = plugin_setting(
        "host",
        "podman --network of the dependency phase when a repository is fetched over the "
        "network (the build itself then runs in a second container without network).",
    )

    def __post_init__(self) -> None:
        try:
            shlex.split(self.extra_args)
        except ValueError as exc:
            raise ValueError(f"extra_args = {self.extra_args!r}: {exc}") from None


class ContainerBuilder:
    """Builds with rpmbuild inside a fresh podman container (see the module docstring)."""

    name = "container"
    concurrency: int | None = None  # the server's `[builds] concurrency` alone

    def __init__(
        self,
        *,
        podman: str = "podman",
        runtime: str = "runc",
        ulimits: Sequence[str] = tuple(parse_ulimits(DEFAULT_ULIMITS)),
        image: str = DEFAULT_IMAGE,
        images: Mapping[str, str] | None = None,
        pull: str = "missing",
        extra_args: Sequence[str] = (),
        cache_dir: Path | None = None,
        deps_network: str = "host",
    ) -> None:
        if pull not in PULL_POLICIES:
            raise ValueError(
                f"[plugin:container] pull must be one of {', '.join(PULL_POLICIES)}, not {pull!r}"
            )
        self.podman = podman
        self.runtime = runtime
        self.ulimits = list(ulimits)
        self.image = image
        self.images = dict(images or {})
        self.pull = pull
        self.extra_args = list(extra_args)
        self.cache_dir = cache_dir
        self.deps_network = deps_network
        # One dnf at a time per chroot cache (see _CacheTurn).
        self._cache_locks: collections.defaultdict[Path, asyncio.Lock] = collections.defaultdict(
            asyncio.Lock
        )

    @classmethod
    def from_settings(cls, settings: ContainerSettings, data_dir: Path) -> ContainerBuilder:
        return cls(
            podman=settings.podman.strip() or "podman",
            runtime=settings.runtime.strip(),
            ulimits=parse_ulimits(settings.ulimits),
            image=settings.image.strip() or DEFAULT_IMAGE,
            images=settings.images,
            pull=settings.pull,
            extra_args=shlex.split(settings.extra_args),
            cache_dir=Path(settings.cache_dir.strip() or data_dir / "dnf-cache"),
            deps_network=settings.deps_network.strip() or "host",
        )

    def image_for(self, chroot: str) -> str:
        return self.images.get(chroot, self.image)

    def podman_base(self) -> list[str]:
        return [self.podman, *(["--runtime", self.runtime] if self.runtime else [])]

    def container_name(self, job: BuildJob) -> str:
        return f"{NAME_PREFIX}{job.build_id}-{job.chroot.name}-{secrets.token_hex(4)}"

    def run_argv(
        self,
        job: BuildJob,
        name: str,
        build_dir: Path,
        srpm_in: str,
        *,
        network: str | None = None,
        read_only: bool = True,
        volumes: Sequence[str] = (),
    ) -> list[str]:
        """`podman run ...` up to and including the image. `network`: podman's --network
        (None: none unless the job enables it); `volumes`: more -v values."""
        if network is None:
            network = "" if job.enable_net else "none"
        argv = [
            *self.podman_base(),
            "run",
            "--rm",
            "--name", name,
            "--label", LABEL,
            "--label", f"copr-lite.build={job.build_id}",
            "--label", f"copr-lite.chroot={job.chroot.name}",
            f"--pull={self.pull}",
            *([f"--network={network}"] if network else []),
            *(["--read-only"] if read_only else []),
            "--tmpfs", "/tmp",
            "--tmpfs", "/var/tmp",
            "-v", f"{build_dir}:/build:rw",
            "-v", f"{job.srpm.resolve()}:{srpm_in}:ro",
            *(arg for volume in volumes for arg in ("-v", volume)),
            "--workdir", "/build",
            "--hostname", "builder",
            "--env", "HOME=/build",
            "--env", "LANG=C.UTF-8",
            "--env", "TMPDIR=/tmp",
            "--security-opt", "no-new-privileges",
        ]  # fmt: skip
        if job.memory_reqs > 0:
            argv += ["--memory", f"{job.memory_reqs}m", "--memory-swap", f"{job.memory_reqs}m"]
        if job.timeout > 0:
            argv += ["--timeout", str(job.timeout)]
        for ulimit in self.ulimits:
            argv += ["--ulimit", ulimit]
        argv += self.extra_args
        argv.append(self.image_for(job.chroot.name))
        return argv

    def rpmbuild_args(
        self, job: BuildJob, *, nodeps: bool, target: str | None, private_rpmdb: bool = True
    ) -> list[str]:
        """The same rpmbuild command line as the host builder, run by the image's rpmbuild."""
        return rpmbuild_args(
            "rpmbuild", job, nodeps=nodeps, target=target, private_rpmdb=private_rpmdb
        )

    def dnf_args(self, job: BuildJob, wanted: Sequence[str], *options: str) -> list[str]:
        """dnf installing `wanted` into the container, with the repositories in
        /build/dnf.conf (written by the build)."""
        return [
            "dnf", "-y", "--config", DNF_CONF, "--releasever", releasever(job.chroot),
            *options, "install", *wanted,
        ]  # fmt: skip

    async def build(self, job: BuildJob, ctx: BuildContext) -> ChrootResult:
        image = self.image_for(job.chroot.name)
        await ctx.log(
            f"copr-lite container builder: rpmbuild in a fresh podman container from image {image}"
        )
        await ctx.log(
            f"{chroot_summary(job)}; memory {job.memory_reqs} MiB; timeout {job.timeout} s"
        )
        if shutil.which(self.podman) is None:
            reason = f"podman ({self.podman}) is not installed on this server"
            await ctx.log(f"error: {reason}")
            return ChrootResult.failed(reason)

        wanted = await self._wanted(job, ctx)
        if isinstance(wanted, ChrootResult):
            return wanted

        if self.pull == "never" and not await self._image_exists(image):
            reason = (
                f"container image {image} for {job.chroot.name} does not exist on this server "
                "(pull = never)"
            )
            await ctx.log(f"error: {reason}")
            return ChrootResult.failed(reason)

        target = job.chroot.arch if job.chroot.arch == host_arch() else None
        build_dir = ctx.work_dir / "container"
        await asyncio.to_thread(prepare_build_dir, build_dir, ctx.result_dir)
        srpm_in = f"/srpm/{job.srpm.name}"
        # With BuildRequires installed, rpmbuild checks them against the container's own rpm
        # database; without, a private one keeps the read-only root untouched.
        rpmbuild = [
            *self.rpmbuild_args(job, nodeps=False, target=target, private_rpmdb=not wanted),
            "-ra",
            srpm_in,
        ]
        if wanted:
            outcome = await self._build_with_dependencies(
                job, ctx, build_dir, srpm_in, wanted, rpmbuild
            )
        else:
            outcome = await self._container(job, ctx, build_dir, srpm_in, rpmbuild)
        if outcome.code != 0:
            reason = self._failure(outcome, job, image)
            await ctx.log(f"error: {reason}")
            return ChrootResult.failed(reason)

        files = await asyncio.to_thread(
            lambda: move_results(built_rpms(build_dir / "top"), ctx.result_dir)
        )
        return await built_result(files, ctx, "rpmbuild succeeded but produced no RPM")

    async def _wanted(self, job: BuildJob, ctx: BuildContext) -> ChrootResult | list[str]:
        """The packages to install before the build (BuildRequires, then the chroot's
        buildroot packages), or a failure when this host cannot build the package."""
        try:
            facts = await srpm_facts(job.srpm)
        except ValueError as exc:
            reason = f"cannot read the SRPM: {exc}"
            await ctx.log(f"error: {reason}")
            return ChrootResult.failed(reason)
        refusal = arch_refusal(
            facts.build_arches, facts.exclusive, facts.exclude, job.chroot.arch, host_arch()
        )
        if refusal:
            await ctx.log(f"error: {refusal}")
            return ChrootResult.failed(refusal)
        await ctx.log(f"BuildRequires: {', '.join(facts.requires) or 'none'}")
        if job.buildroot_pkgs:
            await ctx.log(f"buildroot packages: {', '.join(job.buildroot_pkgs)}")
        return list(dict.fromkeys([*facts.requires, *job.buildroot_pkgs]))

    async def _build_with_dependencies(
        self,
        job: BuildJob,
        ctx: BuildContext,
        build_dir: Path,
        srpm_in: str,
        wanted: list[str],
        rpmbuild: list[str],
    ) -> _Outcome:
        """Install `wanted` with dnf into the container, then build (see the module
        docstring: one container when every repository is local, else two)."""
        repos = dependency_repos(job.chroot, job.distro_repos, job.repos, job.local_repos)
        volumes = []
        usable = []
        for repo in repos:
            if repo.source is not None and not repo.source.is_dir():
                # Like an unreachable one: the project's own before its first build, say.
                await ctx.log(f"{repo.repo_id}: no repository at {repo.source}, skipped")
                continue
            if repo.source is not None:
                volumes.append(f"{repo.source}:{repo.url.removeprefix('file://')}:ro")
            usable.append(repo)
        for repo in usable:
            where = f"{repo.source} (read-only)" if repo.source else repo.url
            await ctx.log(f"repository {repo.repo_id}: {where}")
        if not usable:
            # dnf refuses to run without a repository; rpmbuild checks the image has them.
            await ctx.log("no repositories: the BuildRequires must be in the image")
            return await self._container(job, ctx, build_dir, srpm_in, rpmbuild, read_only=False)
        # Without a cache directory, downloads last as long as the build's work dir.
        cache = (self.cache_dir or ctx.work_dir / "dnf-cache") / job.chroot.name
        await asyncio.to_thread(cache.mkdir, parents=True, exist_ok=True)
        volumes.append(f"{cache.resolve()}:{CACHE_IN}:rw")
        config = dnf_config(usable, CACHE_IN)
        await asyncio.to_thread((build_dir / "dnf.conf").write_text, config)
        lock = self._cache_locks[cache.resolve()]
        turn_file = cache / ".copr-lite-dnf.lock"

        remote = [repo.repo_id for repo in usable if repo.needs_network]
        if remote:
            # Phase 1 fetches over the network into the cache; the build runs offline.
            await ctx.log(
                f"dependencies: downloading with network {self.deps_network} "
                f"({', '.join(remote)} fetched over the network)"
            )
            download = self.dnf_args(job, wanted, "--downloadonly")
            script = _deps_script(wanted, download, None)
            turn = await _CacheTurn.take(lock, turn_file)
            try:
                outcome = await self._container(
                    job, ctx, build_dir, srpm_in, ["sh", "-c", script],
                    network=self.deps_network, read_only=False, volumes=volumes,
                )  # fmt: skip
            finally:
                turn.release()
            if outcome.code != 0:
                return outcome
            install = self.dnf_args(job, wanted, "--cacheonly")
        else:
            install = self.dnf_args(job, wanted)
        await ctx.log(f"dependencies: {shlex.join(install)}")
        await ctx.log(f"build: {shlex.join(rpmbuild)}")
        turn = await _CacheTurn.take(lock, turn_file)
        try:
            return await self._container(
                job, ctx, build_dir, srpm_in, ["sh", "-c", _deps_script(wanted, install, rpmbuild)],
                read_only=False, volumes=volumes, on_dependencies_done=turn.release,
            )  # fmt: skip
        finally:
            turn.release()

    async def _container(
        self,
        job: BuildJob,
        ctx: BuildContext,
        build_dir: Path,
        srpm_in: str,
        command: list[str],
        *,
        network: str | None = None,
        read_only: bool = True,
        volumes: Sequence[str] = (),
        on_dependencies_done: Callable[[], None] | None = None,
    ) -> _Outcome:
        """Run `command` in a fresh container (removed afterwards, whatever happens)."""
        name = self.container_name(job)
        argv = [
            *self.run_argv(
                job, name, build_dir, srpm_in,
                network=network, read_only=read_only, volumes=volumes,
            ),
            "sh", "-c", _ENTRY, "copr-lite-build", *command,
        ]  # fmt: skip
        tail: collections.deque[str] = collections.deque(maxlen=_ERROR_TAIL)
        memory_seen = phase_ended = dependencies_failed = False

        async def log(line: str) -> None:
            nonlocal memory_seen, phase_ended, dependencies_failed
            if not memory_seen and line.startswith(MEMORY_LINE):
                memory_seen = True
                await ctx.log(line)
                note = memory_note(line, job.memory_reqs) if job.memory_reqs > 0 else None
                if note:
                    await ctx.log(note)
                return
            # The first marker ends the dependency phase; the build's own output cannot.
            if line in (DEPS_DONE, DEPS_FAILED) and not phase_ended:
                phase_ended = True
                dependencies_failed = line == DEPS_FAILED
                if on_dependencies_done is not None:
                    on_dependencies_done()
            tail.append(line)
            await ctx.log(line)

        if command[:1] != ["sh"]:
            await ctx.log(f"container {name}: {shlex.join(command)}")
        # podman runs from the work dir: runc may leave files (e.g. "oom") in its cwd.
        code = await self._run(argv, name, log, ctx.work_dir)
        if dependencies_failed and code != 0:
            code = DEPS_FAILED_CODE
        return _Outcome(code, list(tail))

    async def _run(
        self,
        argv: list[str],
        name: str,
        log: LogWriter,
        cwd: Path,
    ) -> int:
        """Run the container through run_logged; on cancel kill and remove it first (the
        client then exits by itself), and always remove it at the end."""
        client = asyncio.create_task(run_logged(argv, log, cwd=cwd))
        try:
            return await asyncio.shield(client)
        except BaseException:
            # Cancelled (user cancel or timeout): the container runs under conmon, not under
            # the podman client, so it is killed by name.
            await _unstoppable(self._kill_container(name, client))
            raise
        finally:
            await _unstoppable(self._remove(name, client))

    async def _kill_container(self, name: str, client: asyncio.Task[int]) -> None:
        killed, _ = await self._podman("kill", "--signal", "KILL", name)
        await self._podman("rm", "--force", "--ignore", "--time", "0", name)
        if killed == 0:
            # The client sees its container gone and exits; if it does not, run_logged kills it.
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(client), 5.0)
        # A container not there yet to kill would be started by a client left running: the
        # client is stopped now, and `_remove` removes what it made meanwhile.
        if not client.done():
            client.cancel()

    async def _remove(self, name: str, client: asyncio.Task[int]) -> None:
        # The client must be gone first, or it could still create the container after this.
        if not client.done():
            client.cancel()
        with contextlib.suppress(BaseException):
            await client
        await self._podman("rm", "--force", "--ignore", "--time", "0", name)

    async def _podman(self, *args: str) -> tuple[int, str]:
        try:
            code, out, err = await processes.run_captured(
                [*self.podman_base(), *args], time_limit=_PODMAN_TIMEOUT
            )
        except OSError as exc:
            return 127, str(exc)
        except TimeoutError:
            return -1, f"podman {args[0]} timed out"
        return code, (out + err).decode("utf-8", "replace")

    async def _image_exists(self, image: str) -> bool:
        code, _ = await self._podman("image", "exists", image)
        return code == 0

    def _failure(self, outcome: _Outcome, job: BuildJob, image: str) -> str:
        code, lines = outcome
        if code == DEPS_FAILED_CODE:
            return f"the build dependencies cannot be installed: {dnf_error(lines)}"
        if code == 125:
            return f"podman could not run the container from {image}: {podman_error(lines)}"
        if code in (126, 127):
            return (
                f"the image {image} cannot run the build (exit code {code}; it needs sh and "
                f"rpmbuild): {podman_error(lines)}"
            )
        if code == 137:
            return (
                f"the build was killed (SIGKILL; over its memory limit of {job.memory_reqs} "
                f"MiB?): {failure_line(lines)}"
            )
        if code == 255 and not any(line.startswith("error:") for line in lines):
            return f"the container was stopped at its timeout of {job.timeout} s"
        reason = f"rpmbuild failed with exit code {code}: {failure_line(lines)}"
        if reason.endswith("Killed") and job.memory_reqs > 0:
            reason += f" (over the memory limit of {job.memory_reqs} MiB?)"
        return reason


async def _unstoppable(coro: Awaitable[None]) -> None:
    """Await cleanup to the end even if the task is cancelled again meanwhile (the cleanup
    goes on in the background then)."""
    task = asyncio.ensure_future(coro)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        if not task.done():
            _BACKGROUND.add(task)
            task.add_done_callback(_BACKGROUND.discard)
        raise


_BACKGROUND: set[asyncio.Future[None]] = set()


@hookimpl
def register_settings(registry: PluginSettingsRegistry) -> None:
    registry.add("container", ContainerSettings)


@hookimpl
def register_builders(registry: BuilderRegistry, config: Config) -> None:
    settings = config.plugin_settings("container", ContainerSettings)
    registry.add(ContainerBuilder.from_settings(settings, config.data_dir))
