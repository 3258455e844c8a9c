"""A worker's result upload on the server: streamed to disk, hashed, checked against its
manifest and judged from the RPM headers the server reads itself (the worker's word on
packages is not taken); only then are the files moved into the build's result directory
(by the api, with `rpmtools.move_results`, the builders' shared one)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import IO

from aiohttp import BodyPartReader, web

from copr_lite import ChrootResult, Outcome
from copr_lite.errors import BadRequest, PayloadTooLarge
from copr_lite.verify import ResultError, read_result_files

from .protocol import Manifest, ProtocolError

CHUNK = 256 * 1024
MANIFEST_LIMIT = 8 * 1024 * 1024


async def receive(
    request: web.Request, staging: Path, max_upload_mb: int
) -> tuple[Manifest, list[Path]]:
    """Stream the upload into `staging`, hashing each file; check it against the manifest."""
    if not request.content_type.startswith("multipart/"):
        raise BadRequest(
            "Send results as multipart/form-data: a `manifest` part, then `file` parts."
        )
    reader = await request.multipart()
    part = await reader.next()
    if not isinstance(part, BodyPartReader) or part.name != "manifest":
        raise BadRequest("The first part must be the JSON `manifest`.")
    manifest = _manifest(await _read_limited(part, MANIFEST_LIMIT))
    await asyncio.to_thread(staging.mkdir, parents=True, exist_ok=True)
    budget = _Budget(max_upload_mb)
    received: dict[str, str] = {}
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name != "file":
            raise BadRequest("After the manifest, only `file` parts may follow.")
        name = part.filename or ""
        if name not in manifest.files:
            raise BadRequest(f"{name!r} is not in the manifest.")
        if name in received:
            raise BadRequest(f"{name} was sent twice.")
        received[name] = await _save(part, staging / name, budget)
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


async def judge(manifest: Manifest, paths: list[Path], worker: str) -> ChrootResult:
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


class _Budget:
    """The bytes an upload may still send ([plugin:remote] max_upload_mb in all)."""

    def __init__(self, max_upload_mb: int) -> None:
        self.max_upload_mb = max_upload_mb
        self.left = max_upload_mb * 1024 * 1024

    def spend(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise PayloadTooLarge(
                f"The results exceed [plugin:remote] max_upload_mb ({self.max_upload_mb} MiB)."
            )


async def _save(part: BodyPartReader, path: Path, budget: _Budget) -> str:
    """Write one file part to a new file at `path`; its sha256."""
    digest = hashlib.sha256()
    sink = await asyncio.to_thread(_create, path)
    try:
        while chunk := await part.read_chunk(CHUNK):
            budget.spend(len(chunk))
            digest.update(chunk)
            sink.write(chunk)
    finally:
        sink.close()
    return digest.hexdigest()


def _manifest(raw: bytes) -> Manifest:
    try:
        return Manifest.from_json(json.loads(raw))
    except ValueError as exc:
        message = str(exc) if isinstance(exc, ProtocolError) else "The manifest is not valid JSON."
        raise BadRequest(message) from None


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
