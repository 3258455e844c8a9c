"""SRPM import (spec A19): download policy, limits, header reading, uploads.

Real SRPMs and a binary RPM are built once per module with rpmbuild from the fixture spec,
and served by a real aiohttp server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import shutil
import socket
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from copr_lite.liveserver import free_port
from copr_lite.srpm import (
    SrpmError,
    fetch_srpm,
    import_srpm,
    read_srpm_header,
    sha256_file,
    srpm_file_name,
)
from copr_lite.testing import LogLines as Log

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SPEC = FIXTURES / "hello-copr-lite.spec"
SRPM_NAME = "hello-copr-lite-1.0-1.src.rpm"
LOOPBACK = ("127.0.0.0/8",)
LIMIT = 10 * 1024 * 1024

pytestmark = pytest.mark.skipif(shutil.which("rpmbuild") is None, reason="needs rpmbuild")


@dataclass(frozen=True)
class Packages:
    srpm: Path
    rpm: Path


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> Packages:
    """A real SRPM (rpmbuild -bs) and a real binary RPM (rpmbuild -bb) of the fixture spec."""
    tmp = tmp_path_factory.mktemp("rpmbuild")
    (tmp / "tmp").mkdir()
    (tmp / "db").mkdir()
    defines = [
        *("--define", f"_topdir {tmp}/top"),
        *("--define", f"_tmppath {tmp}/tmp"),
        *("--define", f"_dbpath {tmp}/db"),
        *("--define", f"_sourcedir {FIXTURES}"),
    ]
    for mode in ("-bs", "-bb"):
        subprocess.run(
            ["rpmbuild", mode, "--quiet", *defines, str(SPEC)],
            check=True,
            capture_output=True,
            timeout=60,
        )
    return Packages(
        srpm=tmp / "top" / "SRPMS" / SRPM_NAME,
        rpm=tmp / "top" / "RPMS" / "noarch" / "hello-copr-lite-1.0-1.noarch.rpm",
    )


@dataclass
class Server:
    server: TestServer
    requests: list[tuple[str, str]]  # (path, Host header) of every request served

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.server.port}{path}"


@pytest.fixture
async def server(
    packages: Packages,
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> Server:
    srpm = packages.srpm.read_bytes()
    rpm = packages.rpm.read_bytes()
    requests: list[tuple[str, str]] = []

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        requests.append((request.path, request.headers.get("Host", "")))
        return await handler(request)

    async def srpm_file(request: web.Request) -> web.Response:
        return web.Response(body=srpm, content_type="application/x-rpm")

    async def binary_rpm(request: web.Request) -> web.Response:
        return web.Response(body=rpm, content_type="application/x-rpm")

    async def not_rpm(request: web.Request) -> web.Response:
        return web.Response(body=b"/etc/passwd\n" * 10, content_type="application/x-rpm")

    async def redirect(request: web.Request) -> web.Response:
        left = int(request.match_info["n"])
        target = f"/redirect/{left - 1}/{SRPM_NAME}" if left > 1 else f"/{SRPM_NAME}"
        raise web.HTTPFound(target)

    async def redirect_to(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    async def big_with_length(request: web.Request) -> web.Response:
        return web.Response(body=b"\0" * 5000)

    async def big_mib(request: web.Request) -> web.Response:
        return web.Response(body=b"\0" * (1024 * 1024 + 1))

    async def big_chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(50):
            await response.write(b"\0" * 1000)
        await response.write_eof()
        return response

    async def gzip_bomb(request: web.Request) -> web.Response:
        # Content-Length is the small compressed size; the body inflates past the limit.
        body = gzip.compress(b"\0" * 200_000)
        return web.Response(body=body, headers={"Content-Encoding": "gzip"})

    async def slow(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(200):  # ends early when the client goes away
            await response.write(b"\xed\xab\xee\xdb")
            await asyncio.sleep(0.05)
        return response

    app = web.Application(middlewares=[record])
    app.router.add_get(f"/{SRPM_NAME}", srpm_file)
    app.router.add_get("/pkgs/odd name;x.src.rpm", srpm_file)
    app.router.add_get("/binary/fake-1.0-1.src.rpm", binary_rpm)
    app.router.add_get("/text/fake-1.0-1.src.rpm", not_rpm)
    app.router.add_get("/redirect/{n}/" + SRPM_NAME, redirect)
    app.router.add_get("/redirect-to/x.src.rpm", redirect_to)
    app.router.add_get("/big/length.src.rpm", big_with_length)
    app.router.add_get("/big/mib.src.rpm", big_mib)
    app.router.add_get("/big/chunked.src.rpm", big_chunked)
    app.router.add_get("/big/gzip.src.rpm", gzip_bomb)
    app.router.add_get("/slow/x.src.rpm", slow)
    return Server(await aiohttp_server(app), requests)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# ---------------------------------------------------------------- success


async def test_import_by_url_reads_header_and_hash(
    server: Server, packages: Packages, tmp_path: Path
) -> None:
    log = Log()
    path, digest, info = await import_srpm(
        server.url(f"/{SRPM_NAME}"),
        None,
        tmp_path / "import",
        allowed_networks=LOOPBACK,
        size_limit=LIMIT,
        time_limit=10,
        log=log,
    )
    assert path == tmp_path / "import" / SRPM_NAME
    assert path.read_bytes() == packages.srpm.read_bytes()
    assert digest == sha256(packages.srpm) == sha256_file(path)
    assert (info.name, info.epoch, info.version, info.release, info.arch) == (
        "hello-copr-lite",
        None,
        "1.0",
        "1",
        "src",
    )
    assert leftovers(tmp_path / "import") == [SRPM_NAME]
    assert log.lines[0] == f"Downloading {server.url(f'/{SRPM_NAME}')}"
    assert f"Downloaded {path.stat().st_size} bytes, sha256 {digest}" in log.lines
    assert log.lines[-1] == f"Reading the header of {SRPM_NAME}"


async def test_five_redirects_are_followed(server: Server, tmp_path: Path) -> None:
    log = Log()
    digest = await fetch_srpm(
        server.url(f"/redirect/5/{SRPM_NAME}"),
        tmp_path / "x.src.rpm",
        allowed_networks=LOOPBACK,
        size_limit=LIMIT,
        log=log,
    )
    assert digest == sha256(tmp_path / "x.src.rpm")
    assert sum(line.startswith("Redirected (302) to") for line in log.lines) == 5


async def test_name_is_resolved_once_and_connection_pinned(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name is resolved by fetch_srpm only; aiohttp connects to the checked address and
    keeps the name in the Host header. A second lookup would get a refused address."""
    loop = asyncio.get_running_loop()
    lookups: list[str] = []

    async def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        lookups.append(host)
        address = "127.0.0.1" if len(lookups) == 1 else "169.254.169.254"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    url = server.url(f"/{SRPM_NAME}", host="srpms.example.test")
    await fetch_srpm(url, tmp_path / "x.src.rpm", allowed_networks=LOOPBACK, size_limit=LIMIT)
    assert lookups == ["srpms.example.test"]
    assert server.requests == [(f"/{SRPM_NAME}", f"srpms.example.test:{server.server.port}")]


