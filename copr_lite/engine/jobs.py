"""The BuildJob a builder receives for one chroot of a build: what run.py hands it."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from .. import forms, store
from ..builders import BuildJob, Chroot, PackageInfo
from ..config import Config
from ..models import Build
from .deps import EngineDeps

# copr://owner/project names another project of this server, as in Copr.
_COPR_URL = re.compile(r"^copr://([^/]+)/([^/]+)/?$")


async def make_job(deps: EngineDeps, build: Build, chroot: str) -> BuildJob:
    """The job for `chroot` of an imported `build`: its SRPM and package, the chroot's
    buildroot packages, and the repositories to build against (the project's own results
    first, then the build's additional ones, then the chroot's extra ones)."""
    config = deps.config
    settings = await deps.db.read(store.get_chroot_settings, build.project_id, chroot)
    packages, chroot_repos = settings or ("", "")
    repos = [results_repo(config, build.owner_name, build.project_name, chroot)]
    for url in (*build.repos.split(), *chroot_repos.split()):
        other = _COPR_URL.match(url)
        repos.append(results_repo(config, other[1], other[2], chroot) if other else url)
    # The server's own repositories are read from disk by local builders.
    local_repos: dict[str, Path] = {}
    prefix = config.public_results_url + "/"
    for url in repos:
        parts = url.removeprefix(prefix).rstrip("/").split("/")
        if url.startswith(prefix) and len(parts) == 3:
            with contextlib.suppress(ValueError):
                local_repos[url] = deps.publisher.chroot_dir(*parts)
    return BuildJob(
        build_id=build.id,
        owner=build.owner_name,
        project=build.project_name,
        chroot=Chroot.parse(chroot),
        srpm=Path(build.srpm_path or ""),
        package=PackageInfo(
            build.pkg_name or "",
            build.pkg_epoch,
            build.pkg_version or "",
            build.pkg_release or "",
            "src",
        ),
        buildroot_pkgs=tuple(forms.split_packages(packages)),
        repos=tuple(dict.fromkeys(repos)),
        distro_repos=config.distribution_repos(chroot),
        local_repos=local_repos,
        enable_net=build.enable_net,
        memory_reqs=build.memory_reqs,
        timeout=build.timeout or config.default_timeout,
    )


def results_repo(config: Config, owner: str, project: str, chroot: str) -> str:
    """The public URL of a project's results repository for `chroot`."""
    return f"{config.public_results_url}/{owner}/{project}/{chroot}/"
