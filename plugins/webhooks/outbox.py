"""The outbox of one server: event hooks queue deliveries in the database, and one
background task sends them, retrying failures with a growing wait until they are given up.

State lives in the plugin's tables only, so deliveries pending when the server stops go out
after it starts again. A project's deliveries go one at a time, oldest first (see
`tables.due_deliveries`); different projects' go side by side, at most MAX_IN_FLIGHT.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time

import aiohttp

from copr_lite.config import Config
from copr_lite.db import Database
from copr_lite.models import Build
from copr_lite.srpm import SrpmError, pinned_connector

from . import payloads, tables
from .settings import WebhookSettings

log = logging.getLogger("copr_lite.webhooks")

MAX_IN_FLIGHT = 8
USER_AGENT = "copr-lite-webhooks"


def refusal_text(exc: SrpmError) -> str:
    """The URL policy's refusal, worded for a webhook target rather than a download."""
    return str(exc).removeprefix("download failed: ")


class Outbox:
    """Queues events of projects with a webhook and delivers them."""

    def __init__(self, db: Database, config: Config, settings: WebhookSettings) -> None:
        self.db = db
        self.config = config
        self.settings = settings
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._attempts: dict[int, asyncio.Task[None]] = {}  # project id -> its attempt
        self._ended = 0  # attempts ended so far (see _start_due)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="copr-lite-webhooks")

    async def stop(self) -> None:
        """Stop sending; an attempt cut short stays pending and is made again next start."""
        tasks = [t for t in (self._task, *self._attempts.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None

    def wake(self) -> None:
        self._wake.set()

    # ------------------------------------------------------------ queuing

    async def queue(self, event: str, build: Build, chroot: str | None = None) -> None:
        """Store a delivery of `event` if the build's project has an enabled webhook."""
        if not await self.db.read_point(tables.is_enabled, build.project_id):
            return
        event_id = payloads.new_event_id()
        now = time.time()
        body = payloads.event_body(self.config, event, event_id, build, chroot, now)
        # build.started is announced by whichever chroot starts first: once per build.
        once = None
        if event == payloads.BUILD_STARTED:
            once = f"{event}:{build.id}:{build.submitted_on}"
        queued = await self.db.write(
            tables.add_delivery,
            build.project_id,
            event_id,
            event,
            build.id,
            chroot,
            once,
            body,
            now,
            self.settings.keep_deliveries,
        )
        if queued:
            self.wake()

    # ------------------------------------------------------------ sending

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                wait = await self._start_due()
            except Exception:
                log.exception("webhook deliveries could not be read; trying again in 5 s")
                wait = 5.0
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    async def _start_due(self) -> float | None:
        """Start an attempt for each due delivery whose project has none running; return
        how long to wait for the next one (None: until woken)."""
        now = time.time()
        ended = self._ended
        due, later = await self.db.read(tables.due_deliveries, now, 4 * MAX_IN_FLIGHT)
        if self._ended != ended:
            # An attempt ended during the read, which may list its delivery as it was before
            # (still due): sending from that list would send it twice. Read again at once.
            return 0.0
        for delivery in due:
            if len(self._attempts) >= MAX_IN_FLIGHT:
                break  # a finished attempt wakes the loop
            if delivery.project_id in self._attempts:
                continue
            task = asyncio.create_task(self._attempt(delivery), name="copr-lite-webhook-send")
            self._attempts[delivery.project_id] = task
            task.add_done_callback(functools.partial(self._done, delivery.project_id))
        return None if later is None else max(0.0, later - time.time())

    def _done(self, project_id: int, _task: asyncio.Task[None]) -> None:
        self._ended += 1
        self._attempts.pop(project_id, None)
        self.wake()

    async def _attempt(self, delivery: tables.Due) -> None:
        status, error = await self._post(delivery)
        now = time.time()
        attempt = delivery.attempts + 1
        next_try: float | None = None
        if status is not None and 200 <= status < 300:
            state = tables.DELIVERED
        else:
            next_try = now + self.settings.delay(attempt)
            if next_try > delivery.created_on + self.settings.give_up_seconds:
                state, next_try = tables.FAILED, None
            else:
                state = tables.PENDING
        try:
            await self.db.write(
                tables.record_attempt, delivery.id, now, status, error, state, next_try
            )
        except Exception:
            log.exception("webhook delivery=%s: its attempt could not be stored", delivery.id)
            return
        log.log(
            logging.WARNING if state == tables.FAILED else logging.INFO,
            'webhook attempt event=%s delivery=%s project=%s attempt=%d status=%s error="%s" '
            "state=%s next_try=%s",
            delivery.event,
            delivery.event_id,
            delivery.project,
            attempt,
            status if status is not None else "-",
            error or "",
            state,
            f"{next_try - now:.1f}s" if next_try is not None else "-",
        )

    async def _post(self, delivery: tables.Due) -> tuple[int | None, str | None]:
        """POST the delivery once: (HTTP status, None), or (status or None, why it failed)."""
        body = delivery.payload.encode()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            payloads.EVENT_HEADER: delivery.event,
            payloads.DELIVERY_HEADER: delivery.event_id,
            payloads.SIGNATURE_HEADER: payloads.signature(delivery.secret, timestamp, body),
        }
        limit = self.settings.timeout_seconds
        try:
            async with asyncio.timeout(limit):
                url, connector = await pinned_connector(
                    delivery.url, self.config.srpm_allowed_networks
                )
                async with (
                    aiohttp.ClientSession(connector=connector, trust_env=False) as session,
                    session.post(url, data=body, headers=headers, allow_redirects=False) as resp,
                ):
                    status = resp.status
        except SrpmError as exc:
            return None, refusal_text(exc)
        except TimeoutError:
            return None, f"no answer within {limit:g} s"
        except (aiohttp.ClientError, OSError) as exc:
            return None, " ".join(str(exc).split())[:300] or type(exc).__name__
        if 200 <= status < 300:
            return status, None
        if 300 <= status < 400:
            return status, f"HTTP {status}: redirects are not followed"
        return status, f"HTTP {status}"
