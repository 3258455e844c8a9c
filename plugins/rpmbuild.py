"""Built-in builder "rpmbuild": rebuild the SRPM on the host, inside bubblewrap.

This is not a clean Fedora chroot: the build uses the host's (Debian) rpm toolchain,
compilers and libraries, read-only, inside a `bwrap` sandbox. The RPMs are real, but they
are not Fedora builds, and the build log says so. What the sandbox gives:

- no network, unless the job enables it (`--unshare-all`, plus `--share-net` on request);
- read-only /usr and /etc, private /tmp, /proc and /dev, no access to the rest of the host;
- a private rpm setup: `_topdir`, `_tmppath` and `_dbpath` all in the job's work dir, so
  nothing goes to ~/rpmbuild, /var/tmp or ~/.rpmdb;
- the chroot's macros (`dist` .fc40 / .el9, `fedora` / `rhel`), as mock's config would.

BuildRequires. This builder builds only packages without BuildRequires: it installs
nothing (the `container` builder installs them from the chroot's repositories). Installing
into a per-build root it then builds in would need the whole distribution (bash, rpm-build,
coreutils... from the chroot's repositories), which is mock's job, or would mix the host's
Debian toolchain with RPMs that expect a Fedora root. The builder reads the BuildRequires
from the SRPM (`rpm -qp --requires`) and fails with "BuildRequires not available in this
chroot: gcc, ..." for each one the job's buildroot packages do not name, and the log points
to the container builder. Listing a package in the project's buildroot packages is the
operator's statement that the host provides it: when every BuildRequire is listed that way,
rpmbuild runs with `--nodeps`. Names are compared on their first word, so "gcc >= 12" in
either list matches "gcc".

Arches. There is no cross compiler and no qemu, and `rpmbuild --target aarch64` would
label an x86_64 binary aarch64. So an arch-specific package is built only for a chroot of
the host's arch (`uname -m`), with `--target <arch>`; a noarch package builds for any
chroot. ExclusiveArch / ExcludeArch are honoured like mock would.

Besides the binary RPMs it produces the rebuilt SRPM (`rpmbuild -ra`: both in one run), whose
name matches the SOURCERPM header of the binaries. bwrap comes from the `bubblewrap`
package; without it every build fails with a clear reason.

Settings (`[plugin:rpmbuild]`, declared by `RpmbuildSettings`): `bwrap` and `rpmbuild`,
the commands to run.
"""

from __future__ import annotations

import asyncio
import collections
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from copr_lite import (
    BuildContext,
    BuildJob,
    ChrootResult,
    built_result,
    hookimpl,
    plugin_setting,
    run_logged,
    sandbox,
)
from copr_lite.rpmtools import (
    arch_refusal,
    built_rpms,
    chroot_summary,
    dep_name,
    failure_line,
    host_arch,
    move_results,
    prepare_build_dir,
    rpmbuild_args,
    srpm_facts,
)

if TYPE_CHECKING:
    from copr_lite.builders import BuilderRegistry
    from copr_lite.config import Config, PluginSettingsRegistry

HOST_BUILD_NOTICE = (
    "host build with the Debian rpm toolchain inside bubblewrap, not a clean Fedora chroot: "
    "the packages are real RPMs, built against the host's compilers and libraries"
)
_ERROR_TAIL = 200  # output lines kept to explain a failure


@dataclass(frozen=True)
class RpmbuildSettings:
    bwrap: str = plugin_setting("bwrap", "The bubblewrap executable: a name on PATH or a path.")
    rpmbuild: str = plugin_setting(
        "rpmbuild", "The rpmbuild executable run inside the sandbox: a name on PATH or a path."
    )


