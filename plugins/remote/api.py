"""The worker API on the server (the paths of protocol.py) and `GET /api/workers/`.

Workers authenticate with `Authorization: Bearer <token>`; a job id names one lease, and a
worker's request on a job it no longer holds answers 404.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from aiohttp import web

from copr_lite import ChrootResult, auth, signin
from copr_lite.errors import (
    BadRequest,
    Conflict,
    CoprLiteError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
)
from copr_lite.keys import DB
from copr_lite.middlewares import json_errors_under
from copr_lite.responses import json_response
from copr_lite.rpmtools import move_results

from . import accounts, protocol, uploads
from .accounts import Worker
from .builder import RemoteBuilder
from .protocol import Claim, ClaimAnswer, Job, JobState, LogChunk, ProtocolError, ResultAnswer
from .queue import Lease

log = logging.getLogger("copr_lite.remote")

JSON_LIMIT = 8 * 1024 * 1024  # a log batch or a claim
SEEN_WRITE_SECONDS = 5.0  # last_seen reaches the database at most this often per worker
M = TypeVar("M")


class WorkerApi:
    """The worker API and `GET /api/workers/` of one app's remote builder."""

    def __init__(self, builder: RemoteBuilder) -> None:
        self.builder = builder
        self.queue = builder.queue
        self.settings = builder.settings
        self.seen: dict[int, float] = {}  # worker id -> unix time of its last request
        self._written: dict[int, float] = {}
        self._reported: dict[int, tuple[str, str, str]] = {}

    def add_routes(self, app: web.Application) -> None:
        router = app.router
        router.add_post(protocol.CLAIM, self.claim)
        router.add_get(protocol.job_route("srpm"), self.srpm)
        router.add_post(protocol.job_route("log"), self.log)
        router.add_post(protocol.job_route("heartbeat"), self.heartbeat)
        router.add_post(protocol.job_route("result"), self.result)
        router.add_post(protocol.job_route("release"), self.release)
        router.add_get(protocol.WORKERS_LIST, self.list_workers)
        json_errors_under(app, protocol.PREFIX)
        app.on_shutdown.append(self._shutdown)

    async def _shutdown(self, app: web.Application) -> None:
        self.queue.close()

    # ------------------------------------------------------------ helpers

    async def _worker(self, request: web.Request) -> Worker:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized(
                "This needs a worker token: `Authorization: Bearer <token>` "
                "(python -m copr_lite worker-token create NAME)."
            )
        # Looked up by its SHA-256: the lookup's timing can only tell about the hash.
        worker = await request.app[DB].read(
            accounts.get_worker_by_token, auth.hash_token(token.strip())
        )
        if worker is None or worker.revoked_on is not None:
            raise Unauthorized("Unknown or revoked worker token.")
        await self._seen(request.app, worker)
        return worker

    async def _seen(
        self, app: web.Application, worker: Worker, report: tuple[str, str, str] | None = None
    ) -> None:
        now = time.time()
        self.seen[worker.id] = now
        if report == self._reported.get(worker.id):
            report = None
        if report is None and now - self._written.get(worker.id, 0.0) < SEEN_WRITE_SECONDS:
            return
        self._written[worker.id] = now
        if report is not None:
            self._reported[worker.id] = report
        await app[DB].write(accounts.worker_seen, worker.id, int(now), report)

    async def _lease(self, request: web.Request) -> Lease:
        """The caller's lease on the request's job (its worker authenticated)."""
        worker = await self._worker(request)
        lease = self.queue.leases.get(request.match_info["job"])
        if lease is None or lease.worker.id != worker.id:
            raise NotFound(
                "No such job for this worker: it ended, or went back to the queue and may "
                "be running elsewhere. Stop working on it."
            )
        lease.touch()
        return lease

    def _job(self, lease: Lease) -> Job:
        rjob = lease.rjob
        srpm = protocol.SrpmRef(
            rjob.job.srpm.name,
            rjob.srpm_size,
            rjob.srpm_sha256,
            protocol.job_path(lease.id, "srpm"),
        )
        return Job.of(
            lease.id,
            rjob.job,
            srpm,
            attempt=rjob.attempt,
            max_attempts=self.settings.max_attempts,
            heartbeat_interval=self.settings.heartbeat_interval,
            heartbeat_timeout=self.settings.heartbeat_timeout,
        )

    # ------------------------------------------------------------ routes

    async def claim(self, request: web.Request) -> web.StreamResponse:
        worker = await self._worker(request)
        claim = _parse(Claim.from_json, await _json_body(request))
        report = (",".join(claim.chroots), claim.builder, claim.host)
        await self._seen(request.app, worker, report)
        wait = self.settings.claim_wait if claim.wait is None else claim.wait
        lease = await self.queue.claim(worker, claim.chroots, min(wait, self.settings.claim_wait))
        if lease is None:
            return json_response(ClaimAnswer(None).to_json())
        if request.transport is None or request.transport.is_closing():
            self.queue.unclaim(lease)
            return web.Response(status=204)
        rjob = lease.rjob
        await rjob.ctx.log(
            f"Worker {worker.name} ({claim.host or 'unnamed host'}, builder "
            f"{claim.builder or '?'}) took the job: attempt {rjob.attempt} of "
            f"{self.settings.max_attempts}"
        )
        log.info(
            "job claimed job=%s build=%d chroot=%s worker=%s attempt=%d",
            lease.id,
            rjob.job.build_id,
            rjob.job.chroot.name,
            worker.name,
            rjob.attempt,
        )
        return json_response(ClaimAnswer(self._job(lease)).to_json())

    async def srpm(self, request: web.Request) -> web.StreamResponse:
        lease = await self._lease(request)
        return web.FileResponse(lease.rjob.job.srpm)

    async def heartbeat(self, request: web.Request) -> web.StreamResponse:
        lease = await self._lease(request)
        return json_response(JobState(lease.canceled).to_json())

    async def log(self, request: web.Request) -> web.StreamResponse:
        lease = await self._lease(request)
        chunk = _parse(LogChunk.from_json, await _json_body(request))
        if not lease.canceled:
            for line in chunk.lines:
                await lease.rjob.ctx.log(line)
        return json_response(JobState(lease.canceled).to_json())

    async def release(self, request: web.Request) -> web.StreamResponse:
        lease = await self._lease(request)
        self.queue.end_lease(lease)
        if not lease.canceled:
            rjob = lease.rjob
            self.queue.put(rjob, front=True)
            await rjob.ctx.log(
                f"Worker {lease.worker.name} handed the job back (it is stopping); waiting for "
                "another worker"
            )
            log.info("job released job=%s worker=%s", lease.id, lease.worker.name)
        return json_response({"output": "ok"})

    async def result(self, request: web.Request) -> web.StreamResponse:
        lease = await self._lease(request)
        worker = lease.worker.name
        if lease.canceled:
            raise Conflict("The build was canceled; its results are not wanted.")
        rjob = lease.rjob
        staging = rjob.ctx.work_dir / f"upload-{lease.id}"
        lease.uploading = True
        try:
            try:
                manifest, paths = await uploads.receive(
                    request, staging, self.settings.max_upload_mb
                )
                result = await uploads.judge(manifest, paths, worker)
            except CoprLiteError as exc:
                self._end_attempt(lease, f"upload from worker {worker} rejected: {exc}")
                raise
            except (asyncio.CancelledError, Exception) as exc:
                self._end_attempt(lease, f"upload from worker {worker} broke off: {exc!r}")
                raise
            if lease.canceled:
                raise Conflict("The build was canceled during the upload; results discarded.")
            files = await asyncio.to_thread(move_results, paths, rjob.ctx.result_dir)
        finally:
            lease.uploading = False
            await asyncio.to_thread(shutil.rmtree, staging, True)
        self.queue.end_lease(lease)
        result = ChrootResult(result.status, result.packages, tuple(files), result.fail_reason)
        if rjob.verdict is not None and not rjob.verdict.done():
            rjob.verdict.set_result(result)
        log.info(
            "job result accepted job=%s build=%d chroot=%s worker=%s outcome=%s files=%d",
            lease.id,
            rjob.job.build_id,
            rjob.job.chroot.name,
            worker,
            result.status,
            len(files),
        )
        return json_response(ResultAnswer([path.name for path in files]).to_json())

    def _end_attempt(self, lease: Lease, reason: str) -> None:
        self.queue.end_lease(lease)
        verdict = lease.rjob.verdict
        if not lease.canceled and verdict is not None and not verdict.done():
            verdict.set_result(reason)
        log.warning('job upload refused job=%s reason="%s"', lease.id, reason)

    async def list_workers(self, request: web.Request) -> web.StreamResponse:
        app = request.app
        user = await signin.api_user(request)
        if not user.is_admin:
            raise Forbidden("Only system admins may list the workers.")
        workers = await app[DB].read(accounts.list_workers)
        jobs: defaultdict[int, list[dict[str, Any]]] = defaultdict(list)
        for lease in self.queue.leases.values():
            if not lease.canceled:
                jobs[lease.worker.id].append(_lease_json(lease))
        now = time.time()
        listed = []
        for worker in workers:
            last = max(worker.last_seen or 0, int(self.seen.get(worker.id, 0))) or None
            if worker.revoked_on is not None:
                state = "revoked"
            elif jobs[worker.id]:
                state = "building"
            elif worker.id in self.queue.polling or (
                last is not None and now - last <= self.settings.heartbeat_timeout
            ):
                state = "idle"
            else:
                state = "offline"
            listed.append(
                {
                    "name": worker.name,
                    "state": state,
                    "serves": [p for p in worker.serves.split(",") if p],
                    "builder": worker.builder or None,
                    "host": worker.host or None,
                    "created_on": worker.created_on,
                    "revoked_on": worker.revoked_on,
                    "last_heartbeat": last,
                    "current_job": jobs[worker.id][0] if jobs[worker.id] else None,
                    "jobs": jobs[worker.id],
                }
            )
        queued = [
            {"build_id": r.job.build_id, "chroot": r.job.chroot.name, "attempt": r.attempt}
            for r in self.queue.queued
        ]
        return json_response({"output": "ok", "workers": listed, "queued": queued})


def _lease_json(lease: Lease) -> dict[str, Any]:
    job = lease.rjob.job
    return {
        "id": lease.id,
        "build_id": job.build_id,
        "chroot": job.chroot.name,
        "attempt": lease.rjob.attempt,
        "claimed_on": int(lease.claimed_on),
        "last_heartbeat": int(lease.last_contact_wall),
    }


def _parse(from_json: Callable[[Mapping[str, Any]], M], body: Mapping[str, Any]) -> M:
    """A message from a worker's JSON body; one that does not hold is a 400."""
    try:
        return from_json(body)
    except ProtocolError as exc:
        raise BadRequest(str(exc)) from None


async def _json_body(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > JSON_LIMIT:
        raise PayloadTooLarge(f"A JSON body may have at most {JSON_LIMIT // 1024 // 1024} MiB.")
    raw = await request.read()
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        raise BadRequest("The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise BadRequest("The body must be a JSON object.")
    return data
