"""The Copr API v1 (`/api/coprs/...`): HTTP in, store calls, JSON out.

Checks run in the order of spec A17: credentials (401), the addressed owner, project, build
or chroot (404), permission (403), the body (400, 413), then the state (409).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable, Collection, Hashable
from typing import Any

import orjson
from aiohttp import web

from .. import auth, forms, operations, services, signin, store
from ..build_states import STATES
from ..cache import Fresh, cached_json
from ..changes import Tag, build_tag, owner_tag, project_tag
from ..config import Config
from ..errors import BadRequest, CoprLiteError, NotFound
from ..forms import Form
from ..keys import ANSWERS, BUILD_STATES, CONFIG, DB, MONITOR, PLUGINS, SERVICES
from ..models import Build, Project, User
from ..monitor import build_entry, package_entries
from ..openapi import openapi_document
from ..plugins import api_paths
from ..responses import json_response
from ..states import State, derive_build_state
from .common import (
    build_id_of,
    package_name_from_url,
    project_of,
    read_with_srpm,
    results_base,
    uploaded_srpm,
)

log = logging.getLogger(__name__)

# Fields historic clients send (spec A4, §5); those that mean something here are stored.
MODIFY_FIELDS = store.MODIFIABLE_PROJECT_FIELDS | {
    "disable_createrepo",
    "username",
    "id",
    "chroots",
}
CREATE_FIELDS = MODIFY_FIELDS | {"name", "initial_pkgs", "group_id"}
BUILD_FIELDS = frozenset(
    {
        "pkgs",
        "memory_reqs",
        "timeout",
        "enable_net",
        "build_enable_net",
        "background",
        "package_name",
        "source_type",
        "username",
        "chroots",
        "id",
    }
)
CHROOT_MODIFY_FIELDS = frozenset({"buildroot_pkgs", "username", "id"})
DELETE_FIELDS = frozenset({"verify", "username", "id"})


# ---------------------------------------------------------------- helpers


def ok(**payload: Any) -> web.Response:
    return json_response({"output": "ok", **payload})


Computed = tuple[dict[str, Any], Collection[Tag]]


async def cached_ok(
    request: web.Request, key: Hashable, compute: Callable[[], Awaitable[Computed]]
) -> web.Response:
    """An `ok` answer from the AnswerCache (see cache.cached_json); `compute` returns the
    payload and the tags it depends on."""

    async def with_ok() -> Computed:
        payload, depends_on = await compute()
        return {"output": "ok", **payload}, depends_on

    return await cached_json(request.app[ANSWERS], key, with_ok)


async def caller(request: web.Request) -> User:
    return await signin.api_user(request)


def _name(request: web.Request, key: str) -> str:
    return request.match_info[key]


def yum_repos(
    config: Config, project: Project, chroots: list[str] | tuple[str, ...]
) -> dict[str, str]:
    base = results_base(config, project.owner_name, project.name)
    return {chroot: f"{base}{chroot}/" for chroot in chroots}


def project_json(
    config: Config, project: Project, chroots: list[str] | tuple[str, ...]
) -> dict[str, Any]:
    yum_base = results_base(config, project.owner_name, project.name)
    return {
        "name": project.name,
        "description": project.description,
        "instructions": project.instructions,
        "additional_repos": project.repos,
        "yum_repos": yum_repos(config, project, chroots),
        # Added field (old clients ignore it): where dnf's gpgkey= points.
        "gpg_key_url": f"{yum_base}pubkey.gpg" if config.sign else None,
        "auto_createrepo": project.auto_createrepo,
        "build_enable_net": project.build_enable_net,
        "persistent": project.persistent,
        "unlisted_on_hp": project.unlisted_on_hp,
        "auto_prune": project.auto_prune,
        # Added fields (old clients ignore them): retention and disk usage.
        "prune_days": project.prune_days,
        "keep_last": project.keep_last,
        "failed_log_days": project.failed_log_days,
        "disk_usage": project.disk_bytes,
    }


# ---------------------------------------------------------------- projects


async def list_projects(request: web.Request) -> web.Response:
    """GET /api/coprs/<username>/ and /api/coprs/?username= (or ?search=, spec A13)."""
    username = request.query.get("username") or request.match_info.get("username")
    if not username:
        if "search" in request.query:
            return await _search(request, request.query["search"])
        raise BadRequest("Invalid request: missing `username`")
    config = request.app[CONFIG]

    async def compute() -> Computed:
        owner, projects = await request.app[DB].read(_owner_projects, username)
        repos = [project_json(config, project, chroots) for project, chroots in projects]
        # An unknown owner's empty list changes only when users do (changes.USERS).
        return {"repos": repos}, [owner_tag(owner.id)] if owner else []

    return await cached_ok(request, ("list", username), compute)


def _owner_projects(
    conn: sqlite3.Connection, username: str
) -> tuple[User | None, list[tuple[Project, list[str]]]]:
    owner = store.get_user(conn, username)
    return owner, store.list_projects(conn, username) if owner else []


async def project_detail(request: web.Request) -> web.Response:
    async def compute() -> Computed:
        project, _, chroots = await project_of(request)
        detail = project_json(request.app[CONFIG], project, chroots)
        detail["last_modified"] = await request.app[DB].read(store.last_modified, project.id)
        # Added field: packages with retention settings of their own (null: the project's).
        detail["package_retention"] = await request.app[DB].read(store.package_settings, project.id)
        return {"detail": detail, "repos": [detail]}, [project_tag(project.id)]

    key = ("detail", request.match_info["username"], request.match_info["project"])
    return await cached_ok(request, key, compute)


def v1_values(
    form: Form, offered: tuple[str, ...] | set[str], *, keep: frozenset[str]
) -> dict[str, object]:
    """A v1 form as an operation's values: the `keep` fields, `<chroot>=y` fields joined
    into `chroots`, and `disable_createrepo` as `auto_createrepo`."""
    values: dict[str, object] = {k: v for k, v in form.fields.items() if k in keep}
    chosen = [name for name in sorted(offered) if form.checkbox(name)]
    if chosen or "chroots" in values:
        values["chroots"] = " ".join([*chosen, str(values.get("chroots") or "")]).strip()
    if "disable_createrepo" in form:
        values["auto_createrepo"] = not form.checkbox("disable_createrepo")
    return values


async def read_form_checked(
    request: web.Request, user: User, action: auth.Action, **upload: Any
) -> Form:
    """The request's form; when it cannot be read, a missing project (404) or permission
    (403) is still reported first (spec A17)."""
    try:
        return await forms.read_form(request, **upload)
    except CoprLiteError:
        project, roles, _ = await project_of(request, user)
        auth.check_permission(user, project, roles, action)
        raise


def refuse_unknown(form: Form, known: frozenset[str]) -> services.Precheck:
    """A precheck refusing form keys that are neither `known` nor an enabled chroot."""

    def check(project: Project, chroots: tuple[str, ...]) -> None:
        form.refuse_unknown(known | set(chroots))

    return check


async def create_project(request: web.Request) -> web.Response:
    """POST /api/coprs/<username>/new/: the project belongs to the caller, or to the URL's
    user when the caller is a system admin (spec A14)."""
    user = await caller(request)
    config, db = request.app[CONFIG], request.app[DB]
    owner_name = None
    url_user = request.match_info["username"]
    if user.is_admin and url_user != user.name and forms.NAME_RE.match(url_user):
        # An admin creates for the URL's user; a name no user has is ignored (spec A14).
        named: User | None = await db.read(store.get_user, url_user)
        owner_name = named.name if named else None
    form = await forms.read_form(request)
    offered = set(config.chroots)
    form.refuse_unknown(CREATE_FIELDS | offered)
    values = v1_values(form, offered, keep=operations.CREATE_PROJECT.names)
    _, _, build_ids = await services.create_project(
        request.app[SERVICES], user, values, owner_name=owner_name
    )
    message = "New project was successfully created."
    if build_ids:
        message += "\nInitial packages were successfully submitted for building."
    return ok(message=message)


async def modify_project(request: web.Request) -> web.Response:
    """POST .../modify/: change only the fields present (spec §4.10)."""
    user = await caller(request)
    form = await read_form_checked(request, user, auth.Action.MODIFY)
    # v1 accepts `chroots` here but never changed them: it still does not.
    values = v1_values(form, (), keep=operations.EDIT_PROJECT.names - {"chroots"})
    values.pop("chroots", None)
    project, _ = await services.edit_project(
        request.app[SERVICES],
        user,
        _name(request, "username"),
        _name(request, "project"),
        values,
        refuse_unknown(form, MODIFY_FIELDS),
    )
    return ok(
        description=project.description, instructions=project.instructions, repos=project.repos
    )


async def delete_project(request: web.Request) -> web.Response:
    """POST .../delete/ with verify=yes: cancel unfinished builds, remove the project, its
    builds and its published results (spec A11)."""
    user = await caller(request)
    form = await read_form_checked(request, user, auth.Action.DELETE)

    def check(project: Project, chroots: tuple[str, ...]) -> None:
        form.refuse_unknown(DELETE_FIELDS)
        if form.get("verify") != "yes":
            raise forms.validation_error("verify", "Must be exactly 'yes' to delete the project.")

    project = await services.delete_project(
        request.app[SERVICES], user, _name(request, "username"), _name(request, "project"), check
    )
    return ok(message=f"Project {project.name} has been deleted.")


async def modify_chroot(request: web.Request) -> web.Response:
    user = await caller(request)
    form = await read_form_checked(request, user, auth.Action.MODIFY)
    _, packages, _ = await services.edit_chroot(
        request.app[SERVICES],
        user,
        _name(request, "username"),
        _name(request, "project"),
        request.match_info["chroot"],
        {"buildroot_pkgs": form.get("buildroot_pkgs") or ""},
        refuse_unknown(form, CHROOT_MODIFY_FIELDS),
    )
    return ok(buildroot_pkgs=packages)


async def chroot_detail(request: web.Request) -> web.Response:
    project, _, chroots = await project_of(request)
    chroot = _enabled_chroot(request, chroots)
    _, packages = await request.app[DB].read(store.get_chroot_packages, project.id, chroot)
    return ok(buildroot_pkgs=packages)


def _enabled_chroot(request: web.Request, chroots: tuple[str, ...]) -> str:
    chroot = request.match_info["chroot"]
    if chroot not in chroots:
        raise NotFound(f"Chroot name {chroot[:100]} does not exist in this project.")
    return chroot


async def disk_usage(request: web.Request) -> web.Response:
    """GET /api/disk_usage/: bytes of results in all and per project (kept up to date as
    results change; nothing is measured on request)."""
    total, projects = await request.app[DB].read(store.disk_usage)
    return ok(
        total=total,
        projects=[{"owner": o, "project": p, "disk_usage": size} for o, p, size in projects],
    )


async def chroots(request: web.Request) -> web.Response:
    """GET /api/chroots/: the chroots this server offers and their builders."""
    return ok(chroots=dict(request.app[CONFIG].chroots))


# ---------------------------------------------------------------- search


async def search(request: web.Request) -> web.Response:
    query = request.query.get("project")
    if query is None:
        query = request.match_info.get("query", "")
    return await _search(request, query)


async def _search(request: web.Request, query: str) -> web.Response:
    _, limit = forms.check_page(request)
    words, owner_part, name_part = services.search_terms(query)
    rows = await request.app[DB].read(store.search_projects, words, owner_part, name_part, limit)
    return ok(
        repos=[
            {"username": r.username, "coprname": r.coprname, "description": r.description}
            for r in rows
        ]
    )


# ---------------------------------------------------------------- builds


BUILD_VALUE_FIELDS = operations.SUBMIT_BUILD.names - {"exclude_chroots"}


def build_values(form: Form) -> dict[str, object]:
    """A v1 new_build form as SUBMIT_BUILD's values (`build_enable_net` is v1's older
    spelling of `enable_net`)."""
    values: dict[str, object] = {k: v for k, v in form.fields.items() if k in BUILD_VALUE_FIELDS}
    chosen = [k for k in form.fields if k not in BUILD_FIELDS and form.checkbox(k)]
    values["chroots"] = " ".join([*chosen, form.get("chroots") or ""]).strip()
    if "enable_net" not in form and "build_enable_net" in form:
        values["enable_net"] = form.get("build_enable_net")
    return values


async def new_build(request: web.Request) -> web.Response:
    """POST .../new_build/: one build per SRPM URL, its chroots in `importing`.

    The hot path: the project lookup, permission check, validation and insert run as one
    transaction on the database thread (one hop), in the order of spec A17.
    """
    user = await caller(request)
    form = await read_form_checked(request, user, auth.Action.BUILD)
    project, ids = await services.submit_builds(
        request.app[SERVICES],
        user,
        _name(request, "username"),
        _name(request, "project"),
        build_values(form),
        precheck=refuse_unknown(form, BUILD_FIELDS),
    )
    return ok(ids=ids, id=ids[0], message=f"Build was added to {project.name}.")


async def new_build_upload(request: web.Request) -> web.Response:
    """POST .../new_build_upload/: multipart with the SRPM as file part `pkgs`."""
    user = await caller(request)
    # 404 and 403 come before the upload is stored.
    project, roles, _ = await project_of(request, user)
    auth.check_permission(user, project, roles, auth.Action.BUILD)
    form = await read_with_srpm(request, forms.read_form)
    try:
        source = uploaded_srpm(form)
        project, ids = await services.submit_builds(
            request.app[SERVICES],
            user,
            project.owner_name,
            project.name,
            build_values(form),
            upload=source,
            precheck=refuse_unknown(form, BUILD_FIELDS),
        )
    except BaseException:
        forms.discard_upload(form)
        raise
    return ok(ids=ids, id=ids[0], message=f"Build was added to {project.name}.")


async def build_status(request: web.Request) -> web.Response:
    await caller(request)
    build_id = build_id_of(request)

    states = request.app[BUILD_STATES]
    state = states.get(build_id)
    if state is None:
        snapshot = states.version
        found = await request.app[DB].read_point(store.get_build_state, build_id)
        if found is None:
            raise NotFound(f"Build {build_id} does not exist.")
        state = derive_build_state(*found)
        states.put(build_id, snapshot, state)
    return web.Response(body=_STATUS_BODIES[state], content_type="application/json")


_STATUS_BODIES = {state: orjson.dumps({"output": "ok", "status": state}) for state in STATES}


def build_results_url(config: Config, build: Build) -> str | None:
    """Spec §3.6: the project's results URL once no chroot waits to start."""
    waiting = {State.IMPORTING, State.PENDING, State.STARTING}
    if not build.chroots or any(c.status in waiting for c in build.chroots):
        return None
    return results_base(config, build.owner_name, build.project_name)


