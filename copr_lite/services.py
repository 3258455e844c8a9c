"""What the API and the web UI both do: create a project, submit builds, cancel or delete
builds, delete a project, search. Callers have checked who may do it and validated the fields;
these functions store the change and tell the dispatcher and the publisher.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import sqlite3
import unicodedata
from pathlib import Path

from aiohttp import web

from . import auth, forms, store
from .errors import BadRequest, Conflict, Forbidden, NotFound
from .forms import Form
from .keys import CONFIG, DB, DISPATCHER, PUBLISHER
from .models import Build, Project, User

log = logging.getLogger(__name__)

# Seconds running builders get to stop when their project is deleted (spec A22).
DELETE_WAIT = 12.0
ROLES = ("builder", "admin")


def selected_chroots(form: Form, offered: set[str] | tuple[str, ...]) -> list[str]:
    """Chroots chosen by `<chroot>=y` fields and the `chroots` convenience field."""
    chosen = [name for name in offered if form.checkbox(name)]
    for name in (form.get("chroots") or "").split():
        if name not in offered:
            raise forms.validation_error("chroots", f"Chroot {name} is not available here.")
        chosen.append(name)
    return sorted(set(chosen))


# ---------------------------------------------------------------- projects


async def create_project(
    app: web.Application,
    user: User,
    owner: User,
    fields: dict[str, object],
    chroots: list[str],
    initial: list[str],
) -> tuple[int, list[int]]:
    """Store a project of `owner` (and a build of each `initial` SRPM URL, submitted by
    `user`); returns (project id, build ids). Conflict when the owner has one so named."""
    config, db = app[CONFIG], app[DB]
    name = str(fields["name"])
    try:
        project_id, build_ids = await db.write(
            _create_with_builds, owner.id, user.id, fields, chroots, initial, config.default_timeout
        )
    except sqlite3.IntegrityError:
        raise Conflict(f"You already have a project named '{name}'.") from None
    dispatcher = app[DISPATCHER]
    dispatcher.prepare_repos(owner.name, name, chroots)
    if build_ids:
        dispatcher.submitted(build_ids)
    log.info("project created owner=%s name=%s id=%d", owner.name, name, project_id)
    return project_id, build_ids


def _create_with_builds(
    conn: sqlite3.Connection,
    owner_id: int,
    submitter_id: int,
    fields: dict[str, object],
    chroots: list[str],
    initial: list[str],
    timeout: int,
) -> tuple[int, list[int]]:
    project_id = store.create_project(conn, owner_id, fields, chroots)
    build_ids: list[int] = []
    if initial:
        build_ids = store.insert_builds(
            conn,
            project_id,
            submitter_id,
            [store.NewBuild(url) for url in initial],
            chroots,
            memory_reqs=forms.DEFAULT_MEMORY,
            timeout=timeout,
            enable_net=bool(fields["build_enable_net"]),
            repos="",
            background=False,
        )
    return project_id, build_ids


async def delete_project(app: web.Application, project: Project) -> None:
    """Cancel the project's unfinished builds, then remove it, its builds and its
    published results (spec A11). NotFound when a concurrent delete removed it first."""
    db = app[DB]
    canceled = await db.write(_cancel_unfinished, project.id)
    if canceled:
        # Running builders get DELETE_WAIT seconds to stop; the rest finish stopping
        # in the background after the project is gone (spec A22).
        dispatcher = app[DISPATCHER]
        await asyncio.wait(
            [asyncio.ensure_future(dispatcher.cancel_build(b)) for b in canceled],
            timeout=DELETE_WAIT,
        )
    if not await db.write(store.delete_project, project.id):
        # Another delete of the same project won; its results are that one's to remove.
        raise NotFound(f"Project {project.owner_name}/{project.name} does not exist.")
    await app[PUBLISHER].remove_project(project.owner_name, project.name)
    signer = app[PUBLISHER].signer
    if signer is not None:
        await signer.forget(project.owner_name, project.name)
    log.info("project deleted owner=%s name=%s", project.owner_name, project.name)


def _cancel_unfinished(conn: sqlite3.Connection, project_id: int) -> list[int]:
    build_ids = store.unfinished_builds(conn, project_id)
    for build_id in build_ids:
        store.cancel_build(conn, build_id)
    return build_ids


# ---------------------------------------------------------------- builds


async def submit_builds(
    app: web.Application,
    user: User,
    project: Project,
    sources: list[store.NewBuild],
    chroots: list[str],
    *,
    memory: int,
    build_timeout: int,
    enable_net: bool,
    background: bool,
) -> list[int]:
    """Store one build per source, its chroots in `importing`, and start their imports.
    `build_timeout` (seconds) 0 means the configured default."""
    config = app[CONFIG]
    ids = await app[DB].write(
        insert_builds,
        project,
        user.id,
        sources,
        chroots,
        memory,
        build_timeout or config.default_timeout,
        enable_net,
        background,
        config.public_results_url,
    )
    app[DISPATCHER].submitted(ids)
    return ids


def insert_builds(
    conn: sqlite3.Connection,
    project: Project,
    submitter_id: int,
    sources: list[store.NewBuild],
    chroots: list[str],
    memory: int,
    timeout: int,
    enable_net: bool,
    background: bool,
    results_url: str,
) -> list[int]:
    ids = store.insert_builds(
        conn,
        project.id,
        submitter_id,
        sources,
        chroots,
        memory_reqs=memory,
        timeout=timeout,
        enable_net=enable_net,
        repos=project.repos,
        background=background,
    )
    for build_id, source in zip(ids, sources, strict=True):
        if source.srpm_path is not None:
            # An uploaded SRPM is published with the build's import results.
            url = (
                f"{results_url}/{project.owner_name}/{project.name}/srpm-builds/"
                f"{build_id:08d}/{Path(source.srpm_path).name}"
            )
            store.set_source_url(conn, build_id, url)
    return ids


async def cancel_build(app: web.Application, user: User, build_id: int) -> list[str]:
    """Cancel a build for `user` (spec A10): NotFound, Forbidden, or Conflict when nothing
    is left to cancel. Returns the canceled chroots."""
    db = app[DB]
    build = await db.read(store.get_build, build_id)
    if build is None:
        raise NotFound(f"Build {build_id} does not exist.")
    found = await db.read(
        store.get_project_with_roles, build.owner_name, build.project_name, user.id
    )
    if found is None:  # deleted meanwhile
        raise NotFound(f"Build {build_id} does not exist.")
    project, roles, _ = found
    auth.check_permission(user, project, roles, auth.Action.BUILD)
    canceled = await db.write(store.cancel_build, build_id)
    if not canceled:
        raise Conflict(f"Cannot cancel build {build_id}")
    await app[DISPATCHER].cancel_build(build_id)
    log.info("build canceled id=%d chroots=%s", build_id, ",".join(canceled))
    return canceled


async def rebuild(
    app: web.Application, user: User, build_id: int, chroots: list[str] | None
) -> int:
    """Submit the source of build `build_id` again, for `chroots` (None: the build's own
    chroots that the project still has). The imported SRPM is copied, so the rebuild takes
    exactly what the first build took; a build whose import failed is fetched again from its
    URL. NotFound, Forbidden, or BadRequest for a chroot the project does not have or
    nothing to rebuild from. Returns the new build's id."""
    db, config = app[DB], app[CONFIG]
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
    try:
        ids = await submit_builds(
            app,
            user,
            project,
            [source],
            sorted(set(chroots)),
            memory=build.memory_reqs,
            build_timeout=build.timeout,
            enable_net=build.enable_net,
            background=build.background,
        )
    except BaseException:
        if source.srpm_path is not None:
            shutil.rmtree(Path(source.srpm_path).parent, ignore_errors=True)
        raise
    log.info("build resubmitted id=%d from=%d by=%s", ids[0], build_id, user.name)
    return ids[0]