async def test_credentials_in_url_stay_out_of_the_log(server: Server, tmp_path: Path) -> None:
    log = Log()
    url = server.url(f"/{SRPM_NAME}", host="user:s3cret@127.0.0.1")
    await fetch_srpm(
        url, tmp_path / "x.src.rpm", allowed_networks=LOOPBACK, size_limit=LIMIT, log=log
    )
    assert "s3cret" not in log.text
    assert log.lines[0] == f"Downloading {server.url(f'/{SRPM_NAME}')}"


async def test_localhost_allowed_when_loopback_is(server: Server, tmp_path: Path) -> None:
    url = server.url(f"/{SRPM_NAME}", host="localhost")
    allowed = ("127.0.0.0/8", "::1/128")  # localhost may resolve to ::1 as well
    await fetch_srpm(url, tmp_path / "x.src.rpm", allowed_networks=allowed, size_limit=LIMIT)
    assert (tmp_path / "x.src.rpm").exists()


async def test_url_file_name_is_sanitised(server: Server, tmp_path: Path) -> None:
    path, _, info = await import_srpm(
        server.url("/pkgs/odd%20name%3Bx.src.rpm?download=1"),
        None,
        tmp_path,
        allowed_networks=LOOPBACK,
        size_limit=LIMIT,
    )
    assert path.name == "odd_name_x.src.rpm"
    assert info.name == "hello-copr-lite"


