"""Incoming forge webhooks (`/webhooks/...`), and what the Integrations tab shows of them.

Two URL forms reach `services.receive_webhook`:

- ours, one per project and forge, whose deliveries must be signed with the project's
  webhook secret: `/webhooks/{forge}/{owner}/{project}/` (and `.../{package}/`);
- Copr's, for projects moving from Copr, which carry the secret itself:
  `/webhooks/{forge}/{project_id}/{secret}/` (and `.../{package}/`).

Errors are answered in the API's JSON shape (views/__init__.py registers the prefix).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import forges, forms, services, store
from ..keys import CONFIG, DB, SERVICES
from ..middlewares import form_routes
from ..models import Project
from ..responses import json_response

PREFIX = "/webhooks"
# Copr's URLs name the project by id and carry its secret, a UUID (36 characters).
COPR_FORM = PREFIX + "/{forge}/{project_id:[0-9]+}/{secret:[0-9a-fA-F-]{36}}/"
OUR_FORM = PREFIX + "/{forge}/{username}/{project}/"
RECENT_DELIVERIES = 30
# One line per forge: where its webhook is set up, and what to choose there.
SETUP = {
    "github": "Repository Settings → Webhooks → Add webhook: the URL, content type "
    "application/json, the secret, just the push event.",
    "gitlab": "Project Settings → Webhooks: the URL, the secret as Secret token, "
    "Push events and Tag push events.",
    "gitea": "Repository Settings → Webhooks → Add Webhook → Gitea: the URL, POST, "
    "application/json, the secret, Push events.",
    "forgejo": "Repository Settings → Webhooks → Add webhook → Forgejo: the URL, POST, "
    "application/json, the secret, Push events.",
    "custom": "POST to the URL (ending with the package name) with the secret in the "
    "X-Copr-Token header or as Authorization: Bearer.",
}


def add_webhook_routes(router: web.UrlDispatcher) -> None:
    """The webhook URLs (Copr's form first: its id and secret would also match ours)."""
    _, post = form_routes(router)
    post(COPR_FORM, receive)
    post(COPR_FORM + "{package}/", receive)
    post(OUR_FORM, receive)
    post(OUR_FORM + "{package}/", receive)


async def receive(request: web.Request) -> web.Response:
    """One delivery: 200 with the builds it started (none for a ping, a replay, or a push
    no package follows); 403 for a bad secret or signature; 404 for an unknown project."""
    info = request.match_info
    project_id = info.get("project_id")
    incoming = services.Incoming(
        forge=info["forge"],
        headers=request.headers,
        body=await forms.read_body(request),
        owner=info.get("username", ""),
        name=info.get("project", ""),
        project_id=int(project_id) if project_id is not None else None,
        url_secret=info.get("secret"),
        package=info.get("package"),
    )
    result = await services.receive_webhook(request.app[SERVICES], incoming)
    return json_response(
        {
            "output": "ok",
            "message": result.outcome,
            "delivery": result.delivery,
            "builds": list(result.build_ids),
        },
        status=result.status,
    )


# ---------------------------------------------------------------- the Integrations tab


def webhook_urls(base_url: str, project: Project, secret: str | None) -> list[dict[str, str]]:
    """Per forge: our URL, Copr's URL form (with the secret, once there is one) and how to
    set it up."""
    urls = []
    for forge in forges.FORGES:
        ours = f"{base_url}{PREFIX}/{forge}/{project.owner_name}/{project.name}/"
        copr = f"{base_url}{PREFIX}/{forge}/{project.id}/{secret}/" if secret else ""
        if forge == "custom":
            ours, copr = ours + "<package>/", copr + "<package>/" if copr else ""
        urls.append({"forge": forge, "ours": ours, "copr": copr, "setup": SETUP[forge]})
    return urls


async def integrations_context(request: web.Request, project: Project) -> dict[str, Any]:
    """What the Integrations tab (views/web.py) shows the project's owner and admins: the
    secret, the webhook URLs, the recent deliveries and the outgoing webhooks page."""
    db = request.app[DB]
    secret = await db.read(store.webhook_secret, project.id)
    return {
        "secret": secret,
        "urls": webhook_urls(request.app[CONFIG].public_base_url, project, secret),
        "deliveries": await db.read(store.recent_deliveries, project.id, RECENT_DELIVERIES),
        "outgoing_url": _outgoing_webhooks_path(request, project),
    }


def _outgoing_webhooks_path(request: web.Request, project: Project) -> str | None:
    """The project's outgoing webhooks page, when the app has one (a route so named)."""
    resource = request.app.router.named_resources().get("outgoing-webhooks")
    if resource is None:
        return None
    path = resource.canonical
    for key in ("username", "ownername", "owner"):
        path = path.replace("{" + key + "}", project.owner_name)
    for key in ("project", "projectname", "name"):
        path = path.replace("{" + key + "}", project.name)
    return path
