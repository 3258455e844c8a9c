"""Importing an SRPM: download it (spec A19) or take the upload, hash it, read its header.

`import_srpm()` is the whole import step of a build. `fetch_srpm()` downloads over http(s)
under the SRPM URL policy: the host is resolved once, every address it resolves to is checked
with `forms.address_policy`, and the connection goes to those checked addresses only (a
resolver pinned to them; the Host header and the TLS server name stay the URL's). Redirects are
followed by hand, at most MAX_REDIRECTS, each new URL checked the same way. The size limit
holds while streaming, whatever Content-Length says, and the whole download has a time limit.
`download()` is the same for any file (a spec's sources), and `check_url()` the address check
alone, for connections other programs make (git).

Every failure raises `SrpmError` with one line saying why, fit for a build log and for
`fail_reasons`. Partial files are removed.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import re
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from .builders import LogWriter, PackageInfo, is_rpm_file, read_rpm_headers
from .forms import MAX_FILE_NAME, SRPM_SUFFIXES, address_policy, literal_address
from .publisher import NAME_RE
from .rpmtools import sha256_file

MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_READ_CHUNK = 64 * 1024
_FLUSH_SIZE = 1024 * 1024  # downloaded bytes are written and hashed in a thread per MiB
_FILE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.+~^-]")
_MAX_NAME = MAX_FILE_NAME
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class SrpmError(Exception):
    """Why an SRPM could not be imported, in one line."""


# ---------------------------------------------------------------- small helpers


def _size_text(size: int) -> str:
    mib = 1024 * 1024
    return f"{size // mib} MiB" if size >= mib and size % mib == 0 else f"{size} bytes"


def _display(url: URL) -> str:
    """The URL as it may appear in a (public) log: without user name and password."""
    return str(url.with_user(None)) if url.user or url.password else str(url)


def public_url(text: str) -> str:
    """`text` (a source URL) without any credentials, for logs anyone can read."""
    try:
        return _display(URL(text))
    except ValueError:
        return text


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else ""


async def _emit(log: LogWriter | None, line: str) -> None:
    if log is not None:
        await log(line)


def srpm_file_name(name: str) -> str:
    """A safe local file name for an SRPM named `name` (a URL path's last segment or an
    upload's name): unusual characters become "_", no leading "." or "-"."""
    name = _FILE_NAME_CHARS.sub("_", name.rsplit("/", 1)[-1]).lstrip(".-")
    if not name.endswith(SRPM_SUFFIXES) or name in SRPM_SUFFIXES:
        raise SrpmError("the SRPM file name must end in .src.rpm or .nosrc.rpm")
    if len(name) > _MAX_NAME:
        raise SrpmError(f"the SRPM file name is longer than {_MAX_NAME} characters")
    return name


def _remove(*paths: Path) -> None:
    """Unlink files, synchronously: cleanup must happen even while being cancelled, and
    removing a file is one quick metadata operation."""
    for path in paths:
        path.unlink(missing_ok=True)


# ---------------------------------------------------------------- address checks


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo, NAT64), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _refusal(address: Address, allowed: tuple[str, ...]) -> str | None:
    """Why connecting to `address` is refused, or None."""
    reason = address_policy(address, allowed)
    if reason is None and (inner := _embedded_ipv4(address)) is not None:
        reason = address_policy(inner, allowed)
        if reason is not None:
            reason = f"{address} carries {reason}"
    return reason


@dataclass(frozen=True)
class Target:
    """A checked destination: the URL to request and the addresses it may reach."""

    url: URL
    host: str  # the host as aiohttp will look it up (IDNA, no trailing dot, lower case)
    port: int
    addresses: tuple[tuple[socket.AddressFamily, str], ...]


