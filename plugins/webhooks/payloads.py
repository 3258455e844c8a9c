"""The JSON body of each event (README "Outgoing webhooks" lists the fields), and its
signature header."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

from copr_lite.config import Config
from copr_lite.models import Build
from copr_lite.publisher import build_dir_name
from copr_lite.states import derive_build_state
from copr_lite.views.common import package_name_from_url, results_base

BUILD_STARTED = "build.started"
CHROOT_ENDED = "chroot.ended"
BUILD_ENDED = "build.ended"
EVENTS = (BUILD_STARTED, CHROOT_ENDED, BUILD_ENDED)

SIGNATURE_HEADER = "X-Copr-Lite-Signature"
EVENT_HEADER = "X-Copr-Lite-Event"
DELIVERY_HEADER = "X-Copr-Lite-Delivery"


def new_event_id() -> str:
    return str(uuid.uuid4())


def event_body(
    config: Config,
    event: str,
    event_id: str,
    build: Build,
    chroot: str | None = None,
    now: float | None = None,
) -> str:
    """The body of one event about `build` (and, for chroot.ended, its `chroot`)."""
    package = build.pkg_name or package_name_from_url(build.source_url) or None
    base = results_base(config, build.owner_name, build.project_name)
    states = {c.chroot: c.status.value for c in build.chroots}
    body: dict[str, Any] = {
        "event": event,
        "id": event_id,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "build_id": build.id,
        "owner": build.owner_name,
        "project": build.project_name,
        "package": package,
        "version": build.version_release,
        "state": derive_build_state(build.canceled, (c.status for c in build.chroots)),
        "chroots": states,
        "build_url": f"{config.public_base_url}/builds/{build.id}/",
        "results_url": base,
    }
    if chroot is not None:
        body["chroot"] = chroot
        body["chroot_state"] = states.get(chroot)
        # Known once the SRPM was imported (its header names the package).
        body["chroot_results_url"] = (
            f"{base}{chroot}/{build_dir_name(build.id, build.pkg_name)}/"
            if build.pkg_name
            else None
        )
    return json.dumps(body, separators=(",", ":"))


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Copr-Lite-Signature value: `t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
    (the scheme Stripe uses)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"
