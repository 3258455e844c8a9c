"""One claimed job on the worker, from the SRPM download to the upload (or hand-back).

While the local builder works, heartbeats tell the server the job is alive, and their
answers (or the server's silence for `heartbeat_timeout`) may stop the build: canceled on
the server, lost (the server re-queued it), refused (the token was revoked), or stopping
(the worker shuts down and hands the job back).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from copr_lite import BuildContext, Builder, ChrootResult
from copr_lite.rpmtools import sha256_file

from .client import NETWORK_ERRORS, ServerSaid, WorkerClient, WorkerRefused
from .log_shipper import LogShipper
from .protocol import Job, Manifest
from .shutdown import Shutdown

log = logging.getLogger("copr_lite.worker")

UPLOAD_TRIES = 3


@dataclass(eq=False)
class JobRun:
    """Builds one job with the local builder (in `root`) and reports it to the server."""

    job: Job
    client: WorkerClient
    builder: Builder
    root: Path
    host: str
    shutdown: Shutdown
    stop_kind: str | None = None  # "canceled", "lost", "stopping" or "refused"
    stop_reason: str = ""
    task: asyncio.Task[ChrootResult] | None = None
    describe: str = field(init=False)  # the job in log lines
    shipper: LogShipper = field(init=False)

    def __post_init__(self) -> None:
        self.describe = self.job.describe()
        self.shipper = LogShipper(self.client, self.job.id, self.describe, self.stop)

    def stop(self, kind: str, reason: str) -> None:
        """Stop the build, for the first reason given."""
        if kind == "refused":
            self.shutdown.refuse(reason)
        if self.stop_kind is None:
            self.stop_kind, self.stop_reason = kind, reason
            if kind == "canceled":
                log.info("job canceled by the server %s", self.describe)
        if self.task is not None and not self.task.done():
            self.task.cancel()

    async def run(self) -> bool:
        """Build, then upload the result or hand the job back; True when the server took
        the result."""
        job = self.job
        log.info("job claimed %s attempt=%s/%s", self.describe, job.attempt, job.max_attempts)
        beat = asyncio.create_task(self._heartbeats(), name=f"heartbeat-{job.id}")
        ship = asyncio.create_task(self.shipper.run(), name=f"log-{job.id}")
        self.task = asyncio.create_task(self._build(), name=f"build-{job.id}")
        try:
            result = await self._result()
            await self.shipper.flush()
            if result is not None:
                return await self._upload(result)
            if self.stop_kind == "stopping":
                await self._release()
            else:
                log.info(
                    'job stopped %s why=%s reason="%s"',
                    self.describe,
                    self.stop_kind,
                    self.stop_reason,
                )
            return False
        finally:
            for task in (beat, ship):
                task.cancel()
            await asyncio.gather(beat, ship, return_exceptions=True)
            await asyncio.to_thread(shutil.rmtree, self.root, True)

    async def _result(self) -> ChrootResult | None:
        """The build's result, or None when it was stopped (canceled, lost, handed back)."""
        task = self.task
        assert task is not None
        if not await self.shutdown.allow(task, self.describe):
            kind = "refused" if self.shutdown.refused else "stopping"
            self.stop(kind, "the worker is stopping")
        with contextlib.suppress(BaseException):
            await task
        if task.cancelled():
            return None
        exc = task.exception()
        if exc is not None:
            log.error('job could not be built %s error="%s"', self.describe, exc)
            await self.shipper.log(f"error on the worker: {exc}")
            return ChrootResult.failed(f"worker {self.host}: {exc}")
        return task.result()

    async def _build(self) -> ChrootResult:
        srpm_ref = self.job.srpm
        name = srpm_ref.local_name()
        result_dir, work_dir = self.root / "result", self.root / "work"
        for directory in (result_dir, work_dir):
            await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        srpm = self.root / name
        await self.shipper.log(f"Worker {self.host}: downloading {name} ({srpm_ref.size} bytes)")
        digest = await self.client.download(srpm_ref, srpm)
        if digest != srpm_ref.sha256:
            raise RuntimeError(
                f"the downloaded SRPM has sha256 {digest}, the server announced {srpm_ref.sha256}"
            )
        ctx = BuildContext(result_dir=result_dir, work_dir=work_dir, log=self.shipper.log)
        await self.shipper.log(f"Worker {self.host}: building with the {self.builder.name} builder")
        return await self.builder.build(self.job.build_job(srpm), ctx)

    async def _heartbeats(self) -> None:
        loop = asyncio.get_running_loop()
        interval, timeout = self.job.heartbeat_interval, self.job.heartbeat_timeout
        last_answer = loop.time()
        while True:
            await asyncio.sleep(interval)
            try:
                state = await self.client.heartbeat(self.job.id, limit=max(interval, 5.0))
            except WorkerRefused as exc:
                self.stop("refused", exc.args[0])
                return
            except ServerSaid as exc:
                if exc.status == 404:
                    log.warning("job lost %s: %s", self.describe, exc.message)
                    self.stop("lost", exc.message)
                    return
                log.warning('heartbeat refused %s error="%s"', self.describe, exc)
                continue
            except NETWORK_ERRORS as exc:
                silent = loop.time() - last_answer
                log.warning(
                    'heartbeat failed %s error="%r" silent_s=%.1f', self.describe, exc, silent
                )
                if silent > timeout:
                    self.stop("lost", f"no answer from the server for {silent:.0f} s")
                    return
                continue
            last_answer = loop.time()
            if state.canceled:
                self.stop("canceled", "the build was canceled on the server")
                return

    async def _upload(self, result: ChrootResult) -> bool:
        result_dir = self.root / "result"
        files: dict[str, Path] = {}
        for reported in result.files:
            path = Path(reported) if Path(reported).is_absolute() else result_dir / reported
            if path.name.endswith(".rpm"):
                files[path.name] = path
        digests = {name: await asyncio.to_thread(sha256_file, path) for name, path in files.items()}
        manifest = Manifest(result.status, result.fail_reason, digests)
        for attempt in range(1, UPLOAD_TRIES + 1):
            try:
                answer = await self.client.send_result(self.job.id, manifest, files)
            except WorkerRefused as exc:
                self.shutdown.refuse(exc.args[0])
                return False
            except ServerSaid as exc:
                log.error(
                    'result refused %s status=%d error="%s"',
                    self.describe,
                    exc.status,
                    exc.message,
                )
                return False
            except NETWORK_ERRORS as exc:
                log.warning(
                    'result upload failed %s try=%d error="%r"', self.describe, attempt, exc
                )
                await asyncio.sleep(attempt)
                continue
            log.info(
                "job finished %s outcome=%s files=%d",
                self.describe,
                result.status,
                len(answer.files),
            )
            return True
        log.error("result upload gave up %s", self.describe)
        return False

    async def _release(self) -> None:
        try:
            await self.client.release(self.job.id)
        except (WorkerRefused, ServerSaid, *NETWORK_ERRORS) as exc:
            log.warning('could not hand back %s error="%s"', self.describe, exc)
            return
        log.info("job handed back %s", self.describe)
