"""How a worker stops: the first SIGTERM gives running builds `grace` seconds to finish, a
second one (or a refused token) hands them back at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

log = logging.getLogger("copr_lite.worker")
T = TypeVar("T")


class Stopping(Exception):
    """The worker stops: what was awaited was abandoned."""


async def wait_either(
    future: asyncio.Future[Any], event: asyncio.Event, within: float | None = None
) -> None:
    """Wait until `future` is done or `event` is set (or `within` seconds pass)."""
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({future, waiter}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()


class Shutdown:
    """The worker's stop requests."""

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.requested = asyncio.Event()
        self.hurry = asyncio.Event()
        self.deadline = 0.0  # loop time until which running builds may finish
        self.refused: str | None = None  # the server's word when it refused the token

    def request(self) -> None:
        """The first call lets running builds finish within the grace period; the second
        hands them back at once."""
        if self.requested.is_set():
            log.info("stopping now: running jobs are handed back")
            self.hurry.set()
            return
        self.deadline = asyncio.get_running_loop().time() + self.grace
        log.info("stopping: running jobs get %g s to finish, then are handed back", self.grace)
        self.requested.set()

    def refuse(self, message: str) -> None:
        """The server refused the token: stop at once."""
        if self.refused is None:
            log.error('the server refused the worker token: "%s"', message)
            self.refused = message
        self.hurry.set()
        self.requested.set()

    async def unless_requested(self, aw: Awaitable[T]) -> T:
        """What `aw` gives, unless a stop is requested first: then Stopping."""
        task = asyncio.ensure_future(aw)
        await wait_either(task, self.requested)
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            raise Stopping
        return task.result()

    async def allow(self, task: asyncio.Future[Any], what: str) -> bool:
        """Wait for `task`; once a stop is requested, for the rest of the grace period.
        True when it is done, False when it must be stopped."""
        await wait_either(task, self.requested)
        if task.done():
            return True
        remaining = self.deadline - asyncio.get_running_loop().time()
        if remaining > 0 and not self.hurry.is_set():
            log.info("waiting up to %.0f s for %s to finish", remaining, what)
            await wait_either(task, self.hurry, remaining)
        return task.done()
