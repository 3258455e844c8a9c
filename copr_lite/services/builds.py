"""Builds: submit, cancel, rebuild, delete."""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import secrets
import shutil
import sqlite3
from collections.abc import Mapping
from pathlib import Path

from .. import auth, forms, operations, sources, store
from ..config import Config
from ..db import Database
from ..errors import BadRequest, Conflict, Forbidden, NotFound
from ..models import Build, Project, User
from ..publisher import Publisher
from .common import Precheck, Services, allowed_in, chroot_names

log = logging.getLogger(__name__)


async def submit_builds(
    ctx: Services,
    user: User,
    owner: str,
    name: str,
    values: Mapping[str, object],
    upload: store.NewBuild | None = None,
    precheck: Precheck | None = None,
) -> tuple[Project, list[int]]:
    """Store one build per SRPM URL of `pkgs` (or one of the given source: an uploaded SRPM
    or a package source), its chroots in `importing`, and start their imports
    (operations.SUBMIT_BUILD)."""
    project, ids = await ctx.db.write(
        submit_builds_in, user, owner, name, values, upload, precheck, ctx.config
    )
    ctx.builds.submitted(ids)
    return project, ids


def submit_builds_in(
    conn: sqlite3.Connection,
    user: User,
    owner: str,
    name: str,
    values: Mapping[str, object],
    upload: store.NewBuild | None,
    precheck: Precheck | None,
    config: Config,
) -> tuple[Project, list[int]]:
    """submit_builds' transaction."""
    operation = operations.SUBMIT_BUILD
    found = allowed_in(conn, user, owner, name, operation, precheck)
    project = found.project
    if upload is None:
        values = {**values, "pkgs": values.get("pkgs") or None}
        parsed = operation.parse(values, user, config.srpm_allowed_networks)
        urls = parsed.get("pkgs")
        if not urls:
            raise forms.validation_error("pkgs", "This field is required.")
        assert isinstance(urls, list)
        sources = [store.NewBuild(url) for url in urls]
    else:
        parsed = operation.parse({k: v for k, v in values.items() if k != "pkgs"}, user)
        sources = [upload]
    chroots = chroot_names(parsed.get("chroots", []), found.chroots) or list(found.chroots)
    excluded = parsed.get("exclude_chroots") or []
    assert isinstance(excluded, list)
    # Names or shell patterns, as a package's chroot_denylist has them ("*-rawhide-*").
    chroots = [c for c in chroots if not any(fnmatch.fnmatchcase(c, e) for e in excluded)]
    if not chroots:
        raise Conflict(f"Project {project.full_name} has no chroots to build in.")
    timeout = parsed.get("timeout") or config.default_timeout
    enable_net = parsed.get("enable_net", project.build_enable_net)
    ids = store.insert_builds(
        conn,
        project.id,
        user.id,
        sources,
        chroots,
        memory_reqs=int(str(parsed.get("memory_reqs", forms.DEFAULT_MEMORY))),
        timeout=int(str(timeout)),
        enable_net=bool(enable_net),
        repos=project.repos,
        background=bool(parsed.get("background", False)),
    )
    for build_id, source in zip(ids, sources, strict=True):
        if source.srpm_path is not None:
            # An uploaded SRPM is published with the build's import results.
            url = (
                f"{config.public_results_url}/{project.owner_name}/{project.name}/srpm-builds/"
                f"{build_id:08d}/{Path(source.srpm_path).name}"
            )
            store.set_source_url(conn, build_id, url)
    return project, ids


async def cancel_build(ctx: Services, user: User, build_id: int) -> list[str]:
    """Cancel a build for `user` (spec A10): NotFound, Forbidden, or Conflict when nothing
    is left to cancel. Returns the canceled chroots."""
    canceled = await ctx.db.write(_cancel_build, user, build_id)
    await ctx.builds.cancel_build(build_id)
    log.info("build canceled id=%d chroots=%s", build_id, ",".join(canceled))
    return canceled


