"""The service functions of the operations declared in `operations.py`: what API v1, API v3
and the web UI all call to change anything.

Each looks the project (or build) up, checks the caller's permission, parses the request's
values with the operation's declaration and writes, in one database transaction (one thread
hop), then tells the dispatcher and the publisher. `precheck`, where offered, is the calling
API's own check of the request (v1 refuses keys it does not know), run in that transaction
after the permission check, so errors come in the order of spec A17: 404, 403, then 400.

Each takes a `Services` first: the database, the settings, the build queue (the dispatcher)
and the publisher, built once by app.py (keys.SERVICES), so the services never reach into
the web application.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hmac
import logging
import secrets
import shutil
import sqlite3
import time
import unicodedata
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from . import auth, forges, forms, operations, sources, store
from .config import Config
from .db import Database
from .errors import BadRequest, Conflict, CoprLiteError, Forbidden, NotFound
from .models import Build, Project, User
from .publisher import Publisher
from .srpm import public_url

log = logging.getLogger(__name__)

# Seconds running builders get to stop when their project is deleted (spec A22).
DELETE_WAIT = 12.0

# The calling API's own check of a request against the project and its enabled chroots.
Precheck = Callable[[Project, tuple[str, ...]], None]


class BuildQueue(Protocol):
    """What the services tell the build engine (the dispatcher)."""

    def submitted(self, build_ids: Iterable[int]) -> None:
        """New builds were stored: start their imports."""

    def prepare_repos(
        self, owner: str, project: str, chroots: Iterable[str], *, created: bool = False
    ) -> None:
        """Create the empty repositories of a project's new chroots (`created`: of a
        project created just now)."""

    async def cancel_build(self, build_id: int) -> None:
        """Stop the running chroots of a build already marked canceled."""


@dataclass(frozen=True)
class Services:
    """What every service function works with, built once per app (keys.SERVICES)."""

    db: Database
    config: Config
    builds: BuildQueue
    publisher: Publisher


@dataclass(frozen=True)
class Found:
    """A project as the caller sees it: their roles on it and its enabled chroots."""

    project: Project
    roles: frozenset[str]
    chroots: tuple[str, ...]


def find_project(conn: sqlite3.Connection, owner: str, name: str, user: User | None) -> Found:
    """The addressed project, or NotFound (also for names that cannot exist)."""
    found = None
    if forms.NAME_RE.match(owner) and forms.NAME_RE.match(name):
        found = store.get_project_with_roles(conn, owner, name, user.id if user else None)
    if found is None:
        raise NotFound(f"Project {owner[:100]}/{name[:100]} does not exist.")
    return Found(*found)


def _allowed(
    conn: sqlite3.Connection,
    user: User,
    owner: str,
    name: str,
    operation: operations.Operation,
    precheck: Precheck | None,
) -> Found:
    found = find_project(conn, owner, name, user)
    if operation.action is not None:
        auth.check_permission(user, found.project, found.roles, operation.action)
    if precheck is not None:
        precheck(found.project, found.chroots)
    return found


async def check_allowed(
    ctx: Services, user: User, owner: str, name: str, operation: operations.Operation
) -> Found:
    """The project, once `user` is found allowed to do `operation` on it (404, 403)."""
    return await ctx.db.read(_allowed, user, owner, name, operation, None)


def _chroot_names(names: object, offered: tuple[str, ...] | set[str]) -> list[str]:
    assert isinstance(names, list)
    for chroot in names:
        if chroot not in offered:
            raise forms.validation_error("chroots", f"Chroot {chroot} is not available here.")
    return sorted(set(names))


_PROJECT_COLUMNS = store.MODIFIABLE_PROJECT_FIELDS


# ---------------------------------------------------------------- projects


async def create_project(
    ctx: Services,
    user: User,
    values: Mapping[str, object],
    *,
    owner_name: str | None = None,
) -> tuple[Project, tuple[str, ...], list[int]]:
    """Create a project (operations.CREATE_PROJECT) of the caller, or of `owner_name` when
    the caller is a system admin, with builds of its `initial_pkgs`; returns the project,
    its chroots and the build ids. Conflict when the owner has a project so named."""
    project, chroots, build_ids = await ctx.db.write(
        _create_project, user, owner_name, values, ctx.config
    )
    ctx.builds.prepare_repos(project.owner_name, project.name, chroots, created=True)
    if build_ids:
        ctx.builds.submitted(build_ids)
    log.info("project created owner=%s name=%s id=%d", project.owner_name, project.name, project.id)
    return project, chroots, build_ids


def _create_project(
    conn: sqlite3.Connection,
    user: User,
    owner_name: str | None,
    values: Mapping[str, object],
    config: Config,
) -> tuple[Project, tuple[str, ...], list[int]]:
    owner = user
    if owner_name is not None and owner_name != user.name:
        if not user.is_admin:
            raise Forbidden(f"Only admins may create projects of other users ({owner_name[:100]}).")
        named = store.get_user(conn, owner_name) if forms.NAME_RE.match(owner_name) else None
        if named is None:
            raise NotFound(f"User {owner_name[:100]} does not exist.")
        owner = named
    operation = operations.CREATE_PROJECT
    parsed = operation.parse(values, user, config.srpm_allowed_networks, defaults=True)
    chroots = _chroot_names(parsed.get("chroots", []), set(config.chroots))
    if not chroots:
        raise forms.validation_error("chroots", "At least one chroot must be selected")
    fields: dict[str, object] = {"name": parsed["name"]}
    fields.update({k: v for k, v in parsed.items() if k in _PROJECT_COLUMNS})
    try:
        project_id = store.create_project(conn, owner.id, fields, chroots)
    except sqlite3.IntegrityError:
        raise Conflict(f"You already have a project named '{parsed['name']}'.") from None
    project = store.get_project(conn, owner.name, str(parsed["name"]))
    assert project is not None and project.id == project_id
    initial = parsed.get("initial_pkgs") or []
    assert isinstance(initial, list)
    build_ids: list[int] = []
    if initial:
        build_ids = store.insert_builds(
            conn,
            project_id,
            user.id,
            [store.NewBuild(url) for url in initial],
            chroots,
            memory_reqs=forms.DEFAULT_MEMORY,
            timeout=config.default_timeout,
            enable_net=project.build_enable_net,
            repos="",
            background=False,
        )
    return project, tuple(chroots), build_ids


async def edit_project(
    ctx: Services,
    user: User,
    owner: str,
    name: str,
    values: Mapping[str, object],
    precheck: Precheck | None = None,
) -> tuple[Project, tuple[str, ...]]:
    """Change the given settings (operations.EDIT_PROJECT); `chroots`, when given, become
    the project's chroots. Returns the project and its chroots as stored."""
    project, chroots, added = await ctx.db.write(
        _edit_project, user, owner, name, values, precheck, ctx.config
    )
    if added:
        ctx.builds.prepare_repos(project.owner_name, project.name, added)
    return project, chroots


