"""Incoming webhooks: a project's secret, and a forge's push turned into builds."""

from __future__ import annotations

import hmac
import logging
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from .. import forges, forms, operations, store
from ..errors import BadRequest, CoprLiteError, Forbidden, NotFound
from ..models import Project, User
from .common import Services, allowed_in
from .packages import build_package

log = logging.getLogger(__name__)


# How a webhook starts the build of one package from its stored source, as the project's
# owner: build_package, or what a caller passes instead, called as build_package is.
PackageBuild = Callable[..., Awaitable[tuple[Project, int]]]


# The forges of Copr's webhook URLs that this server does not take.
UNSUPPORTED_FORGES = ("bitbucket", "pagure")


async def generate_webhook_secret(
    ctx: Services, user: User, owner: str, name: str
) -> tuple[Project, str]:
    """Give the project's incoming webhooks a new random secret (a UUID, as Copr's), which
    replaces the old one (operations.GENERATE_WEBHOOK_SECRET: owner and admins)."""

    def write(conn: sqlite3.Connection) -> tuple[Project, str]:
        operation = operations.GENERATE_WEBHOOK_SECRET
        project = allowed_in(conn, user, owner, name, operation, None).project
        secret = str(uuid.uuid4())
        store.set_webhook_secret(conn, project.id, secret)
        return project, secret

    project, secret = await ctx.db.write(write)
    log.info("webhook secret generated project=%s by=%s", project.full_name, user.name)
    return project, secret


@dataclass(frozen=True)
class Incoming:
    """A webhook delivery as it came: `owner`/`name` address the project in our URLs, which
    require a signature; `project_id` with `url_secret` in Copr's, which carry the secret.
    `package` is the package the URL names, if any."""

    forge: str
    headers: Mapping[str, str]
    body: bytes
    owner: str = ""
    name: str = ""
    project_id: int | None = None
    url_secret: str | None = None
    package: str | None = None


@dataclass(frozen=True)
class DeliveryResult:
    """What a delivery did: our id of its record (None for a replay), its answer's status,
    one line of outcome and the builds it started."""

    delivery: int | None
    status: int
    outcome: str
    build_ids: tuple[int, ...]


@dataclass(frozen=True)
class _WebhookTarget:
    project: Project
    secret: str | None
    owner: User
    packages: list[store.Package]
    named: store.Package | None


def _webhook_target(conn: sqlite3.Connection, incoming: Incoming) -> _WebhookTarget:
    if incoming.project_id is not None:
        rows = store.projects_by_ids(conn, [incoming.project_id])
        project = rows[0][0] if rows else None
    elif forms.NAME_RE.match(incoming.owner) and forms.NAME_RE.match(incoming.name):
        project = store.get_project(conn, incoming.owner, incoming.name)
    else:
        project = None
    if project is None:
        raise NotFound("No such project: check the webhook URL.")
    owner = store.get_user_by_id(conn, project.owner_id)
    assert owner is not None  # a project's owner is never deleted before it
    named = None
    if incoming.package is not None:
        named = store.get_package(conn, project.id, incoming.package)
    return _WebhookTarget(
        project,
        store.webhook_secret(conn, project.id),
        owner,
        store.webhook_packages(conn, project.id),
        named,
    )


_DELIVERY_ERRORS: dict[int, type[CoprLiteError]] = {
    400: BadRequest,
    403: Forbidden,
    404: NotFound,
}


def _to_build(push: forges.Push, target: _WebhookTarget, package: str | None) -> list[str]:
    """The packages a verified delivery builds."""
    if push.event == "custom":
        return [package] if package is not None else []
    return [
        p.name
        for p in target.packages
        if p.source_type == "scm" and forges.push_builds(push, p.name, p.source, package)
    ]


def _nothing_to_build(push: forges.Push) -> str:
    if push.event == "ping":
        return "ping"
    if push.event not in ("push", "tag", "custom"):
        return f"event {push.event} ignored"
    if push.deleted:
        return f"{push.ref_text} deleted: nothing to build"
    url = push.urls[0] if push.urls else "(no URL)"
    return f"no package matches {url} {push.ref_text}"


