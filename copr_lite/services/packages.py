"""Packages: their sources, builds from them, retention, deletion."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping

from .. import forms, operations, sources, store
from ..errors import BadRequest, Conflict, NotFound
from ..models import Project, User
from ..srpm import public_url
from .builds import delete_builds, submit_builds
from .common import Services, allowed_in, check_allowed

log = logging.getLogger(__name__)


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
    project = allowed_in(conn, user, owner, name, operations.DELETE_PACKAGE, None).project
    found = store.packages_page(conn, project.id, package, 0, 1, True)
    if not found:
        raise NotFound(f"Package {package[:100]} does not exist in {project.full_name}.")
    return project, found[0], store.project_build_ids(conn, project.id, package)


async def reset_package(ctx: Services, user: User, owner: str, name: str, package: str) -> Project:
    """Forget a package's source and its build options (operations.RESET_PACKAGE): it is
    then a package built from SRPMs only, as before it was defined. NotFound, Forbidden."""

    def write(conn: sqlite3.Connection) -> Project:
        project = allowed_in(conn, user, owner, name, operations.RESET_PACKAGE, None).project
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
        project = allowed_in(conn, user, owner, name, operations.SAVE_PACKAGE, None).project
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
        project = allowed_in(conn, user, owner, name, operations.EDIT_PROJECT, None).project
        if pkg_name not in store.project_packages(conn, project.id):
            raise NotFound(f"Package {pkg_name[:100]} does not exist in {project.full_name}.")
        store.set_package_settings(conn, project.id, pkg_name, values)
        return project

    project = await ctx.db.write(write)
    log.info("package retention project=%s package=%s %s", project.full_name, pkg_name, values)
    return project