def _edit_project(
    conn: sqlite3.Connection,
    user: User,
    owner: str,
    name: str,
    values: Mapping[str, object],
    precheck: Precheck | None,
    config: Config,
) -> tuple[Project, tuple[str, ...], list[str]]:
    operation = operations.EDIT_PROJECT
    found = _allowed(conn, user, owner, name, operation, precheck)
    parsed = operation.parse(values, user, config.srpm_allowed_networks)
    chroots, added = list(found.chroots), []
    if "chroots" in parsed:
        chroots = _chroot_names(parsed["chroots"], set(config.chroots))
        if not chroots:
            raise forms.validation_error("chroots", "At least one chroot must be selected")
        added = [c for c in chroots if c not in found.chroots]
        store.set_project_chroots(conn, found.project.id, chroots)
    store.update_project(
        conn, found.project.id, {k: v for k, v in parsed.items() if k in _PROJECT_COLUMNS}
    )
    project = store.get_project(conn, found.project.owner_name, found.project.name)
    assert project is not None
    return project, tuple(chroots), added


async def delete_project(
    ctx: Services,
    user: User,
    owner: str,
    name: str,
    precheck: Precheck | None = None,
) -> Project:
    """Cancel the project's unfinished builds, then remove it, its builds and its
    published results (spec A11). Forbidden for a persistent project; NotFound when a
    concurrent delete removed it first."""
    db = ctx.db
    project, canceled = await db.write(_cancel_unfinished, user, owner, name, precheck)
    if canceled:
        # Running builders get DELETE_WAIT seconds to stop; the rest finish stopping
        # in the background after the project is gone (spec A22).
        await asyncio.wait(
            [asyncio.ensure_future(ctx.builds.cancel_build(b)) for b in canceled],
            timeout=DELETE_WAIT,
        )
    if not await db.write(store.delete_project, project.id):
        # Another delete of the same project won; its results are that one's to remove.
        raise NotFound(f"Project {project.owner_name}/{project.name} does not exist.")
    await ctx.publisher.remove_project(project.owner_name, project.name)
    signer = ctx.publisher.signer
    if signer is not None:
        await signer.forget(project.owner_name, project.name)
    log.info("project deleted owner=%s name=%s", project.owner_name, project.name)
    return project


