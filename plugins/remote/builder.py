"""The `remote` builder: queues each chroot job for a worker and waits for its outcome.

The dispatcher calls `RemoteBuilder.build()` as it calls any builder; the worker API
(api.py) hands the queued job to a worker and settles the attempt's verdict.
"""

from __future__ import annotations

import asyncio
import logging

from copr_lite import BuildContext, BuildJob, ChrootResult
from copr_lite.rpmtools import sha256_file

from .queue import JobQueue, RemoteJob
from .settings import RemoteSettings

log = logging.getLogger("copr_lite.remote")


def _give_up_reason(failures: list[str]) -> str:
    count = len(failures)
    if all("stopped heartbeating" in reason for reason in failures):
        head = f"lost its worker {count} time{'s' if count > 1 else ''}"
    else:
        head = f"{count} attempt{'s' if count > 1 else ''} on workers failed"
    return f"{head}: {'; '.join(failures)}"


class RemoteBuilder:
    """Queues each job for a worker and waits for its outcome (see the module docstring)."""

    name = "remote"
    concurrency: int | None = None  # the server's limit alone; workers have their own slots

    def __init__(self, settings: RemoteSettings | None = None) -> None:
        self.settings = settings or RemoteSettings()
        self.queue = JobQueue()

    def connected_workers(self) -> int:
        """Workers waiting in a claim or holding a job now (the metrics plugin asks)."""
        waiting = {worker for worker, claims in self.queue.polling.items() if claims > 0}
        building = {lease.worker.id for lease in self.queue.leases.values()}
        return len(waiting | building)

    async def build(self, job: BuildJob, ctx: BuildContext) -> ChrootResult:
        digest = await asyncio.to_thread(sha256_file, job.srpm)
        size = (await asyncio.to_thread(job.srpm.stat)).st_size
        rjob = RemoteJob(job, ctx, digest, size)
        loop = asyncio.get_running_loop()
        limit = self.settings.max_attempts
        try:
            while True:
                rjob.verdict = loop.create_future()
                self.queue.put(rjob)
                await ctx.log(
                    f"Waiting for a worker serving {job.chroot.name} "
                    f"(attempt {rjob.attempt} of {limit})"
                )
                verdict = await self._watch(rjob)
                if isinstance(verdict, ChrootResult):
                    return verdict
                rjob.failures.append(verdict)
                await ctx.log(f"Attempt {len(rjob.failures)} of {limit} failed: {verdict}")
                log.warning(
                    'attempt failed build=%d chroot=%s attempt=%d reason="%s"',
                    job.build_id,
                    job.chroot.name,
                    len(rjob.failures),
                    verdict,
                )
                if len(rjob.failures) >= limit:
                    return ChrootResult.failed(_give_up_reason(rjob.failures))
        except asyncio.CancelledError:
            self.queue.cancel(rjob, linger=2 * self.settings.heartbeat_timeout)
            raise
        finally:
            self.queue.remove(rjob)

    async def _watch(self, rjob: RemoteJob) -> ChrootResult | str:
        """Wait for the attempt's verdict; a lease without heartbeats ends it."""
        assert rjob.verdict is not None
        loop = asyncio.get_running_loop()
        timeout = self.settings.heartbeat_timeout
        tick = min(1.0, timeout / 4)
        while True:
            await asyncio.wait({rjob.verdict}, timeout=tick)
            if rjob.verdict.done():
                return rjob.verdict.result()
            lease = rjob.lease
            if lease is None or lease.uploading:
                continue
            if loop.time() - lease.last_contact > timeout:
                self.queue.end_lease(lease)
                return f"worker {lease.worker.name} stopped heartbeating (silent for {timeout:g} s)"