async def test_import_uploaded_file(packages: Packages, tmp_path: Path) -> None:
    upload = tmp_path / "uploads" / "abc" / SRPM_NAME
    upload.parent.mkdir(parents=True)
    shutil.copyfile(packages.srpm, upload)
    log = Log()
    path, digest, info = await import_srpm(
        "",
        upload,
        tmp_path / "import",
        allowed_networks=(),
        size_limit=LIMIT,
        log=log,
    )
    assert path == tmp_path / "import" / SRPM_NAME
    assert path.read_bytes() == upload.read_bytes()
    assert upload.exists()  # the caller decides about the upload
    assert digest == sha256(upload)
    assert info.nevra == "hello-copr-lite-1.0-1.src"
    assert log.lines[0] == f"Importing uploaded SRPM {SRPM_NAME}"


async def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    data = bytes(range(256)) * 10_000  # several read chunks
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- refused addresses


@pytest.mark.parametrize(
    ("url", "allowed", "reason"),
    [
        ("http://127.0.0.1:9/x.src.rpm", (), "127.0.0.1 is a loopback or private address"),
        ("http://10.1.2.3/x.src.rpm", LOOPBACK, "10.1.2.3 is a loopback or private address"),
        ("http://169.254.169.254/x.src.rpm", ("0.0.0.0/0",), "169.254.169.254 is a link-local"),
        ("http://2852039166/x.src.rpm", ("0.0.0.0/0",), "169.254.169.254 is a link-local"),
        ("http://0251.0376.0251.0376/x.src.rpm", ("0.0.0.0/0",), "169.254.169.254 is a link"),
        ("http://[::ffff:169.254.169.254]/x.src.rpm", ("::/0", "0.0.0.0/0"), "169.254.169.254"),
        ("http://[fe80::1]/x.src.rpm", ("::/0",), "fe80::1 is a link-local"),
        ("http://[64:ff9b::a9fe:a9fe]/x.src.rpm", ("::/0",), "carries 169.254.169.254"),
        ("http://0.0.0.0:9/x.src.rpm", ("0.0.0.0/0",), "0.0.0.0 is a link-local"),
        ("http://224.0.0.1/x.src.rpm", ("0.0.0.0/0",), "224.0.0.1 is a link-local, multicast"),
        ("ftp://127.0.0.1/x.src.rpm", LOOPBACK, "only http and https URLs"),
        ("file:///etc/x.src.rpm", LOOPBACK, "only http and https URLs"),
    ],
)
async def test_refused_urls(
    url: str, allowed: tuple[str, ...], reason: str, tmp_path: Path
) -> None:
    with pytest.raises(SrpmError, match=r"^refused: ") as err:
        await fetch_srpm(url, tmp_path / "x.src.rpm", allowed_networks=allowed, size_limit=LIMIT)
    assert reason in str(err.value)
    assert leftovers(tmp_path) == []


async def test_loopback_refused_when_not_allowed(server: Server, tmp_path: Path) -> None:
    with pytest.raises(SrpmError, match=r"^refused: 127\.0\.0\.1 is a loopback"):
        await fetch_srpm(
            server.url(f"/{SRPM_NAME}"),
            tmp_path / "x.src.rpm",
            allowed_networks=(),
            size_limit=LIMIT,
        )
    assert server.requests == []