async def check_url(
    url: URL, allowed: tuple[str, ...], schemes: tuple[str, ...] = ("http", "https")
) -> Target:
    """Check scheme and host of `url`, resolve it and check every address (spec A19).

    The returned addresses are the only ones a connection may go to. A URL of a scheme
    yarl knows no default port for (git) must name its port."""
    if url.scheme not in schemes:
        raise SrpmError(
            f"refused: only {' and '.join(schemes)} URLs are fetched, not {_display(url)}"
        )
    raw_host = url.raw_host
    port = url.port
    if not raw_host or port is None:
        raise SrpmError(f"refused: {_display(url)} names no host")
    literal = literal_address(raw_host)
    if literal is not None:
        reason = _refusal(literal, allowed)
        if reason is not None:
            raise SrpmError(f"refused: {reason}")
        # Connect to the address spelled canonically (aiohttp refuses 0177.0.0.1 and such).
        canonical = url.with_host(str(literal))
        family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
        return Target(canonical, str(literal), port, ((family, str(literal)),))
    host = raw_host.rstrip(".").lower()
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise SrpmError(f"download failed: cannot resolve {host}: {reason}") from None
    addresses: list[tuple[socket.AddressFamily, str]] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        text = str(sockaddr[0])
        reason = _refusal(ipaddress.ip_address(text.split("%", 1)[0]), allowed)
        if reason is not None:
            raise SrpmError(f"refused: {reason} ({host} resolves to it)")
        if (family, text) not in addresses:
            addresses.append((family, text))
    if not addresses:
        raise SrpmError(f"download failed: {host} has no IPv4 or IPv6 address")
    return Target(url, host, port, tuple(addresses))


class _PinnedResolver(AbstractResolver):
    """Answers for the one checked host with the checked addresses, and for nothing else."""

    def __init__(self, target: Target) -> None:
        self._target = target

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host.rstrip(".").lower() != self._target.host:
            raise OSError(f"{host} was not checked")
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=addr_family,
                proto=socket.IPPROTO_TCP,
                flags=socket.AI_NUMERICHOST,
            )
            for addr_family, address in self._target.addresses
            if family in (socket.AF_UNSPEC, addr_family)
        ]

    async def close(self) -> None:
        return None


def _pinned_connector(target: Target) -> aiohttp.TCPConnector:
    """A connector that reaches `target`'s checked addresses only, one connection a request."""
    return aiohttp.TCPConnector(
        resolver=_PinnedResolver(target), use_dns_cache=False, force_close=True
    )


async def pinned_connector(
    url: str, allowed_networks: tuple[str, ...]
) -> tuple[URL, aiohttp.TCPConnector]:
    """Check `url` under the SRPM URL policy (http or https, every address the host resolves
    to allowed) and return the URL to request with a connector pinned to the checked
    addresses; the caller closes the connector (its session does). Raises SrpmError. For
    other outgoing requests made under the same policy (outgoing webhooks)."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        raise SrpmError(f"refused: {url!r} is not a valid URL") from None
    target = await check_url(parsed, allowed_networks)
    return target.url, _pinned_connector(target)


# ---------------------------------------------------------------- download


class _Sink:
    """The file being downloaded and its running sha256; its methods block (use a thread)."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.fh.write(data)
        self.digest.update(data)


async def _stream_body(
    response: aiohttp.ClientResponse, part: Path, size_limit: int, what: str
) -> tuple[int, str]:
    """Write the body to `part`, enforcing the size limit; return (size, sha256)."""
    too_large = SrpmError(f"{what} is larger than {_size_text(size_limit)}")
    if response.content_length is not None and response.content_length > size_limit:
        raise too_large
    fh = await asyncio.to_thread(part.open, "wb")
    try:
        sink = _Sink(fh)
        size = 0
        buffer = bytearray()
        async for chunk in response.content.iter_chunked(_READ_CHUNK):
            size += len(chunk)
            if size > size_limit:  # also when Content-Length was absent, or compressed
                raise too_large
            buffer += chunk
            if len(buffer) >= _FLUSH_SIZE:
                await asyncio.to_thread(sink.write, bytes(buffer))
                buffer.clear()
        if buffer:
            await asyncio.to_thread(sink.write, bytes(buffer))
    finally:
        await asyncio.to_thread(fh.close)
    return size, sink.digest.hexdigest()


