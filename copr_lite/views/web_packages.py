"""The web UI's package definitions: define a package with a source (a git repository or
a custom script), change it, and build it. The packages tab (web.py) lists them.

Every change goes through the same service functions as API v3's package endpoints.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import auth, forms, services, store
from ..errors import BadRequest, Conflict, NotFound, PayloadTooLarge
from ..keys import DB, SERVICES
from ..middlewares import form_routes
from ..models import Project
from .pages import flash_redirect
from .web import field_errors, form_again, page, project_for, read_form

# The form's fields of each source type, as sources.parse_source reads them.
SOURCE_FIELDS = {
    "scm": ("clone_url", "committish", "subdirectory", "spec", "source_build_method"),
    "custom": ("script", "resultdir", "builddeps", "chroot"),
}
OPTION_FIELDS = ("timeout", "chroot_denylist")


def add_package_routes(router: web.UrlDispatcher) -> None:
    get, post = form_routes(router)
    prefix = "/coprs/{username}/{project}/package"
    for path, handler in (
        (prefix + "/new/", new_package),
        (prefix + "/{package}/edit/", edit_package),
    ):
        get(path, handler)
        post(path, handler)
    post(prefix + "/{package}/build/", build_package)


def packages_url(project: Project) -> str:
    return f"/coprs/{project.owner_name}/{project.name}/packages/"


async def new_package(request: web.Request) -> web.StreamResponse:
    return await _package_form(request, None)


async def edit_package(request: web.Request) -> web.StreamResponse:
    return await _package_form(request, request.match_info["package"])


async def _package_form(request: web.Request, package: str | None) -> web.StreamResponse:
    """GET: the form (empty, or the package's settings); POST: save and go to the tab."""
    user, project, _ = await project_for(request, auth.Action.BUILD)
    context: dict[str, Any] = {"project": project, "package": package, "errors": {}}
    if request.method == "GET":
        values: dict[str, str] = {"source_type": "scm", "source_build_method": "rpkg"}
        if package is not None:
            stored = await request.app[DB].read(store.get_package, project.id, package)
            if stored is None or stored.source_type == "unset":
                raise NotFound(f"Package {package[:100]} has no source in this project.")
            values = _form_values(stored)
        return await page(request, "package_form.html", {**context, "values": values})
    form = await read_form(request)
    name = package if package is not None else (form.get("name") or "").strip()
    source_type = form.get("source_type") or ""
    errors: dict[str, str] = {}
    values_in: dict[str, object] = {
        key: form.get(key) or "" for key in SOURCE_FIELDS.get(source_type, ())
    }
    values_in.update({key: form.get(key) or "" for key in OPTION_FIELDS})
    values_in["webhook_rebuild"] = form.checkbox("webhook_rebuild")
    try:
        if not name:
            raise forms.validation_error("name", "This field is required.")
        await services.save_package(
            request.app[SERVICES],
            user,
            project.owner_name,
            project.name,
            name,
            source_type,
            values_in,
            create=package is None,
        )
    except (forms.ValidationError, PayloadTooLarge) as exc:
        field_errors(exc, errors)
    except Conflict as exc:
        errors["name"] = exc.message
    except BadRequest as exc:
        errors["source_type"] = exc.message
    if errors:
        return await form_again(request, "package_form.html", context, form, errors)
    raise flash_redirect(packages_url(project), f"Package {name} saved.")


def _form_values(package: store.Package) -> dict[str, str]:
    values = {key: str(value) for key, value in package.source.items() if value is not None}
    values["source_type"] = package.source_type
    if package.webhook_rebuild:
        values["webhook_rebuild"] = "y"
    if package.options.get("timeout"):
        values["timeout"] = str(package.options["timeout"])
    values["chroot_denylist"] = " ".join(package.options.get("chroot_denylist") or [])
    return values


async def build_package(request: web.Request) -> web.StreamResponse:
    """Build a package from its source in all of the project's chroots."""
    user, project, _ = await project_for(request, auth.Action.BUILD)
    package = request.match_info["package"]
    await read_form(request)
    try:
        _, build_id = await services.build_package(
            request.app[SERVICES], user, project.owner_name, project.name, package, {}
        )
    except BadRequest as exc:
        raise flash_redirect(packages_url(project), exc.message) from None
    raise flash_redirect(f"/builds/{build_id}/", f"Build {build_id} of {package} submitted.")