def _cancel_unfinished(
    conn: sqlite3.Connection, user: User, owner: str, name: str, precheck: Precheck | None
) -> tuple[Project, list[int]]:
    found = _allowed(conn, user, owner, name, operations.DELETE_PROJECT, precheck)
    if found.project.persistent:
        raise Forbidden("This project is protected against deletion.")
    build_ids = store.unfinished_builds(conn, found.project.id)
    for build_id in build_ids:
        store.cancel_build(conn, build_id)
    return found.project, build_ids


async def regenerate_repos(ctx: Services, user: User, owner: str, name: str) -> Project:
    """Write the repository metadata of each of the project's chroots again."""
    found = await ctx.db.read(_allowed, user, owner, name, operations.REGENERATE_REPOS, None)
    publisher = ctx.publisher
    project = found.project
    for chroot in found.chroots:
        await publisher.createrepo(publisher.chroot_dir(project.owner_name, project.name, chroot))
    log.info("repositories regenerated owner=%s name=%s", project.owner_name, project.name)
    return project


# ---------------------------------------------------------------- chroots


async def edit_chroot(
    ctx: Services,
    user: User,
    owner: str,
    name: str,
    chroot: str,
    values: Mapping[str, object],
    precheck: Precheck | None = None,
) -> tuple[Project, str, str]:
    """Change a chroot's buildroot packages and extra repositories (operations.EDIT_CHROOT);
    returns the project and the chroot's (packages, repositories) as stored."""
    return await ctx.db.write(_edit_chroot, user, owner, name, chroot, values, precheck)


def find_chroot(found: Found, chroot: str) -> str:
    if chroot not in found.chroots:
        raise NotFound(f"Chroot name {chroot[:100]} does not exist in this project.")
    return chroot


def _edit_chroot(
    conn: sqlite3.Connection,
    user: User,
    owner: str,
    name: str,
    chroot: str,
    values: Mapping[str, object],
    precheck: Precheck | None,
) -> tuple[Project, str, str]:
    found = find_project(conn, owner, name, user)
    find_chroot(found, chroot)
    operation = operations.EDIT_CHROOT
    assert operation.action is not None
    auth.check_permission(user, found.project, found.roles, operation.action)
    if precheck is not None:
        precheck(found.project, found.chroots)
    parsed = operation.parse(values, user)
    project_id = found.project.id
    if "buildroot_pkgs" in parsed:
        store.set_chroot_packages(conn, project_id, chroot, str(parsed["buildroot_pkgs"]))
    if "repos" in parsed:
        store.set_chroot_repos(conn, project_id, chroot, str(parsed["repos"]))
    settings = store.get_chroot_settings(conn, project_id, chroot)
    assert settings is not None
    return found.project, *settings


# ---------------------------------------------------------------- permissions