def _copy_source(build: Build, upload_dir: Path) -> store.NewBuild:
    """The source of a rebuild: a copy of the imported SRPM, as if uploaded again, or the
    original URL when nothing was imported."""
    if build.srpm_path is not None and Path(build.srpm_path).is_file():
        imported = Path(build.srpm_path)
        target = upload_dir / secrets.token_hex(8) / imported.name
        target.parent.mkdir(parents=True)
        shutil.copyfile(imported, target)
        return store.NewBuild(imported.name, str(target))
    if (
        build.source_url.startswith(("http://", "https://"))
        and "/srpm-builds/" not in build.source_url
    ):
        return store.NewBuild(build.source_url)
    raise BadRequest(f"Build {build.id} has no source left to rebuild from.")


async def set_role(
    app: web.Application, user: User, project: Project, name: str, role: str, held: bool
) -> bool:
    """Grant (`held`) or revoke `role` ('builder' or 'admin') of user `name` on `project`,
    for `user`, who must be allowed to modify the project. Returns whether anything
    changed. NotFound for an unknown user, BadRequest for an unknown role or the owner."""
    if role not in ROLES:
        raise BadRequest(f"Unknown role {role[:40]!r}: use builder or admin.")
    db = app[DB]
    target = await db.read(store.get_user, name)
    if target is None:
        raise NotFound(f"User {name[:100]} does not exist.")
    if target.id == project.owner_id:
        raise BadRequest(f"{name} owns {project.full_name}: an owner needs no role.")
    if held:
        changed = await db.write(_grant, project.id, target.id, role)
    else:
        changed = await db.write(store.revoke, project.id, target.id, role)
    if changed:
        log.info(
            "role %s project=%s user=%s role=%s by=%s",
            "granted" if held else "revoked",
            project.full_name,
            name,
            role,
            user.name,
        )
    return changed


def _grant(conn: sqlite3.Connection, project_id: int, user_id: int, role: str) -> bool:
    if role in store.project_roles(conn, project_id, user_id):
        return False
    store.grant(conn, project_id, user_id, role)
    return True


async def delete_builds(app: web.Application, user: User, build_ids: list[int]) -> list[int]:
    """Delete finished builds for `user`: their rows, results, logs and imported SRPMs, and
    republish the repositories they were published in. All or nothing: NotFound for an
    unknown build, Forbidden unless `user` submitted it or may modify its project, Conflict
    while one is unfinished (cancel it first). Returns the ids deleted."""
    builds = await app[DB].write(_delete_finished, user, build_ids)
    publisher = app[PUBLISHER]
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
            try:
                auth.check_permission(user, project, roles, auth.Action.MODIFY)
            except Forbidden:
                raise Forbidden(f"You are not allowed to delete build {build_id}.") from None
        if not all(chroot.status.terminal for chroot in build.chroots):
            raise Conflict(f"You can not delete build `{build_id}` which is not finished.")
        builds.append(build)
    deleted = set(store.delete_builds(conn, builds))
    return [build for build in builds if build.id in deleted]


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