def build_json(config: Config, build: Build) -> dict[str, Any]:
    """The build detail answer (spec §4.8 with results_by_chroot and fail_reasons)."""
    base = results_base(config, build.owner_name, build.project_name)
    package = build.pkg_name or package_name_from_url(build.source_url)
    return {
        "status": derive_build_state(build.canceled, (c.status for c in build.chroots)),
        "project": build.project_name,
        "owner": build.owner_name,
        "results": build_results_url(config, build),
        "built_pkgs": list(build.built_packages) or None,
        "src_version": build.version_release,
        "chroots": {c.chroot: c.status.value for c in build.chroots},
        "submitted_on": build.submitted_on,
        "started_on": build.started_on,
        "ended_on": build.ended_on,
        "src_pkg": build.source_url,
        "submitted_by": build.submitter_name,
        # A chroot whose results retention removed has no directory to point at.
        "results_by_chroot": {
            c.chroot: f"{base}{c.chroot}/{build.id:08d}-{package}"
            for c in build.chroots
            if c.pruned_on is None
        },
        "fail_reasons": {
            c.chroot: c.fail_reason or "failed" for c in build.chroots if c.status is State.FAILED
        },
        "memory_reqs": build.memory_reqs,
        "timeout": build.timeout,
        "enable_net": build.enable_net,
    }


