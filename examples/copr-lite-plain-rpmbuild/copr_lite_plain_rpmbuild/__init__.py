"""A complete copr_lite builder plugin: `rpmbuild --rebuild` on the host, nothing else.

Install it next to copr_lite (`pip install ./examples/copr-lite-plain-rpmbuild`) and map
chroots to it in copr-lite.ini:

    [chroots]
    fedora-41-x86_64 = plain-rpmbuild
"""

from __future__ import annotations

import platform

from copr_lite import (
    BuildContext,
    BuildJob,
    ChrootResult,
    Outcome,
    hookimpl,
    read_rpm_headers,
    run_logged,
)


class PlainRpmbuild:
    name = "plain-rpmbuild"
    concurrency = None

    async def build(self, job: BuildJob, ctx: BuildContext) -> ChrootResult:
        if job.chroot.arch not in (platform.machine(), "noarch"):
            return ChrootResult.failed(f"this host cannot build for {job.chroot.arch}")
        top = ctx.work_dir / "top"
        defines = {
            "_topdir": top,
            "_tmppath": ctx.work_dir / "tmp",
            "_dbpath": ctx.work_dir / "db",
            **job.chroot.macros,
        }
        argv = ["rpmbuild", "--rebuild", "--nodeps", str(job.srpm)]
        for name, value in defines.items():
            argv += ["--define", f"{name} {value}"]
        await ctx.log(f"plain-rpmbuild: {' '.join(argv)}")
        # run_logged streams output to the live log and, if the build is canceled or
        # times out, kills the whole process group before CancelledError goes on.
        status = await run_logged(argv, ctx.log, cwd=ctx.work_dir)
        if status != 0:
            return ChrootResult.failed(f"rpmbuild exited with {status}")
        files = []
        for rpm in sorted((top / "RPMS").rglob("*.rpm")):
            target = ctx.result_dir / rpm.name
            rpm.replace(target)
            files.append(target)
        packages = await read_rpm_headers(files)
        return ChrootResult(Outcome.SUCCEEDED, tuple(packages), tuple(files))


@hookimpl
def register_builders(registry, config):
    registry.add(PlainRpmbuild())
