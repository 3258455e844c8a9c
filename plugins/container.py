"""Built-in builder "container": rebuild the SRPM with rpmbuild inside a fresh podman container.

Each chroot build gets its own container, created for it and removed after it, whatever the
outcome (success, failure, cancel, timeout):

- the image comes from the settings: `image.<chroot>` for that chroot, else `image`;
- no network (`--network=none`, only `lo`), unless the job enables it (podman's default
  network then);
- the root filesystem is read-only (`--read-only`); /tmp and /var/tmp are private tmpfs; the
  job's work directory is mounted read-write at /build and the SRPM read-only under /srpm;
  nothing else of the host is mounted;
- memory is limited to the job's `memory_reqs` MiB (`--memory`, no swap on top); the limit the
  container really got is read from its cgroup at start and the log says when the kernel does
  not enforce it;
- the job's timeout is also given to podman (`--timeout`), so conmon kills the container even
  if this server is gone by then;
- rpmbuild runs with a private `_topdir`, `_tmppath` and `_dbpath` under /build and the
  chroot's macros (`dist` .fc40 / .el9, `fedora` / `rhel`), building the binary RPMs and
  the rebuilt SRPM in one run (`rpmbuild -ra`).

Cancel and timeout (the task gets CancelledError) kill and remove the named container with
`podman kill` and `podman rm -f` (killing the podman client is not enough: the container runs
under conmon), then let the client exit; a final `podman rm -f --ignore` runs after every build.

BuildRequires and arches follow the `rpmbuild` builder's rules (its functions are reused):
the image is taken as it is, nothing is installed into it (the root filesystem is read-only
and there is no network by default), so a package with BuildRequires fails unless each is
listed in the chroot's buildroot packages (the operator's word that the image has it), and
then builds with `--nodeps`. An arch-specific package builds only for the host's arch.

The image needs `sh`, `cat` and `rpmbuild` (Fedora: `rpm-build`; Debian: `rpm`), plus whatever
the packages built in it need. podman's defaults fail on some kernels (crun with hybrid
cgroups, ulimits above what the server may set), hence the `runtime` and `ulimits` settings.

Settings (`[plugin:container]`, declared by `ContainerSettings`): `podman`, `runtime`
(`--runtime`, empty for podman's default), `ulimits` (`--ulimit` values), `image` (every
chroot without its own), `image.<chroot>` (one chroot's image, e.g.
`image.fedora-40-x86_64 = registry.example.org/fedora-rpmbuild:40`), `pull` (`--pull`)
and `extra_args` (more `podman run` options, split like a shell would).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import importlib.util
import platform
import secrets
import shlex
import shutil
import sys
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from copr_lite import (
    BuildContext,
    BuildJob,
    ChrootResult,
    Outcome,
    hookimpl,
    plugin_setting,
    processes,
    read_rpm_headers,
    run_logged,
)

if TYPE_CHECKING:
    from copr_lite.builders import BuilderRegistry, LogWriter
    from copr_lite.config import Config, PluginSettingsRegistry

DEFAULT_IMAGE = "localhost/copr-lite-builder:bookworm"
DEFAULT_ULIMITS = "nofile=4096:4096 nproc=4096:4096"
PULL_POLICIES = ("always", "missing", "never", "newer")
NAME_PREFIX = "copr-lite-"
LABEL = "copr-lite.builder=container"
MEMORY_LINE = "copr-lite container: memory limit "
_ERROR_TAIL = 200  # output lines kept to explain a failure
_PODMAN_TIMEOUT = 60.0  # for podman kill / rm / image exists
# cgroup v1 reports "no limit" as a huge page-rounded number.
_UNLIMITED = 1 << 60

# Run first inside the container: report the memory limit the cgroup really has (v2, then
# v1), then exec the build with stderr joined to stdout so the log keeps their order.
_ENTRY = (
    "m=$(cat /sys/fs/cgroup/memory.max 2>/dev/null"
    " || cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || echo unknown); "
    f'echo "{MEMORY_LINE}$m"; exec "$@" 2>&1'
)


def _load_rpmbuild_plugin() -> ModuleType:
    """The sibling `rpmbuild` plugin, for its SRPM checks and failure-line parsing (loaded by
    path under a private name, so it works whether or not that plugin is blocklisted)."""
    name = "copr_lite_container_rpmbuild_rules"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("rpmbuild.py"))
    if spec is None or spec.loader is None:
        raise ImportError("cannot load the rpmbuild plugin next to the container plugin")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


_rules = _load_rpmbuild_plugin()


def host_arch() -> str:
    return platform.machine()


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def podman_error(lines: Sequence[str]) -> str:
    """podman's own error ("Error: ..."), the last one, else the last non-empty line."""
    for line in reversed(lines):
        text = line.strip()
        if text.startswith("Error: "):
            return _short(text.removeprefix("Error: "))
    for line in reversed(lines):
        if line.strip():
            return _short(line.strip())
    return "no output"


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

    def __post_init__(self) -> None:
        try:
            shlex.split(self.extra_args)
        except ValueError as exc:
            raise ValueError(f"extra_args = {self.extra_args!r}: {exc}") from None