async def rebuild(ctx: Services, user: User, build_id: int, chroots: list[str] | None) -> int:
    """Submit the source of build `build_id` again (operations.SUBMIT_BUILD), for `chroots`
    (None: the build's own chroots that the project still has), with the build's memory,
    timeout, network and background settings. The imported SRPM is copied, so the rebuild
    takes exactly what the first build took; a build whose import failed is fetched again
    from its URL. NotFound, Forbidden, or BadRequest for a chroot the project does not have
    or nothing to rebuild from. Returns the new build's id."""
    db, config = ctx.db, ctx.config
    found = await db.read(store.build_with_roles, build_id, user.id)
    if found is None:
        raise NotFound(f"Build {build_id} does not exist.")
    build, project, roles = found
    auth.check_permission(user, project, roles, auth.Action.BUILD)
    listed = await db.read(store.get_project_with_roles, project.owner_name, project.name, None)
    enabled = listed[2] if listed is not None else ()
    if chroots is None:
        chroots = [c.chroot for c in build.chroots if c.chroot in enabled]
    unknown = [c for c in chroots if c not in enabled]
    if unknown:
        raise BadRequest(f"Chroot {unknown[0]} is not enabled in {project.full_name}.")
    if not chroots:
        raise BadRequest("Select at least one chroot to rebuild.")
    source = await asyncio.to_thread(_copy_source, build, config.upload_dir)
    values: dict[str, object] = {
        "chroots": sorted(set(chroots)),
        "memory_reqs": build.memory_reqs,
        "timeout": build.timeout,
        "enable_net": build.enable_net,
        "background": build.background,
    }
    upload = source if source.stored_type != "link" else None
    if upload is None:
        values["pkgs"] = source.source_url
    try:
        _, ids = await submit_builds(ctx, user, project.owner_name, project.name, values, upload)
    except BaseException:
        if source.srpm_path is not None:
            forms.remove_upload(Path(source.srpm_path))
        raise
    log.info("build resubmitted id=%d from=%d by=%s", ids[0], build_id, user.name)
    return ids[0]


def _copy_source(build: Build, upload_dir: Path) -> store.NewBuild:
    """The source of a rebuild: a copy of the imported SRPM, as if uploaded again, or the
    original URL (or package source) when nothing was imported."""
    if build.srpm_path is not None and Path(build.srpm_path).is_file():
        imported = Path(build.srpm_path)
        target = upload_dir / secrets.token_hex(8) / imported.name
        target.parent.mkdir(parents=True)
        shutil.copyfile(imported, target)
        return store.NewBuild(imported.name, str(target))
    if build.source_type in sources.SOURCE_TYPES:
        return store.NewBuild(build.source_url, None, build.source_type, build.source_dict)
    if (
        build.source_url.startswith(("http://", "https://"))
        and "/srpm-builds/" not in build.source_url
    ):
        return store.NewBuild(build.source_url)
    raise BadRequest(f"Build {build.id} has no source left to rebuild from.")


def _cancel_build(conn: sqlite3.Connection, user: User, build_id: int) -> list[str]:
    found = store.build_with_roles(conn, build_id, user.id)
    if found is None:
        raise NotFound(f"Build {build_id} does not exist.")
    _, project, roles = found
    assert operations.CANCEL_BUILD.action is not None
    auth.check_permission(user, project, roles, operations.CANCEL_BUILD.action)
    canceled = store.cancel_build(conn, build_id)
    if not canceled:
        raise Conflict(f"Cannot cancel build {build_id}")
    return canceled


async def delete_builds(ctx: Services, user: User, build_ids: list[int]) -> list[int]:
    """Delete finished builds for `user`: their rows, results, logs and imported SRPMs, and
    republish the repositories they were published in. All or nothing: NotFound for an
    unknown build, Forbidden unless `user` submitted it or may modify its project, Conflict
    while one is unfinished (cancel it first). Returns the ids deleted."""
    return await remove_builds(ctx.db, ctx.publisher, user, build_ids)


async def remove_builds(
    db: Database, publisher: Publisher, user: User, build_ids: list[int]
) -> list[int]:
    """delete_builds on a database and results tree (also outside a server: the command
    line's `build delete` with no server running)."""
    builds = await db.write(_delete_finished, user, build_ids)
    by_chroot: dict[Path, list[Path]] = {}
    for build in builds:
        for chroot in build.chroots:
            if build.pkg_name is not None:
                path = publisher.build_dir(
                    build.owner_name, build.project_name, chroot.chroot, build.id, build.pkg_name
                )
                by_chroot.setdefault(path.parent, []).append(path)
    for chroot_dir, build_dirs in by_chroot.items():
        await publisher.remove_builds(chroot_dir, build_dirs)
    for build in builds:
        await publisher.discard(
            publisher.import_dir(build.owner_name, build.project_name, build.id)
        )
    deleted = [build.id for build in builds]
    if deleted:
        log.info("builds deleted ids=%s by=%s", ",".join(map(str, deleted)), user.name)
    return deleted


def _delete_finished(conn: sqlite3.Connection, user: User, build_ids: list[int]) -> list[Build]:
    """Check every build, then delete them all, in one transaction (see delete_builds)."""
    builds = []
    for build_id in dict.fromkeys(build_ids):
        found = store.build_with_roles(conn, build_id, user.id)
        if found is None:
            raise NotFound(f"Build {build_id} does not exist.")
        build, project, roles = found
        if build.submitter_name != user.name:
            action = operations.DELETE_BUILDS.action
            assert action is not None
            try:
                auth.check_permission(user, project, roles, action)
            except Forbidden:
                raise Forbidden(f"You are not allowed to delete build {build_id}.") from None
        if not all(chroot.status.terminal for chroot in build.chroots):
            raise Conflict(f"You can not delete build `{build_id}` which is not finished.")
        builds.append(build)
    deleted = set(store.delete_builds(conn, builds))
    return [build for build in builds if build.id in deleted]
