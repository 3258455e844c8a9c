"""What builds need from their project beside the queue: repositories and a signing key.

A new project's chroots get empty repositories at once (so its repo URLs answer before its
first build), and, with signing on, a key: made in a side task the loop (loop.py) owns, one
per new project and one at start-up for the projects published before they had a key.
`sign_files` signs an import's SRPM (importer.py) and a chroot's packages (run.py) with that
key, waiting for it while it is being made, at most `[signing] key_wait` seconds.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from .. import store
from ..publisher import LiveLog
from ..signing import SigningError
from .deps import EngineDeps

log = logging.getLogger(__name__)


async def create_repos(deps: EngineDeps, dirs: list[Path]) -> None:
    """An empty repository in each of `dirs`; failures are logged."""
    for chroot_dir in dirs:
        try:
            await deps.publisher.createrepo(chroot_dir)
        except Exception:
            log.exception("could not create the empty repository %s", chroot_dir)


async def ensure_signed(
    deps: EngineDeps, owner: str, project: str, *, sign_earlier: bool = True
) -> None:
    """Give the project a key (made now when it has none), publish its public key, and,
    `sign_earlier`, sign what it published before it had one. A project created with
    signing on has nothing of that kind: each of its builds waits for the key and signs
    its own packages, so signing them again here would only race with those builds (and
    touch the files of builds canceled meanwhile). Failures are logged; a build waiting
    for the key fails on its own after `key_wait`."""
    signer = deps.publisher.signer
    if signer is None:
        return
    try:
        key = await signer.key(owner, project)
        await deps.publisher.publish_keys(owner, project, key)
        if not key.adopted:
            count = await deps.publisher.sign_project(owner, project, key) if sign_earlier else 0
            await signer.mark_adopted(owner, project, key)
            if count:
                log.info("signed %d published packages of %s/%s", count, owner, project)
    except asyncio.CancelledError:
        raise
    except SigningError as exc:
        log.error("could not sign project %s/%s: %s", owner, project, exc)
    except Exception:
        log.exception("could not sign project %s/%s", owner, project)


async def sign_existing(deps: EngineDeps) -> None:
    """Every project without an adopted key gets one, one project after another."""
    signer = deps.publisher.signer
    assert signer is not None
    for owner, project in await deps.db.read(store.all_project_names):
        key = await asyncio.to_thread(signer.current, owner, project)
        if key is None or not key.adopted:
            await ensure_signed(deps, owner, project)


async def sign_files(
    deps: EngineDeps, owner: str, project: str, files: list[Path], live: LiveLog
) -> None:
    """Sign `files` with the project's key, waiting for the key (at most `key_wait`)
    when it is still being made. SigningError says why it could not."""
    signer = deps.publisher.signer
    if signer is None or not files:
        return
    key = await signer.key(owner, project, wait=deps.config.key_wait)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        await signer.sign_rpms(key, files)
    except SigningError as exc:
        raise SigningError(f"could not sign the packages: {exc}") from None
    await live.write(
        f"Signed {len(files)} package(s) with key {key.key_id} in {loop.time() - started:.2f} s"
    )
