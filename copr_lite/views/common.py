"""What the view modules share: ids and projects addressed by a URL, the results URL of a
project, the package name in an SRPM URL, an uploaded SRPM, and an event stream's start.

Every views module may import this one; it imports no other views module.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web

from .. import forms, services, store
from ..config import Config
from ..errors import NotFound
from ..forms import Form
from ..keys import CONFIG, DB
from ..models import Project, User
from ..publisher import MAX_BUILD_ID

_BUILD_ID = re.compile(r"^[0-9]{1,19}$")


def is_build_id(text: str) -> bool:
    """Whether `text` is a build id as a URL spells it: decimal digits up to 2^63-1."""
    return bool(_BUILD_ID.match(text)) and int(text) <= MAX_BUILD_ID


def parse_build_id(text: str) -> int:
    """A build id from a URL, else NotFound."""
    if is_build_id(text):
        return int(text)
    raise NotFound(f"Build {text[:40]} does not exist.")


def build_id_of(request: web.Request) -> int:
    """The build id of the URL's `{build_id}`, else NotFound."""
    return parse_build_id(request.match_info["build_id"])


async def project_of(
    request: web.Request, user: User | None = None
) -> tuple[Project, frozenset[str], tuple[str, ...]]:
    """The project of the URL's `{username}/{project}`, the roles `user` has on it and its
    enabled chroots, or NotFound."""
    owner, name = request.match_info["username"], request.match_info["project"]
    found = await request.app[DB].read(services.find_project, owner, name, user)
    return found.project, found.roles, found.chroots


def results_base(config: Config, owner: str, project: str) -> str:
    """The public URL of a project's results tree, ending in "/"."""
    return f"{config.public_results_url}/{owner}/{project}/"


def package_name_from_url(url: str) -> str:
    """The package name in an SRPM file name (N-V-R.src.rpm), for result paths."""
    base = url.rstrip("/").rsplit("/", 1)[-1]
    for suffix in forms.SRPM_SUFFIXES:
        base = base.removesuffix(suffix)
    parts = base.rsplit("-", 2)
    return parts[0] if len(parts) == 3 and parts[0] else base


# The file part of an API build upload.
UPLOAD_FIELD = "pkgs"

Body = TypeVar("Body")


async def read_with_srpm(request: web.Request, read: Callable[..., Awaitable[Body]]) -> Body:
    """The body as `read` (forms.read_form, forms.read_json_object) gives it, its file part
    UPLOAD_FIELD streamed into the uploads directory, within the upload size limit."""
    config = request.app[CONFIG]
    return await read(
        request,
        file_field=UPLOAD_FIELD,
        upload_dir=config.upload_dir,
        file_limit=config.upload_size_limit,
    )


def uploaded_srpm(form: Form) -> store.NewBuild:
    """The build source of an API upload (the file part UPLOAD_FIELD), else a 400."""
    if form.upload is None:
        raise forms.validation_error(
            UPLOAD_FIELD, f"Attach the SRPM as the file part '{UPLOAD_FIELD}'."
        )
    return store.NewBuild(form.upload_name or form.upload.name, str(form.upload))


async def start_event_stream(request: web.Request, cache_control: str) -> web.StreamResponse:
    """A started `text/event-stream` answer (server-sent events), never buffered by a
    proxy."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": cache_control,
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    return response