async def set_permissions(
    ctx: Services,
    user: User,
    owner: str,
    name: str,
    changes: Mapping[str, object],
) -> dict[str, dict[str, str]]:
    """Set roles (operations.SET_PERMISSIONS): `{user name: {role: state}}` with roles
    builder/admin and states nothing/request/approved. Returns every user's roles."""
    return await ctx.db.write(_set_permissions, user, owner, name, changes)


def _set_permissions(
    conn: sqlite3.Connection, user: User, owner: str, name: str, changes: Mapping[str, object]
) -> dict[str, dict[str, str]]:
    found = _allowed(conn, user, owner, name, operations.SET_PERMISSIONS, None)
    wanted: list[tuple[int, str, str]] = []
    for user_name, roles in changes.items():
        if not isinstance(roles, dict) or not roles:
            raise BadRequest(
                f"Permissions of {user_name[:100]}: give an object of roles "
                "(builder, admin) and states (nothing, request, approved)."
            )
        target = store.get_user(conn, user_name) if forms.NAME_RE.match(user_name) else None
        if target is None:
            raise BadRequest(f"User '{user_name[:100]}' does not exist.")
        for role, state in roles.items():
            if role not in operations.ROLES:
                raise BadRequest(f"Unknown role '{str(role)[:40]}': use builder or admin.")
            if state not in operations.PERMISSION_STATES:
                raise BadRequest(
                    f"Unknown permission state '{str(state)[:40]}': use nothing, request "
                    "or approved."
                )
            wanted.append((target.id, role, state))
    for user_id, role, state in wanted:
        store.set_permission(conn, found.project.id, user_id, role, state)
    return store.permission_states(conn, found.project.id)


async def request_permissions(
    ctx: Services, user: User, owner: str, name: str, values: Mapping[str, object]
) -> dict[str, str]:
    """Ask for (true) or withdraw (false) the builder and admin roles on someone else's
    project (operations.REQUEST_PERMISSIONS). An approved role asked for again stays
    approved. Returns the caller's roles on the project afterwards."""
    return await ctx.db.write(_request_permissions, user, owner, name, values)


def _request_permissions(
    conn: sqlite3.Connection, user: User, owner: str, name: str, values: Mapping[str, object]
) -> dict[str, str]:
    operation = operations.REQUEST_PERMISSIONS
    found = _allowed(conn, user, owner, name, operation, None)
    if found.project.owner_id == user.id:
        raise BadRequest("You own this project: you have every permission on it already.")
    parsed = operation.parse(values, user)
    if not parsed:
        raise BadRequest("Ask for a role: builder or admin.")
    current = store.permission_states(conn, found.project.id).get(user.name, {})
    for role, wanted in parsed.items():
        if not wanted:
            store.set_permission(conn, found.project.id, user.id, role, "nothing")
        elif current.get(role) != "approved":
            store.set_permission(conn, found.project.id, user.id, role, "request")
    return store.permission_states(conn, found.project.id).get(user.name, {})


async def get_permissions(
    ctx: Services, user: User, owner: str, name: str
) -> dict[str, dict[str, str]]:
    """Every user's roles on the project; only its owner and admins may see them."""
    return await ctx.db.read(_get_permissions, user, owner, name)


def _get_permissions(
    conn: sqlite3.Connection, user: User, owner: str, name: str
) -> dict[str, dict[str, str]]:
    found = _allowed(conn, user, owner, name, operations.SET_PERMISSIONS, None)
    return store.permission_states(conn, found.project.id)


# ---------------------------------------------------------------- builds


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
    found = _allowed(conn, user, owner, name, operation, precheck)
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
    chroots = _chroot_names(parsed.get("chroots", []), found.chroots) or list(found.chroots)
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
    source = await asyncio.to_thread(_copy_source, build, config.data_dir / "uploads")
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
            shutil.rmtree(Path(source.srpm_path).parent, ignore_errors=True)
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


# ---------------------------------------------------------------- packages


async def delete_package(
    ctx: Services, user: User, owner: str, name: str, package: str
) -> tuple[Project, store.Package]:
    """Delete a package's builds (see delete_builds) and its record
    (operations.DELETE_PACKAGE). Returns the project and the package as it was."""
    db = ctx.db
    project, found, build_ids = await db.read(_package_builds, user, owner, name, package)
    if build_ids:
        await delete_builds(ctx, user, build_ids)
    await db.write(store.delete_package, project.id, package)
    log.info("package deleted owner=%s project=%s name=%s", owner, name, package)
    return project, found