class ContainerBuilder:
    """Builds with rpmbuild inside a fresh podman container (see the module docstring)."""

    name = "container"

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

    @classmethod
    def from_settings(cls, settings: ContainerSettings) -> ContainerBuilder:
        return cls(
            podman=settings.podman.strip() or "podman",
            runtime=settings.runtime.strip(),
            ulimits=parse_ulimits(settings.ulimits),
            image=settings.image.strip() or DEFAULT_IMAGE,
            images=settings.images,
            pull=settings.pull,
            extra_args=shlex.split(settings.extra_args),
        )

    def image_for(self, chroot: str) -> str:
        return self.images.get(chroot, self.image)

    def podman_base(self) -> list[str]:
        return [self.podman, *(["--runtime", self.runtime] if self.runtime else [])]

    def container_name(self, job: BuildJob) -> str:
        return f"{NAME_PREFIX}{job.build_id}-{job.chroot.name}-{secrets.token_hex(4)}"

    def run_argv(self, job: BuildJob, name: str, build_dir: Path, srpm_in: str) -> list[str]:
        """`podman run ...` up to and including the image."""
        argv = [
            *self.podman_base(),
            "run",
            "--rm",
            "--name", name,
            "--label", LABEL,
            "--label", f"copr-lite.build={job.build_id}",
            "--label", f"copr-lite.chroot={job.chroot.name}",
            f"--pull={self.pull}",
            *([] if job.enable_net else ["--network=none"]),
            "--read-only",
            "--tmpfs", "/tmp",
            "--tmpfs", "/var/tmp",
            "-v", f"{build_dir}:/build:rw",
            "-v", f"{job.srpm.resolve()}:{srpm_in}:ro",
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

    def rpmbuild_args(self, job: BuildJob, *, nodeps: bool, target: str | None) -> list[str]:
        """The same rpmbuild command line as the host builder, run by the image's rpmbuild."""
        args: list[str] = _rules.RpmbuildBuilder().rpmbuild_args(job, nodeps=nodeps, target=target)
        return args

    async def build(self, job: BuildJob, ctx: BuildContext) -> ChrootResult:
        image = self.image_for(job.chroot.name)
        await ctx.log(
            f"copr-lite container builder: rpmbuild in a fresh podman container from image {image}"
        )
        await ctx.log(
            f"chroot {job.chroot.name}: "
            + (" ".join(f"%{k}={v}" for k, v in job.chroot.macros.items()) or "no dist macros")
            + f"; network {'enabled' if job.enable_net else 'disabled'}"
            + f"; memory {job.memory_reqs} MiB; timeout {job.timeout} s"
        )
        if shutil.which(self.podman) is None:
            reason = f"podman ({self.podman}) is not installed on this server"
            await ctx.log(f"error: {reason}")
            return ChrootResult.failed(reason)

        checked = await _rules.RpmbuildBuilder()._check_srpm(job, ctx)
        if isinstance(checked, ChrootResult):
            return checked
        nodeps: bool = checked

        if self.pull == "never" and not await self._image_exists(image):
            reason = (
                f"container image {image} for {job.chroot.name} does not exist on this server "
                "(pull = never)"
            )
            await ctx.log(f"error: {reason}")
            return ChrootResult.failed(reason)

        target = job.chroot.arch if job.chroot.arch == host_arch() else None
        build_dir = ctx.work_dir / "container"
        await asyncio.to_thread(_rules._prepare, build_dir, ctx.result_dir)
        srpm_in = f"/srpm/{job.srpm.name}"
        name = self.container_name(job)
        rpmbuild = [*self.rpmbuild_args(job, nodeps=nodeps, target=target), "-ra", srpm_in]
        argv = [
            *self.run_argv(job, name, build_dir, srpm_in),
            "sh", "-c", _ENTRY, "copr-lite-build", *rpmbuild,
        ]  # fmt: skip
        tail: collections.deque[str] = collections.deque(maxlen=_ERROR_TAIL)
        memory_seen = False

        async def log(line: str) -> None:
            nonlocal memory_seen
            if not memory_seen and line.startswith(MEMORY_LINE):
                memory_seen = True
                await ctx.log(line)
                note = memory_note(line, job.memory_reqs) if job.memory_reqs > 0 else None
                if note:
                    await ctx.log(note)
                return
            tail.append(line)
            await ctx.log(line)

        await ctx.log(f"container {name}: {shlex.join(rpmbuild)}")
        # podman runs from the work dir: runc may leave files (e.g. "oom") in its cwd.
        code = await self._run(argv, name, log, ctx.work_dir)

        if code != 0:
            reason = self._failure(code, job, image, list(tail))
            await ctx.log(f"error: {reason}")
            return ChrootResult.failed(reason)

        files = await asyncio.to_thread(_rules._collect, build_dir / "top", ctx.result_dir)
        if not files:
            return ChrootResult.failed("rpmbuild succeeded but produced no RPM")
        try:
            headers = await read_rpm_headers(files)
        except ValueError as exc:
            return ChrootResult.failed(f"cannot read the built RPMs: {exc}")
        packages = tuple(p for p in headers if p.arch != "src")
        for path in files:
            await ctx.log(f"result: {path.name}")
        return ChrootResult(Outcome.SUCCEEDED, packages=packages, files=tuple(files))

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
        await self._podman("kill", "--signal", "KILL", name)
        await self._podman("rm", "--force", "--ignore", "--time", "0", name)
        # The client sees its container gone and exits; if it does not, run_logged kills it.
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(asyncio.shield(client), 5.0)
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

    def _failure(self, code: int, job: BuildJob, image: str, lines: list[str]) -> str:
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
                f"MiB?): {_rules.failure_line(lines)}"
            )
        if code == 255 and not any(line.startswith("error:") for line in lines):
            return f"the container was stopped at its timeout of {job.timeout} s"
        reason = f"rpmbuild failed with exit code {code}: {_rules.failure_line(lines)}"
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
    registry.add(ContainerBuilder.from_settings(settings))
