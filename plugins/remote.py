"""Built-in builder "remote": hands chroots to worker machines over HTTP.

Map chroots to it (`[chroots] fedora-41-aarch64 = remote`) and run
`python -m copr_lite worker --server URL --token TOKEN` on any number of machines. The
dispatcher calls `RemoteBuilder.build()` as it calls any builder; that coroutine puts the
job into this app's queue and waits for its outcome, while the worker API (routes under
`/worker/v1/`, added by the `register_routes` hook) lets workers take jobs and report:

- `POST /worker/v1/claim` (long poll): a job for one of the chroots the worker serves (names
  or fnmatch patterns such as `*-x86_64`), or `{"job": null}` when none came in time. The job
  names its SRPM (`GET /worker/v1/jobs/<id>/srpm`, with its sha256) and the heartbeat interval.
- `POST /worker/v1/jobs/<id>/log`: log lines, appended to builder-live.log as they come.
- `POST /worker/v1/jobs/<id>/heartbeat`: answers `{"canceled": bool}`; a canceled (or timed
  out) build answers true, and the worker stops it.
- `POST /worker/v1/jobs/<id>/result`: multipart, a JSON `manifest` part (`outcome`,
  `fail_reason`, `files`: name -> sha256) then one `file` part per RPM. The server hashes what
  it receives and reads every RPM header itself (the worker's word on packages is not taken);
  only then are the files moved into the build's result directory.
- `POST /worker/v1/jobs/<id>/release`: a stopping worker hands the job back.

A job id names one attempt by one worker: once a job is re-queued, the old worker's requests
on it answer 404 and that worker drops it. Attempts: a worker that sends no heartbeat for
`heartbeat_timeout` seconds loses the job, and a rejected upload (checksum mismatch, a file
that is not an RPM) ends the attempt the same way; either re-queues the job for any worker,
up to `max_attempts` in all, after which the chroot fails with every reason. A job handed
back by a stopping worker does not count as an attempt.

Workers authenticate with `Authorization: Bearer <token>` (`python -m copr_lite worker-token
create NAME`); only a hash of each token is stored. `GET /api/workers/` (system admins) shows
every worker, what it serves, its current jobs and its last heartbeat, and the queue.

Settings (`[plugin:remote]`, declared by `RemoteSettings`): `heartbeat_timeout` (seconds,
default 30), `heartbeat_interval` (default a third of the timeout), `max_attempts` (3),
`claim_wait` (longest long poll, 20 s), `max_upload_mb` (largest result upload, 4096).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from aiohttp import BodyPartReader, web

from copr_lite import (
    BuildContext,
    BuildJob,
    ChrootResult,
    Outcome,
    auth,
    hookimpl,
    plugin_setting,
    signin,
    store,
)
from copr_lite.errors import (
    BadRequest,
    Conflict,
    CoprLiteError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
)
from copr_lite.keys import BUILDERS, DB
from copr_lite.responses import json_response
from copr_lite.verify import ResultError, read_result_files

if TYPE_CHECKING:
    from copr_lite.builders import BuilderRegistry
    from copr_lite.config import Config, PluginSettingsRegistry
    from copr_lite.models import Worker

log = logging.getLogger("copr_lite.remote")

API = "/worker/v1"
CHUNK = 256 * 1024
JSON_LIMIT = 8 * 1024 * 1024  # a log batch or a claim
MAX_LINES = 5000  # per log batch
MAX_LINE = 16 * 1024  # characters kept of one log line
SEEN_WRITE_SECONDS = 5.0  # last_seen reaches the database at most this often per worker
_PATTERN = re.compile(r"^[A-Za-z0-9_.*?\[\]!-]{1,100}$")
_RPM_FILE = re.compile(r"^[A-Za-z0-9_+][A-Za-z0-9_.+~^-]{0,250}\.rpm$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


# ---------------------------------------------------------------- settings


@dataclass(frozen=True)
class RemoteSettings:
    heartbeat_timeout: float = plugin_setting(
        30.0, "Seconds without a heartbeat before a job is taken back.", min=0.5, max=3600
    )
    heartbeat_interval: float = plugin_setting(
        0.0,
        "How often workers heartbeat, in seconds (at most heartbeat_timeout / 1.5). "
        "0: a third of heartbeat_timeout.",
        min=0,
        max=2400,
    )
    max_attempts: int = plugin_setting(
        3, "Attempts in all before the chroot fails.", min=1, max=100
    )
    claim_wait: float = plugin_setting(
        20.0, "Longest long poll of a worker asking for work, in seconds.", min=0.1, max=300
    )
    max_upload_mb: int = plugin_setting(
        4096, "Largest result upload, in MiB.", min=1, max=1024 * 1024
    )

    def __post_init__(self) -> None:
        if not self.heartbeat_interval:
            # frozen: the derived default is set once, here.
            object.__setattr__(self, "heartbeat_interval", self.heartbeat_timeout / 3)
        elif not 0.1 <= self.heartbeat_interval <= self.heartbeat_timeout / 1.5:
            raise ValueError(
                f"heartbeat_interval = {self.heartbeat_interval:g}: must be between 0.1 and "
                f"heartbeat_timeout / 1.5 ({self.heartbeat_timeout / 1.5:g})"
            )


# ---------------------------------------------------------------- the queue


@dataclass(eq=False)
class RemoteJob:
    """One chroot build waiting for, or running on, a worker."""

    job: BuildJob
    ctx: BuildContext
    srpm_sha256: str
    srpm_size: int
    failures: list[str] = field(default_factory=list)
    lease: Lease | None = None
    # The outcome of the current attempt: a ChrootResult, or why the attempt failed.
    verdict: asyncio.Future[ChrootResult | str] | None = None

    @property
    def attempt(self) -> int:
        return len(self.failures) + 1


@dataclass(eq=False)
class Lease:
    """One attempt of a job by one worker; its id is the job id the worker sees."""

    id: str
    rjob: RemoteJob
    worker: Worker
    claimed_on: float  # unix time
    last_contact: float  # loop time of the worker's last request on this job
    last_contact_wall: float
    canceled: bool = False
    uploading: bool = False

    def touch(self) -> None:
        self.last_contact = asyncio.get_running_loop().time()
        self.last_contact_wall = time.time()


def serves(patterns: list[str], chroot: str) -> bool:
    return any(fnmatch.fnmatchcase(chroot, pattern) for pattern in patterns)


class JobQueue:
    """Jobs waiting for a worker (oldest first) and the leases of jobs being built."""

    def __init__(self) -> None:
        self._queued: list[RemoteJob] = []
        self.leases: dict[str, Lease] = {}
        self.polling: defaultdict[int, int] = defaultdict(int)  # worker id -> open claims
        self._changed = asyncio.Event()
        self.closed = False

    @property
    def queued(self) -> list[RemoteJob]:
        return list(self._queued)

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def put(self, rjob: RemoteJob, *, front: bool = False) -> None:
        rjob.lease = None
        self._queued.insert(0 if front else len(self._queued), rjob)
        self._notify()

    def remove(self, rjob: RemoteJob) -> None:
        with contextlib.suppress(ValueError):
            self._queued.remove(rjob)

    def _take(self, patterns: list[str]) -> RemoteJob | None:
        for index, rjob in enumerate(self._queued):
            if serves(patterns, rjob.job.chroot.name):
                return self._queued.pop(index)
        return None

    async def claim(self, worker: Worker, patterns: list[str], wait: float) -> Lease | None:
        """The oldest job for one of `patterns`, waiting up to `wait` seconds for one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        self.polling[worker.id] += 1
        try:
            while not self.closed:
                rjob = self._take(patterns)
                if rjob is not None:
                    now = loop.time()
                    lease = Lease(secrets.token_urlsafe(12), rjob, worker, time.time(), now, 0)
                    lease.last_contact_wall = lease.claimed_on
                    rjob.lease = lease
                    self.leases[lease.id] = lease
                    return lease
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                changed = self._changed
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await changed.wait()
            return None
        finally:
            self.polling[worker.id] -= 1
            if not self.polling[worker.id]:
                del self.polling[worker.id]

    def end_lease(self, lease: Lease) -> None:
        self.leases.pop(lease.id, None)
        if lease.rjob.lease is lease:
            lease.rjob.lease = None

    def unclaim(self, lease: Lease) -> None:
        """The claimer went away before it heard of the job: first in line again."""
        self.end_lease(lease)
        self.put(lease.rjob, front=True)

    def cancel(self, rjob: RemoteJob, linger: float) -> None:
        """The build was canceled (or timed out): never hand it out again, and let its
        worker's next heartbeat hear so for `linger` seconds."""
        self.remove(rjob)
        lease = rjob.lease
        if lease is not None:
            lease.canceled = True
            asyncio.get_running_loop().call_later(linger, self.leases.pop, lease.id, None)

    def close(self) -> None:
        """Server shutdown: open long polls answer at once."""
        self.closed = True
        self._notify()


