"""The published results: files and listings under /results/, dnf .repo files, live logs.

Nothing outside `<data_dir>/results` is ever served (spec A16): every request path is joined
to the tree, resolved (symlinks included) and must stay inside it, whatever `..`, `%2e%2e`,
`%2f` or absolute path the URL carries. aiohttp does not normalise dot segments itself.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import json
import logging
import os
import re
import stat
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from aiohttp import web

from .. import store
from ..builders import Chroot
from ..config import Config
from ..keys import CONFIG, DB
from ..middlewares import form_routes
from ..models import Build
from ..publisher import LIVE_LOG, LIVE_LOG_GZ, NAME_RE, SRPM_BUILDS, build_dir_name
from ..states import State
from .common import is_build_id, start_event_stream
from .pages import render_page

log = logging.getLogger(__name__)

RESULTS_PREFIX = "/results/"
_ARCH = re.compile(r"^[A-Za-z0-9_]{1,32}$")

# Content types by suffix; anything else is guessed by FileResponse (octet-stream fallback).
# `.gz` is application/gzip *without* Content-Encoding: dnf checksums the compressed bytes.
CONTENT_TYPES = {
    ".rpm": "application/x-rpm",
    ".xml": "application/xml",
    ".gz": "application/gzip",
    ".bz2": "application/x-bzip2",
    ".xz": "application/x-xz",
    ".zst": "application/zstd",
    ".sqlite": "application/vnd.sqlite3",
    ".log": "text/plain; charset=utf-8",
    ".json": "application/json",
    ".repo": "text/plain; charset=utf-8",
    ".gpg": "application/pgp-keys",
    ".asc": "text/plain; charset=utf-8",
    ".spec": "text/plain; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
# Marker files without a suffix.
PLAIN_NAMES = frozenset({"success", "fail"})

SSE_POLL = 0.25  # seconds between looks at the log's size
SSE_STATE_POLL = 1.0  # seconds between looks at the chroot's state
SSE_KEEPALIVE = 15.0  # seconds of silence before a comment line
SSE_CHUNK = 256 * 1024


def add_results_routes(router: web.UrlDispatcher) -> None:
    get, _ = form_routes(router)
    get("/results", redirect_to_results_root)
    get("/results/{path:.*}", serve_results)
    get("/coprs/{owner}/{project}/repo/{os_version}/dnf.repo", dnf_repo)
    get("/coprs/{owner}/{project}/repo/{chroot}/{filename}.repo", chroot_repo)
    get("/builds/{build_id}/{chroot}/live-log", live_log_stream)
    get("/builds/{build_id}/{chroot}/log", live_log_redirect)


# Set by stop_live_logs() when the app shuts down, so open streams end at once instead of
# holding the shutdown for aiohttp's shutdown_timeout. Weak keys: one event per app.
_STOPPING: weakref.WeakKeyDictionary[web.Application, asyncio.Event] = weakref.WeakKeyDictionary()


def stopping_event(app: web.Application) -> asyncio.Event:
    """Set when the app shuts down: open streams end then."""
    event = _STOPPING.get(app)
    if event is None:
        event = _STOPPING[app] = asyncio.Event()
    return event


async def stop_live_logs(app: web.Application) -> None:
    """An `on_shutdown` handler: end every open live-log stream (without an `end` event,
    so an EventSource reconnects and resumes from its Last-Event-ID)."""
    stopping_event(app).set()


def results_root(config: Config) -> Path:
    return config.data_dir / "results"


# ---------------------------------------------------------------------- /results/


async def redirect_to_results_root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPMovedPermanently(RESULTS_PREFIX)


async def serve_results(request: web.Request) -> web.StreamResponse:
    rel = request.match_info["path"]
    if rel.rsplit("/", 1)[-1] in (LIVE_LOG, LIVE_LOG_GZ):
        return await serve_log(request, rel.rsplit("/", 1)[0] if "/" in rel else "")
    found = await asyncio.to_thread(locate, results_root(request.app[CONFIG]), rel)
    if found is None:
        raise web.HTTPNotFound()
    path, is_dir = found
    if is_dir:
        if not request.path.endswith("/"):
            raise web.HTTPMovedPermanently(request.rel_url.raw_path + "/")
        listing = await asyncio.to_thread(list_directory, results_root(request.app[CONFIG]), path)
        return await render_page(request, "results.html", listing_context(listing))
    if request.path.endswith("/"):
        raise web.HTTPNotFound()
    response = web.FileResponse(path)
    content_type = content_type_for(path.name)
    if content_type:
        response.headers["Content-Type"] = content_type
    return response


async def serve_log(request: web.Request, rel_dir: str) -> web.StreamResponse:
    """A build log at either name, builder-live.log or builder-live.log.gz, whichever of the
    two files exists (a log is compressed once its chroot ends). The compressed file goes
    out as text with `Content-Encoding: gzip` to clients that accept it (browsers, copr-cli,
    curl --compressed), and decompressed to the others."""
    root = results_root(request.app[CONFIG])
    compressed = await asyncio.to_thread(locate, root, f"{rel_dir}/{LIVE_LOG_GZ}")
    if compressed is None or compressed[1]:
        plain = await asyncio.to_thread(locate, root, f"{rel_dir}/{LIVE_LOG}")
        if plain is None or plain[1]:
            raise web.HTTPNotFound()
        response = web.FileResponse(plain[0])
        response.headers["Content-Type"] = "text/plain; charset=utf-8"
        return response
    path = compressed[0]
    if "gzip" in request.headers.get("Accept-Encoding", "").lower():
        response = web.FileResponse(path)
        response.headers["Content-Type"] = "text/plain; charset=utf-8"
        response.headers["Content-Encoding"] = "gzip"
        return response
    stream = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
    await stream.prepare(request)
    if request.method == "HEAD":
        return stream
    reader = await asyncio.to_thread(gzip.open, path, "rb")
    try:
        while chunk := await asyncio.to_thread(reader.read, SSE_CHUNK):
            await stream.write(chunk)
    finally:
        reader.close()
    await stream.write_eof()
    return stream


def content_type_for(name: str) -> str | None:
    if name in PLAIN_NAMES:
        return "text/plain; charset=utf-8"
    return CONTENT_TYPES.get(os.path.splitext(name)[1].lower())


def locate(root: Path, rel: str) -> tuple[Path, bool] | None:
    """The resolved file or directory `rel` names under `root` and whether it is a
    directory, or None when it does not exist, is not a regular file or directory, or lies
    outside the tree (after following every symlink)."""
    if "\x00" in rel or ".." in rel.split("/"):
        return None
    try:
        root = root.resolve(strict=True)
        path = (root / rel.lstrip("/")).resolve(strict=True)
        st = path.stat()
    except (OSError, RuntimeError, ValueError):
        return None
    if not path.is_relative_to(root):
        return None
    if stat.S_ISDIR(st.st_mode):
        return path, True
    if stat.S_ISREG(st.st_mode):
        return path, False
    return None


@dataclass(frozen=True)
class Listing:
    """A directory of the results tree as the browser shows it."""

    path: str  # relative to the tree, "" for its root, else ending in "/"
    dirs: list[tuple[str, str]]  # (name, modified)
    files: list[tuple[str, int, str]]  # (name, size, modified)


def list_directory(root: Path, directory: Path) -> Listing:
    """`directory`'s entries: directories, then files, each sorted by name. Entries whose
    symlinks lead out of the tree are left out."""
    root = root.resolve()
    dirs: list[tuple[str, str]] = []
    files: list[tuple[str, int, str]] = []
    with os.scandir(directory) as entries:
        for entry in entries:
            try:
                if entry.is_symlink():
                    target = Path(entry.path).resolve(strict=True)
                    if not target.is_relative_to(root):
                        continue
                st = entry.stat()
            except (OSError, RuntimeError):
                continue
            if stat.S_ISDIR(st.st_mode):
                dirs.append((entry.name, _when(st.st_mtime)))
            elif stat.S_ISREG(st.st_mode):
                files.append((entry.name, st.st_size, _when(st.st_mtime)))
    rel = directory.relative_to(root).as_posix()
    return Listing("" if rel == "." else rel + "/", sorted(dirs), sorted(files))


def _when(mtime: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(mtime))


_BUILD_DIR = re.compile(r"^([0-9]{8})(?:-|$)")


def listing_context(listing: Listing) -> dict[str, object]:
    """What results.html shows besides the entries: the breadcrumbs and, inside a build's
    directory, the build and project it belongs to."""
    parts = [p for p in listing.path.split("/") if p]
    crumbs = [
        (name, RESULTS_PREFIX + "/".join(parts[: i + 1]) + "/") for i, name in enumerate(parts)
    ]
    project = f"/coprs/{parts[0]}/{parts[1]}/" if len(parts) >= 2 else None
    build_id = None
    if len(parts) >= 4:
        found = _BUILD_DIR.match(parts[3])
        if found:
            build_id = int(found.group(1))
    return {
        "listing": listing,
        "crumbs": crumbs,
        "project_link": project,
        "owner_link": f"/coprs/{parts[0]}/" if parts else None,
        "build_id": build_id,
        "quote": quote,
    }


# ---------------------------------------------------------------------- .repo files


def repo_hostname(config: Config) -> str:
    """The host of the public URL without its port, as the dnf copr plugin names repos."""
    parts = urlsplit(config.public_base_url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return netloc.rsplit(":", 1)[0] if parts.port is not None else netloc


def repo_file(config: Config, owner: str, project: str, chroot: Chroot, *, fixed: bool) -> str:
    """A .repo text like Copr's: `fixed` pins the chroot; otherwise Fedora versions become
    `$releasever` and the arch `$basearch`, as `dnf copr enable` expects. With signing on,
    dnf checks both the packages and repomd.xml against the project key, which it imports
    from pubkey.gpg on first use."""
    base = f"{config.public_results_url}/{owner}/{project}"
    if fixed:
        directory = chroot.name
    else:
        version = chroot.version
        if chroot.os == "fedora" and version.isdigit():
            version = "$releasever"
        directory = f"{chroot.os}-{version}-$basearch"
    lines = [
        f"[copr:{repo_hostname(config)}:{owner}:{project}]",
        f"name=Copr repo for {project} owned by {owner}",
        f"baseurl={base}/{directory}/",
        "type=rpm-md",
        "skip_if_unavailable=True",
        f"gpgcheck={1 if config.sign else 0}",
    ]
    if config.sign:
        lines.append(f"gpgkey={base}/pubkey.gpg")
    lines += [f"repo_gpgcheck={1 if config.sign else 0}", "enabled=1", "enabled_metadata=1"]
    return "\n".join(lines) + "\n"


def _not_found(text: str, chroots: tuple[str, ...] | None = None) -> web.Response:
    response = web.Response(status=404, text=text + "\n", content_type="text/plain")
    if chroots is not None:
        data = json.dumps({"available chroots": list(chroots)}).encode()
        response.headers["Copr-Error-Data"] = base64.b64encode(data).decode("ascii")
    return response


async def _project_chroots(
    request: web.Request, owner: str, project: str
) -> tuple[str, ...] | None:
    if not NAME_RE.match(owner) or not NAME_RE.match(project):
        return None
    found = await request.app[DB].read(store.get_project_with_roles, owner, project, None)
    return None if found is None else found[2]


async def _repo_response(
    request: web.Request, owner: str, project: str, chroot_name: str, *, fixed: bool
) -> web.Response:
    config = request.app[CONFIG]
    chroots = await _project_chroots(request, owner, project)
    if chroots is None:
        return _not_found(f"Project {owner[:100]}/{project[:100]} does not exist.")
    if chroot_name not in chroots:
        return _not_found(
            f"Chroot {chroot_name[:100]} does not exist in {owner}/{project}.", chroots
        )
    chroot = Chroot.parse(chroot_name)
    text = repo_file(config, owner, project, chroot, fixed=fixed)
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


async def dnf_repo(request: web.Request) -> web.Response:
    """`/coprs/<owner>/<project>/repo/<os>-<version>/dnf.repo?arch=<arch>`: what
    `dnf copr enable` downloads."""
    owner, project = request.match_info["owner"], request.match_info["project"]
    arch = request.query.get("arch") or "x86_64"
    if not _ARCH.match(arch):
        arch = "?"
    chroot = f"{request.match_info['os_version']}-{arch}"
    return await _repo_response(request, owner, project, chroot, fixed=False)


async def chroot_repo(request: web.Request) -> web.Response:
    """`/coprs/<owner>/<project>/repo/<chroot>/<owner>-<project>-<chroot>.repo`: one chroot,
    its arch fixed. A Copr-style `<os>-<version>` in place of the chroot works as dnf.repo."""
    owner, project = request.match_info["owner"], request.match_info["project"]
    name = request.match_info["chroot"]
    chroots = await _project_chroots(request, owner, project)
    if chroots is not None and name not in chroots:
        arch = request.query.get("arch") or "x86_64"
        if f"{name}-{arch}" in chroots:
            return await _repo_response(request, owner, project, f"{name}-{arch}", fixed=False)
    return await _repo_response(request, owner, project, name, fixed=True)


# ---------------------------------------------------------------------- live logs


async def _build_and_chroot(request: web.Request) -> tuple[Build, str]:
    raw_id, chroot = request.match_info["build_id"], request.match_info["chroot"]
    if not is_build_id(raw_id) or not NAME_RE.match(chroot):
        raise web.HTTPNotFound()
    build = await request.app[DB].read(store.get_build, int(raw_id))
    if build is None or not any(c.chroot == chroot for c in build.chroots):
        raise web.HTTPNotFound()
    return build, chroot


def _chroot_state(build: Build, chroot: str) -> State | None:
    for c in build.chroots:
        if c.chroot == chroot:
            return c.status
    return None


def _log_relpath(build: Build, chroot: str) -> str | None:
    """The chroot's builder-live.log under the results tree (None: package not known yet)."""
    if not build.pkg_name or not NAME_RE.match(build.pkg_name):
        return None
    return "/".join(
        (
            build.owner_name,
            build.project_name,
            chroot,
            build_dir_name(build.id, build.pkg_name),
            LIVE_LOG,
        )
    )


