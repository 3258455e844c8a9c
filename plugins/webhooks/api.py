"""The JSON API of outgoing webhooks, under /api_3/webhook/outgoing/ (API v3's sign-in and
error shape). Only the project's owner, its admins and system admins may use it; they see
the secret, since they may also change it."""

from __future__ import annotations

from aiohttp import web

from copr_lite import forms, signin
from copr_lite.errors import NotFound
from copr_lite.keys import DB
from copr_lite.models import Project
from copr_lite.responses import json_response

from . import tables, targets
from .outbox import Outbox

PREFIX = "/api_3/webhook/outgoing"
CONFIG_PATH = PREFIX + "/{ownername}/{projectname}"
DELIVERIES_PATH = CONFIG_PATH + "/deliveries"
DELIVERIES_LIMIT = 50
OUTBOX = web.AppKey("webhooks_outbox", Outbox)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(CONFIG_PATH, get_webhook)
    router.add_put(CONFIG_PATH, put_webhook)
    router.add_delete(CONFIG_PATH, delete_webhook)
    router.add_get(DELIVERIES_PATH, list_deliveries)


async def _project(request: web.Request) -> Project:
    user = await signin.api_user(request)
    owner, name = request.match_info["ownername"], request.match_info["projectname"]
    return await targets.project_for(request, user, owner, name)


def _none(project: Project) -> NotFound:
    return NotFound(f"Project {project.full_name} has no outgoing webhook.")


async def get_webhook(request: web.Request) -> web.Response:
    project = await _project(request)
    webhook = await request.app[DB].read(tables.get_webhook, project.id)
    if webhook is None:
        raise _none(project)
    return json_response(targets.webhook_json(project, webhook))


async def put_webhook(request: web.Request) -> web.Response:
    project = await _project(request)
    values, _ = await forms.read_json_object(request)
    webhook, created = await targets.save(request, project, values)
    if OUTBOX in request.app:
        request.app[OUTBOX].wake()  # a new URL or re-enabling may make deliveries due
    return json_response(
        {**targets.webhook_json(project, webhook), "created": created}, 201 if created else 200
    )


async def delete_webhook(request: web.Request) -> web.Response:
    project = await _project(request)
    if not await request.app[DB].write(tables.delete_webhook, project.id):
        raise _none(project)
    return json_response({"deleted": True})


async def list_deliveries(request: web.Request) -> web.Response:
    project = await _project(request)
    deliveries = await request.app[DB].read(tables.list_deliveries, project.id, DELIVERIES_LIMIT)
    return json_response({"deliveries": [targets.delivery_json(d) for d in deliveries]})