async def test_localhost_name_refused_when_not_allowed(server: Server, tmp_path: Path) -> None:
    with pytest.raises(
        SrpmError, match=r"^refused: .* is a loopback .*\(localhost resolves to it\)"
    ):
        await fetch_srpm(
            server.url(f"/{SRPM_NAME}", host="localhost"),
            tmp_path / "x.src.rpm",
            allowed_networks=(),
            size_limit=LIMIT,
        )
    assert server.requests == []


async def test_any_refused_address_refuses_the_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port)),
        ]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    with pytest.raises(SrpmError, match=r"^refused: 169\.254\.169\.254 .*evil\.example\.test"):
        await fetch_srpm(
            "https://evil.example.test/x.src.rpm",
            tmp_path / "x.src.rpm",
            allowed_networks=("0.0.0.0/0",),
            size_limit=LIMIT,
        )


@pytest.mark.parametrize(
    "target",
    ["http://169.254.169.254/latest/x.src.rpm", "http://10.0.0.1/x.src.rpm", "ftp://a.test/x"],
)
async def test_redirect_to_refused_url(server: Server, target: str, tmp_path: Path) -> None:
    log = Log()
    with pytest.raises(SrpmError, match=r"^refused: "):
        await fetch_srpm(
            server.url(f"/redirect-to/x.src.rpm?to={target}"),
            tmp_path / "x.src.rpm",
            allowed_networks=LOOPBACK,
            size_limit=LIMIT,
            log=log,
        )
    assert f"Redirected (302) to {target}" in log.lines
    assert len(server.requests) == 1
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------- download failures


async def fails(server: Server, path: str, tmp_path: Path, **kwargs: Any) -> str:
    """fetch_srpm of `path` fails: the message, after checking nothing is left behind."""
    options: dict[str, Any] = {"allowed_networks": LOOPBACK, "size_limit": LIMIT, **kwargs}
    with pytest.raises(SrpmError) as err:
        await fetch_srpm(server.url(path), tmp_path / "x.src.rpm", **options)
    assert leftovers(tmp_path) == []
    return str(err.value)


async def test_more_than_five_redirects(server: Server, tmp_path: Path) -> None:
    message = await fails(server, f"/redirect/6/{SRPM_NAME}", tmp_path)
    assert message == "too many redirects (more than 5)"
    assert len(server.requests) == 6


async def test_http_404(server: Server, tmp_path: Path) -> None:
    message = await fails(server, "/missing.src.rpm", tmp_path)
    assert message == f"download failed: HTTP 404 from {server.url('/missing.src.rpm')}"


async def test_connection_refused(tmp_path: Path) -> None:
    port = free_port()  # a port nobody listens on
    with pytest.raises(SrpmError, match=r"^download failed: .*127\.0\.0\.1"):
        await fetch_srpm(
            f"http://127.0.0.1:{port}/x.src.rpm",
            tmp_path / "x.src.rpm",
            allowed_networks=LOOPBACK,
            size_limit=LIMIT,
        )


@pytest.mark.parametrize("path", ["/big/length.src.rpm", "/big/chunked.src.rpm"])
async def test_size_limit(server: Server, path: str, tmp_path: Path) -> None:
    message = await fails(server, path, tmp_path, size_limit=4096)
    assert message == "the SRPM is larger than 4096 bytes"


async def test_size_limit_counts_decoded_bytes(server: Server, tmp_path: Path) -> None:
    message = await fails(server, "/big/gzip.src.rpm", tmp_path, size_limit=100_000)
    assert message == "the SRPM is larger than 100000 bytes"


async def test_size_limit_in_mib(server: Server, tmp_path: Path) -> None:
    message = await fails(server, "/big/mib.src.rpm", tmp_path, size_limit=1024 * 1024)
    assert message == "the SRPM is larger than 1 MiB"


