"""Projects, their chroots and their permissions: create, edit, delete, regenerate."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Mapping

from .. import auth, forms, operations, store
from ..config import Config
from ..errors import BadRequest, Conflict, Forbidden, NotFound
from ..models import Project, User
from .common import Found, Precheck, Services, allowed_in, chroot_names, find_project

log = logging.getLogger(__name__)

_PROJECT_COLUMNS = store.MODIFIABLE_PROJECT_FIELDS

# Seconds running builders get to stop when their project is deleted (spec A22).
DELETE_WAIT = 12.0


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
    chroots = chroot_names(parsed.get("chroots", []), set(config.chroots))
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
    found = allowed_in(conn, user, owner, name, operation, precheck)
    parsed = operation.parse(values, user, config.srpm_allowed_networks)
    chroots, added = list(found.chroots), []
    if "chroots" in parsed:
        chroots = chroot_names(parsed["chroots"], set(config.chroots))
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
    found = allowed_in(conn, user, owner, name, operations.DELETE_PROJECT, precheck)
    if found.project.persistent:
        raise Forbidden("This project is protected against deletion.")
    build_ids = store.unfinished_builds(conn, found.project.id)
    for build_id in build_ids:
        store.cancel_build(conn, build_id)
    return found.project, build_ids


async def regenerate_repos(ctx: Services, user: User, owner: str, name: str) -> Project:
    """Write the repository metadata of each of the project's chroots again."""
    found = await ctx.db.read(allowed_in, user, owner, name, operations.REGENERATE_REPOS, None)
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
    found = allowed_in(conn, user, owner, name, operations.SET_PERMISSIONS, None)
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
    found = allowed_in(conn, user, owner, name, operation, None)
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
    found = allowed_in(conn, user, owner, name, operations.SET_PERMISSIONS, None)
    return store.permission_states(conn, found.project.id)
