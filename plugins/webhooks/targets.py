"""A project's webhook target as the API and the web page read and change it: who may
(the permission check), what is accepted (the field checks), and its JSON form."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from copr_lite import auth, services
from copr_lite.errors import Forbidden
from copr_lite.forms import validation_error
from copr_lite.keys import CONFIG, DB
from copr_lite.models import Project, User
from copr_lite.srpm import SrpmError, pinned_connector

from . import tables
from .outbox import refusal_text

MAX_URL = 2000
SECRET_MIN, SECRET_MAX = 16, 256


async def project_for(request: web.Request, user: User, owner: str, name: str) -> Project:
    """The addressed project (404) once `user` is found to be its owner, one of its admins
    or a system admin (403)."""
    found = await request.app[DB].read(services.find_project, owner, name, user)
    try:
        auth.check_permission(user, found.project, found.roles, auth.Action.MODIFY)
    except Forbidden:
        raise Forbidden(
            f"Only the owner and the admins of {found.project.full_name} may see or change "
            "its webhooks."
        ) from None
    return found.project


async def check_url(value: object, allowed_networks: tuple[str, ...]) -> str:
    """The target URL, checked with the policy of SRPM URLs: http or https, and every
    address its host resolves to allowed."""
    if not isinstance(value, str) or not value.strip():
        raise validation_error("url", "Give the http(s) URL to send the events to.")
    url = value.strip()
    if len(url) > MAX_URL:
        raise validation_error("url", f"The URL is longer than {MAX_URL} characters.")
    try:
        _, connector = await pinned_connector(url, allowed_networks)
    except SrpmError as exc:
        raise validation_error("url", refusal_text(exc)) from None
    await connector.close()
    return url


def check_secret(value: object) -> str:
    if not isinstance(value, str):
        raise validation_error("secret", "The secret must be a string.")
    secret = value.strip()
    if not SECRET_MIN <= len(secret) <= SECRET_MAX or not secret.isprintable() or " " in secret:
        raise validation_error(
            "secret",
            f"The secret must be {SECRET_MIN} to {SECRET_MAX} printable characters without "
            "spaces (leave it out to keep the current one, or to have one made).",
        )
    return secret


def check_enabled(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "yes", "y", "on", "1"):
        return True
    if value in ("false", "no", "n", "off", "0", ""):
        return False
    raise validation_error("enabled", "enabled must be true or false.")


async def save(
    request: web.Request, project: Project, values: Mapping[str, object]
) -> tuple[tables.Webhook, bool]:
    """Create or change the project's webhook from `values` (url, secret, enabled; a
    missing one keeps its current value; a new webhook without a secret gets one made).
    Returns it and whether it is new; a bad field raises ValidationError."""
    db = request.app[DB]
    current = await db.read(tables.get_webhook, project.id)
    if "url" in values or current is None:
        url = await check_url(values.get("url"), request.app[CONFIG].srpm_allowed_networks)
    else:
        url = current.url
    if values.get("secret") not in (None, ""):
        secret = check_secret(values["secret"])
    else:
        secret = current.secret if current is not None else secrets.token_urlsafe(32)
    enabled = current.enabled if current is not None else True
    if "enabled" in values:
        enabled = check_enabled(values["enabled"])
    return await db.write(tables.save_webhook, project.id, url, secret, enabled, int(time.time()))


def webhook_json(project: Project, webhook: tables.Webhook) -> dict[str, Any]:
    return {
        "ownername": project.owner_name,
        "projectname": project.name,
        "url": webhook.url,
        "secret": webhook.secret,
        "enabled": webhook.enabled,
        "created_on": webhook.created_on,
        "updated_on": webhook.updated_on,
    }


def delivery_json(delivery: tables.Delivery) -> dict[str, Any]:
    return {
        "id": delivery.event_id,
        "event": delivery.event,
        "build_id": delivery.build_id,
        "chroot": delivery.chroot,
        "state": delivery.state,
        "delivered": delivery.state == tables.DELIVERED,
        "attempts": delivery.attempts,
        "last_status_code": delivery.last_status,
        "last_error": delivery.last_error,
        "created_on": delivery.created_on,
        "last_attempt_on": delivery.last_attempt_on,
        "next_attempt_on": delivery.next_attempt_on,
    }
