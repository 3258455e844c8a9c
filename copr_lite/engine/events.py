"""The build lifecycle hooks the engine fires, each exactly once.

`build_submitted` is fired by the loop (loop.py) for each stored build, `chroot_started` by a
chroot run (run.py) once the chroot is running, and `chroot_finished`/`build_finished` by
whoever stored the change that ended the chroot or the build: a chroot run, a failed import
(importer.py) or a cancel (loop.py). The store says which write finished a build, so
`build_finished` fires once however many chroots end together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from .. import store
from ..builders import ChrootResult
from ..models import Build
from ..plugins import fire
from ..states import State
from .deps import EngineDeps

# Builds announced per database read: a burst of submissions can leave hundreds waiting,
# and requests are let in between the chunks.
ANNOUNCE_CHUNK = 20


async def builds_submitted(deps: EngineDeps, build_ids: Sequence[int]) -> None:
    """Fire build_submitted for each of `build_ids`, in chunks."""
    for start in range(0, len(build_ids), ANNOUNCE_CHUNK):
        for build in await deps.db.read(
            store.get_builds, list(build_ids[start : start + ANNOUNCE_CHUNK])
        ):
            await fire(deps.pm, "build_submitted", build=build)
        await asyncio.sleep(0)


async def chroot_started(deps: EngineDeps, build: Build, chroot: str) -> None:
    await fire(deps.pm, "chroot_started", build=build, chroot=chroot)


async def chroot_ended(
    deps: EngineDeps,
    build_id: int,
    finished: tuple[str, ChrootResult | None] | None,
    *,
    build_done: bool,
) -> None:
    """Fire chroot_finished for `finished` (chroot, result), and build_finished when
    `build_done` (the store said this change finished the build)."""
    build = await deps.db.read(store.get_build, build_id)
    if build is None:
        return
    if finished is not None:
        chroot, result = finished
        state = next(
            (State.from_code(c.status) for c in build.chroots if c.chroot == chroot),
            State.FAILED,
        )
        await fire(
            deps.pm, "chroot_finished", build=build, chroot=chroot, result=result, state=state
        )
    if build_done:
        await fire(deps.pm, "build_finished", build=build)


async def build_canceled(deps: EngineDeps, build_id: int) -> None:
    """Fire build_finished for a build a cancel ended: the cancel's own transaction
    finished it, so no chroot run announces it."""
    build = await deps.db.read(store.get_build, build_id)
    if build is not None and all(State.from_code(c.status).terminal for c in build.chroots):
        await fire(deps.pm, "build_finished", build=build)