async def _fetch_hops(
    url: URL,
    part: Path,
    allowed: tuple[str, ...],
    size_limit: int,
    what: str,
    log: LogWriter | None,
) -> tuple[int, str]:
    """Request `url`, following redirects by hand, and store the final body in `part`."""
    for hop in range(MAX_REDIRECTS + 1):
        target = await check_url(url, allowed)
        addresses = ", ".join(address for _family, address in target.addresses)
        await _emit(log, f"Connecting to {target.host} port {target.port} ({addresses})")
        connector = _pinned_connector(target)
        async with (
            aiohttp.ClientSession(
                connector=connector,
                trust_env=False,  # no proxy from the environment: connect where checked
                timeout=aiohttp.ClientTimeout(total=None),  # fetch_srpm limits the time
                headers={"Accept-Encoding": "identity", "User-Agent": "copr-lite"},
            ) as session,
            session.get(target.url, allow_redirects=False) as response,
        ):
            if response.status in REDIRECT_STATUSES and "Location" in response.headers:
                if hop == MAX_REDIRECTS:
                    raise SrpmError(f"too many redirects (more than {MAX_REDIRECTS})")
                try:
                    url = url.join(URL(response.headers["Location"]))
                except ValueError:
                    raise SrpmError(
                        f"download failed: bad redirect Location from {_display(url)}"
                    ) from None
                await _emit(log, f"Redirected ({response.status}) to {_display(url)}")
                continue
            if response.status != 200:
                raise SrpmError(f"download failed: HTTP {response.status} from {_display(url)}")
            return await _stream_body(response, part, size_limit, what)
    raise AssertionError("unreachable")  # the loop returns or raises


async def download(
    url: str,
    dest: Path,
    *,
    allowed_networks: tuple[str, ...],
    size_limit: int,
    time_limit: float = 300.0,
    log: LogWriter | None = None,
    what: str = "the SRPM",
) -> str:
    """Download the file at `url` (http or https) into `dest` under the SRPM URL policy
    (addresses, redirects, size and time limits); return its sha256 hex. `what` names the
    file in the "larger than" error.

    Raises SrpmError (refused address or scheme, HTTP error, too large, too slow, too many
    redirects, network error). Nothing is left at `dest` when it fails or is cancelled.
    """
    try:
        start = URL(url)
    except (ValueError, TypeError):
        raise SrpmError(f"refused: {url!r} is not a valid URL") from None
    await _emit(log, f"Downloading {_display(start)}")
    part = dest.with_name(dest.name + ".part")
    try:
        try:
            async with asyncio.timeout(time_limit):
                size, digest = await _fetch_hops(
                    start, part, allowed_networks, size_limit, what, log
                )
        except TimeoutError:  # aiohttp's own timeouts are off: this is ours
            raise SrpmError(f"download took longer than {time_limit:g} s") from None
        except aiohttp.ClientError as exc:
            reason = _first_line(str(exc)) or type(exc).__name__
            raise SrpmError(f"download failed: {reason} ({_display(start)})") from None
        except OSError as exc:
            raise SrpmError(f"download failed: cannot write {dest.name}: {exc.strerror}") from None
        await asyncio.to_thread(part.replace, dest)
    except BaseException:
        _remove(part, dest)
        raise
    await _emit(log, f"Downloaded {size} bytes, sha256 {digest}")
    return digest


# The import step's name for it: the SRPM is the file downloaded.
fetch_srpm = download


# ---------------------------------------------------------------- header


