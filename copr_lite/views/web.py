"""The web UI: home, projects, builds, search, and the forms of signed-in users.

Pages read the database once (one `store` function each, besides the session lookup) and
render a template extending layout.html. Forms carry the CSRF token; a rejected field is
shown beside its input with what the user typed kept. Changes go through `services`, the
same path as the API.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from .. import auth, forms, operations, services, store
from ..errors import BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge
from ..forms import Form
from ..keys import CONFIG, DB, SERVICES
from ..middlewares import Handler, expect_upload, form_routes
from ..models import Build, BuildChroot, Policy, Project, User
from ..publisher import LIVE_LOG, SRPM_BUILDS
from ..responses import json_response
from ..retention import human_bytes
from ..states import BUILD_STATE_PRECEDENCE, State, derive_build_state
from .common import (
    build_id_of,
    package_name_from_url,
    project_of,
    results_base,
    uploaded_srpm,
)
from .events import add_event_routes
from .pages import current_user, flash_redirect, render_page
from .text import contact_link, homepage_link, markdown
from .webhooks import integrations_context

PAGE_SIZE = 25
PROJECTS_PAGE_SIZE = 50
HOME_RECENT = 20
HOME_RUNNING = 20
SEARCH_LIMIT = 50
MAX_PAGE = 1_000_000
TERMINAL_NAMES = frozenset(s.value for s in State if s.terminal)
# Project checkboxes of the create/edit form and their value on a new form.
FLAGS: dict[str, tuple[str, bool]] = {
    "auto_createrepo": ("Create repositories automatically after each build", True),
    "build_enable_net": ("Let builds use the network", True),
    "unlisted_on_hp": ("Hide this project's builds from the home page", False),
    "auto_prune": ("Remove old builds automatically", True),
    "use_bootstrap_container": ("Use a bootstrap container (mock)", False),
    "persistent": ("Persistent: protected against deletion (admins only)", False),
}


def add_web_routes(router: web.UrlDispatcher) -> None:
    """The web UI's URLs. Fixed paths come before `{username}` ones. A form page answers
    GET (the form) and POST (its submission) at one path."""
    get, post = form_routes(router)

    def form_page(path: str, handler: Handler) -> None:
        get(path, handler)
        post(path, handler)

    get("/", home)
    get("/search/", search)
    get("/coprs/", all_projects)
    form_page("/coprs/new/", new_project)
    get("/coprs/{username}/", user_projects)
    prefix = "/coprs/{username}/{project}"
    get(prefix + "/", project_page)
    get(prefix + "/builds/", project_builds)
    form_page(prefix + "/edit/", edit_project)
    form_page(prefix + "/chroot/{chroot}/edit/", edit_chroot)
    get(prefix + "/new_build/", new_build)
    router.add_post(prefix + "/new_build/", new_build, expect_handler=expect_upload)
    form_page(prefix + "/delete/", delete_project)
    form_page(prefix + "/package/{package}/retention/", package_retention)
    get(prefix + "/packages/", project_packages)
    form_page(prefix + "/permissions/", project_permissions)
    form_page(prefix + "/integrations/", project_integrations)
    get("/builds/{build_id}/", build_page)
    get("/builds/{build_id}/state", build_state)
    form_page("/builds/{build_id}/cancel/", cancel_build)
    form_page("/builds/{build_id}/delete/", delete_build)
    post("/builds/{build_id}/rebuild/", rebuild_build)
    get("/favicon.ico", favicon)
    add_event_routes(router, build_view)


# ---------------------------------------------------------------- presentation helpers


def when(ts: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) if ts else ""


def iso(ts: int | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if ts else ""


def duration(start: int | None, end: int | None) -> str:
    """`1:02:03` or `2 min 05 s`; a build still running counts until now."""
    if not start:
        return ""
    seconds = max(0, (end or int(time.time())) - start)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def build_state_of(build: Build) -> str:
    return derive_build_state(build.canceled, (c.status for c in build.chroots))


def state_name(state: int | State) -> str:
    """The name of a state (templates hold States from BuildChroot, or codes from rows)."""
    return State.from_code(state).value


def package_label(build: Build) -> str:
    if build.pkg_name:
        return build.pkg_name
    return package_name_from_url(build.source_url) or "(importing)"


HELPERS = {
    "when": when,
    "iso": iso,
    "duration": duration,
    "build_state": build_state_of,
    "state_name": state_name,
    "package_label": package_label,
    "derive": lambda last: derive_build_state(*last),
    "human_bytes": human_bytes,
    "markdown": markdown,
    "homepage_link": homepage_link,
    "contact_link": contact_link,
}


async def page(
    request: web.Request, template: str, context: dict[str, Any], status: int = 200
) -> web.Response:
    return await render_page(request, template, {**HELPERS, **context}, status=status)


async def form_again(
    request: web.Request,
    template: str,
    context: dict[str, Any],
    form: Form,
    errors: dict[str, str],
) -> web.Response:
    """The form page again (400): the values as submitted, each wrong field's error."""
    return await page(request, template, {**context, "values": form.fields, "errors": errors}, 400)