async def test_time_limit(server: Server, tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    message = await fails(server, "/slow/x.src.rpm", tmp_path, time_limit=0.5)
    assert message == "download took longer than 0.5 s"
    assert loop.time() - started < 2


async def test_cancel_removes_partial_file(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "x.src.rpm"
    task = asyncio.create_task(
        fetch_srpm(server.url("/slow/x.src.rpm"), dest, allowed_networks=LOOPBACK, size_limit=LIMIT)
    )
    for _ in range(100):
        await asyncio.sleep(0.02)
        if leftovers(tmp_path):
            break
    assert leftovers(tmp_path) == ["x.src.rpm.part"]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert leftovers(tmp_path) == []


async def test_bad_url_name_refused_before_download(server: Server, tmp_path: Path) -> None:
    log = Log()
    with pytest.raises(SrpmError, match=r"must end in \.src\.rpm or \.nosrc\.rpm"):
        await import_srpm(
            server.url("/package.tar.gz"),
            None,
            tmp_path,
            allowed_networks=LOOPBACK,
            size_limit=LIMIT,
            log=log,
        )
    assert server.requests == []
    assert log.lines == []


# ---------------------------------------------------------------- header failures


async def test_not_an_rpm(server: Server, tmp_path: Path) -> None:
    log = Log()
    with pytest.raises(SrpmError, match=r"^cannot read the SRPM header: fake-1\.0-1\.src\.rpm"):
        await import_srpm(
            server.url("/text/fake-1.0-1.src.rpm"),
            None,
            tmp_path,
            allowed_networks=LOOPBACK,
            size_limit=LIMIT,
            log=log,
        )
    assert leftovers(tmp_path) == []  # the useless download is gone
    assert log.lines[-1] == "Reading the header of fake-1.0-1.src.rpm"


async def test_truncated_rpm(packages: Packages, tmp_path: Path) -> None:
    broken = tmp_path / "broken.src.rpm"
    broken.write_bytes(packages.srpm.read_bytes()[:200])
    with pytest.raises(SrpmError, match=r"^cannot read the SRPM header: .*broken\.src\.rpm") as err:
        await read_srpm_header(broken)
    assert str(tmp_path) not in str(err.value)  # messages name files, not server paths


async def test_binary_rpm_is_not_a_source_package(server: Server, tmp_path: Path) -> None:
    with pytest.raises(SrpmError, match=r"is not a source package"):
        await import_srpm(
            server.url("/binary/fake-1.0-1.src.rpm"),
            None,
            tmp_path,
            allowed_networks=LOOPBACK,
            size_limit=LIMIT,
        )
    assert leftovers(tmp_path) == []


async def test_uploaded_binary_rpm_refused_and_upload_kept(
    packages: Packages, tmp_path: Path
) -> None:
    upload = tmp_path / "up" / "fake-1.0-1.src.rpm"
    upload.parent.mkdir()
    shutil.copyfile(packages.rpm, upload)
    with pytest.raises(SrpmError, match=r"^fake-1\.0-1\.src\.rpm is not a source package"):
        await import_srpm("", upload, tmp_path / "import", allowed_networks=(), size_limit=LIMIT)
    assert upload.exists()
    assert leftovers(tmp_path / "import") == []


def test_srpm_file_name() -> None:
    assert srpm_file_name("/a/b/foo-1.0-1.src.rpm") == "foo-1.0-1.src.rpm"
    assert srpm_file_name("x y$z.nosrc.rpm") == "x_y_z.nosrc.rpm"
    assert srpm_file_name("-..-rf.src.rpm") == "rf.src.rpm"
    for bad in ("foo.rpm", ".src.rpm", "/x/", "a" * 300 + ".src.rpm"):
        with pytest.raises(SrpmError):
            srpm_file_name(bad)


def test_public_url_drops_credentials():
    from copr_lite.srpm import public_url

    assert public_url("http://me:secret@example.org/x-1-1.src.rpm") == (
        "http://example.org/x-1-1.src.rpm"
    )
    assert public_url("hello-1.0-1.src.rpm") == "hello-1.0-1.src.rpm"