# ---------------------------------------------------------------- the builder


def _sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


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
        digest, size = await asyncio.to_thread(_sha256_file, job.srpm)
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


# ---------------------------------------------------------------- the worker API


class WorkerApi:
    """The `/worker/v1/` routes and `GET /api/workers/` of one app's remote builder."""

    def __init__(self, builder: RemoteBuilder) -> None:
        self.builder = builder
        self.queue = builder.queue
        self.settings = builder.settings
        self.seen: dict[int, float] = {}  # worker id -> unix time of its last request
        self._written: dict[int, float] = {}
        self._reported: dict[int, tuple[str, str, str]] = {}

    def add_routes(self, app: web.Application) -> None:
        router = app.router
        router.add_post(f"{API}/claim", self.claim)
        router.add_get(f"{API}/jobs/{{job}}/srpm", self.srpm)
        router.add_post(f"{API}/jobs/{{job}}/log", self.log)
        router.add_post(f"{API}/jobs/{{job}}/heartbeat", self.heartbeat)
        router.add_post(f"{API}/jobs/{{job}}/result", self.result)
        router.add_post(f"{API}/jobs/{{job}}/release", self.release)
        router.add_get("/api/workers/", self.list_workers)
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
            store.get_worker_by_token, auth.hash_token(token.strip())
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
        await app[DB].write(store.worker_seen, worker.id, int(now), report)

    def _lease(self, request: web.Request, worker: Worker) -> Lease:
        lease = self.queue.leases.get(request.match_info["job"])
        if lease is None or lease.worker.id != worker.id:
            raise NotFound(
                "No such job for this worker: it ended, or went back to the queue and may "
                "be running elsewhere. Stop working on it."
            )
        lease.touch()
        return lease

    # ------------------------------------------------------------ routes

    async def claim(self, request: web.Request) -> web.StreamResponse:
        worker = await self._worker(request)
        body = await _json_body(request)
        patterns = body.get("chroots")
        if (
            not isinstance(patterns, list)
            or not 1 <= len(patterns) <= 100
            or not all(isinstance(p, str) and _PATTERN.match(p) for p in patterns)
        ):
            raise BadRequest(
                "`chroots` must list 1 to 100 chroot names or patterns, e.g. "
                '["fedora-41-x86_64", "epel-*-x86_64"].'
            )
        wait = body.get("wait", self.settings.claim_wait)
        if not isinstance(wait, int | float) or isinstance(wait, bool) or wait < 0:
            raise BadRequest("`wait` must be a number of seconds.")
        report = (
            ",".join(patterns),
            str(body.get("builder", ""))[:100],
            str(body.get("host", ""))[:255],
        )
        await self._seen(request.app, worker, report)
        lease = await self.queue.claim(worker, patterns, min(float(wait), self.settings.claim_wait))
        if lease is None:
            return json_response({"output": "ok", "job": None})
        if request.transport is None or request.transport.is_closing():
            self.queue.unclaim(lease)
            return web.Response(status=204)
        rjob = lease.rjob
        job = rjob.job
        await rjob.ctx.log(
            f"Worker {worker.name} ({report[2] or 'unnamed host'}, builder "
            f"{report[1] or '?'}) took the job: attempt {rjob.attempt} of "
            f"{self.settings.max_attempts}"
        )
        log.info(
            "job claimed job=%s build=%d chroot=%s worker=%s attempt=%d",
            lease.id,
            job.build_id,
            job.chroot.name,
            worker.name,
            rjob.attempt,
        )
        return json_response({"output": "ok", "job": self._job_json(lease)})

    def _job_json(self, lease: Lease) -> dict[str, Any]:
        rjob = lease.rjob
        job = rjob.job
        package = job.package
        return {
            "id": lease.id,
            "build_id": job.build_id,
            "owner": job.owner,
            "project": job.project,
            "chroot": job.chroot.name,
            "package": None
            if package is None
            else {
                "name": package.name,
                "epoch": package.epoch,
                "version": package.version,
                "release": package.release,
            },
            "buildroot_pkgs": list(job.buildroot_pkgs),
            "repos": list(job.repos),
            "distro_repos": list(job.distro_repos),
            "enable_net": job.enable_net,
            "memory_reqs": job.memory_reqs,
            "timeout": job.timeout,
            "attempt": rjob.attempt,
            "max_attempts": self.settings.max_attempts,
            "srpm": {
                "name": job.srpm.name,
                "size": rjob.srpm_size,
                "sha256": rjob.srpm_sha256,
                "url": f"{API}/jobs/{lease.id}/srpm",
            },
            "heartbeat_interval": self.settings.heartbeat_interval,
            "heartbeat_timeout": self.settings.heartbeat_timeout,
        }

    async def srpm(self, request: web.Request) -> web.StreamResponse:
        lease = self._lease(request, await self._worker(request))
        return web.FileResponse(lease.rjob.job.srpm)

    async def heartbeat(self, request: web.Request) -> web.StreamResponse:
        lease = self._lease(request, await self._worker(request))
        return json_response({"output": "ok", "canceled": lease.canceled})

    async def log(self, request: web.Request) -> web.StreamResponse:
        lease = self._lease(request, await self._worker(request))
        lines = (await _json_body(request)).get("lines")
        if not isinstance(lines, list) or len(lines) > MAX_LINES:
            raise BadRequest(f"`lines` must be a list of at most {MAX_LINES} strings.")
        if not lease.canceled:
            for line in lines:
                await lease.rjob.ctx.log(str(line)[:MAX_LINE])
        return json_response({"output": "ok", "canceled": lease.canceled})

    async def release(self, request: web.Request) -> web.StreamResponse:
        worker = await self._worker(request)
        lease = self._lease(request, worker)
        self.queue.end_lease(lease)
        if not lease.canceled:
            rjob = lease.rjob
            self.queue.put(rjob, front=True)
            await rjob.ctx.log(
                f"Worker {worker.name} handed the job back (it is stopping); waiting for "
                "another worker"
            )
            log.info("job released job=%s worker=%s", lease.id, worker.name)
        return json_response({"output": "ok"})

    async def result(self, request: web.Request) -> web.StreamResponse:
        worker = await self._worker(request)
        lease = self._lease(request, worker)
        if lease.canceled:
            raise Conflict("The build was canceled; its results are not wanted.")
        rjob = lease.rjob
        staging = rjob.ctx.work_dir / f"upload-{lease.id}"
        lease.uploading = True
        try:
            try:
                manifest, paths = await self._receive(request, staging)
                result = await _judge(manifest, paths, worker.name)
            except CoprLiteError as exc:
                self._end_attempt(lease, f"upload from worker {worker.name} rejected: {exc}")
                raise
            except (asyncio.CancelledError, Exception) as exc:
                self._end_attempt(lease, f"upload from worker {worker.name} broke off: {exc!r}")
                raise
            if lease.canceled:
                raise Conflict("The build was canceled during the upload; results discarded.")
            files = await asyncio.to_thread(_move_into, paths, rjob.ctx.result_dir)
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
            worker.name,
            result.status,
            len(files),
        )
        return json_response({"output": "ok", "files": [path.name for path in files]})

    def _end_attempt(self, lease: Lease, reason: str) -> None:
        self.queue.end_lease(lease)
        verdict = lease.rjob.verdict
        if not lease.canceled and verdict is not None and not verdict.done():
            verdict.set_result(reason)
        log.warning('job upload refused job=%s reason="%s"', lease.id, reason)

    async def _receive(self, request: web.Request, staging: Path) -> tuple[Manifest, list[Path]]:
        """Stream the upload into `staging`, hashing each file; check it against the manifest."""
        if not request.content_type.startswith("multipart/"):
            raise BadRequest(
                "Send results as multipart/form-data: a `manifest` part, then `file` parts."
            )
        reader = await request.multipart()
        part = await reader.next()
        if not isinstance(part, BodyPartReader) or part.name != "manifest":
            raise BadRequest("The first part must be the JSON `manifest`.")
        manifest = Manifest.parse(await _read_limited(part, JSON_LIMIT))
        await asyncio.to_thread(staging.mkdir, parents=True, exist_ok=True)
        limit = self.settings.max_upload_mb * 1024 * 1024
        received: dict[str, str] = {}
        total = 0
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name != "file":
                raise BadRequest("After the manifest, only `file` parts may follow.")
            name = part.filename or ""
            if name not in manifest.files:
                raise BadRequest(f"{name!r} is not in the manifest.")
            if name in received:
                raise BadRequest(f"{name} was sent twice.")
            digest = hashlib.sha256()
            sink = await asyncio.to_thread(_create, staging / name)
            try:
                while chunk := await part.read_chunk(CHUNK):
                    total += len(chunk)
                    if total > limit:
                        raise PayloadTooLarge(
                            f"The results exceed [plugin:remote] max_upload_mb "
                            f"({self.settings.max_upload_mb} MiB)."
                        )
                    digest.update(chunk)
                    sink.write(chunk)
            finally:
                sink.close()
            received[name] = digest.hexdigest()
        missing = sorted(set(manifest.files) - set(received))
        if missing:
            raise BadRequest(f"Files in the manifest were not sent: {', '.join(missing)}.")
        for name, expected in manifest.files.items():
            if not hmac.compare_digest(received[name], expected):
                raise BadRequest(
                    f"Checksum mismatch for {name}: the manifest says sha256 {expected}, "
                    f"the server received {received[name]}."
                )
        return manifest, [staging / name for name in manifest.files]

    async def list_workers(self, request: web.Request) -> web.StreamResponse:
        app = request.app
        user = await signin.api_user(request)
        if not user.is_admin:
            raise Forbidden("Only system admins may list the workers.")
        workers = await app[DB].read(store.list_workers)
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