def live_ids(builds: list[Build], grid: list[dict[str, Any]] | None = None) -> str:
    """The ids a list page follows live (layout.html): its builds that have not ended."""
    ids = {b.id for b in builds if build_state_of(b) not in TERMINAL_NAMES}
    for pkg in grid or []:
        ids.update(cell[0] for cell in pkg["cells"].values() if cell[1] not in TERMINAL_NAMES)
    return ",".join(map(str, sorted(ids)[-200:]))


def page_number(request: web.Request) -> int:
    try:
        number = int(request.query.get("page", "1"))
    except ValueError:
        return 1
    return min(max(number, 1), MAX_PAGE)


def pager(
    number: int, size: int, total: int, query: dict[str, str] | None = None
) -> dict[str, Any]:
    """The pager of a list: `past_end` when `number` is beyond the last page; `query` is
    what the page links keep (a list's filters)."""
    pages = max(1, -(-total // size))
    kept = "".join(f"&{k}={quote(v)}" for k, v in (query or {}).items() if v)
    return {
        "page": number,
        "pages": pages,
        "total": total,
        "size": size,
        "past_end": number > pages and total > 0,
        "query": kept,
    }


async def signed_in(request: web.Request) -> User:
    """The signed-in user, or a redirect to the sign-in page (back here afterwards)."""
    user = await current_user(request)
    if user is None:
        raise web.HTTPFound("/login/?next=" + quote(request.path))
    return user


async def read_form(request: web.Request, **upload: Any) -> Form:
    """A posted form whose CSRF token matches the visitor's cookie."""
    form = await forms.read_form(request, **upload)
    try:
        auth.check_csrf(request, form.get(auth.CSRF_FIELD))
    except Forbidden:
        forms.discard_upload(form)
        raise
    return form


def check(errors: dict[str, str], field: str, fn: Any, *args: Any) -> Any:
    """Run a forms validator; its complaint goes into `errors[field]`."""
    try:
        return fn(*args)
    except forms.ValidationError as exc:
        errors[field] = exc.text
    except PayloadTooLarge as exc:
        errors[field] = exc.message.removeprefix(f"{field}: ")
    return None


def see_other(location: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(location)


def project_url(project: Project) -> str:
    return f"/coprs/{project.owner_name}/{project.name}/"


# ---------------------------------------------------------------- read-only pages


async def home(request: web.Request) -> web.Response:
    summary = await request.app[DB].read(store.home_summary, HOME_RECENT, HOME_RUNNING)
    total, _ = await request.app[DB].read(store.disk_usage)
    running = {b.id for b in summary.running}
    recent = [b for b in summary.recent if b.id not in running]  # each build listed once
    return await page(
        request,
        "home.html",
        {
            "summary": summary,
            "recent": recent,
            "live_ids": live_ids(summary.running + recent),
            "disk_total": total,
        },
    )


async def all_projects(request: web.Request) -> web.Response:
    number = page_number(request)
    offset = (number - 1) * PROJECTS_PAGE_SIZE
    found = await request.app[DB].read(store.projects_page, None, offset, PROJECTS_PAGE_SIZE)
    assert found is not None
    _, rows, total = found
    return await page(
        request,
        "projects.html",
        {"owner": None, "rows": rows, "pager": pager(number, PROJECTS_PAGE_SIZE, total)},
    )


async def user_projects(request: web.Request) -> web.Response:
    name = request.match_info["username"]
    number = page_number(request)
    offset = (number - 1) * PROJECTS_PAGE_SIZE
    found = None
    if forms.NAME_RE.match(name):
        found = await request.app[DB].read(store.projects_page, name, offset, PROJECTS_PAGE_SIZE)
    if found is None:
        raise NotFound(f"User {name[:100]} does not exist.")
    owner, rows, total = found
    return await page(
        request,
        "projects.html",
        {"owner": owner, "rows": rows, "pager": pager(number, PROJECTS_PAGE_SIZE, total)},
    )


async def _overview(request: web.Request) -> tuple[store.ProjectOverview, User | None, int]:
    user = await current_user(request)
    owner, name = request.match_info["username"], request.match_info["project"]
    number = page_number(request)
    found = None
    if forms.NAME_RE.match(owner) and forms.NAME_RE.match(name):
        found = await request.app[DB].read(
            store.project_overview,
            owner,
            name,
            user.id if user else None,
            (number - 1) * PAGE_SIZE,
            PAGE_SIZE,
        )
    if found is None:
        raise NotFound(f"Project {owner[:100]}/{name[:100]} does not exist.")
    return found, user, number


def may(user: User | None, project: Project, roles: frozenset[str], action: auth.Action) -> bool:
    if user is None:
        return False
    try:
        auth.check_permission(user, project, roles, action)
    except Forbidden:
        return False
    return True


def monitor_grid(overview: store.ProjectOverview) -> list[dict[str, Any]]:
    """Rows of the monitor: a package with, per enabled chroot, (build id, state) or None."""
    packages: dict[str, dict[str, Any]] = {}
    for row in overview.latest:
        entry = packages.setdefault(
            row.pkg_name, {"name": row.pkg_name, "cells": {}, "version": None, "newest": 0}
        )
        entry["cells"][row.chroot] = (row.build_id, state_name(row.status))
        if row.build_id > entry["newest"]:
            entry["newest"] = row.build_id
            entry["version"] = row.version_release
    return [packages[name] for name in sorted(packages)]


async def _project_context(request: web.Request) -> dict[str, Any]:
    overview, user, number = await _overview(request)
    config = request.app[CONFIG]
    project = overview.project
    return {
        "project": project,
        "overview": overview,
        "builds": overview.builds,
        "pager": pager(number, PAGE_SIZE, overview.total_builds),
        "can_build": may(user, project, overview.roles, auth.Action.BUILD),
        "can_modify": may(user, project, overview.roles, auth.Action.MODIFY),
        "can_delete": may(user, project, overview.roles, auth.Action.DELETE),
        "results_url": results_base(config, project.owner_name, project.name),
        "signed": config.sign,
    }


async def project_page(request: web.Request) -> web.Response:
    context = await _project_context(request)
    context["grid"] = monitor_grid(context["overview"])
    context["package_settings"] = await request.app[DB].read(
        store.package_settings, context["project"].id
    )
    context["tab"] = "overview"
    context["live_ids"] = live_ids(context["builds"], context["grid"])
    return await page(request, "project.html", context)


SORT_LABELS = {
    "id": "Build",
    "package": "Package",
    "submitter": "Submitted by",
    "submitted": "Submitted",
    "ended": "Ended",
}


def build_filter(
    query: Mapping[str, str], chroots: tuple[str, ...]
) -> tuple[store.BuildFilter, dict[str, str]]:
    """The builds list's filters and order from the query string, and what of it is kept in
    the list's links (unknown values are ignored, never an error)."""
    kept: dict[str, str] = {}
    state = query.get("state") or None
    if state is not None and state not in {s.value for s in State}:
        state = None
    chroot = query.get("chroot") or None
    if chroot is not None and chroot not in chroots:
        chroot = None
    package = (query.get("package") or "").strip()[:200] or None
    submitter = (query.get("submitter") or "").strip()[:200] or None
    sort = query.get("sort") or "-id"
    descending = sort.startswith("-")
    if sort.lstrip("-") not in store.BUILD_SORTS:
        sort, descending = "-id", True
    for key, value in (
        ("state", state),
        ("package", package),
        ("chroot", chroot),
        ("submitter", submitter),
    ):
        if value:
            kept[key] = value
    if sort != "-id":
        kept["sort"] = sort
    wanted = store.BuildFilter(
        state=State(state) if state else None,
        package=package,
        chroot=chroot,
        submitter=submitter,
        sort=sort.lstrip("-"),
        descending=descending,
    )
    return wanted, kept


def _filtered_builds(
    conn: sqlite3.Connection, project_id: int, wanted: store.BuildFilter, offset: int
) -> tuple[list[Build], int, list[str], list[str]]:
    builds, total = store.filtered_builds_page(conn, project_id, wanted, offset, PAGE_SIZE)
    packages, submitters = store.build_facets(conn, project_id)
    return builds, total, packages, submitters


async def project_builds(request: web.Request) -> web.Response:
    """The builds list: filtered by state, package, chroot and submitter, sorted by a
    column, paged; every link keeps the filters."""
    user, project, roles, chroots = await _project_read(request)
    wanted, kept = build_filter(request.query, chroots)
    number = page_number(request)
    builds, total, packages, submitters = await request.app[DB].read(
        _filtered_builds, project.id, wanted, (number - 1) * PAGE_SIZE
    )
    return await page(
        request,
        "project_builds.html",
        {
            **_permissions_context(user, project, roles),
            "builds": builds,
            "live_ids": live_ids(builds),
            "pager": pager(number, PAGE_SIZE, total, kept),
            "filters": kept,
            "sort": kept.get("sort", "-id"),
            "sort_labels": SORT_LABELS,
            "states": [s.value for s in State],
            "chroots": chroots,
            "packages": packages,
            "submitters": submitters,
            "tab": "builds",
        },
    )


async def _project_read(
    request: web.Request,
) -> tuple[User | None, Project, frozenset[str], tuple[str, ...]]:
    """The visitor (None: anonymous), the addressed project (404), their roles on it and
    its chroots."""
    user = await current_user(request)
    project, roles, chroots = await project_of(request, user)
    return user, project, roles, chroots


def _permissions_context(
    user: User | None, project: Project, roles: frozenset[str]
) -> dict[str, Any]:
    return {
        "project": project,
        "can_build": may(user, project, roles, auth.Action.BUILD),
        "can_modify": may(user, project, roles, auth.Action.MODIFY),
        "can_delete": may(user, project, roles, auth.Action.DELETE),
    }


async def project_packages(request: web.Request) -> web.Response:
    """The packages tab: each package with its latest build per chroot."""
    overview, user, _ = await _overview(request)
    counts = await request.app[DB].read(store.package_counts, overview.project.id)
    defined = await request.app[DB].read(store.defined_packages, overview.project.id)
    grid = monitor_grid(overview)
    return await page(
        request,
        "project_packages.html",
        {
            **_permissions_context(user, overview.project, overview.roles),
            "overview": overview,
            "grid": grid,
            "live_ids": live_ids([], grid),
            "counts": counts,
            "defined": defined,
            "tab": "packages",
        },
    )


async def project_permissions(request: web.Request) -> web.StreamResponse:
    """The permissions tab. The owner and project admins see every role and request, grant
    and revoke builder and admin, and approve requests; another signed-in user sees their
    own roles and asks for access (a request the owner then sees here)."""
    user, project, roles, _ = await _project_read(request)
    context = _permissions_context(user, project, roles)
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        user = await signed_in(request)
        form = await read_form(request)
        values = form.fields
        if form.get("action") == "request":
            await _request_access(request, user, project, form)
        auth.check_permission(user, project, roles, auth.Action.MODIFY)
        name = check(errors, "username", forms.check_name, form.get("username"))
        if name is not None:
            states = {
                role: "approved" if form.checkbox(role) else "nothing" for role in operations.ROLES
            }
            try:
                await services.set_permissions(
                    request.app[SERVICES], user, project.owner_name, project.name, {name: states}
                )
            except (NotFound, BadRequest) as exc:
                errors["username"] = exc.message
            else:
                held_now = [role for role, state in states.items() if state == "approved"]
                text = (
                    f"{name} now holds {' and '.join(held_now)} on {project.full_name}."
                    if held_now
                    else f"{name} holds no role on {project.full_name} now."
                )
                raise flash_redirect(request.path, text)
        status = 400
    every = await request.app[DB].read(store.permission_states, project.id)
    mine = every.get(user.name, {}) if user is not None else {}
    return await page(
        request,
        "project_permissions.html",
        {
            **context,
            "held": sorted(every.items()) if context["can_modify"] else [],
            "mine": mine,
            "roles": operations.ROLES,
            "errors": errors,
            "values": values,
            "tab": "permissions",
        },
        status=status,
    )


async def project_integrations(request: web.Request) -> web.StreamResponse:
    """The Integrations tab: the owner and admins see the incoming webhooks' URLs, secret
    and recent deliveries (views/webhooks.py), and generate a new secret."""
    user, project, roles, _ = await _project_read(request)
    context = _permissions_context(user, project, roles)
    if request.method == "POST":
        user = await signed_in(request)
        await read_form(request)
        await services.generate_webhook_secret(
            request.app[SERVICES], user, project.owner_name, project.name
        )
        raise flash_redirect(request.path, "A new webhook secret was generated.")
    if context["can_modify"]:
        context |= await integrations_context(request, project)
    return await page(request, "project_integrations.html", {**context, "tab": "integrations"})


async def _request_access(request: web.Request, user: User, project: Project, form: Form) -> None:
    """Ask for (or withdraw) roles on someone else's project; back to the tab with a flash."""
    wanted = {role: form.checkbox(role) for role in operations.ROLES}
    try:
        now = await services.request_permissions(
            request.app[SERVICES], user, project.owner_name, project.name, wanted
        )
    except BadRequest as exc:
        raise flash_redirect(request.path, exc.message) from None
    asked = [role for role, state in now.items() if state == "request"]
    text = (
        f"You asked for {' and '.join(asked)} on {project.full_name}; "
        f"{project.owner_name} sees the request on this page."
        if asked
        else f"You have no pending request on {project.full_name}."
    )
    raise flash_redirect(request.path, text)


def chroot_view(config: Any, build: Build, chroot: BuildChroot) -> dict[str, Any]:
    """What the build page and its live state show of one chroot."""
    name = chroot.status.value
    # A pruned chroot's directory is gone: no results or log to link.
    started = chroot.started_on is not None and chroot.pruned_on is None
    package = build.pkg_name or package_name_from_url(build.source_url)
    base = results_base(config, build.owner_name, build.project_name)
    return {
        "name": chroot.chroot,
        "state": name,
        "finished": name in TERMINAL_NAMES,
        "started": when(chroot.started_on),
        "ended": when(chroot.ended_on),
        "duration": duration(chroot.started_on, chroot.ended_on),
        "fail_reason": chroot.fail_reason or ("failed" if chroot.status is State.FAILED else ""),
        "built": list(chroot.built_packages),
        "results": f"{base}{chroot.chroot}/{build.id:08d}-{package}/" if started else "",
        "log": f"/builds/{build.id}/{chroot.chroot}/log" if started else "",
        "live_log": f"/builds/{build.id}/{chroot.chroot}/live-log",
        "pruned": chroot.pruned_on is not None,
        "has_log": started,
    }


def build_view(config: Any, build: Build) -> dict[str, Any]:
    state = build_state_of(build)
    return {
        "id": build.id,
        "state": state,
        "finished": state in TERMINAL_NAMES or state == "unknown",
        "submitted": when(build.submitted_on),
        "started": when(build.started_on),
        "ended": when(build.ended_on),
        "duration": duration(build.started_on, build.ended_on),
        "version": build.version_release or "",
        "chroots": [chroot_view(config, build, c) for c in build.chroots],
        "importing": any(c.status is State.IMPORTING for c in build.chroots),
        "import_failure": import_failure(build),
    }


def import_failure(build: Build) -> str:
    """Why the import failed, or "" (then its chroots never had a build log)."""
    if build.pkg_name is not None:
        return ""
    reasons = [c.fail_reason for c in build.chroots if c.status is State.FAILED and c.fail_reason]
    return reasons[0] if reasons else ""


async def _build(request: web.Request) -> tuple[Build, Project, frozenset[str], User | None]:
    build_id = build_id_of(request)
    user = await current_user(request)
    found = await request.app[DB].read(store.build_with_roles, build_id, user.id if user else None)
    if found is None:
        raise NotFound(f"Build {build_id} does not exist.")
    build, project, roles = found
    return build, project, roles, user


async def build_page(request: web.Request) -> web.Response:
    build, project, roles, user = await _build(request)
    config = request.app[CONFIG]
    view = build_view(config, build)
    import_log = (
        f"{config.public_results_url}/{build.owner_name}/{build.project_name}/"
        f"{SRPM_BUILDS}/{build.id:08d}/{LIVE_LOG}"
    )
    can_build = may(user, project, roles, auth.Action.BUILD)
    enabled = await request.app[DB].read(
        store.get_project_with_roles, project.owner_name, project.name, None
    )
    return await page(
        request,
        "build.html",
        {
            "build": build,
            "view": view,
            "project": project,
            "can_cancel": not view["finished"] and can_build,
            "can_rebuild": can_build,
            "can_delete": view["finished"]
            and user is not None
            and (
                build.submitter_name == user.name or may(user, project, roles, auth.Action.MODIFY)
            ),
            "enabled": enabled[2] if enabled else (),
            "failed_chroots": [c.chroot for c in build.chroots if c.status is State.FAILED],
            "import_log": import_log,
            "states": [s.value for s in BUILD_STATE_PRECEDENCE],
        },
    )


async def build_state(request: web.Request) -> web.Response:
    """GET /builds/<id>/state: the build page's live part as JSON (polled while it runs)."""
    build_id = build_id_of(request)
    build = await request.app[DB].read(store.get_build, build_id)
    if build is None:
        raise NotFound(f"Build {build_id} does not exist.")
    response = json_response(build_view(request.app[CONFIG], build))
    response.headers["Cache-Control"] = "no-store"
    return response


async def search(request: web.Request) -> web.Response:
    query = request.query.get("q")
    errors: dict[str, str] = {}
    rows: list[store.ProjectMatch] | None = None
    packages: list[store.PackageMatch] = []
    if query is not None:
        terms = check(errors, "q", services.search_terms, query, "q")
        if terms is not None:
            words, owner_part, name_part = terms
            rows = await request.app[DB].read(
                store.search_projects, words, owner_part, name_part, SEARCH_LIMIT
            )
            if owner_part is None:
                packages = await request.app[DB].read(store.search_packages, words, SEARCH_LIMIT)
    return await page(
        request,
        "search.html",
        {"query": query or "", "rows": rows, "packages": packages, "errors": errors},
        status=400 if errors else 200,
    )


# ---------------------------------------------------------------- project forms


def _project_values(
    project: Project | None, chroots: tuple[str, ...] | list[str]
) -> dict[str, Any]:
    """The fields of the project form before the user changes anything."""
    values: dict[str, str] = {}
    if project is None:
        values.update({flag: "y" for flag, (_, default) in FLAGS.items() if default})
        defaults = Policy()
        values.update({key: str(getattr(defaults, key)) for key in forms.RETENTION_LIMITS})
    else:
        for key in ("description", "instructions", "homepage", "contact"):
            values[key] = getattr(project, key)
        values["repos"] = "\n".join(project.repos.split())
        values.update({flag: "y" for flag in FLAGS if getattr(project, flag)})
        values.update({key: str(getattr(project, key)) for key in forms.RETENTION_LIMITS})
    values.update({chroot: "y" for chroot in chroots})
    return values


def _project_form(form: Form, offered: list[str]) -> dict[str, object]:
    """The project form as CREATE_PROJECT/EDIT_PROJECT values: an unticked box is false."""
    values: dict[str, object] = {
        key: form.get(key) or ""
        for key in ("name", "description", "instructions", "repos", "homepage", "contact")
    }
    values.update({flag: form.checkbox(flag) for flag in FLAGS})
    # Retention numbers: an empty one changes nothing (the default, for a new project).
    values.update({key: form.get(key) or "" for key in forms.RETENTION_LIMITS})
    values["chroots"] = [name for name in offered if form.checkbox(name)]
    return values


def field_errors(exc: Exception, errors: dict[str, str]) -> None:
    """Put an operation's complaint beside the field it is about."""
    if isinstance(exc, forms.ValidationError):
        errors.update(exc.errors)
    elif isinstance(exc, PayloadTooLarge):
        field, _, text = exc.message.partition(": ")
        errors[field] = text
    elif isinstance(exc, Forbidden):
        errors["persistent"] = exc.message
    else:
        raise exc


async def new_project(request: web.Request) -> web.StreamResponse:
    user = await signed_in(request)
    offered = sorted(request.app[CONFIG].chroots)
    context = {"project": None, "offered": offered, "flags": FLAGS, "errors": {}}
    if request.method == "GET":
        return await page(
            request, "project_form.html", {**context, "values": _project_values(None, offered)}
        )
    form = await read_form(request)
    errors: dict[str, str] = {}
    values = _project_form(form, offered)
    try:
        if not values["chroots"]:
            errors["chroots"] = "Select at least one chroot."
            operations.CREATE_PROJECT.parse(values, user)  # the other fields' errors too
        else:
            await services.create_project(request.app[SERVICES], user, values)
            raise flash_redirect(
                f"/coprs/{user.name}/{values['name']}/", f"Project {values['name']} created."
            )
    except (forms.ValidationError, PayloadTooLarge, Forbidden) as exc:
        field_errors(exc, errors)
    except Conflict as exc:
        errors["name"] = exc.message
    return await form_again(request, "project_form.html", context, form, errors)


async def project_for(
    request: web.Request, action: auth.Action
) -> tuple[User, Project, tuple[str, ...]]:
    """The signed-in user, the addressed project (404) they may act on (403), its chroots."""
    user = await signed_in(request)
    project, roles, chroots = await project_of(request, user)
    auth.check_permission(user, project, roles, action)
    return user, project, chroots


async def edit_project(request: web.Request) -> web.StreamResponse:
    user, project, enabled = await project_for(request, auth.Action.MODIFY)
    offered = sorted(set(request.app[CONFIG].chroots) | set(enabled))
    context = {"project": project, "offered": offered, "flags": FLAGS, "errors": {}}
    if request.method == "GET":
        values = _project_values(project, enabled)
        return await page(request, "project_form.html", {**context, "values": values})
    form = await read_form(request)
    errors: dict[str, str] = {}
    values = _project_form(form, offered)
    del values["name"]
    if not user.is_admin:  # only admins change it; others keep what it is
        del values["persistent"]
    try:
        if not values["chroots"]:
            errors["chroots"] = "Select at least one chroot."
            operations.EDIT_PROJECT.parse(values, user)  # the other fields' errors too
        else:
            await services.edit_project(
                request.app[SERVICES], user, project.owner_name, project.name, values
            )
            raise flash_redirect(project_url(project), "Project settings saved.")
    except (forms.ValidationError, PayloadTooLarge, Forbidden) as exc:
        field_errors(exc, errors)
    return await form_again(request, "project_form.html", context, form, errors)


async def edit_chroot(request: web.Request) -> web.StreamResponse:
    user, project, enabled = await project_for(request, auth.Action.MODIFY)
    chroot = request.match_info["chroot"]
    if chroot not in enabled:
        raise NotFound(f"Chroot name {chroot[:100]} does not exist in this project.")
    db = request.app[DB]
    context = {"project": project, "chroot": chroot, "errors": {}}
    if request.method == "GET":
        _, packages = await db.read(store.get_chroot_packages, project.id, chroot)
        return await page(
            request, "chroot_form.html", {**context, "values": {"buildroot_pkgs": packages or ""}}
        )
    form = await read_form(request)
    errors: dict[str, str] = {}
    try:
        await services.edit_chroot(
            request.app[SERVICES],
            user,
            project.owner_name,
            project.name,
            chroot,
            {"buildroot_pkgs": form.get("buildroot_pkgs") or ""},
        )
    except (forms.ValidationError, PayloadTooLarge) as exc:
        field_errors(exc, errors)
        return await form_again(request, "chroot_form.html", context, form, errors)
    raise flash_redirect(project_url(project), f"Buildroot packages of {chroot} saved.")


async def delete_project(request: web.Request) -> web.StreamResponse:
    user, project, _ = await project_for(request, auth.Action.DELETE)
    context: dict[str, Any] = {"project": project, "errors": {}}
    if request.method == "GET":
        return await page(request, "project_delete.html", context)
    form = await read_form(request)
    errors: dict[str, str] = {}
    if form.get("verify") != "yes":
        errors["verify"] = "Tick this box to confirm the deletion."
    else:
        try:
            await services.delete_project(
                request.app[SERVICES], user, project.owner_name, project.name
            )
        except Forbidden as exc:  # persistent
            errors["verify"] = exc.message
    if errors:
        return await page(request, "project_delete.html", {**context, "errors": errors}, status=400)
    raise flash_redirect(f"/coprs/{project.owner_name}/", f"Project {project.full_name} deleted.")


# ---------------------------------------------------------------- builds


def _build_values(project: Project, enabled: tuple[str, ...]) -> dict[str, str]:
    values = {chroot: "y" for chroot in enabled}
    if project.build_enable_net:
        values["enable_net"] = "y"
    return values


async def new_build(request: web.Request) -> web.StreamResponse:
    user, project, enabled = await project_for(request, auth.Action.BUILD)
    config = request.app[CONFIG]
    context: dict[str, Any] = {
        "project": project,
        "enabled": enabled,
        "errors": {},
        "limit_mb": config.upload_size_limit_mb,
        "max_timeout": forms.MAX_TIMEOUT,
        "default_timeout": config.default_timeout,
    }
    if request.method == "GET":
        values = _build_values(project, enabled)
        return await page(request, "build_form.html", {**context, "values": values})
    errors: dict[str, str] = {}
    try:
        form = await read_form(
            request,
            file_field="srpm",
            upload_dir=config.upload_dir,
            file_limit=config.upload_size_limit,
            optional_file=True,
        )
    except (BadRequest, PayloadTooLarge) as exc:
        # The body could not be read whole (a bad file name, too large): nothing was kept.
        errors["srpm"] = exc.message.removeprefix("pkgs: ").removeprefix("srpm: ")
        values = _build_values(project, enabled)
        return await page(
            request, "build_form.html", {**context, "values": values, "errors": errors}, exc.status
        )
    try:
        return await _submit_build(request, user, project, enabled, form, context)
    except web.HTTPRedirection:
        raise  # submitted: the upload is the build's now
    except BaseException:
        forms.discard_upload(form)
        raise


async def _submit_build(
    request: web.Request,
    user: User,
    project: Project,
    enabled: tuple[str, ...],
    form: Form,
    context: dict[str, Any],
) -> web.StreamResponse:
    errors: dict[str, str] = {}
    values: dict[str, object] = {
        "pkgs": form.get("pkgs") or "",
        "chroots": [name for name in enabled if form.checkbox(name)],
        "timeout": form.get("timeout") or "",
        "enable_net": form.checkbox("enable_net"),
        "background": form.checkbox("background"),
    }
    upload = uploaded_srpm(form) if form.upload is not None else None
    has_urls = bool(str(values["pkgs"]).split())
    if has_urls and upload is not None:
        errors["pkgs"] = "Give SRPM URLs or upload a file, not both."
    elif not has_urls and upload is None:
        errors["pkgs"] = "Give the URL of an SRPM, or upload one below."
    if not values["chroots"]:
        errors["chroots"] = "Select at least one chroot."
    try:
        if errors:
            operations.SUBMIT_BUILD.parse(values, user)  # the other fields' errors too
        else:
            _, ids = await services.submit_builds(
                request.app[SERVICES], user, project.owner_name, project.name, values, upload
            )
    except (forms.ValidationError, PayloadTooLarge) as exc:
        for field, text in (exc.errors if isinstance(exc, forms.ValidationError) else {}).items():
            errors.setdefault(field, text)
        if isinstance(exc, PayloadTooLarge):
            errors.setdefault("pkgs", exc.message)
    if errors:
        if form.upload is not None and "srpm" not in errors:
            errors["srpm"] = "Choose the file again: uploads are not kept when a field is wrong."
        forms.discard_upload(form)
        return await form_again(request, "build_form.html", context, form, errors)
    if len(ids) == 1:
        raise flash_redirect(f"/builds/{ids[0]}/", f"Build {ids[0]} submitted.")
    raise flash_redirect(
        f"/coprs/{project.owner_name}/{project.name}/builds/",
        f"{len(ids)} builds submitted: {', '.join(map(str, ids))}.",
    )


async def cancel_build(request: web.Request) -> web.StreamResponse:
    """GET: ask for confirmation; POST: cancel the build."""
    user = await signed_in(request)
    if request.method == "GET":
        build, project, roles, _ = await _build(request)
        auth.check_permission(user, project, roles, auth.Action.BUILD)
        view = build_view(request.app[CONFIG], build)
        return await page(request, "build_cancel.html", {"build": build, "view": view})
    build_id = build_id_of(request)
    await read_form(request)
    try:
        await services.cancel_build(request.app[SERVICES], user, build_id)
    except Conflict:  # it ended meanwhile: the build page shows how
        raise flash_redirect(
            f"/builds/{build_id}/", f"Build {build_id} had already ended."
        ) from None
    raise flash_redirect(f"/builds/{build_id}/", f"Build {build_id} canceled.")


async def rebuild_build(request: web.Request) -> web.StreamResponse:
    """Submit a build's source again: to its failed chroots (`failed=y`), to the chroots
    ticked on the rebuild form (`<chroot>=y`, with `choose=y`), or else to all its chroots."""
    user = await signed_in(request)
    build, project, roles, _ = await _build(request)
    auth.check_permission(user, project, roles, auth.Action.BUILD)
    form = await read_form(request)
    here = f"/builds/{build.id}/"
    chroots: list[str] | None = None
    if form.checkbox("failed"):
        chroots = [c.chroot for c in build.chroots if c.status is State.FAILED]
        if not chroots:
            raise flash_redirect(here, "No chroot of this build failed.")
    elif form.checkbox("choose"):
        offered = set(request.app[CONFIG].chroots) | {c.chroot for c in build.chroots}
        chroots = sorted(name for name in offered if form.checkbox(name))
        if not chroots:
            raise flash_redirect(here, "Select at least one chroot to rebuild.")
    try:
        new_id = await services.rebuild(request.app[SERVICES], user, build.id, chroots)
    except BadRequest as exc:
        raise flash_redirect(here, exc.message) from None
    raise flash_redirect(
        f"/builds/{new_id}/", f"Build {new_id} submitted: a rebuild of {build.id}."
    )


FAVICON = (Path(__file__).resolve().parent.parent / "static" / "favicon.ico").read_bytes()


async def favicon(request: web.Request) -> web.Response:
    response = web.Response(body=FAVICON, content_type="image/x-icon")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


def _retention_fields(form: Form, errors: dict[str, str]) -> dict[str, int]:
    """The retention numbers filled in (an empty field is left out), each checked."""
    values = {}
    for key, (low, high) in forms.RETENTION_LIMITS.items():
        raw = form.get(key)
        if raw is not None and raw.strip():
            number = check(errors, key, forms.check_int, raw, key, 0, low, high)
            if number is not None:
                values[key] = number
    return values


async def delete_build(request: web.Request) -> web.StreamResponse:
    """GET: ask for confirmation; POST: delete a finished build (its results, logs and
    SRPM)."""
    user = await signed_in(request)
    if request.method == "GET":
        return await _confirm_delete(request, user)
    build_id = build_id_of(request)
    await read_form(request)
    build = await request.app[DB].read(store.get_build, build_id)
    if build is None:
        raise NotFound(f"Build {build_id} does not exist.")
    await services.delete_builds(request.app[SERVICES], user, [build_id])
    raise flash_redirect(
        f"/coprs/{build.owner_name}/{build.project_name}/builds/", f"Build {build_id} deleted."
    )


async def _confirm_delete(request: web.Request, user: User) -> web.Response:
    """The page that asks before a build is deleted (its submitter, or a project admin)."""
    build, project, roles, _ = await _build(request)
    action = operations.DELETE_BUILDS.action
    if build.submitter_name != user.name and action is not None:
        auth.check_permission(user, project, roles, action)
    view = build_view(request.app[CONFIG], build)
    return await page(request, "build_delete.html", {"build": build, "view": view})


# ---------------------------------------------------------------- package retention


async def package_retention(request: web.Request) -> web.StreamResponse:
    """A package's own retention settings; an empty field takes the project's value."""
    user, project, _ = await project_for(request, auth.Action.MODIFY)
    package = request.match_info["package"]
    db = request.app[DB]
    if package not in await db.read(store.project_packages, project.id):
        raise NotFound(f"Package {package[:100]} does not exist in this project.")
    own = (await db.read(store.package_settings, project.id)).get(package, {})
    context: dict[str, Any] = {"project": project, "package": package, "errors": {}}
    if request.method == "GET":
        values = {key: "" if value is None else str(value) for key, value in own.items()}
        if own.get("auto_prune") is not None:
            values["auto_prune"] = "y" if own["auto_prune"] else "n"
        return await page(request, "package_retention.html", {**context, "values": values})
    form = await read_form(request)
    errors: dict[str, str] = {}
    numbers = _retention_fields(form, errors)
    choice = form.get("auto_prune") or ""
    if choice not in ("", "y", "n"):
        errors["auto_prune"] = "Choose the project's setting, on or off."
    if errors:
        return await form_again(request, "package_retention.html", context, form, errors)
    settings: dict[str, int | None] = {key: numbers.get(key) for key in forms.RETENTION_LIMITS}
    settings["auto_prune"] = None if choice == "" else int(choice == "y")
    await services.set_package_retention(
        request.app[SERVICES], user, project.owner_name, project.name, package, settings
    )
    raise see_other(project_url(project))