def _package_builds(
    conn: sqlite3.Connection, user: User, owner: str, name: str, package: str
) -> tuple[Project, store.Package, list[int]]:
    project = _allowed(conn, user, owner, name, operations.DELETE_PACKAGE, None).project
    found = store.packages_page(conn, project.id, package, 0, 1, True)
    if not found:
        raise NotFound(f"Package {package[:100]} does not exist in {project.full_name}.")
    return project, found[0], store.project_build_ids(conn, project.id, package)


async def reset_package(ctx: Services, user: User, owner: str, name: str, package: str) -> Project:
    """Forget a package's source and its build options (operations.RESET_PACKAGE): it is
    then a package built from SRPMs only, as before it was defined. NotFound, Forbidden."""

    def write(conn: sqlite3.Connection) -> Project:
        project = _allowed(conn, user, owner, name, operations.RESET_PACKAGE, None).project
        if store.get_package(conn, project.id, package) is None:
            raise NotFound(f"Package {package[:100]} does not exist in {project.full_name}.")
        store.save_package(conn, project.id, package, "unset", {}, False, {})
        return project

    project = await ctx.db.write(write)
    log.info("package reset project=%s package=%s", project.full_name, package)
    return project


async def save_package(
    ctx: Services,
    user: User,
    owner: str,
    name: str,
    package: str,
    source_type: str,
    values: Mapping[str, object],
    *,
    create: bool,
) -> Project:
    """Define a package with a source (`create`: Conflict when it exists) or change one
    (NotFound when it does not), as operations.SAVE_PACKAGE. On a change, settings not
    given (None) keep their stored values. BadRequest for a source type or setting that
    is not right, Forbidden, NotFound."""

    def write(conn: sqlite3.Connection) -> Project:
        project = _allowed(conn, user, owner, name, operations.SAVE_PACKAGE, None).project
        forms.check_name(package, "package_name")
        stored = store.get_package(conn, project.id, package)
        if create and stored is not None and stored.source_type != "unset":
            raise Conflict(f"Package {package} already exists in {project.full_name}.")
        if not create and stored is None:
            raise NotFound(f"Package {package[:100]} does not exist in {project.full_name}.")
        given = {k: v for k, v in values.items() if v is not None}
        before = stored if stored is not None and stored.source_type == source_type else None
        source = sources.parse_source(source_type, {**(before.source if before else {}), **given})
        parsed = operations.SAVE_PACKAGE.parse(given, user)
        options = dict(stored.options) if stored is not None else {}
        if "timeout" in parsed:
            options["timeout"] = parsed["timeout"]
        if "chroot_denylist" in parsed:
            options["chroot_denylist"] = parsed["chroot_denylist"]
        rebuild = parsed.get("webhook_rebuild", stored.webhook_rebuild if stored else False)
        store.save_package(conn, project.id, package, source_type, source, bool(rebuild), options)
        if "max_builds" in parsed:
            settings = store.package_settings(conn, project.id).get(package, {})
            keep = int(str(parsed["max_builds"])) or None
            store.set_package_settings(conn, project.id, package, {**settings, "keep_last": keep})
        return project

    project = await ctx.db.write(write)
    log.info(
        "package saved project=%s package=%s source_type=%s",
        project.full_name,
        package,
        source_type,
    )
    return project