async def live_log_redirect(request: web.Request) -> web.StreamResponse:
    """302 to the chroot's builder-live.log under /results/ (the import's log while the
    package name is not known yet)."""
    build, chroot = await _build_and_chroot(request)
    base = request.app[CONFIG].public_results_url
    rel = _log_relpath(build, chroot)
    if rel is None:
        rel = f"{build.owner_name}/{build.project_name}/{SRPM_BUILDS}/{build.id:08d}/{LIVE_LOG}"
    raise web.HTTPFound(f"{base}/{quote(rel)}")


class LogReader:
    """Reads a chroot's log from an offset: builder-live.log while it is written, then the
    builder-live.log.gz it becomes (read on, in order, from one open decompressor)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._gz: gzip.GzipFile | None = None

    def read(self, rel: str, offset: int, limit: int) -> tuple[int, bytes] | None:
        """(current size, up to `limit` bytes from `offset`), or None when neither exists.
        For the compressed log the size is where the read ended (it is not known ahead)."""
        got = _read_from(self.root, rel, offset, limit)
        if got is not None:
            return got
        if self._gz is None:
            found = locate(self.root, rel + ".gz")
            if found is None or found[1]:
                return None
            try:
                self._gz = gzip.open(found[0], "rb")  # noqa: SIM115  (kept open: close())
            except OSError:
                return None
        try:
            if self._gz.tell() != offset:
                self._gz.seek(offset)
            data = self._gz.read(limit)
        except (OSError, EOFError):
            return None
        return offset + len(data), data

    def close(self) -> None:
        if self._gz is not None:
            self._gz.close()
            self._gz = None


def _read_from(root: Path, rel: str, offset: int, limit: int) -> tuple[int, bytes] | None:
    """(current size, up to `limit` bytes from `offset`) of the regular file `rel` inside
    `root`, or None when there is none (a symlink out of the tree counts as none)."""
    found = locate(root, rel)
    if found is None or found[1]:
        return None
    try:
        with open(found[0], "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size <= offset:
                return size, b""
            fh.seek(offset)
            return size, fh.read(limit)
    except OSError:
        return None


def _sse_data(line: bytes, event_id: int) -> bytes:
    """One event for one log line; `event_id` is the byte offset just after the line."""
    text = line.decode("utf-8", "replace").replace("\r", "").encode()
    return b"id: %d\ndata: %s\n\n" % (event_id, text)


async def live_log_stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the chroot's builder-live.log so far, then each line appended to
    it, until the chroot reaches a terminal state; then `event: end` with that state.

    Each line is one `data:` event whose `id` is the byte offset after it, so a reconnecting
    EventSource (Last-Event-ID) resumes where it stopped. Clients must close the stream on
    `end` (an EventSource would otherwise reconnect).
    """
    build, chroot = await _build_and_chroot(request)
    db = request.app[DB]
    root = results_root(request.app[CONFIG])
    offset = 0
    with contextlib.suppress(ValueError):
        offset = max(0, int(request.headers.get("Last-Event-ID", "0")))

    response = await start_event_stream(request, "no-cache")
    loop = asyncio.get_running_loop()
    pending = b""  # a partial last line, sent once its newline arrives
    last_state_check = loop.time()
    last_sent = loop.time()
    state = _chroot_state(build, chroot)
    stopping = stopping_event(request.app)
    reader = LogReader(root)
    try:
        while True:
            transport = request.transport
            if transport is None or transport.is_closing() or stopping.is_set():
                return response
            rel = _log_relpath(build, chroot)
            finished = state is not None and state.terminal
            # Read everything available (several chunks when catching up).
            while rel is not None:
                got = await asyncio.to_thread(reader.read, rel, offset, SSE_CHUNK)
                if got is None:
                    break
                size, data = got
                if size < offset:  # the log was replaced (a re-queued build): start over
                    offset, pending = 0, b""
                    continue
                if not data:
                    break
                position = offset - len(pending)  # where the buffer starts in the file
                offset += len(data)
                *lines, pending = (pending + data).split(b"\n")
                if lines:
                    events = []
                    for line in lines:
                        position += len(line) + 1
                        events.append(_sse_data(line, position))
                    await response.write(b"".join(events))
                    last_sent = loop.time()
                if len(data) < SSE_CHUNK:
                    break
            if finished:
                if pending:
                    await response.write(_sse_data(pending, offset))
                end = state.value if state is not None else "unknown"
                await response.write(f"event: end\ndata: {end}\n\n".encode())
                await response.write_eof()
                return response
            now = loop.time()
            if now - last_sent >= SSE_KEEPALIVE:
                await response.write(b": keepalive\n\n")
                last_sent = now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), SSE_POLL)
            if loop.time() - last_state_check >= SSE_STATE_POLL:
                last_state_check = loop.time()
                fresh = await db.read(store.get_build, build.id)
                if fresh is None:  # the build (or its project) was deleted
                    state = State.CANCELED
                else:
                    build, state = fresh, _chroot_state(fresh, chroot)
    except ConnectionResetError:
        # The client went away: nothing to report.
        return response
    finally:
        await asyncio.to_thread(reader.close)