async def build_detail(request: web.Request) -> web.Response:
    build_id = build_id_of(request)

    async def compute() -> Computed:
        build = await request.app[DB].read(store.get_build, build_id)
        if build is None:
            raise NotFound(f"Build {build_id} does not exist.")
        return build_json(request.app[CONFIG], build), [build_tag(build_id)]

    return await cached_ok(request, ("build", build_id), compute)


async def cancel_build(request: web.Request) -> web.Response:
    """POST /api/coprs/cancel_build/<id>/ (spec A10)."""
    user = await caller(request)
    build_id = build_id_of(request)
    await services.cancel_build(request.app[SERVICES], user, build_id)
    return ok(status="Build canceled")


# ---------------------------------------------------------------- monitor


async def monitor(request: web.Request) -> web.Response:
    """GET .../monitor/: newest build of each package in each chroot (spec A12)."""
    paged = "offset" in request.query or "limit" in request.query
    page = forms.check_page(request) if paged else None
    key = ("monitor", request.match_info["username"], request.match_info["project"], page)

    async def compute() -> Fresh:
        snapshot = request.app[ANSWERS].version  # before anything is read
        project, _, chroots = await project_of(request)
        base = results_base(request.app[CONFIG], project.owner_name, project.name)
        if page is None:
            # Kept as encoded rows per package: only changed packages are read again.
            rows = request.app[MONITOR]
            return await rows.answer(request.app[DB], snapshot, project, chroots, base)
        payload = await _paged_monitor(request, project, chroots, base, page)
        return Fresh(orjson.dumps({"output": "ok", **payload}), [project_tag(project.id)])

    body = await request.app[ANSWERS].answer(key, compute)
    return web.Response(body=body, content_type="application/json")


async def _paged_monitor(
    request: web.Request,
    project: Project,
    chroots: tuple[str, ...],
    base: str,
    page: tuple[int, int],
) -> dict[str, Any]:
    """The monitor with `page` (offset, limit) of the project's whole history as builds."""
    latest, builds = await request.app[DB].read(store.monitor, project.id, page)
    packages = package_entries(latest, chroots)
    return {
        "chroots": list(chroots),
        "builds": [build_entry(build, base) for build in builds],
        "packages": [packages[name] for name in sorted(packages)],
    }


async def openapi(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    paths = api_paths(request.app[PLUGINS])
    return json_response(openapi_document(config.public_base_url, sorted(config.chroots), paths))
