"""Built-in builder "mock": a clean chroot build with mock(1), where mock is installed.

It runs, like copr-rpmbuild does for a Copr build::

    mock -r <chroot> --uniqueext copr-lite-<build id> --resultdir <result dir>
         [--enable-network] [--addrepo <url>]... [--additional-package <pkg>]...
         --rebuild <srpm>

`-r` names mock's own config for the chroot (mock-core-configs ships fedora-40-x86_64,
epel-9-x86_64...), which sets the dist macro and the distribution repos; `--addrepo` adds
the project's repo and its additional repos; `--additional-package` (mock >= 2.13) installs
each buildroot package into the chroot, passed as given ("name" or "name >= 1.0", which
dnf accepts); `--uniqueext` lets builds of the same chroot run side by side.

Logs: mock prints its own progress on the console, while the rpmbuild output goes to
`build.log` in the result dir (mock only echoes it when it runs on a terminal, which is
why copr-rpmbuild wraps mock in `unbuffer`). This builder streams mock's console output to
the live log and follows build.log as it grows, so the build output reaches the live log
while the build runs; mock's root.log and state.log stay in the result dir. On failure
the reason is the last error line of build.log, else of root.log, else of mock's output.

The RPMs are collected from the result dir: binary packages and the rebuilt SRPM.
If `mock` is not on PATH every build fails with "mock is not installed on this server".

Settings (`[plugin:mock]`, declared by `MockSettings`): `command`, the mock executable.
"""

from __future__ import annotations

import asyncio
import collections
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from copr_lite import (
    BuildContext,
    BuildJob,
    ChrootResult,
    built_result,
    hookimpl,
    plugin_setting,
    run_logged,
)
from copr_lite.rpmtools import error_line, last_line

if TYPE_CHECKING:
    from copr_lite.builders import BuilderRegistry
    from copr_lite.config import Config, PluginSettingsRegistry

NOT_INSTALLED = "mock is not installed on this server"
FOLLOW_INTERVAL = 0.2
_ERROR = re.compile(r"^(?:error:|ERROR:)\s*(.*)$")


@dataclass(frozen=True)
class MockSettings:
    command: str = plugin_setting("mock", "The mock executable: a name on PATH or a path.")


def mock_argv(command: str, job: BuildJob, result_dir: Path) -> list[str]:
    """mock's command line for a job."""
    argv = [
        command,
        "-r", job.chroot.name,
        "--uniqueext", f"copr-lite-{job.build_id}",
        "--resultdir", str(result_dir),
    ]  # fmt: skip
    if job.enable_net:
        argv.append("--enable-network")
    for repo in job.repos:
        argv += ["--addrepo", repo]
    for package in job.buildroot_pkgs:
        argv += ["--additional-package", package]
    argv += ["--rebuild", str(job.srpm)]
    return argv


class _Follower:
    """Reads the lines appended to a file since the last call (the file may not exist yet)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""

    def read(self, final: bool = False) -> list[str]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = b"" if final else lines.pop()
        return [line.decode("utf-8", "replace") for line in lines if line or not final]


def failure_line(lines: Sequence[str]) -> str | None:
    """The last meaningful error line of a log, or None."""
    return error_line(lines, _ERROR)


def _tail(path: Path, count: int = 400) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return list(collections.deque(f, maxlen=count))
    except FileNotFoundError:
        return []


class MockBuilder:
    """Builds in a clean chroot with mock (see the module docstring)."""

    name = "mock"
    concurrency: int | None = None  # the server's `[builds] concurrency` alone

    def __init__(self, *, command: str = "mock") -> None:
        self.command = command

    async def build(self, job: BuildJob, ctx: BuildContext) -> ChrootResult:
        executable = shutil.which(self.command)
        if executable is None:
            await ctx.log(f"error: {NOT_INSTALLED}")
            return ChrootResult.failed(NOT_INSTALLED)
        await asyncio.to_thread(ctx.result_dir.mkdir, parents=True, exist_ok=True)
        argv = mock_argv(executable, job, ctx.result_dir)
        await ctx.log(f"copr-lite mock builder: {' '.join(argv)}")

        console: collections.deque[str] = collections.deque(maxlen=200)

        async def log(line: str) -> None:
            console.append(line)
            await ctx.log(line)

        follower = _Follower(ctx.result_dir / "build.log")

        async def follow() -> None:
            while True:
                await asyncio.sleep(FOLLOW_INTERVAL)
                for line in await asyncio.to_thread(follower.read):
                    await ctx.log(line)

        following = asyncio.create_task(follow())
        try:
            code = await run_logged(argv, log)
        finally:
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)
        for line in await asyncio.to_thread(follower.read, True):
            await ctx.log(line)

        if code != 0:
            reason = await asyncio.to_thread(self._reason, ctx.result_dir, list(console))
            reason = f"mock failed with exit code {code}: {reason}"
            await ctx.log(f"error: {reason}")
            return ChrootResult.failed(reason)

        files = sorted(await asyncio.to_thread(lambda: list(ctx.result_dir.glob("*.rpm"))))
        return await built_result(files, ctx, "mock succeeded but left no RPM in the result dir")

    @staticmethod
    def _reason(result_dir: Path, console: list[str]) -> str:
        for lines in (_tail(result_dir / "build.log"), _tail(result_dir / "root.log")):
            line = failure_line(lines)
            if line:
                return line
        return failure_line(console) or last_line(console)


@hookimpl
def register_settings(registry: PluginSettingsRegistry) -> None:
    registry.add("mock", MockSettings)


@hookimpl
def register_builders(registry: BuilderRegistry, config: Config) -> None:
    settings = config.plugin_settings("mock", MockSettings)
    registry.add(MockBuilder(command=settings.command or "mock"))
