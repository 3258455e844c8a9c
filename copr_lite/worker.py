"""The worker process: `python -m copr_lite worker --server URL --token TOKEN`.

A worker runs on any build machine. Each of its `concurrency` slots loops:

1. claim: long-poll `POST /worker/v1/claim` with the chroots it serves (names or patterns,
   by default every chroot of this machine's arch), until the server hands it a job;
2. download the SRPM and check its sha256 against the one the server announced;
3. build it with a local builder (`--builder`, from this machine's own plugins), while
   - log lines go to the server in batches every LOG_INTERVAL seconds,
   - a heartbeat goes every `heartbeat_interval` seconds (the server says how often); when
     its answer says the job was canceled, or the server no longer knows the job, or the
     server stays unreachable for `heartbeat_timeout`, the build is stopped;
4. upload the RPMs with a manifest of their sha256, which the server checks.

SIGTERM (or Ctrl+C) stops the worker: a running build may finish within `--grace` seconds
and is uploaded; otherwise it is stopped and handed back to the server for another worker
(`POST /worker/v1/jobs/<id>/release`). A second signal hands back at once. The worker then
exits 0. A refused token (unknown or revoked) stops it with status 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from .builders import BuildContext, Builder, BuildJob, Chroot, ChrootResult, PackageInfo

log = logging.getLogger("copr_lite.worker")

LOG_INTERVAL = 0.2  # seconds between log batches
MAX_BATCH = 2000  # lines per log request
MAX_BUFFER = 100_000  # lines kept while the server cannot be reached
CHUNK = 256 * 1024
UPLOAD_TRIES = 3
_SRPM_NAME = re.compile(r"^[A-Za-z0-9_+][A-Za-z0-9_.+~^-]{0,250}\.rpm$")


class WorkerRefused(Exception):
    """The server refused the worker's token (unknown or revoked)."""