async def build_package(
    ctx: Services,
    user: User,
    owner: str,
    name: str,
    package: str,
    values: Mapping[str, object],
    *,
    committish: str | None = None,
) -> tuple[Project, int]:
    """Build a package from its stored source (operations.SUBMIT_BUILD with the package's
    build options as defaults): NotFound, Forbidden, BadRequest for a package without one.
    `committish` builds that commit or tag of an scm source instead of the stored one (a
    webhook's pushed commit)."""
    found = await check_allowed(ctx, user, owner, name, operations.SUBMIT_BUILD)
    stored = await ctx.db.read(store.get_package, found.project.id, package)
    if stored is None:
        raise NotFound(f"Package {package[:100]} does not exist in {found.project.full_name}.")
    if stored.source_type not in sources.SOURCE_TYPES:
        raise BadRequest(
            f"Package {package} has no source to build from: define one (scm or custom), or "
            "build an SRPM by URL or upload."
        )
    values = {k: v for k, v in values.items() if v is not None and k != "pkgs"}
    if "timeout" not in values and stored.options.get("timeout"):
        values["timeout"] = stored.options["timeout"]
    denied = stored.options.get("chroot_denylist") or []
    if denied:
        asked = operations.words(values.get("exclude_chroots"), "exclude_chroots")
        values["exclude_chroots"] = " ".join([asked, *denied])
    chosen = stored.source
    if committish and stored.source_type == "scm":
        chosen = {**stored.source, "committish": committish}
    label = _source_label(stored.source_type, chosen)
    source = store.NewBuild(label, None, stored.source_type, chosen)
    project, ids = await submit_builds(ctx, user, owner, name, values, source)
    log.info("package build project=%s package=%s build=%d", project.full_name, package, ids[0])
    return project, ids[0]


def _source_label(source_type: str, source: Mapping[str, object]) -> str:
    """What a build from a package source shows as its source: the clone URL (without
    credentials) or "custom script"."""
    if source_type == "scm":
        return public_url(str(source.get("clone_url") or ""))
    return "custom script"


async def submit_source_build(
    ctx: Services,
    user: User,
    owner: str,
    name: str,
    source_type: str,
    values: Mapping[str, object],
) -> tuple[Project, int]:
    """Build straight from a source given with the request (API v3 build/create/scm and
    build/create/custom), without defining a package: BadRequest for a bad source."""
    source = sources.parse_source(source_type, values)
    new = store.NewBuild(_source_label(source_type, source), None, source_type, source)
    build_values = {k: v for k, v in values.items() if k not in source and k != "pkgs"}
    project, ids = await submit_builds(ctx, user, owner, name, build_values, new)
    return project, ids[0]


async def set_package_retention(
    ctx: Services,
    user: User,
    owner: str,
    name: str,
    pkg_name: str,
    values: dict[str, int | None],
) -> Project:
    """Store a package's own retention settings (None: the project's value), once `user` is
    found allowed to edit the project (404, 403) and the project has built the package
    (404). The values are checked by the caller's form (forms.RETENTION_LIMITS)."""

    def write(conn: sqlite3.Connection) -> Project:
        project = _allowed(conn, user, owner, name, operations.EDIT_PROJECT, None).project
        if pkg_name not in store.project_packages(conn, project.id):
            raise NotFound(f"Package {pkg_name[:100]} does not exist in {project.full_name}.")
        store.set_package_settings(conn, project.id, pkg_name, values)
        return project

    project = await ctx.db.write(write)
    log.info("package retention project=%s package=%s %s", project.full_name, pkg_name, values)
    return project


# ---------------------------------------------------------------- incoming webhooks


# How a webhook starts the build of one package from its stored source, as the project's
# owner: build_package, or what a caller passes instead, called as build_package is.
PackageBuild = Callable[..., Awaitable[tuple[Project, int]]]


# The forges of Copr's webhook URLs that this server does not take.
UNSUPPORTED_FORGES = ("bitbucket", "pagure")


async def generate_webhook_secret(
    ctx: Services, user: User, owner: str, name: str
) -> tuple[Project, str]:
    """Give the project's incoming webhooks a new random secret (a UUID, as Copr's), which
    replaces the old one (operations.GENERATE_WEBHOOK_SECRET: owner and admins)."""

    def write(conn: sqlite3.Connection) -> tuple[Project, str]:
        operation = operations.GENERATE_WEBHOOK_SECRET
        project = _allowed(conn, user, owner, name, operation, None).project
        secret = str(uuid.uuid4())
        store.set_webhook_secret(conn, project.id, secret)
        return project, secret

    project, secret = await ctx.db.write(write)
    log.info("webhook secret generated project=%s by=%s", project.full_name, user.name)
    return project, secret


