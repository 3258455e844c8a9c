"""A job's log on the worker: lines are buffered and sent to the server in batches.

While the server cannot be reached the lines wait (at most MAX_BUFFER; older ones are
dropped, and a note says how many).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from .client import NETWORK_ERRORS, ServerSaid, WorkerClient, WorkerRefused

log = logging.getLogger("copr_lite.worker")

LOG_INTERVAL = 0.2  # seconds between log batches
MAX_BATCH = 2000  # lines per log request
MAX_BUFFER = 100_000  # lines kept while the server cannot be reached

# What the shipper tells its job: stop(kind, reason), kind "canceled", "lost" or "refused".
Stop = Callable[[str, str], None]


@dataclass(eq=False)
class LogShipper:
    """Buffers one job's log lines and sends them every LOG_INTERVAL seconds."""

    client: WorkerClient
    job_id: str
    describe: str  # the job in log lines
    stop: Stop
    lines: list[str] = field(default_factory=list)
    dropped: int = 0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def log(self, line: str) -> None:
        """The builder's log writer."""
        self.lines.append(line)
        if len(self.lines) > MAX_BUFFER:
            excess = len(self.lines) - MAX_BUFFER
            del self.lines[:excess]
            self.dropped += excess

    async def run(self) -> None:
        """Send what is buffered every LOG_INTERVAL seconds, until cancelled."""
        while True:
            await asyncio.sleep(LOG_INTERVAL)
            await self.flush()

    async def flush(self) -> None:
        """Send every buffered line now (kept for later when the server is away)."""
        async with self._lock:
            while self.lines:
                if self.dropped:
                    note = f"[worker: {self.dropped} lines dropped while the server was away]"
                    self.lines.insert(0, note)
                    self.dropped = 0
                batch = self.lines[:MAX_BATCH]
                try:
                    state = await self.client.send_log(self.job_id, batch)
                except WorkerRefused as exc:
                    self.stop("refused", exc.args[0])
                    return
                except ServerSaid as exc:
                    if exc.status == 404:
                        self.stop("lost", exc.message)
                        self.lines.clear()
                        return
                    log.warning('log lines refused %s error="%s"', self.describe, exc)
                    return
                except NETWORK_ERRORS:
                    return  # kept; the next flush retries
                del self.lines[: len(batch)]
                if state.canceled:
                    self.stop("canceled", "the build was canceled on the server")