@dataclass(frozen=True)
class Manifest:
    outcome: Outcome
    fail_reason: str | None
    files: dict[str, str]  # file name -> sha256 (hex)

    @classmethod
    def parse(cls, raw: bytes) -> Manifest:
        try:
            data = json.loads(raw)
        except ValueError:
            raise BadRequest("The manifest is not valid JSON.") from None
        if not isinstance(data, dict):
            raise BadRequest("The manifest must be a JSON object.")
        try:
            outcome = Outcome(str(data.get("outcome")))
        except ValueError:
            raise BadRequest("The manifest's `outcome` must be succeeded or failed.") from None
        reason = data.get("fail_reason")
        if reason is not None and not isinstance(reason, str):
            raise BadRequest("The manifest's `fail_reason` must be a string or null.")
        files = data.get("files", {})
        if not isinstance(files, dict) or len(files) > 1000:
            raise BadRequest("The manifest's `files` must map at most 1000 names to sha256.")
        for name, digest in files.items():
            if not _RPM_FILE.match(name):
                raise BadRequest(f"{name!r}: only RPM files (`*.rpm`, plain names) are accepted.")
            if not isinstance(digest, str) or not _SHA256.match(digest):
                raise BadRequest(f"{name}: the sha256 must be 64 lowercase hex digits.")
        if reason is not None:
            reason = " ".join(reason.split())[:500] or None
        return cls(outcome, reason, dict(files))


