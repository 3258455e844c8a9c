"""The web page of a project's outgoing webhook (named route "outgoing-webhooks"): its
settings form and its recent deliveries. It renders through the web UI's layout, with its
session and CSRF checks; changes go through `targets`, as the API's do."""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from copr_lite import forms
from copr_lite.keys import DB
from copr_lite.middlewares import expect_form
from copr_lite.views.pages import flash_redirect
from copr_lite.views.web import page, read_form, signed_in

from . import tables, targets
from .api import OUTBOX

ROUTE_NAME = "outgoing-webhooks"
PATH = "/coprs/{username}/{project}/webhooks/outgoing/"
TEMPLATE = "webhooks/outgoing.html"
TEMPLATES = Path(__file__).resolve().parent / "templates"


def add_routes(app: web.Application) -> None:
    """The page's route, and its template made findable beside the web UI's."""
    resource = app.router.add_resource(PATH, name=ROUTE_NAME)
    resource.add_route("GET", outgoing_page, expect_handler=expect_form)
    resource.add_route("POST", outgoing_page, expect_handler=expect_form)
    env = aiohttp_jinja2.get_env(app)
    own = jinja2.PrefixLoader({"webhooks": jinja2.FileSystemLoader(str(TEMPLATES))})
    env.loader = jinja2.ChoiceLoader([env.loader, own] if env.loader else [own])


async def outgoing_page(request: web.Request) -> web.StreamResponse:
    user = await signed_in(request)
    owner, name = request.match_info["username"], request.match_info["project"]
    project = await targets.project_for(request, user, owner, name)
    here = str(request.app.router[ROUTE_NAME].url_for(username=owner, project=name))
    db = request.app[DB]
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        form = await read_form(request)
        if form.get("action") == "delete":
            await db.write(tables.delete_webhook, project.id)
            raise flash_redirect(here, "Outgoing webhook removed.")
        values = dict(form.fields)
        fields: dict[str, object] = {
            "url": form.get("url") or "",
            "enabled": form.checkbox("enabled"),
        }
        if form.get("secret"):
            fields["secret"] = form.get("secret")
        try:
            _, created = await targets.save(request, project, fields)
        except forms.ValidationError as exc:
            errors[exc.field] = exc.text
            status = 400
        else:
            if OUTBOX in request.app:
                request.app[OUTBOX].wake()
            raise flash_redirect(here, "Outgoing webhook created." if created else "Saved.")
    webhook = await db.read(tables.get_webhook, project.id)
    deliveries = await db.read(tables.list_deliveries, project.id, 50)
    if not values and webhook is not None:
        values = {"url": webhook.url, "enabled": "y" if webhook.enabled else ""}
    elif not values:
        values = {"enabled": "y"}
    context = {
        "project": project,
        "webhook": webhook,
        "deliveries": deliveries,
        "values": values,
        "errors": errors,
        "action": here,
    }
    return await page(request, TEMPLATE, context, status)