async def read_srpm_header(path: Path) -> PackageInfo:
    """Name, epoch, version, release of a source package; SrpmError if it is not one."""
    # rpm -qp reads a text file as a manifest: a list of *other* paths to query. Only files
    # that start with the RPM lead reach it.
    try:
        is_rpm = await asyncio.to_thread(is_rpm_file, path)
    except OSError as exc:
        raise SrpmError(f"cannot read {path.name}: {exc.strerror}") from None
    if not is_rpm:
        raise SrpmError(f"cannot read the SRPM header: {path.name} is not an RPM file")
    try:
        (info,) = await read_rpm_headers([path])
    except ValueError as exc:
        reason = str(exc).replace(str(path), path.name).removeprefix("error: ")
        raise SrpmError(f"cannot read the SRPM header: {reason}") from None
    if info.arch != "src":
        raise SrpmError(f"{path.name} is not a source package ({info.nevra})")
    return info


# ---------------------------------------------------------------- the import step


async def _take_upload(
    upload: Path, dest_dir: Path, size_limit: int, log: LogWriter | None
) -> tuple[Path, str]:
    dest = dest_dir / srpm_file_name(upload.name)
    await _emit(log, f"Importing uploaded SRPM {upload.name}")
    try:
        size = (await asyncio.to_thread(upload.stat)).st_size
        if size > size_limit:
            raise SrpmError(f"the SRPM is larger than {_size_text(size_limit)}")
        same = await asyncio.to_thread(_same_file, upload, dest)
        if not same:
            await asyncio.to_thread(shutil.copyfile, upload, dest)
        digest = await asyncio.to_thread(sha256_file, dest)
    except OSError as exc:
        raise SrpmError(f"cannot store the uploaded SRPM: {exc.strerror}") from None
    await _emit(log, f"Stored {size} bytes, sha256 {digest}")
    return dest, digest


def _same_file(a: Path, b: Path) -> bool:
    return a.exists() and b.exists() and a.samefile(b)


def _discard(dest: Path | None, upload: Path | None) -> None:
    """Remove the imported copy after a failure (never the upload itself)."""
    if dest is not None and not (upload is not None and _same_file(upload, dest)):
        _remove(dest)


async def import_srpm(
    source_url: str,
    srpm_path: Path | None,
    dest_dir: Path,
    *,
    allowed_networks: tuple[str, ...],
    size_limit: int,
    time_limit: float = 300.0,
    log: LogWriter | None = None,
) -> tuple[Path, str, PackageInfo]:
    """The import step of a build: copy the upload `srpm_path` into `dest_dir` (keeping its
    name), or else download `source_url` there (named after the URL path's last segment);
    hash it and read its header. Returns (local SRPM path, sha256 hex, header).

    Every step goes to `log`. A failure raises SrpmError (the caller logs and records its
    one-line reason, and the resulting package) after removing the file in `dest_dir`; the
    upload itself is left for the caller.
    """
    dest: Path | None = None
    try:
        await asyncio.to_thread(dest_dir.mkdir, parents=True, exist_ok=True)
        if srpm_path is not None:
            dest, digest = await _take_upload(srpm_path, dest_dir, size_limit, log)
        else:
            try:
                url_path = URL(source_url).path
            except (ValueError, TypeError):
                raise SrpmError(f"refused: {source_url!r} is not a valid URL") from None
            dest = dest_dir / srpm_file_name(url_path)
            digest = await fetch_srpm(
                source_url,
                dest,
                allowed_networks=allowed_networks,
                size_limit=size_limit,
                time_limit=time_limit,
                log=log,
            )
        await _emit(log, f"Reading the header of {dest.name}")
        info = await read_srpm_header(dest)
        if not NAME_RE.match(info.name):
            # The name becomes a results directory (<id>-<name>): refuse it here, with a
            # reason, rather than fail every chroot later.
            raise SrpmError(
                f"the package name {info.name[:100]!r} may hold only letters, digits and "
                "_ . + - (and not start with a dot)"
            )
    except BaseException:
        _discard(dest, srpm_path)
        raise
    return dest, digest, info


__all__ = [
    "MAX_REDIRECTS",
    "SrpmError",
    "Target",
    "check_url",
    "download",
    "fetch_srpm",
    "import_srpm",
    "pinned_connector",
    "read_srpm_header",
    "sha256_file",
    "srpm_file_name",
]