async def _judge(manifest: Manifest, paths: list[Path], worker: str) -> ChrootResult:
    """The result, from the RPM headers the server reads itself."""
    try:
        headers = await read_result_files(paths)
    except ResultError as exc:
        raise BadRequest(f"The upload does not hold: {exc}.") from None
    if manifest.outcome is Outcome.FAILED:
        reason = manifest.fail_reason or f"the build failed on worker {worker}"
        return ChrootResult(Outcome.FAILED, (), tuple(paths), reason)
    packages = tuple(p for p in headers if p.arch != "src")
    return ChrootResult(Outcome.SUCCEEDED, packages, tuple(paths))


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


async def _read_limited(part: BodyPartReader, limit: int) -> bytes:
    data = bytearray()
    while chunk := await part.read_chunk(CHUNK):
        data += chunk
        if len(data) > limit:
            raise PayloadTooLarge("The manifest is too large.")
    return bytes(data)


def _create(path: Path) -> IO[bytes]:
    """A new file for an upload (never through an existing name or symlink)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    return os.fdopen(fd, "wb")


def _move_into(paths: list[Path], result_dir: Path) -> list[Path]:
    result_dir.mkdir(parents=True, exist_ok=True)
    moved = []
    for path in paths:
        destination = result_dir / path.name
        os.replace(path, destination)
        moved.append(destination)
    return moved


# ---------------------------------------------------------------- hooks


@hookimpl
def register_settings(registry: PluginSettingsRegistry) -> None:
    registry.add("remote", RemoteSettings)


@hookimpl
def register_builders(registry: BuilderRegistry, config: Config) -> None:
    registry.add(RemoteBuilder(config.plugin_settings("remote", RemoteSettings)))


@hookimpl
def register_routes(app: web.Application) -> None:
    builder = app[BUILDERS].get("remote")
    if isinstance(builder, RemoteBuilder):  # another plugin may have taken the name
        WorkerApi(builder).add_routes(app)
