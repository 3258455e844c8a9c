"""The OpenAPI description of /api_3/webhook/outgoing/..., added to /api_3/openapi.json by
the `register_api_paths` hook."""

from __future__ import annotations

from typing import Any

from copr_lite.openapi import (
    array,
    boolean,
    integer,
    json_content,
    nullable_integer,
    nullable_string,
    obj,
    operation,
    path_param,
    string,
)

from .api import CONFIG_PATH, DELIVERIES_PATH
from .payloads import EVENTS

PARAMETERS = [
    path_param("ownername", "The project's owner.", string()),
    path_param("projectname", "The project's name.", string()),
]
WEBHOOK = {
    "ownername": string(),
    "projectname": string(),
    "url": string("Where the events are POSTed."),
    "secret": string("The key of the X-Copr-Lite-Signature HMAC."),
    "enabled": boolean("False: no events are queued, and pending ones were given up."),
    "created_on": integer(),
    "updated_on": integer(),
}
DELIVERY = obj(
    {
        "id": string("The event id (X-Copr-Lite-Delivery), the same on every attempt."),
        "event": string(enum=list(EVENTS)),
        "build_id": integer(),
        "chroot": nullable_string("For chroot.ended."),
        "state": string(enum=["pending", "delivered", "failed"]),
        "delivered": boolean(),
        "attempts": integer(),
        "last_status_code": nullable_integer("The HTTP status of the last attempt."),
        "last_error": nullable_string("Why the last attempt failed."),
        "created_on": {"type": "number", "description": "Unix time of the event."},
        "last_attempt_on": {"type": "number", "nullable": True},
        "next_attempt_on": {
            "type": "number",
            "nullable": True,
            "description": "Unix time of the next attempt of a pending delivery.",
        },
    }
)
PUT_BODY = {
    "required": True,
    "content": json_content(
        {
            "type": "object",
            "properties": {
                "url": string("http or https URL; required when there is no webhook yet."),
                "secret": string(
                    "16 to 256 printable characters; left out: the current one is kept, or one "
                    "is made for a new webhook."
                ),
                "enabled": boolean("Default true for a new webhook."),
            },
        }
    ),
}


def api_paths() -> dict[str, Any]:
    """The path items of the outgoing webhook API."""
    return {
        CONFIG_PATH: {
            "parameters": PARAMETERS,
            "get": operation(
                "A project's outgoing webhook, with its secret (owner and project admins)",
                obj(WEBHOOK),
                (403, 404),
                operation_id="v3_outgoing_webhook_get",
                login=True,
            ),
            "put": operation(
                "Create or change a project's outgoing webhook (201 when created)",
                obj({**WEBHOOK, "created": boolean()}),
                (400, 403, 404),
                operation_id="v3_outgoing_webhook_set",
                login=True,
                body=PUT_BODY,
                description="The URL is checked as SRPM URLs are: http or https, and every "
                "address its host resolves to must be allowed (`srpm_allowed_networks`).",
            ),
            "delete": operation(
                "Remove a project's outgoing webhook and its deliveries",
                obj({"deleted": boolean()}),
                (403, 404),
                operation_id="v3_outgoing_webhook_delete",
                login=True,
            ),
        },
        DELIVERIES_PATH: {
            "parameters": PARAMETERS,
            "get": operation(
                "A project's recent webhook deliveries, newest first",
                obj({"deliveries": array(DELIVERY)}),
                (403, 404),
                operation_id="v3_outgoing_webhook_deliveries",
                login=True,
            ),
        },
    }