class RpmbuildBuilder:
    """Builds with the host's rpmbuild inside bubblewrap (see the module docstring)."""

    name = "rpmbuild"
    concurrency: int | None = None  # the server's `[builds] concurrency` alone

    def __init__(self, *, bwrap: str = "bwrap", rpmbuild: str = "rpmbuild") -> None:
        self.bwrap = bwrap
        self.rpmbuild = rpmbuild

    def bwrap_argv(self, job: BuildJob, build_dir: Path, srpm_in: str) -> list[str]:
        mounts = [
            # A directory bwrap makes for a bind is root's alone (0700) when it runs as root.
            "--perms", "0755", "--dir", str(PurePosixPath(srpm_in).parent),
            "--ro-bind", str(job.srpm.resolve()), srpm_in,
            "--bind", str(build_dir), "/build",
        ]  # fmt: skip
        return sandbox.bwrap_argv(
            self.bwrap, mounts, home="/build", cwd="/build", share_net=job.enable_net
        )

    def rpmbuild_args(
        self, job: BuildJob, *, nodeps: bool, target: str | None, private_rpmdb: bool = True
    ) -> list[str]:
        """rpmbuild's command line (see `copr_lite.rpmtools.rpmbuild_args`)."""
        return rpmbuild_args(
            self.rpmbuild, job, nodeps=nodeps, target=target, private_rpmdb=private_rpmdb
        )

    async def build(self, job: BuildJob, ctx: BuildContext) -> ChrootResult:
        await ctx.log(f"copr-lite rpmbuild builder: {HOST_BUILD_NOTICE}.")
        await ctx.log(chroot_summary(job))
        for command in (self.bwrap, self.rpmbuild):
            if shutil.which(command) is None:
                reason = (
                    "bubblewrap (bwrap) is not installed on this server"
                    if command == self.bwrap
                    else f"{command} is not installed on this server"
                )
                await ctx.log(f"error: {reason}")
                return ChrootResult.failed(reason)

        checked = await self._check_srpm(job, ctx)
        if isinstance(checked, ChrootResult):
            return checked
        nodeps = checked

        arch = host_arch()
        target = job.chroot.arch if job.chroot.arch == arch else None
        build_dir = ctx.work_dir / "rpmbuild"
        await asyncio.to_thread(_prepare_sandbox, build_dir, ctx.result_dir, job.srpm)
        srpm_in = f"/srpm/{job.srpm.name}"
        sandboxed = self.bwrap_argv(job, build_dir, srpm_in)
        rpmbuild = self.rpmbuild_args(job, nodeps=nodeps, target=target)
        tail: collections.deque[str] = collections.deque(maxlen=_ERROR_TAIL)

        async def log(line: str) -> None:
            tail.append(line)
            await ctx.log(line)

        # -ra builds the binary RPMs and the rebuilt SRPM (same defines) in one run.
        argv = [*sandboxed, *rpmbuild, "-ra", srpm_in]
        await ctx.log(f"building: {' '.join(rpmbuild)} -ra {srpm_in}")
        code = await run_logged(argv, log)
        if code != 0:
            reason = f"rpmbuild failed with exit code {code}: {failure_line(list(tail))}"
            await ctx.log(f"error: {reason}")
            return ChrootResult.failed(reason)

        files = await asyncio.to_thread(
            lambda: move_results(built_rpms(build_dir / "top"), ctx.result_dir)
        )
        return await built_result(files, ctx, "rpmbuild succeeded but produced no RPM")

    async def _check_srpm(self, job: BuildJob, ctx: BuildContext) -> ChrootResult | bool:
        """Refuse what this host cannot build; else say whether --nodeps is needed."""
        try:
            facts = await srpm_facts(job.srpm)
        except ValueError as exc:
            reason = f"cannot read the SRPM: {exc}"
            await ctx.log(f"error: {reason}")
            return ChrootResult.failed(reason)

        requires = facts.requires
        refusal = arch_refusal(
            facts.build_arches, facts.exclusive, facts.exclude, job.chroot.arch, host_arch()
        )
        if refusal:
            await ctx.log(f"error: {refusal}")
            return ChrootResult.failed(refusal)

        if not requires:
            await ctx.log("BuildRequires: none")
            return False
        await ctx.log(f"BuildRequires: {', '.join(requires)}")
        provided = {dep_name(pkg) for pkg in job.buildroot_pkgs}
        missing = [req for req in requires if dep_name(req) not in provided]
        if missing:
            reason = f"BuildRequires not available in this chroot: {', '.join(missing)}"
            await ctx.log(
                f"error: {reason}. The rpmbuild builder builds only packages without "
                "BuildRequires: it installs nothing. Serve this chroot with the container "
                "builder, which installs them from the chroot's repositories and the "
                "project's, or list what the host provides in the chroot's buildroot packages."
            )
            return ChrootResult.failed(reason)
        await ctx.log(
            "every BuildRequire is listed in the buildroot packages (taken as present on the "
            "host): building with --nodeps"
        )
        return True


def _prepare_sandbox(build_dir: Path, result_dir: Path, srpm: Path) -> None:
    """rpmbuild's directories, writable and the SRPM readable by the sandbox's user."""
    prepare_build_dir(build_dir, result_dir)
    sandbox.hand_over(build_dir)
    sandbox.let_read(srpm)


@hookimpl
def register_settings(registry: PluginSettingsRegistry) -> None:
    registry.add("rpmbuild", RpmbuildSettings)


@hookimpl
def register_builders(registry: BuilderRegistry, config: Config) -> None:
    settings = config.plugin_settings("rpmbuild", RpmbuildSettings)
    registry.add(
        RpmbuildBuilder(bwrap=settings.bwrap or "bwrap", rpmbuild=settings.rpmbuild or "rpmbuild")
    )
