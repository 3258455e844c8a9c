"""The Copr API v3 (`/api_3/...`), as copr-cli 2.x, python-copr 2.x and dnf's copr plugins
speak it: HTTP in, service calls, JSON out.

Reads take query parameters; writes take a JSON object (or multipart with the object in a
`json` part). Lists are `{"items": [...], "meta": {...}}`. Errors are the server's one
error shape, whose `error` text the clients show; the status says what kind (401, 403,
404, 400 ...). Every change goes through `services`, as API v1's and the web UI's do.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any

from aiohttp import web

from .. import __version__, auth, forms, operations, services, signin, sources, store
from ..cache import Computed, cached_json
from ..changes import ALL_PROJECTS, build_tag, owner_tag, project_tag
from ..config import Config
from ..errors import BadRequest, Forbidden, NotFound
from ..keys import ANSWERS, CONFIG, DB, PLUGINS, SERVICES
from ..models import Build, Project, User
from ..openapi_v3 import openapi_v3_document
from ..plugins import api_paths
from ..publisher import MAX_BUILD_ID, build_dir_name
from ..responses import json_response
from ..states import State, derive_build_state
from .common import (
    package_name_from_url,
    parse_build_id,
    read_with_srpm,
    results_base,
    uploaded_srpm,
)

DEFAULT_LIMIT = 100
# v3 spellings of operation fields.
PROJECT_RENAMES = {"additional_repos": "repos", "enable_net": "build_enable_net"}
CHROOT_RENAMES = {"additional_packages": "buildroot_pkgs", "additional_repos": "repos"}


def add_api_v3_routes(router: web.UrlDispatcher) -> None:
    """API v3, at the paths the clients request: without a trailing slash (but the root and
    dnf5's rpmrepo); the path normaliser serves them with one too."""
    get, post, put, delete = (
        router.add_get,
        router.add_post,
        router.add_put,
        router.add_delete,
    )
    get("/api_3/", home)
    get("/api_3/openapi.json", openapi)
    get("/api_3/auth-check", auth_check)
    get("/api_3/project", project_get)
    get("/api_3/project/list", project_list)
    get("/api_3/project/search", project_search)
    post("/api_3/project/add/{ownername}", project_add)
    put("/api_3/project/edit/{ownername}/{projectname}", project_edit)
    delete("/api_3/project/delete/{ownername}/{projectname}", project_delete)
    post("/api_3/project/fork/{ownername}/{projectname}", not_supported)
    get("/api_3/project/permissions/get/{ownername}/{projectname}", permissions_get)
    put("/api_3/project/permissions/set/{ownername}/{projectname}", permissions_set)
    put("/api_3/project/permissions/request/{ownername}/{projectname}", permissions_request)
    get(
        "/api_3/project/permissions/can_build_in/{who}/{ownername}/{projectname}",
        can_build_in,
    )
    put("/api_3/project/regenerate-repos/{ownername}/{projectname}", regenerate_repos)
    get("/api_3/build/list", build_list)
    get("/api_3/build/source-chroot/{build_id}", build_source_chroot)
    get("/api_3/build/built-packages/{build_id}", build_built_packages)
    post("/api_3/build/check-before-build", check_before_build)
    post("/api_3/build/create/url", build_create_url)
    post("/api_3/build/create/upload", build_create_upload)
    post("/api_3/build/create/{source_type}", build_create_other)
    put("/api_3/build/cancel/{build_id}", build_cancel)
    delete("/api_3/build/delete/list", build_delete_list)
    delete("/api_3/build/delete/{build_id}", build_delete)
    get("/api_3/build/{build_id}", build_get)  # after the fixed /api_3/build/ paths
    get("/api_3/build-chroot", build_chroot_get)
    get("/api_3/build-chroot/list", build_chroot_list)
    get("/api_3/build-chroot/built-packages", build_chroot_built_packages)
    get("/api_3/build-chroot/build-config", build_chroot_build_config)
    get("/api_3/project-chroot", project_chroot_get)
    get("/api_3/project-chroot/build-config", project_chroot_build_config)
    put("/api_3/project-chroot/edit/{ownername}/{projectname}/{chrootname}", project_chroot_edit)
    get("/api_3/mock-chroots/list", mock_chroots)
    get("/api_3/package", package_get)
    get("/api_3/package/list", package_list)
    post("/api_3/package/add/{ownername}/{projectname}/{package_name}/{source_type}", package_add)
    post(
        "/api_3/package/edit/{ownername}/{projectname}/{package_name}/{source_type}",
        package_edit,
    )
    put("/api_3/package/reset", package_reset)
    post("/api_3/package/build", package_build)
    delete("/api_3/package/delete", package_delete)
    get("/api_3/monitor", monitor)
    get("/api_3/rpmrepo/{ownername}/{dirname}/{name_version}/", rpmrepo)
    post("/api_3/module/build/{ownername}/{projectname}", not_supported)
    post("/api_3/webhook/generate/{ownername}/{projectname}", webhook_generate)


# ---------------------------------------------------------------- helpers


def items_body(found: list[dict[str, Any]], offset: int, limit: int) -> dict[str, Any]:
    meta = {"limit": limit, "offset": offset, "order": "id", "order_type": "DESC"}
    return {"items": found, "meta": meta}


def items(found: list[dict[str, Any]], offset: int, limit: int) -> web.Response:
    return json_response(items_body(found, offset, limit))


async def cached(
    request: web.Request, key: Hashable, compute: Callable[[], Awaitable[Computed]]
) -> web.Response:
    """The hot reads (build, project list, monitor) come from the answer cache."""
    return await cached_json(request.app[ANSWERS], key, compute)


def page_of(request: web.Request) -> tuple[int, int]:
    return forms.check_page(request, DEFAULT_LIMIT)


def param(request: web.Request, key: str) -> str:
    """A required query parameter."""
    value = request.query.get(key)
    if not value:
        raise BadRequest(f"Missing query parameter '{key}'.")
    return value


def flag_param(request: web.Request, key: str) -> bool:
    return request.query.get(key, "").lower() in ("true", "1", "yes", "y", "on")


build_id_param = parse_build_id


def renamed(values: Mapping[str, object], renames: Mapping[str, str]) -> dict[str, object]:
    """v3 field names as the operation's (None values are "not given")."""
    return {renames.get(k, k): v for k, v in values.items() if v is not None}


async def body(request: web.Request) -> dict[str, object]:
    data, _ = await forms.read_json_object(request)
    return data


async def caller_and_project(request: web.Request) -> tuple[User, str, str]:
    """The signed-in caller, then the owner and project names of the URL."""
    user = await signin.api_user(request)
    return user, request.match_info["ownername"], request.match_info["projectname"]


async def project_found(request: web.Request, owner: str, name: str) -> services.Found:
    return await request.app[DB].read(services.find_project, owner, name, None)


def project_json(config: Config, project: Project, chroots: list[str] | tuple[str, ...]) -> Any:
    base = results_base(config, project.owner_name, project.name)
    return {
        "id": project.id,
        "name": project.name,
        "ownername": project.owner_name,
        "full_name": project.full_name,
        "description": project.description,
        "instructions": project.instructions,
        "homepage": project.homepage,
        "contact": project.contact,
        "persistent": project.persistent,
        "unlisted_on_hp": project.unlisted_on_hp,
        "auto_prune": project.auto_prune,
        "enable_net": project.build_enable_net,
        "auto_createrepo": project.auto_createrepo,
        "use_bootstrap_container": project.use_bootstrap_container,
        "bootstrap": "on" if project.use_bootstrap_container else "default",
        "isolation": "default",
        "devel_mode": not project.auto_createrepo,
        "module_hotfixes": False,
        "appstream": False,
        "follow_fedora_branching": False,
        "repo_priority": None,
        "storage": "backend",
        "packit_forge_projects_allowed": [],
        "runtime_dependencies": "",
        "additional_repos": project.repos.split(),
        "chroot_repos": {chroot: f"{base}{chroot}/" for chroot in chroots},
        "gpg_key_url": f"{base}pubkey.gpg" if config.sign else None,
    }


def build_json(config: Config, build: Build) -> dict[str, Any]:
    return {
        "id": build.id,
        "state": derive_build_state(build.canceled, (c.status for c in build.chroots)),
        "ownername": build.owner_name,
        "projectname": build.project_name,
        "project_dirname": build.project_name,
        "repo_url": results_base(config, build.owner_name, build.project_name).rstrip("/"),
        "source_package": {
            "name": build.pkg_name,
            "version": build.version_release,
            "url": build.source_url,
        },
        "submitted_on": build.submitted_on,
        "started_on": build.started_on,
        "ended_on": build.ended_on,
        "submitter": build.submitter_name,
        "chroots": [c.chroot for c in build.chroots],
        "is_background": build.background,
        "archived": False,
    }


WAITING = frozenset({State.IMPORTING, State.PENDING, State.STARTING})


def result_url(config: Config, build: Build, chroot: str, status: State) -> str | None:
    """Where a build's results in a chroot are published, once it has started there."""
    if status in WAITING:
        return None
    package = build.pkg_name or package_name_from_url(build.source_url)
    base = results_base(config, build.owner_name, build.project_name)
    return f"{base}{chroot}/{build_dir_name(build.id, package)}/"


def build_chroot_json(config: Config, build: Build, chroot: str) -> dict[str, Any]:
    for item in build.chroots:
        if item.chroot == chroot:
            return {
                "name": chroot,
                "state": item.status.value,
                "started_on": item.started_on,
                "ended_on": item.ended_on,
                "result_url": result_url(config, build, chroot, item.status),
            }
    raise NotFound(f"Build {build.id} has no chroot {chroot[:100]}.")


async def get_build(request: web.Request, build_id: int) -> Build:
    build = await request.app[DB].read(store.get_build, build_id)
    if build is None:
        raise NotFound(f"Build {build_id} does not exist.")
    return build


async def not_supported(request: web.Request) -> web.Response:
    """Forks, modules and dist-git are not part of this server."""
    raise BadRequest("This is not supported by this server.")


# ---------------------------------------------------------------- general


async def home(request: web.Request) -> web.Response:
    return json_response({"version": "3", "server": "copr_lite", "server_version": __version__})


async def openapi(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    paths = api_paths(request.app[PLUGINS])
    return json_response(openapi_v3_document(config.public_base_url, sorted(config.chroots), paths))


async def auth_check(request: web.Request) -> web.Response:
    user = await signin.api_user(request)
    return json_response({"id": user.id, "name": user.name, "admin": user.is_admin})


async def mock_chroots(request: web.Request) -> web.Response:
    chroots = request.app[CONFIG].chroots
    return json_response({name: f"built by {chroots[name]}" for name in sorted(chroots)})


# ---------------------------------------------------------------- projects


async def project_get(request: web.Request) -> web.Response:
    found = await project_found(request, param(request, "ownername"), param(request, "projectname"))
    return json_response(project_json(request.app[CONFIG], found.project, found.chroots))


async def project_list(request: web.Request) -> web.Response:
    offset, limit = page_of(request)
    owner = request.query.get("ownername") or None

    async def compute() -> Computed:
        found = await request.app[DB].read(store.projects_page, owner, offset, limit)
        config = request.app[CONFIG]
        rows = [] if found is None else found[1]
        answer = items_body(
            [project_json(config, r.project, r.chroots) for r in rows], offset, limit
        )
        # An unknown owner's empty page changes only when users do (changes.USERS).
        depends_on = [project_tag(r.project.id) for r in rows]
        if found is not None:
            depends_on.append(owner_tag(found[0].id) if found[0] else ALL_PROJECTS)
        return answer, depends_on

    return await cached(request, ("v3 projects", owner, offset, limit), compute)


async def project_search(request: web.Request) -> web.Response:
    offset, limit = page_of(request)
    words, owner_part, name_part = services.search_terms(param(request, "query"), "query")
    db = request.app[DB]
    rows = await db.read(store.search_projects, words, owner_part, name_part, offset + limit)
    ids = [row.id for row in rows][offset:]
    projects = await db.read(store.projects_by_ids, ids)
    config = request.app[CONFIG]
    return items([project_json(config, p, chroots) for p, chroots in projects], offset, limit)


async def project_add(request: web.Request) -> web.Response:
    user = await signin.api_user(request)
    values = renamed(await body(request), PROJECT_RENAMES)
    values.pop("initial_pkgs", None)
    owner = request.match_info["ownername"]
    exist_ok = flag_param(request, "exist_ok")
    if exist_ok:
        name = str(values.get("name") or "")
        try:
            found = await project_found(request, owner, name)
        except NotFound:
            pass
        else:
            return json_response(project_json(request.app[CONFIG], found.project, found.chroots))
    project, chroots, _ = await services.create_project(
        request.app[SERVICES], user, values, owner_name=owner
    )
    return json_response(project_json(request.app[CONFIG], project, chroots))


async def project_edit(request: web.Request) -> web.Response:
    user, owner, name = await caller_and_project(request)
    values = renamed(await body(request), PROJECT_RENAMES)
    project, chroots = await services.edit_project(request.app[SERVICES], user, owner, name, values)
    return json_response(project_json(request.app[CONFIG], project, chroots))


async def project_delete(request: web.Request) -> web.Response:
    user, owner, name = await caller_and_project(request)
    data = await body(request)

    def check(project: Project, chroots: tuple[str, ...]) -> None:
        if data.get("verify") not in (True, "y", "yes", "true"):
            raise forms.validation_error("verify", "Confirm the deletion with verify=true.")

    found = await project_found(request, owner, name)
    project = await services.delete_project(
        request.app[SERVICES], user, found.project.owner_name, found.project.name, check
    )
    return json_response(project_json(request.app[CONFIG], project, found.chroots))


async def permissions_get(request: web.Request) -> web.Response:
    user, owner, name = await caller_and_project(request)
    states = await services.get_permissions(request.app[SERVICES], user, owner, name)
    return json_response({"permissions": states})


async def permissions_set(request: web.Request) -> web.Response:
    user, owner, name = await caller_and_project(request)
    states = await services.set_permissions(
        request.app[SERVICES], user, owner, name, await body(request)
    )
    return json_response({"updated": True, "permissions": states})


async def permissions_request(request: web.Request) -> web.Response:
    user, owner, name = await caller_and_project(request)
    roles = await services.request_permissions(
        request.app[SERVICES], user, owner, name, await body(request)
    )
    return json_response({"updated": True, "permissions": {user.name: roles}})


async def can_build_in(request: web.Request) -> web.Response:
    await signin.api_user(request)
    who = request.match_info["who"]
    db = request.app[DB]
    target: User | None = await db.read(store.get_user, who) if forms.NAME_RE.match(who) else None
    if target is None:
        raise NotFound(f"User {who[:100]} does not exist.")
    found = await db.read(
        services.find_project,
        request.match_info["ownername"],
        request.match_info["projectname"],
        target,
    )
    try:
        auth.check_permission(target, found.project, found.roles, auth.Action.BUILD)
    except Forbidden:
        return json_response({"who": who, "can_build_in": False})
    return json_response({"who": who, "can_build_in": True})


async def regenerate_repos(request: web.Request) -> web.Response:
    user, owner, name = await caller_and_project(request)
    project = await services.regenerate_repos(request.app[SERVICES], user, owner, name)
    found = await project_found(request, project.owner_name, project.name)
    return json_response(project_json(request.app[CONFIG], project, found.chroots))


# ---------------------------------------------------------------- builds


async def build_get(request: web.Request) -> web.Response:
    build_id = build_id_param(request.match_info["build_id"])

    async def compute() -> Computed:
        build = await get_build(request, build_id)
        return build_json(request.app[CONFIG], build), [build_tag(build_id)]

    return await cached(request, ("v3 build", build_id), compute)


async def build_list(request: web.Request) -> web.Response:
    offset, limit = page_of(request)
    found = await project_found(request, param(request, "ownername"), param(request, "projectname"))
    package = request.query.get("packagename") or None
    status = request.query.get("status") or None
    db = request.app[DB]
    ids = await db.read(store.project_build_ids, found.project.id, package)
    if status is not None:
        states = await db.read(store.build_states, ids)
        ids = [i for i in ids if i in states and derive_build_state(*states[i]) == status]
    builds = await db.read(store.builds_newest_first, ids[offset : offset + limit])
    config = request.app[CONFIG]
    return items([build_json(config, b) for b in builds], offset, limit)


async def build_source_chroot(request: web.Request) -> web.Response:
    build = await get_build(request, build_id_param(request.match_info["build_id"]))
    importing = any(c.status is State.IMPORTING for c in build.chroots)
    base = results_base(request.app[CONFIG], build.owner_name, build.project_name)
    state = "importing" if importing else ("failed" if build.srpm_path is None else "succeeded")
    return json_response(
        {
            "name": "srpm-builds",
            "state": state,
            "started_on": build.submitted_on,
            "ended_on": None if importing else build.submitted_on,
            "result_url": f"{base}srpm-builds/{build.id:08d}/",
        }
    )


async def build_built_packages(request: web.Request) -> web.Response:
    build_id = build_id_param(request.match_info["build_id"])
    build = await get_build(request, build_id)
    rows = await request.app[DB].read(store.built_package_rows, build_id)
    result: dict[str, Any] = {c.chroot: {"packages": []} for c in build.chroots}
    for p in rows:
        result.setdefault(p.chroot, {"packages": []})["packages"].append(
            {
                "name": p.name,
                "epoch": p.epoch or 0,
                "version": p.version,
                "release": p.release,
                "arch": p.arch,
            }
        )
    return json_response(result)


def build_values(data: Mapping[str, object]) -> dict[str, object]:
    values = renamed(data, {})
    if "memory" in values and "memory_reqs" not in values:
        values["memory_reqs"] = values.pop("memory")
    return values


async def check_before_build(request: web.Request) -> web.Response:
    """What copr-cli asks before it uploads an SRPM: may the caller build there?"""
    user = await signin.api_user(request)
    data = await body(request)
    owner, name = str(data.get("ownername") or ""), str(data.get("projectname") or "")
    await services.check_allowed(request.app[SERVICES], user, owner, name, operations.SUBMIT_BUILD)
    return json_response({"message": "It should be safe to submit a build like this."})


async def build_create_url(request: web.Request) -> web.Response:
    user = await signin.api_user(request)
    data = await body(request)
    owner, name = str(data.get("ownername") or ""), str(data.get("projectname") or "")
    _, ids = await services.submit_builds(
        request.app[SERVICES], user, owner, name, build_values(data)
    )
    builds = await request.app[DB].read(store.get_builds, ids)
    config = request.app[CONFIG]
    return items([build_json(config, b) for b in builds], 0, len(ids))


async def build_create_upload(request: web.Request) -> web.Response:
    user = await signin.api_user(request)
    config = request.app[CONFIG]
    data, form = await read_with_srpm(request, forms.read_json_object)
    try:
        source = uploaded_srpm(form)
        owner, name = str(data.get("ownername") or ""), str(data.get("projectname") or "")
        _, ids = await services.submit_builds(
            request.app[SERVICES], user, owner, name, build_values(data), upload=source
        )
    except BaseException:
        forms.discard_upload(form)
        raise
    build = await get_build(request, ids[0])
    return json_response(build_json(config, build))


async def build_create_other(request: web.Request) -> web.Response:
    """Builds from a source given with the request: scm (a git repository) and custom (a
    script). Copr's other source types (pypi, rubygems, distgit) are refused."""
    source_type = request.match_info["source_type"]
    user = await signin.api_user(request)
    if source_type not in sources.SOURCE_TYPES:
        raise BadRequest(
            f"Builds from the '{source_type[:40]}' source type are not supported by this "
            "server: build from an SRPM URL or upload, a git repository (scm) or a custom script."
        )
    data = await body(request)
    owner, name = str(data.get("ownername") or ""), str(data.get("projectname") or "")
    _, build_id = await services.submit_source_build(
        request.app[SERVICES], user, owner, name, source_type, build_values(data)
    )
    build = await get_build(request, build_id)
    return json_response(build_json(request.app[CONFIG], build))


async def build_cancel(request: web.Request) -> web.Response:
    user = await signin.api_user(request)
    build_id = build_id_param(request.match_info["build_id"])
    await services.cancel_build(request.app[SERVICES], user, build_id)
    build = await get_build(request, build_id)
    return json_response(build_json(request.app[CONFIG], build))


async def build_delete(request: web.Request) -> web.Response:
    user = await signin.api_user(request)
    build_id = build_id_param(request.match_info["build_id"])
    build = await get_build(request, build_id)
    await services.delete_builds(request.app[SERVICES], user, [build_id])
    return json_response(build_json(request.app[CONFIG], build))


def _is_build_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_BUILD_ID


async def build_delete_list(request: web.Request) -> web.Response:
    user = await signin.api_user(request)
    data = await body(request)
    ids = data.get("builds")
    if not isinstance(ids, list) or not ids or not all(_is_build_id(i) for i in ids):
        raise BadRequest("Give the ids of the builds to delete as a list: {'builds': [...]}.")
    deleted = await services.delete_builds(request.app[SERVICES], user, [int(i) for i in ids])
    return json_response({"builds": deleted})


# ---------------------------------------------------------------- build chroots


async def build_chroot_get(request: web.Request) -> web.Response:
    build = await get_build(request, build_id_param(param(request, "build_id")))
    chroot = param(request, "chrootname")
    return json_response(build_chroot_json(request.app[CONFIG], build, chroot))


async def build_chroot_list(request: web.Request) -> web.Response:
    offset, limit = page_of(request)
    build = await get_build(request, build_id_param(param(request, "build_id")))
    config = request.app[CONFIG]
    found = [build_chroot_json(config, build, c.chroot) for c in build.chroots]
    return items(found[offset : offset + limit], offset, limit)


async def build_chroot_built_packages(request: web.Request) -> web.Response:
    build_id = build_id_param(param(request, "build_id"))
    chroot = param(request, "chrootname")
    build = await get_build(request, build_id)
    build_chroot_json(request.app[CONFIG], build, chroot)  # 404 for a chroot it lacks
    rows = await request.app[DB].read(store.built_package_rows, build_id)
    packages = [
        {
            "name": p.name,
            "epoch": p.epoch or 0,
            "version": p.version,
            "release": p.release,
            "arch": p.arch,
        }
        for p in rows
        if p.chroot == chroot
    ]
    return json_response({"packages": packages})


def repo_list(config: Config, owner: str, project: str, chroot: str, extra: list[str]) -> Any:
    repos = [
        {
            "id": "copr_base",
            "name": "Copr repository",
            "baseurl": f"{results_base(config, owner, project)}{chroot}/",
        }
    ]
    for index, url in enumerate(extra, 1):
        repos.append(
            {"id": f"copr_extra_{index}", "name": f"Extra repository {index}", "baseurl": url}
        )
    return repos


async def build_chroot_build_config(request: web.Request) -> web.Response:
    build = await get_build(request, build_id_param(param(request, "build_id")))
    chroot = param(request, "chrootname")
    build_chroot_json(request.app[CONFIG], build, chroot)
    settings = await request.app[DB].read(store.get_chroot_settings, build.project_id, chroot)
    packages, chroot_repos = settings or ("", "")
    config = request.app[CONFIG]
    extra = [*build.repos.split(), *chroot_repos.split()]
    return json_response(
        {
            "chroot": chroot,
            "build_id": build.id,
            "repos": repo_list(config, build.owner_name, build.project_name, chroot, extra),
            "additional_packages": forms_packages(packages),
            "enable_net": build.enable_net,
            "memory_reqs": build.memory_reqs,
            "timeout": build.timeout,
            "isolation": "default",
            "bootstrap": "default",
            "with_opts": [],
            "without_opts": [],
        }
    )


def forms_packages(text: str) -> list[str]:
    return forms.split_packages(text)


# ---------------------------------------------------------------- project chroots


async def _project_chroot(request: web.Request) -> tuple[services.Found, str, str, str]:
    found = await project_found(request, param(request, "ownername"), param(request, "projectname"))
    chroot = services.find_chroot(found, param(request, "chrootname"))
    settings = await request.app[DB].read(store.get_chroot_settings, found.project.id, chroot)
    packages, repos = settings or ("", "")
    return found, chroot, packages, repos


def project_chroot_json(project: Project, chroot: str, packages: str, repos: str) -> Any:
    return {
        "mock_chroot": chroot,
        "ownername": project.owner_name,
        "projectname": project.name,
        "additional_packages": forms_packages(packages),
        "additional_repos": repos.split(),
        "additional_modules": [],
        "with_opts": [],
        "without_opts": [],
        "comps_name": None,
        "delete_after_days": None,
        "isolation": "unchanged",
        "bootstrap": None,
        "bootstrap_image": None,
    }


async def project_chroot_get(request: web.Request) -> web.Response:
    found, chroot, packages, repos = await _project_chroot(request)
    return json_response(project_chroot_json(found.project, chroot, packages, repos))


async def project_chroot_build_config(request: web.Request) -> web.Response:
    found, chroot, packages, repos = await _project_chroot(request)
    project = found.project
    config = request.app[CONFIG]
    extra = [*project.repos.split(), *repos.split()]
    return json_response(
        {
            "chroot": chroot,
            "repos": repo_list(config, project.owner_name, project.name, chroot, extra),
            "additional_packages": forms_packages(packages),
            "enable_net": project.build_enable_net,
            "isolation": "default",
            "bootstrap": "on" if project.use_bootstrap_container else "default",
            "bootstrap_image": None,
            "with_opts": [],
            "without_opts": [],
        }
    )


async def project_chroot_edit(request: web.Request) -> web.Response:
    user, owner, name = await caller_and_project(request)
    data, form = await forms.read_json_object(request)
    forms.discard_upload(form)
    values = renamed(data, CHROOT_RENAMES)
    reset = data.get("reset_fields") or []
    if isinstance(reset, list):
        for field in reset:
            if isinstance(field, str) and field in CHROOT_RENAMES:
                values[CHROOT_RENAMES[field]] = ""
    project, packages, repos = await services.edit_chroot(
        request.app[SERVICES],
        user,
        owner,
        name,
        request.match_info["chrootname"],
        {k: v for k, v in values.items() if k in ("buildroot_pkgs", "repos")},
    )
    return json_response(
        project_chroot_json(project, request.match_info["chrootname"], packages, repos)
    )


# ---------------------------------------------------------------- packages


def package_json(config: Config, project: Project, package: store.Package) -> Any:
    builds: dict[str, Any] = {
        "latest": build_json(config, package.latest) if package.latest else None,
        "latest_succeeded": build_json(config, package.latest_succeeded)
        if package.latest_succeeded
        else None,
    }
    return {
        "id": package.id,
        "name": package.name,
        "ownername": project.owner_name,
        "projectname": project.name,
        "source_type": package.source_type,
        "source_dict": package.source,
        "auto_rebuild": package.webhook_rebuild,
        "timeout": package.options.get("timeout"),
        "chroot_denylist": package.options.get("chroot_denylist", []),
        "builds": builds,
    }


async def package_get(request: web.Request) -> web.Response:
    found = await project_found(request, param(request, "ownername"), param(request, "projectname"))
    name = param(request, "packagename")
    with_builds = flag_param(request, "with_latest_build") or flag_param(
        request, "with_latest_succeeded_build"
    )
    packages = await request.app[DB].read(
        store.packages_page, found.project.id, name, 0, 1, with_builds
    )
    if not packages:
        raise NotFound(f"Package {name[:100]} does not exist in {found.project.full_name}.")
    return json_response(package_json(request.app[CONFIG], found.project, packages[0]))


async def package_list(request: web.Request) -> web.Response:
    offset, limit = page_of(request)
    found = await project_found(request, param(request, "ownername"), param(request, "projectname"))
    with_builds = flag_param(request, "with_latest_build") or flag_param(
        request, "with_latest_succeeded_build"
    )
    packages = await request.app[DB].read(
        store.packages_page, found.project.id, None, offset, limit, with_builds
    )
    config = request.app[CONFIG]
    return items([package_json(config, found.project, p) for p in packages], offset, limit)


# copr-cli's add-package-custom spells the script's settings with a "script_" prefix;
# build/create/custom and the stored source do not.
CUSTOM_RENAMES = {f"script_{key}": key for key in ("chroot", "builddeps", "resultdir", "repos")}


async def package_add(request: web.Request) -> web.Response:
    """Define a package with an scm or custom source (Conflict when it has one)."""
    return await _save_package(request, create=True)


async def package_edit(request: web.Request) -> web.Response:
    """Change a package's source; what is not given keeps its value."""
    return await _save_package(request, create=False)


async def _save_package(request: web.Request, *, create: bool) -> web.Response:
    user = await signin.api_user(request)
    source_type = request.match_info["source_type"]
    if source_type not in sources.SOURCE_TYPES:
        raise BadRequest(
            f"Package source type '{source_type[:40]}' is not supported by this server: "
            "packages come from a git repository (scm), a custom script, or SRPMs built by "
            "URL or upload."
        )
    data = await body(request)
    owner, name = request.match_info["ownername"], request.match_info["projectname"]
    package = request.match_info["package_name"]
    values = renamed(data, CUSTOM_RENAMES)
    project = await services.save_package(
        request.app[SERVICES], user, owner, name, package, source_type, values, create=create
    )
    return await _package_answer(request, project, package)


async def _package_answer(request: web.Request, project: Project, package: str) -> web.Response:
    packages = await request.app[DB].read(store.packages_page, project.id, package, 0, 1, False)
    if not packages:
        raise NotFound(f"Package {package[:100]} does not exist in {project.full_name}.")
    return json_response(package_json(request.app[CONFIG], project, packages[0]))


async def package_build(request: web.Request) -> web.Response:
    """Build a package from its stored source, with the request's build options."""
    (user, owner, name, package), data = await _package_target(request)
    _, build_id = await services.build_package(
        request.app[SERVICES], user, owner, name, package, build_values(data)
    )
    build = await get_build(request, build_id)
    return json_response(build_json(request.app[CONFIG], build))


async def _package_target(
    request: web.Request,
) -> tuple[tuple[User, str, str, str], dict[str, object]]:
    """(caller, owner, project, package) of a package request body, and the body."""
    user = await signin.api_user(request)
    data = await body(request)
    owner, name = str(data.get("ownername") or ""), str(data.get("projectname") or "")
    package = str(data.get("package_name") or "")
    if not package:
        raise forms.validation_error("package_name", "This field is required.")
    return (user, owner, name, package), data


async def package_reset(request: web.Request) -> web.Response:
    """Forget a package's source: it is then built from SRPMs only."""
    (user, owner, name, package), _ = await _package_target(request)
    project = await services.reset_package(request.app[SERVICES], user, owner, name, package)
    return await _package_answer(request, project, package)


async def package_delete(request: web.Request) -> web.Response:
    (user, owner, name, package), _ = await _package_target(request)
    project, found = await services.delete_package(
        request.app[SERVICES], user, owner, name, package
    )
    return json_response(package_json(request.app[CONFIG], project, found))


# ---------------------------------------------------------------- monitor and dnf5


async def monitor(request: web.Request) -> web.Response:
    owner, name = param(request, "ownername"), param(request, "projectname")
    extra = frozenset(request.query.getall("additional_fields[]", []))
    unknown = extra - {"url_build_log", "url_backend_log"}
    if unknown:
        raise BadRequest(f"Unknown additional fields: {', '.join(sorted(unknown))[:200]}")

    async def compute() -> Computed:
        return await _monitor(request, owner, name, extra)

    return await cached(request, ("v3 monitor", owner, name, extra), compute)


async def _monitor(request: web.Request, owner: str, name: str, extra: frozenset[str]) -> Computed:
    found = await project_found(request, owner, name)
    latest = await request.app[DB].read(store.latest_builds, found.project.id)
    config = request.app[CONFIG]
    base = results_base(config, found.project.owner_name, found.project.name)
    packages: dict[str, dict[str, Any]] = {}
    for row in latest:
        entry: dict[str, Any] = {
            "build_id": row.build_id,
            "state": row.status.value,
            "status": row.status.code,
            "pkg_version": row.version_release,
        }
        build_dir = f"{base}{row.chroot}/{build_dir_name(row.build_id, row.pkg_name)}/"
        if "url_build_log" in extra:
            entry["url_build_log"] = f"{build_dir}builder-live.log.gz"
        if "url_backend_log" in extra:
            entry["url_backend_log"] = f"{build_dir}backend.log.gz"
        chroots = packages.setdefault(row.pkg_name, {"name": row.pkg_name, "chroots": {}})
        chroots["chroots"][row.chroot] = entry
    answer = {
        "output": "ok",
        "message": "Project monitor request successful",
        "packages": [packages[package] for package in sorted(packages)],
    }
    return answer, [project_tag(found.project.id)]


async def rpmrepo(request: web.Request) -> web.Response:
    """What dnf5's `copr enable` reads: the project's repositories by distribution."""
    found = await project_found(
        request, request.match_info["ownername"], request.match_info["dirname"]
    )
    repos: dict[str, Any] = {}
    for chroot in found.chroots:
        name_release, _, arch = chroot.rpartition("-")
        repos.setdefault(name_release, {"arch": {}})["arch"][arch] = {"opts": {}}
    config = request.app[CONFIG]
    return json_response(
        {
            "results_url": config.public_results_url,
            "repos": repos,
            "directories": {found.project.name: {}},
            "dependencies": [],
        }
    )


# ---------------------------------------------------------------- webhooks


async def webhook_generate(request: web.Request) -> web.Response:
    """A new secret for the project's incoming webhooks (`copr-cli new-webhook-secret`)."""
    user = await signin.api_user(request)
    owner, name = request.match_info["ownername"], request.match_info["projectname"]
    project, secret = await services.generate_webhook_secret(
        request.app[SERVICES], user, owner, name
    )
    return json_response(
        {
            "id": project.id,
            "name": project.name,
            "ownername": project.owner_name,
            "full_name": project.full_name,
            "webhook_secret": secret,
        }
    )