class ServerSaid(Exception):
    """The server answered with an error status (and the API's error text)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class _Stopping(Exception):
    pass


NETWORK_ERRORS = (aiohttp.ClientError, OSError, TimeoutError)


@dataclass(eq=False)
class _Job:
    """One claimed job on this worker: its log buffer and why it was stopped, if it was."""

    data: dict[str, Any]
    lines: list[str] = field(default_factory=list)
    stop_kind: str | None = None  # "canceled", "lost", "stopping" or "refused"
    stop_reason: str = ""
    task: asyncio.Task[ChrootResult] | None = None
    flush_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    dropped: int = 0

    @property
    def id(self) -> str:
        return str(self.data["id"])

    def describe(self) -> str:
        return f"job={self.id} build={self.data['build_id']} chroot={self.data['chroot']}"

    async def log(self, line: str) -> None:
        self.lines.append(line)
        if len(self.lines) > MAX_BUFFER:
            excess = len(self.lines) - MAX_BUFFER
            del self.lines[:excess]
            self.dropped += excess

    def stop(self, kind: str, reason: str) -> None:
        if self.stop_kind is None:
            self.stop_kind, self.stop_reason = kind, reason
            if kind == "canceled":
                log.info("job canceled by the server %s", self.describe())
        if self.task is not None and not self.task.done():
            self.task.cancel()


class RemoteWorker:
    """Takes jobs from a copr_lite server and builds them with a local builder."""

    def __init__(
        self,
        server: str,
        token: str,
        builder: Builder,
        chroots: list[str],
        *,
        concurrency: int = 1,
        work_dir: Path | None = None,
        grace: float = 60.0,
        poll_wait: float = 20.0,
        host: str | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self.builder = builder
        self.chroots = chroots
        self.concurrency = concurrency
        self.work_dir = work_dir
        self.grace = grace
        self.poll_wait = poll_wait
        self.host = host or socket.gethostname()
        self.refused: str | None = None
        self._stopping = asyncio.Event()
        self._hurry = asyncio.Event()
        self._stop_deadline = 0.0
        self._session: aiohttp.ClientSession | None = None
        self.jobs_done = 0

    # ------------------------------------------------------------ control

    def stop(self) -> None:
        """Finish (within the grace period) or hand back running jobs, then return from run().
        A second call hands back at once."""
        loop = asyncio.get_running_loop()
        if self._stopping.is_set():
            log.info("stopping now: running jobs are handed back")
            self._hurry.set()
            return
        self._stop_deadline = loop.time() + self.grace
        log.info("stopping: running jobs get %g s to finish, then are handed back", self.grace)
        self._stopping.set()

    async def run(self) -> None:
        """Work until stop(); raises WorkerRefused when the server refuses the token."""
        own_dir = self.work_dir is None
        root = Path(tempfile.mkdtemp(prefix="copr-lite-worker-")) if own_dir else self.work_dir
        assert root is not None
        root.mkdir(parents=True, exist_ok=True)
        self.work_dir = root
        headers = {"Authorization": f"Bearer {self.token}", "User-Agent": "copr-lite-worker"}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120)
        log.info(
            "worker started server=%s builder=%s serves=%s concurrency=%d host=%s",
            self.server,
            self.builder.name,
            ",".join(self.chroots),
            self.concurrency,
            self.host,
        )
        try:
            async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
                self._session = session
                slots = [
                    asyncio.create_task(self._slot(n), name=f"worker-slot-{n}")
                    for n in range(self.concurrency)
                ]
                try:
                    await asyncio.gather(*slots)
                finally:
                    for slot in slots:
                        slot.cancel()
                    await asyncio.gather(*slots, return_exceptions=True)
        finally:
            if own_dir:
                await asyncio.to_thread(shutil.rmtree, root, True)
        log.info("worker stopped jobs_done=%d", self.jobs_done)
        if self.refused is not None:
            raise WorkerRefused(self.refused)

    def _refuse(self, message: str) -> None:
        if self.refused is None:
            log.error('the server refused the worker token: "%s"', message)
            self.refused = message
        self._hurry.set()
        self._stopping.set()

    # ------------------------------------------------------------ HTTP

    def _url(self, path: str) -> str:
        return self.server + path

    async def _answer(self, resp: aiohttp.ClientResponse) -> dict[str, Any]:
        try:
            data = await resp.json(content_type=None)
        except (ValueError, aiohttp.ContentTypeError):
            data = None
        if resp.status >= 400 or not isinstance(data, dict):
            message = data.get("error") if isinstance(data, dict) else None
            message = str(message or resp.reason or "no explanation")
            if resp.status == 401:
                raise WorkerRefused(message)
            raise ServerSaid(resp.status, message)
        return data

    async def _post(self, path: str, body: dict[str, Any], limit: float = 30) -> dict[str, Any]:
        assert self._session is not None
        async with self._session.post(
            self._url(path), json=body, timeout=aiohttp.ClientTimeout(total=limit)
        ) as resp:
            return await self._answer(resp)

    async def _until_stopping(self, coro: Any) -> Any:
        task = asyncio.ensure_future(coro)
        waiter = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            raise _Stopping
        return task.result()

    # ------------------------------------------------------------ the loop

    async def _slot(self, slot: int) -> None:
        backoff = 1.0
        while not self._stopping.is_set():
            try:
                answer = await self._until_stopping(
                    self._post(
                        "/worker/v1/claim",
                        {
                            "chroots": self.chroots,
                            "builder": self.builder.name,
                            "host": self.host,
                            "wait": self.poll_wait,
                        },
                        limit=self.poll_wait + 30,
                    )
                )
            except _Stopping:
                return
            except WorkerRefused as exc:
                self._refuse(exc.args[0])
                return
            except (ServerSaid, *NETWORK_ERRORS) as exc:
                log.warning('claim failed slot=%d error="%r"; retrying in %g s', slot, exc, backoff)
                with contextlib.suppress(_Stopping):
                    await self._until_stopping(asyncio.sleep(backoff))
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 1.0
            if answer.get("job"):
                await self._run_job(_Job(answer["job"]))

    async def _run_job(self, job: _Job) -> None:
        assert self.work_dir is not None
        data = job.data
        log.info(
            "job claimed %s attempt=%s/%s", job.describe(), data["attempt"], data["max_attempts"]
        )
        root = self.work_dir / f"job-{job.id}"
        beat = asyncio.create_task(self._heartbeats(job), name=f"heartbeat-{job.id}")
        flush = asyncio.create_task(self._flush_loop(job), name=f"log-{job.id}")
        job.task = asyncio.create_task(self._build(job, root), name=f"build-{job.id}")
        try:
            result = await self._await_build(job)
            await self._flush(job)
            if result is not None:
                await self._upload(job, result, root / "result")
            elif job.stop_kind == "stopping":
                await self._release(job)
            else:
                log.info(
                    'job stopped %s why=%s reason="%s"',
                    job.describe(),
                    job.stop_kind,
                    job.stop_reason,
                )
        finally:
            for task in (beat, flush):
                task.cancel()
            await asyncio.gather(beat, flush, return_exceptions=True)
            await asyncio.to_thread(shutil.rmtree, root, True)

    async def _await_build(self, job: _Job) -> ChrootResult | None:
        """The build's result, or None when it was stopped (canceled, lost, handed back)."""
        task = job.task
        assert task is not None
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not task.done():
            remaining = self._stop_deadline - asyncio.get_running_loop().time()
            if remaining > 0 and not self._hurry.is_set():
                log.info("waiting up to %.0f s for %s to finish", remaining, job.describe())
                hurry = asyncio.ensure_future(self._hurry.wait())
                try:
                    await asyncio.wait(
                        {task, hurry}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    hurry.cancel()
            if not task.done():
                job.stop("refused" if self.refused else "stopping", "the worker is stopping")
        with contextlib.suppress(BaseException):
            await task
        if task.cancelled():
            return None
        exc = task.exception()
        if exc is not None:
            log.error('job could not be built %s error="%s"', job.describe(), exc)
            await job.log(f"error on the worker: {exc}")
            return ChrootResult.failed(f"worker {self.host}: {exc}")
        return task.result()

    async def _build(self, job: _Job, root: Path) -> ChrootResult:
        data = job.data
        srpm_info = data["srpm"]
        name = str(srpm_info["name"])
        if not _SRPM_NAME.match(name):
            name = "package.src.rpm"
        result_dir, work_dir = root / "result", root / "work"
        for directory in (result_dir, work_dir):
            await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        srpm = root / name
        await job.log(f"Worker {self.host}: downloading {name} ({srpm_info['size']} bytes)")
        digest = await self._download(str(srpm_info["url"]), srpm)
        if digest != srpm_info["sha256"]:
            raise RuntimeError(
                f"the downloaded SRPM has sha256 {digest}, the server announced "
                f"{srpm_info['sha256']}"
            )
        package = data.get("package")
        build_job = BuildJob(
            build_id=int(data["build_id"]),
            owner=str(data["owner"]),
            project=str(data["project"]),
            chroot=Chroot.parse(str(data["chroot"])),
            srpm=srpm,
            package=None
            if not package
            else PackageInfo(
                package["name"], package["epoch"], package["version"], package["release"], "src"
            ),
            buildroot_pkgs=tuple(data.get("buildroot_pkgs", ())),
            repos=tuple(data.get("repos", ())),
            distro_repos=tuple(data.get("distro_repos", ())),
            enable_net=bool(data.get("enable_net")),
            memory_reqs=int(data.get("memory_reqs", 2048)),
            timeout=int(data.get("timeout", 18000)),
        )
        ctx = BuildContext(result_dir=result_dir, work_dir=work_dir, log=job.log)
        await job.log(f"Worker {self.host}: building with the {self.builder.name} builder")
        return await self.builder.build(build_job, ctx)

    async def _download(self, path: str, target: Path) -> str:
        assert self._session is not None
        digest = hashlib.sha256()
        async with self._session.get(self._url(path)) as resp:
            if resp.status != 200:
                await self._answer(resp)
                raise ServerSaid(resp.status, "the SRPM download failed")
            sink = await asyncio.to_thread(target.open, "wb")
            try:
                async for chunk in resp.content.iter_chunked(CHUNK):
                    digest.update(chunk)
                    sink.write(chunk)
            finally:
                sink.close()
        return digest.hexdigest()

    # ------------------------------------------------------------ heartbeats and logs

    async def _heartbeats(self, job: _Job) -> None:
        loop = asyncio.get_running_loop()
        interval = float(job.data["heartbeat_interval"])
        timeout = float(job.data["heartbeat_timeout"])
        last_answer = loop.time()
        while True:
            await asyncio.sleep(interval)
            try:
                answer = await self._post(
                    f"/worker/v1/jobs/{job.id}/heartbeat", {}, limit=max(interval, 5.0)
                )
            except WorkerRefused as exc:
                self._refuse(exc.args[0])
                job.stop("refused", exc.args[0])
                return
            except ServerSaid as exc:
                if exc.status == 404:
                    log.warning("job lost %s: %s", job.describe(), exc.message)
                    job.stop("lost", exc.message)
                    return
                log.warning('heartbeat refused %s error="%s"', job.describe(), exc)
                continue
            except NETWORK_ERRORS as exc:
                silent = loop.time() - last_answer
                log.warning(
                    'heartbeat failed %s error="%r" silent_s=%.1f', job.describe(), exc, silent
                )
                if silent > timeout:
                    job.stop("lost", f"no answer from the server for {silent:.0f} s")
                    return
                continue
            last_answer = loop.time()
            if answer.get("canceled"):
                job.stop("canceled", "the build was canceled on the server")
                return

    async def _flush_loop(self, job: _Job) -> None:
        while True:
            await asyncio.sleep(LOG_INTERVAL)
            await self._flush(job)

    async def _flush(self, job: _Job) -> None:
        async with job.flush_lock:
            while job.lines:
                if job.dropped:
                    note = f"[worker: {job.dropped} lines dropped while the server was away]"
                    job.lines.insert(0, note)
                    job.dropped = 0
                batch = job.lines[:MAX_BATCH]
                try:
                    answer = await self._post(f"/worker/v1/jobs/{job.id}/log", {"lines": batch})
                except WorkerRefused as exc:
                    self._refuse(exc.args[0])
                    job.stop("refused", exc.args[0])
                    return
                except ServerSaid as exc:
                    if exc.status == 404:
                        job.stop("lost", exc.message)
                        job.lines.clear()
                        return
                    log.warning('log lines refused %s error="%s"', job.describe(), exc)
                    return
                except NETWORK_ERRORS:
                    return  # kept; the next flush retries
                del job.lines[: len(batch)]
                if answer.get("canceled"):
                    job.stop("canceled", "the build was canceled on the server")

    # ------------------------------------------------------------ results

    async def _upload(self, job: _Job, result: ChrootResult, result_dir: Path) -> None:
        files: dict[str, Path] = {}
        for reported in result.files:
            path = Path(reported) if Path(reported).is_absolute() else result_dir / reported
            if path.name.endswith(".rpm"):
                files[path.name] = path
        manifest = {
            "outcome": str(result.status),
            "fail_reason": result.fail_reason,
            "files": {name: await asyncio.to_thread(_sha256, path) for name, path in files.items()},
        }
        for attempt in range(1, UPLOAD_TRIES + 1):
            try:
                answer = await self._send_result(job, manifest, files)
            except WorkerRefused as exc:
                self._refuse(exc.args[0])
                return
            except ServerSaid as exc:
                log.error(
                    'result refused %s status=%d error="%s"',
                    job.describe(),
                    exc.status,
                    exc.message,
                )
                return
            except NETWORK_ERRORS as exc:
                log.warning(
                    'result upload failed %s try=%d error="%r"', job.describe(), attempt, exc
                )
                await asyncio.sleep(attempt)
                continue
            self.jobs_done += 1
            log.info(
                "job finished %s outcome=%s files=%d",
                job.describe(),
                result.status,
                len(answer.get("files", [])),
            )
            return
        log.error("result upload gave up %s", job.describe())

    async def _send_result(
        self, job: _Job, manifest: dict[str, Any], files: dict[str, Path]
    ) -> dict[str, Any]:
        assert self._session is not None
        form = aiohttp.FormData()
        form.add_field("manifest", json.dumps(manifest), content_type="application/json")
        handles = []
        try:
            for name, path in files.items():
                handle = await asyncio.to_thread(path.open, "rb")
                handles.append(handle)
                form.add_field("file", handle, filename=name, content_type="application/x-rpm")
            async with self._session.post(
                self._url(f"/worker/v1/jobs/{job.id}/result"),
                data=form,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=600),
            ) as resp:
                return await self._answer(resp)
        finally:
            for handle in handles:
                handle.close()

    async def _release(self, job: _Job) -> None:
        try:
            await self._post(f"/worker/v1/jobs/{job.id}/release", {})
        except (WorkerRefused, ServerSaid, *NETWORK_ERRORS) as exc:
            log.warning('could not hand back %s error="%s"', job.describe(), exc)
            return
        log.info("job handed back %s", job.describe())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
