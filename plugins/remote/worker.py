"""The worker process: `python -m copr_lite worker --server URL --token TOKEN`.

A worker runs on any build machine. Each of its `concurrency` slots loops:

1. claim: long-poll the server with the chroots it serves (names or patterns, by default
   every chroot of this machine's arch), until the server hands it a job;
2. run the job (job_run.py): download the SRPM and check its sha256, build it with a local
   builder (`--builder`, from this machine's own plugins) while the log goes to the server
   in batches and heartbeats tell it the job is alive, then upload the RPMs with a manifest
   of their sha256, which the server checks.

SIGTERM (or Ctrl+C) stops the worker: a running build may finish within `--grace` seconds
and is uploaded; otherwise it is stopped and handed back to the server for another worker.
A second signal hands back at once. The worker then exits 0. A refused token (unknown or
revoked) stops it with status 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

from copr_lite import Builder

from .client import NETWORK_ERRORS, ServerSaid, WorkerClient, WorkerRefused
from .job_run import JobRun
from .protocol import Claim, ProtocolError
from .shutdown import Shutdown, Stopping

__all__ = ["RemoteWorker", "WorkerOptions", "WorkerRefused"]

log = logging.getLogger("copr_lite.worker")


@dataclass(frozen=True)
class WorkerOptions:
    """What the `worker` command was told."""

    server: str
    token: str
    chroots: list[str]  # names or patterns
    concurrency: int = 1
    work_dir: Path | None = None  # None: a new temporary directory, removed at the end
    grace: float = 60.0
    poll_wait: float = 20.0
    host: str | None = None  # None: this machine's host name


class RemoteWorker:
    """Takes jobs from a copr_lite server and builds them with a local builder."""

    def __init__(self, options: WorkerOptions, builder: Builder) -> None:
        self.options = options
        self.builder = builder
        self.host = options.host or socket.gethostname()
        self.shutdown = Shutdown(options.grace)
        self.jobs_done = 0

    def stop(self) -> None:
        """Finish (within the grace period) or hand back running jobs, then return from run().
        A second call hands back at once."""
        self.shutdown.request()

    async def run(self) -> None:
        """Work until stop(); raises WorkerRefused when the server refuses the token."""
        options = self.options
        root = options.work_dir or Path(tempfile.mkdtemp(prefix="copr-lite-worker-"))
        root.mkdir(parents=True, exist_ok=True)
        log.info(
            "worker started server=%s builder=%s serves=%s concurrency=%d host=%s",
            options.server.rstrip("/"),
            self.builder.name,
            ",".join(options.chroots),
            options.concurrency,
            self.host,
        )
        try:
            async with WorkerClient(options.server, options.token) as client:
                slots = [
                    asyncio.create_task(self._slot(n, client, root), name=f"worker-slot-{n}")
                    for n in range(options.concurrency)
                ]
                try:
                    await asyncio.gather(*slots)
                finally:
                    for slot in slots:
                        slot.cancel()
                    await asyncio.gather(*slots, return_exceptions=True)
        finally:
            if options.work_dir is None:
                await asyncio.to_thread(shutil.rmtree, root, True)
        log.info("worker stopped jobs_done=%d", self.jobs_done)
        if self.shutdown.refused is not None:
            raise WorkerRefused(self.shutdown.refused)

    async def _slot(self, slot: int, client: WorkerClient, root: Path) -> None:
        options = self.options
        claim = Claim(options.chroots, self.builder.name, self.host, options.poll_wait)
        backoff = 1.0
        while not self.shutdown.requested.is_set():
            try:
                job = await self.shutdown.unless_requested(
                    client.claim(claim, limit=options.poll_wait + 30)
                )
            except Stopping:
                return
            except WorkerRefused as exc:
                self.shutdown.refuse(exc.args[0])
                return
            except (ServerSaid, ProtocolError, *NETWORK_ERRORS) as exc:
                log.warning('claim failed slot=%d error="%r"; retrying in %g s', slot, exc, backoff)
                with contextlib.suppress(Stopping):
                    await self.shutdown.unless_requested(asyncio.sleep(backoff))
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 1.0
            if job is not None:
                run = JobRun(
                    job, client, self.builder, root / f"job-{job.id}", self.host, self.shutdown
                )
                if await run.run():
                    self.jobs_done += 1