@dataclass(frozen=True)
class Incoming:
    """A webhook delivery as it came: `owner`/`name` address the project in our URLs, which
    require a signature; `project_id` with `url_secret` in Copr's, which carry the secret.
    `package` is the package the URL names, if any."""

    forge: str
    headers: Mapping[str, str]
    body: bytes
    owner: str = ""
    name: str = ""
    project_id: int | None = None
    url_secret: str | None = None
    package: str | None = None


@dataclass(frozen=True)
class DeliveryResult:
    """What a delivery did: our id of its record (None for a replay), its answer's status,
    one line of outcome and the builds it started."""

    delivery: int | None
    status: int
    outcome: str
    build_ids: tuple[int, ...]


@dataclass(frozen=True)
class _WebhookTarget:
    project: Project
    secret: str | None
    owner: User
    packages: list[store.Package]
    named: store.Package | None


def _webhook_target(conn: sqlite3.Connection, incoming: Incoming) -> _WebhookTarget:
    if incoming.project_id is not None:
        rows = store.projects_by_ids(conn, [incoming.project_id])
        project = rows[0][0] if rows else None
    elif forms.NAME_RE.match(incoming.owner) and forms.NAME_RE.match(incoming.name):
        project = store.get_project(conn, incoming.owner, incoming.name)
    else:
        project = None
    if project is None:
        raise NotFound("No such project: check the webhook URL.")
    owner = store.get_user_by_id(conn, project.owner_id)
    assert owner is not None  # a project's owner is never deleted before it
    named = None
    if incoming.package is not None:
        named = store.get_package(conn, project.id, incoming.package)
    return _WebhookTarget(
        project,
        store.webhook_secret(conn, project.id),
        owner,
        store.webhook_packages(conn, project.id),
        named,
    )


_DELIVERY_ERRORS: dict[int, type[CoprLiteError]] = {
    400: BadRequest,
    403: Forbidden,
    404: NotFound,
}


def _to_build(push: forges.Push, target: _WebhookTarget, package: str | None) -> list[str]:
    """The packages a verified delivery builds."""
    if push.event == "custom":
        return [package] if package is not None else []
    return [
        p.name
        for p in target.packages
        if p.source_type == "scm" and forges.push_builds(push, p.name, p.source, package)
    ]


def _nothing_to_build(push: forges.Push) -> str:
    if push.event == "ping":
        return "ping"
    if push.event not in ("push", "tag", "custom"):
        return f"event {push.event} ignored"
    if push.deleted:
        return f"{push.ref_text} deleted: nothing to build"
    url = push.urls[0] if push.urls else "(no URL)"
    return f"no package matches {url} {push.ref_text}"


def _verified(incoming: Incoming, target: _WebhookTarget) -> forges.Push:
    """The delivery read, once its secret (in the URL) or signature is found right and the
    package its URL names has a source; forges.DeliveryError otherwise."""
    if incoming.url_secret is not None and not (
        target.secret is not None
        and hmac.compare_digest(incoming.url_secret.encode(), target.secret.encode())
    ):
        raise forges.DeliveryError(403, "Bad webhook URL: its secret is not the project's.")
    push = forges.verify_and_parse(
        incoming.forge,
        incoming.headers,
        incoming.body,
        target.secret,
        url_secret_ok=incoming.url_secret is not None,
    )
    package = incoming.package
    if package is not None and (target.named is None or target.named.source_type == "unset"):
        raise forges.DeliveryError(
            404, f"Package {package[:100]} of {target.project.full_name} has no source to build."
        )
    if push.event == "custom" and package is None:
        raise forges.DeliveryError(400, "A custom webhook URL must end with a package name.")
    return push


