"""The worker's HTTP client of the worker API: one method per request of protocol.py.

Errors: `WorkerRefused` (401: the token is unknown or revoked), `ServerSaid` (any other
error status, with the API's error text) and NETWORK_ERRORS (the server is unreachable).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

from . import protocol
from .protocol import Claim, ClaimAnswer, Job, JobState, LogChunk, Manifest, ResultAnswer, SrpmRef

CHUNK = 256 * 1024
NETWORK_ERRORS = (aiohttp.ClientError, OSError, TimeoutError)


class WorkerRefused(Exception):
    """The server refused the worker's token (unknown or revoked)."""


class ServerSaid(Exception):
    """The server answered with an error status (and the API's error text)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class WorkerClient:
    """A session with the server, authenticated by the worker token; use `async with`."""

    def __init__(self, server: str, token: str) -> None:
        self.server = server.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "User-Agent": "copr-lite-worker"}
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> WorkerClient:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120)
        self._session = aiohttp.ClientSession(headers=self._headers, timeout=timeout)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "use the client in `async with`"
        return self._session

    # ------------------------------------------------------------ requests

    async def claim(self, claim: Claim, limit: float) -> Job | None:
        """A job for one of the claimed chroots, or None when none came within the wait."""
        answer = await self._post(protocol.CLAIM, claim.to_json(), limit)
        return ClaimAnswer.from_json(answer).job

    async def heartbeat(self, job_id: str, limit: float) -> JobState:
        return JobState.from_json(
            await self._post(protocol.job_path(job_id, "heartbeat"), {}, limit)
        )

    async def send_log(self, job_id: str, lines: list[str]) -> JobState:
        answer = await self._post(protocol.job_path(job_id, "log"), LogChunk(lines).to_json())
        return JobState.from_json(answer)

    async def release(self, job_id: str) -> None:
        await self._post(protocol.job_path(job_id, "release"), {})

    async def download(self, srpm: SrpmRef, target: Path) -> str:
        """Store the job's SRPM at `target`; its sha256 as it arrived."""
        digest = hashlib.sha256()
        async with self.session.get(self.server + srpm.url) as resp:
            if resp.status != 200:
                await _answer(resp)
                raise ServerSaid(resp.status, "the SRPM download failed")
            sink = await asyncio.to_thread(target.open, "wb")
            try:
                async for chunk in resp.content.iter_chunked(CHUNK):
                    digest.update(chunk)
                    sink.write(chunk)
            finally:
                sink.close()
        return digest.hexdigest()

    async def send_result(
        self, job_id: str, manifest: Manifest, files: dict[str, Path]
    ) -> ResultAnswer:
        """Upload the manifest, then each file it names."""
        form = aiohttp.FormData()
        form.add_field("manifest", json.dumps(manifest.to_json()), content_type="application/json")
        handles = []
        try:
            for name, path in files.items():
                handle = await asyncio.to_thread(path.open, "rb")
                handles.append(handle)
                form.add_field("file", handle, filename=name, content_type="application/x-rpm")
            async with self.session.post(
                self.server + protocol.job_path(job_id, "result"),
                data=form,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=600),
            ) as resp:
                return ResultAnswer.from_json(await _answer(resp))
        finally:
            for handle in handles:
                handle.close()

    async def _post(self, path: str, body: dict[str, Any], limit: float = 30) -> dict[str, Any]:
        async with self.session.post(
            self.server + path, json=body, timeout=aiohttp.ClientTimeout(total=limit)
        ) as resp:
            return await _answer(resp)


async def _answer(resp: aiohttp.ClientResponse) -> dict[str, Any]:
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