def _verified(incoming: Incoming, target: _WebhookTarget) -> forges.Push:
    """The delivery read, once its secret (in the URL) or signature is found right and the
    package its URL names has a source; forges.DeliveryError otherwise."""
    if incoming.url_secret is not None and not (
        target.secret is not None
        and hmac.compare_digest(incoming.url_secret.encode(), target.secret.encode())
    ):
        raise forges.DeliveryError(403, "Bad webhook URL: its secret is not the project's.")
    push = forges.verify_and_parse(
        incoming.forge,
        incoming.headers,
        incoming.body,
        target.secret,
        url_secret_ok=incoming.url_secret is not None,
    )
    package = incoming.package
    if package is not None and (target.named is None or target.named.source_type == "unset"):
        raise forges.DeliveryError(
            404, f"Package {package[:100]} of {target.project.full_name} has no source to build."
        )
    if push.event == "custom" and package is None:
        raise forges.DeliveryError(400, "A custom webhook URL must end with a package name.")
    return push


async def receive_webhook(
    ctx: Services, incoming: Incoming, build: PackageBuild | None = None
) -> DeliveryResult:
    """Take one webhook delivery: find the project (NotFound), check the secret in the URL
    and the signature (Forbidden, recorded), read the payload (BadRequest, recorded),
    record the delivery once per forge delivery id (a replay builds nothing), then build
    each package the push concerns from its source, as the project's owner."""
    forge, package = incoming.forge, incoming.package
    try:
        if forge in UNSUPPORTED_FORGES:
            raise NotFound(f"{forge.capitalize()} webhooks are not supported by this server.")
        if forge not in forges.FORGES:
            known = ", ".join(forges.FORGES)
            raise NotFound(f"Unknown forge {forge[:40]!r}: use one of {known}.")
        target = await ctx.db.read(_webhook_target, incoming)
    except NotFound as exc:
        where = incoming.project_id or f"{incoming.owner[:100]}/{incoming.name[:100]}"
        log.info(
            "webhook delivery refused project=%s forge=%s status=404 outcome=%r",
            where,
            forge[:40],
            exc.message,
        )
        raise
    project = target.project
    now = int(time.time())
    try:
        push = _verified(incoming, target)
    except forges.DeliveryError as exc:
        # The delivery id of a refused delivery is not trusted: it is not recorded.
        event = forges.event_name(forge, incoming.headers)
        await ctx.db.write(
            store.record_delivery, project.id, forge, None, event, now, exc.status, exc.text
        )
        _log_delivery(project, forge, None, event, exc.status, exc.text, ())
        raise _DELIVERY_ERRORS[exc.status](exc.text) from None

    names = _to_build(push, target, package)
    outcome = _nothing_to_build(push) if not names else "building " + ", ".join(names)
    delivery = await ctx.db.write(
        store.record_delivery, project.id, forge, push.delivery_id, push.event, now, 200, outcome
    )
    if delivery is None:
        outcome = f"already received: delivery {push.delivery_id} builds nothing again"
        _log_delivery(project, forge, push.delivery_id, push.event, 200, outcome, ())
        return DeliveryResult(None, 200, outcome, ())
    build_ids: list[int] = []
    failures: list[str] = []
    # The pushed commit (a tag: its name) is what the build checks out, as in Copr.
    committish = push.tag or push.commit
    for name in names:
        try:
            _, build_id = await (build or build_package)(
                ctx, target.owner, project.owner_name, project.name, name, {}, committish=committish
            )
        except CoprLiteError as exc:
            failures.append(f"{name}: {exc.message}")
        else:
            build_ids.append(build_id)
    if names:
        started = f"builds {', '.join(map(str, build_ids))} started" if build_ids else ""
        outcome = "; ".join(filter(None, [started, *failures]))
        await ctx.db.write(store.set_delivery_outcome, delivery, 200, outcome, build_ids)
    _log_delivery(project, forge, push.delivery_id, push.event, 200, outcome, build_ids)
    return DeliveryResult(delivery, 200, outcome, tuple(build_ids))


def _log_delivery(
    project: Project,
    forge: str,
    delivery_id: str | None,
    event: str,
    status: int,
    outcome: str,
    build_ids: Iterable[int],
) -> None:
    log.info(
        "webhook delivery project=%s forge=%s delivery=%s event=%s status=%d builds=%s outcome=%r",
        project.full_name,
        forge,
        delivery_id or "-",
        event,
        status,
        ",".join(map(str, build_ids)) or "-",
        outcome,
    )