async def receive_webhook(
    ctx: Services, incoming: Incoming, build: PackageBuild | None = None
) -> DeliveryResult:
    """Take one webhook delivery: find the project (NotFound), check the secret in the URL
    and the signature (Forbidden, recorded), read the payload (BadRequest, recorded),
    record the delivery once per forge delivery id (a replay builds nothing), then build
    each package the push concerns from its source, as the project's owner."""
    forge, package = incoming.forge, incoming.package
    try:
        if forge in UNSUPPORTED_FORGES:
            raise NotFound(f"{forge.capitalize()} webhooks are not supported by this server.")
        if forge not in forges.FORGES:
            known = ", ".join(forges.FORGES)
            raise NotFound(f"Unknown forge {forge[:40]!r}: use one of {known}.")
        target = await ctx.db.read(_webhook_target, incoming)
    except NotFound as exc:
        where = incoming.project_id or f"{incoming.owner[:100]}/{incoming.name[:100]}"
        log.info(
            "webhook delivery refused project=%s forge=%s status=404 outcome=%r",
            where,
            forge[:40],
            exc.message,
        )
        raise
    project = target.project
    now = int(time.time())
    try:
        push = _verified(incoming, target)
    except forges.DeliveryError as exc:
        # The delivery id of a refused delivery is not trusted: it is not recorded.
        event = forges.event_name(forge, incoming.headers)
        await ctx.db.write(
            store.record_delivery, project.id, forge, None, event, now, exc.status, exc.text
        )
        _log_delivery(project, forge, None, event, exc.status, exc.text, ())
        raise _DELIVERY_ERRORS[exc.status](exc.text) from None

    names = _to_build(push, target, package)
    outcome = _nothing_to_build(push) if not names else "building " + ", ".join(names)
    delivery = await ctx.db.write(
        store.record_delivery, project.id, forge, push.delivery_id, push.event, now, 200, outcome
    )
    if delivery is None:
        outcome = f"already received: delivery {push.delivery_id} builds nothing again"
        _log_delivery(project, forge, push.delivery_id, push.event, 200, outcome, ())
        return DeliveryResult(None, 200, outcome, ())
    build_ids: list[int] = []
    failures: list[str] = []
    # The pushed commit (a tag: its name) is what the build checks out, as in Copr.
    committish = push.tag or push.commit
    for name in names:
        try:
            _, build_id = await (build or build_package)(
                ctx, target.owner, project.owner_name, project.name, name, {}, committish=committish
            )
        except CoprLiteError as exc:
            failures.append(f"{name}: {exc.message}")
        else:
            build_ids.append(build_id)
    if names:
        started = f"builds {', '.join(map(str, build_ids))} started" if build_ids else ""
        outcome = "; ".join(filter(None, [started, *failures]))
        await ctx.db.write(store.set_delivery_outcome, delivery, 200, outcome, build_ids)
    _log_delivery(project, forge, push.delivery_id, push.event, 200, outcome, build_ids)
    return DeliveryResult(delivery, 200, outcome, tuple(build_ids))


def _log_delivery(
    project: Project,
    forge: str,
    delivery_id: str | None,
    event: str,
    status: int,
    outcome: str,
    build_ids: Iterable[int],
) -> None:
    log.info(
        "webhook delivery project=%s forge=%s delivery=%s event=%s status=%d builds=%s outcome=%r",
        project.full_name,
        forge,
        delivery_id or "-",
        event,
        status,
        ",".join(map(str, build_ids)) or "-",
        outcome,
    )


# ---------------------------------------------------------------- search


def search_terms(query: str, field: str = "project") -> tuple[list[str], str | None, str | None]:
    """(words, owner part, name part) of a search string: `owner/name` substrings, or up
    to 20 words that must all match. A ValidationError on `field` when it is empty."""
    text = query.replace("*", "").strip()
    if not text:
        raise forms.validation_error(field, "Search string must have at least 1 character.")
    if any(unicodedata.category(c) == "Cc" and not c.isspace() for c in text):
        # SQLite's LIKE ends a pattern at NUL, so "a\0b" would search for "a".
        raise forms.validation_error(field, "Search string must not hold control characters.")
    if "/" in text:
        owner_part, _, rest = text.partition("/")
        return [], owner_part, rest.split("/", 1)[0]
    return text.split()[:20], None, None
