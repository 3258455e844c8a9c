"""Built-in plugin: one structured log line for every build lifecycle event.

It is the reference implementation of the event hooks; notifications, webhooks or metrics
plugins follow the same shape.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from copr_lite import hookimpl

if TYPE_CHECKING:
    from aiohttp import web

    from copr_lite.builders import ChrootResult
    from copr_lite.models import Build
    from copr_lite.states import State

log = logging.getLogger("copr_lite.events")


@hookimpl
def startup(app: web.Application) -> None:
    from copr_lite.keys import BUILDERS

    log.info("event=startup builders=%s", ",".join(app[BUILDERS].names()))


@hookimpl
def build_submitted(build: Build) -> None:
    log.info(
        "event=build_submitted build=%d project=%s/%s",
        build.id,
        build.owner_name,
        build.project_name,
    )


@hookimpl
def chroot_started(build: Build, chroot: str) -> None:
    log.info("event=chroot_started build=%d chroot=%s", build.id, chroot)


@hookimpl
def chroot_finished(build: Build, chroot: str, result: ChrootResult | None, state: State) -> None:
    reason = result.fail_reason if result is not None and result.fail_reason else ""
    log.info(
        'event=chroot_finished build=%d chroot=%s state=%s reason="%s"',
        build.id,
        chroot,
        state,
        reason,
    )


@hookimpl
def build_finished(build: Build) -> None:
    log.info("event=build_finished build=%d", build.id)
