"""Hostile and broken requests against a real `serve`: each gets a clean 4xx in the one error
shape (JSON under /api/, an HTML page elsewhere), and the server log never shows a traceback.

Raw sockets send what no well-behaved client library would: compressed or mislabelled
bodies, NUL bytes in part headers, bodies that never come, connections dropped mid-body.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import logging
import re
import socket
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from copr_lite.liveserver import free_port, serving
from copr_lite.testing import BuilderPlugin, FakeBuilder, add_user, basic_auth, wait_until

CHROOT = "fedora-40-x86_64"
UPLOAD_LIMIT_MB = 1
FORM = "application/x-www-form-urlencoded"


@dataclass
class Live:
    """The running server, its admin's API credentials and web password, and its log."""

    port: int
    auth: str
    password: str
    log_path: Path
    data_dir: Path
    _log_seen: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def new_log(self, access: bool = False) -> str:
        """Log text written since the last call; `access` waits for the access log lines too
        (flushed every 0.25 s)."""
        if access:
            time.sleep(0.4)
        text = self.log_path.read_text()
        new, self._log_seen = text[self._log_seen :], len(text)
        return new


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("hostile")
    port = free_port()
    config = root / "copr-lite.ini"
    config.write_text(
        f"[server]\nport = {port}\ndata_dir = {root / 'data'}\n"
        f"[builds]\nupload_size_limit_mb = {UPLOAD_LIMIT_MB}\n"
        "srpm_allowed_networks = 127.0.0.0/8\n"
        f"[chroots]\n{CHROOT} = rpmbuild\n"
    )
    with serving(config, root, root / "server.log") as served:
        out = "".join(served.startup)
        login = re.search(r"^login = (\S+)$", out, re.M)
        token = re.search(r"^token = (\S+)$", out, re.M)
        password = re.search(r"as: admin / (\S+)", out)
        assert login and token and password, out
        credential = base64.b64encode(f"{login[1]}:{token[1]}".encode()).decode()
        server = Live(port, f"Basic {credential}", password[1], root / "server.log", root / "data")
        create = f"name=target&{CHROOT}=y".encode()
        status, _, body = server_request(server, "POST", "/api/coprs/admin/new/", create)
        assert status == 200, body
        yield server
    assert "Traceback" not in (root / "server.log").read_text()


# ---------------------------------------------------------------- raw HTTP


def raw(live: Live, data: bytes, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """Send `data` as is; the status, headers and body of the answer."""
    with socket.create_connection(("127.0.0.1", live.port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_answer(sock)


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read one answer (a 100 Continue is skipped), to its Content-Length or to the close:
    a server refusing a body may keep reading what still comes for a while."""
    received = b""
    while True:
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed before an answer: {received!r}"
            received += chunk
        if received.startswith(b"HTTP/1.1 100 "):
            received = received.partition(b"\r\n\r\n")[2]
            continue
        break
    status, headers, body = parse_answer(received)
    length = int(headers.get("content-length", -1))
    while len(body) < length or length < 0:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def parse_answer(received: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def server_request(
    live: Live,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    ctype: str = FORM,
    headers: dict[str, str] | None = None,
    signed: bool = True,
) -> tuple[int, dict[str, str], bytes]:
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", "Connection: close"]
    if signed:
        lines.append(f"Authorization: {live.auth}")
    if body or method == "POST":
        lines += [f"Content-Type: {ctype}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return raw(live, ("\r\n".join(lines) + "\r\n\r\n").encode() + body)


def api_error(answer: tuple[int, dict[str, str], bytes], status: int) -> dict[str, Any]:
    """The answer is the API's error envelope with `status`."""
    got, headers, body = answer
    assert got == status, body
    assert headers["content-type"].startswith("application/json"), headers
    data = json.loads(body)
    assert set(data) == {"output", "error", "errcode"} and data["output"] == "notok", data
    assert "Traceback" not in data["error"]
    return data


def html_error(answer: tuple[int, dict[str, str], bytes], status: int) -> str:
    got, headers, body = answer
    assert got == status, body
    assert headers["content-type"].startswith("text/html"), headers
    text = body.decode()
    assert "Traceback" not in text
    return text


def assert_clean_log(live: Live, access: bool = False) -> str:
    log = live.new_log(access)
    assert "Traceback" not in log and "level=ERROR" not in log, log
    return log


def uploads(live: Live) -> set[Path]:
    """Every file under the upload directory."""
    return {p for p in (live.data_dir / "uploads").rglob("*") if p.is_file()}


def multipart(*parts: tuple[str, bytes]) -> bytes:
    """A multipart/form-data body (boundary XX) from raw part headers and contents."""
    body = b""
    for disposition, content in parts:
        body += b"--XX\r\nContent-Disposition: " + disposition.encode("latin-1") + b"\r\n\r\n"
        body += content + b"\r\n"
    return body + b"--XX--\r\n"


MULTIPART = "multipart/form-data; boundary=XX"
CREATE = f"name=made&{CHROOT}=y".encode()


# ---------------------------------------------------------------- Content-Encoding


def _truncated_gzip() -> bytes:
    return gzip.compress(CREATE)[:-8]  # without its CRC and length trailer


@pytest.mark.parametrize(
    ("coding", "body"),
    [
        ("gzip", b"this is not gzip"),
        ("gzip", _truncated_gzip()),
        ("gzip", gzip.compress(CREATE)),  # even valid: bodies are read as sent
        ("x-gzip", b"\x1f\x8b broken"),
        ("deflate", b"this is not deflate"),
        ("deflate", zlib.compress(CREATE)[:-4]),
        ("br", b"not brotli"),
        ("zstd", b"not zstd"),
        ("compress", b"x"),
        ("snappy", CREATE),
        ("gzip, deflate", b"x"),
        ("identity, gzip", b"x"),
        ("GZIP", b"x"),
        (["identity", "gzip"], b"x"),  # two headers
    ],
)
def test_content_encoded_bodies_are_refused_as_json_400(live, coding, body):
    codings = coding if isinstance(coding, list) else [coding]
    lines = "".join(f"Content-Encoding: {c}\r\n" for c in codings)
    head = (
        f"POST /api/coprs/admin/new/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        f"Authorization: {live.auth}\r\nContent-Type: {FORM}\r\n{lines}"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    answer = raw(live, head.encode() + body)
    data = api_error(answer, 400)
    assert "Content-Encoding" in data["error"]
    assert_clean_log(live)
    status, _, _ = server_request(live, "GET", "/api/coprs/admin/made/detail/")
    assert status == 404  # nothing was created from it


def test_identity_encoding_is_a_plain_body(live):
    answer = server_request(
        live,
        "POST",
        "/api/coprs/admin/modify/".replace("modify", "target/modify"),
        b"description=plain",
        headers={"Content-Encoding": "identity"},
    )
    assert answer[0] == 200, answer


def test_content_encoding_outside_the_api_is_an_html_400(live):
    answer = server_request(
        live, "POST", "/login/", b"garbage", headers={"Content-Encoding": "gzip"}, signed=False
    )
    html_error(answer, 400)
    assert_clean_log(live)


# ---------------------------------------------------------------- charsets


@pytest.mark.parametrize("charset", ["foo-bar", "latin1", "utf-16", "utf-7", "base64", '"x"'])
def test_a_charset_other_than_utf8_is_refused(live, charset):
    answer = server_request(
        live, "POST", "/api/coprs/admin/new/", CREATE, ctype=f"{FORM}; charset={charset}"
    )
    data = api_error(answer, 400)
    assert "charset" in data["error"]
    answer = server_request(
        live, "POST", "/api/coprs/admin/new/", b"{}", ctype=f"application/json; charset={charset}"
    )
    api_error(answer, 400)
    assert_clean_log(live)


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", "utf8", "us-ascii"])
def test_utf8_and_ascii_charsets_are_read(live, charset):
    answer = server_request(
        live,
        "POST",
        "/api/coprs/admin/target/modify/",
        "description=caf\u00e9".encode(),
        ctype=f"{FORM}; charset={charset}",
    )
    if charset == "us-ascii":
        api_error(answer, 400)  # declared ASCII, yet not ASCII: refused, not misread
    else:
        assert answer[0] == 200, answer
        assert json.loads(answer[2])["description"] == "caf\u00e9"


def test_a_multipart_field_in_another_charset_is_refused(live):
    body = (
        b'--XX\r\nContent-Disposition: form-data; name="description"\r\n'
        b"Content-Type: text/plain; charset=koi8-r\r\n\r\n\xc1\xc2\r\n--XX--\r\n"
    )
    answer = server_request(live, "POST", "/api/coprs/admin/target/modify/", body, ctype=MULTIPART)
    assert "charset" in api_error(answer, 400)["error"]
    assert_clean_log(live)


# ---------------------------------------------------------------- upload file names


def _upload(live: Live, filename: bytes, path: str = "/api/coprs/admin/target/new_build_upload/"):
    disposition = b'form-data; name="pkgs"; filename="' + filename + b'"'
    body = (
        b"--XX\r\nContent-Disposition: " + disposition + b"\r\n"
        b"Content-Type: application/x-rpm\r\n\r\nnot really an rpm\r\n--XX--\r\n"
    )
    return server_request(live, "POST", path, body, ctype=MULTIPART)


@pytest.mark.parametrize(
    "filename",
    [
        b"a\x00b.src.rpm",
        b"\x00.src.rpm",
        b"a\x01b.src.rpm",
        b"a\x1bb.src.rpm",
        b"a\x7fb.src.rpm",
        b"a\tb.src.rpm",
        b"a\rb.src.rpm",
        b"a b.src.rpm",
        b"a:b.src.rpm",
        b"..",
        b"../",
        b"dir/",
        b"a\xffb.src.rpm",
        b"%00.src.rpm",
        b"a" * 5000 + b".src.rpm",
        b"a" * 193 + b".src.rpm",
    ],
    ids=lambda name: repr(name[:24]),
)
def test_upload_file_names_with_control_characters_are_json_400(live, filename):
    before = uploads(live)
    api_error(_upload(live, filename), 400)
    assert_clean_log(live)
    assert uploads(live) == before, "a refused upload was kept"


@pytest.mark.parametrize(
    "filename", [b"../../../escape.src.rpm", b"..\\..\\escape.src.rpm", b"/tmp/escape.src.rpm"]
)
def test_upload_file_names_never_leave_the_upload_directory(live, filename):
    status, _, body = _upload(live, filename)
    assert status == 200, body  # the directories are dropped, as browsers do themselves
    [build_id] = json.loads(body)["ids"]
    kept = list(live.data_dir.parent.rglob("escape.src.rpm"))
    assert kept and all(live.data_dir in p.parents for p in kept), kept
    assert not Path("/tmp/escape.src.rpm").exists()
    server_request(live, "POST", f"/api/coprs/cancel_build/{build_id}/")


def test_web_upload_file_name_with_nul_is_an_html_400(live):
    async def go() -> tuple[int, str]:
        async with web_session(live) as (session, csrf):
            body = multipart(
                ('form-data; name="csrf_token"', csrf.encode()),
                (f'form-data; name="{CHROOT}"', b"y"),
                ('form-data; name="srpm"; filename="a\x00b.src.rpm"', b"rpm"),
            )
            resp = await session.post(
                f"{live.base}/coprs/admin/target/new_build/",
                data=body,
                headers={"Content-Type": MULTIPART},
            )
            return resp.status, await resp.text()

    status, text = asyncio.run(go())
    assert status == 400 and "Traceback" not in text
    assert_clean_log(live)


# ---------------------------------------------------------------- declared sizes, Expect


def _headers_only(live: Live, path: str, length: int, *extra: str) -> tuple[int, dict, bytes]:
    """Send only the head of a request declaring `length` bytes, then wait for the answer."""
    head = [
        f"POST {path} HTTP/1.1",
        "Host: localhost",
        f"Authorization: {live.auth}",
        f"Content-Type: {MULTIPART}",
        f"Content-Length: {length}",
        *extra,
    ]
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", live.port), timeout=5) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        first = sock.recv(12, socket.MSG_PEEK)
        assert not first.startswith(b"HTTP/1.1 100"), "the body was invited, not refused"
        answer = read_answer(sock)
    assert time.monotonic() - started < 3, "the server waited for a body it should refuse"
    return answer


UPLOAD = "/api/coprs/admin/target/new_build_upload/"


@pytest.mark.parametrize("expect", [True, False])
@pytest.mark.parametrize("length", [2 * 2**30, 2**63, UPLOAD_LIMIT_MB * 2**20 + 3 * 2**20])
def test_upload_declared_over_the_limit_is_413_before_the_body(live, expect, length):
    extra = ["Expect: 100-continue"] if expect else []
    status, headers, body = _headers_only(live, UPLOAD, length, *extra)
    api_error((status, headers, body), 413)
    assert headers.get("connection", "").lower() == "close"
    assert_clean_log(live)


def test_form_route_declared_over_the_form_limit_is_413(live):
    status, headers, body = _headers_only(
        live, "/api/coprs/admin/new/", 3 * 2**20, "Expect: 100-continue"
    )
    api_error((status, headers, body), 413)


def test_web_upload_declared_over_the_limit_is_an_html_413(live):
    status, headers, body = _headers_only(
        live, "/coprs/admin/target/new_build/", 2 * 2**30, "Expect: 100-continue"
    )
    html_error((status, headers, body), 413)

    async def cookies() -> str:
        async with web_session(live) as (session, _):
            return "; ".join(f"{c.key}={c.value}" for c in session.cookie_jar)

    # Signed in, without Expect: the form page says so, before reading the body.
    answer = _headers_only(
        live, "/coprs/admin/target/new_build/", 2 * 2**30, f"Cookie: {asyncio.run(cookies())}"
    )
    assert "Request body too large" in html_error(answer, 413)


def test_credentials_are_checked_before_the_size_without_expect(live):
    head = (
        f"POST {UPLOAD} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {MULTIPART}\r\n"
        f"Content-Length: {2 * 2**30}\r\n\r\n"
    )
    api_error(raw(live, head.encode()), 401)  # spec A17: authentication first


def test_expect_100_continue_within_the_limit_is_invited(live):
    body = multipart(('form-data; name="description"', b"continued"))
    head = (
        f"POST /api/coprs/admin/target/modify/ HTTP/1.1\r\nHost: localhost\r\n"
        f"Authorization: {live.auth}\r\nContent-Type: {MULTIPART}\r\n"
        f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", live.port), timeout=5) as sock:
        sock.sendall(head.encode())
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        status, _, answer = read_answer(sock)
    assert status == 200 and json.loads(answer)["description"] == "continued"


def test_an_unknown_expectation_is_json_417(live):
    answer = server_request(
        live, "POST", "/api/coprs/admin/new/", CREATE, headers={"Expect": "200-ok"}
    )
    api_error(answer, 417)


# ---------------------------------------------------------------- hang-ups


@pytest.mark.parametrize(
    ("path", "ctype", "start"),
    [
        (
            UPLOAD,
            MULTIPART,
            b'--XX\r\nContent-Disposition: form-data; name="pkgs"; '
            b'filename="a.src.rpm"\r\n\r\n' + b"x" * 5000,
        ),
        ("/api/coprs/admin/new/", FORM, b"name=half"),
        ("/api/coprs/admin/target/modify/", "application/json", b'{"description": "'),
        ("/login/", FORM, b"username=adm"),
    ],
)
def test_a_client_hanging_up_mid_body_is_one_499_line(live, path, ctype, start):
    head = (
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: {live.auth}\r\n"
        f"Content-Type: {ctype}\r\nContent-Length: 100000\r\n\r\n"
    )
    live.new_log(access=True)  # earlier requests' lines
    before = uploads(live)
    with socket.create_connection(("127.0.0.1", live.port), timeout=5) as sock:
        sock.sendall(head.encode() + start)
        time.sleep(0.2)  # the handler is reading the body now
    log = assert_clean_log(live, access=True)
    lines = [line for line in log.splitlines() if f'path="{path}"' in line]
    assert len(lines) == 1 and "status=499" in lines[0], log
    # Nothing else about it: other lines can only be the server's own background work
    # (a project key being made, a repository being created).
    assert not [line for line in log.splitlines() if "level=INFO" not in line], log
    assert uploads(live) == before, "a partial upload was kept"


# ---------------------------------------------------------------- concurrent deletes


async def _delete_ten_times(live: Live, name: str) -> list[tuple[int, dict[str, Any]]]:
    headers = {"Authorization": live.auth}
    async with aiohttp.ClientSession(live.base, headers=headers) as session:
        resp = await session.post("/api/coprs/admin/new/", data={"name": name, CHROOT: "y"})
        assert resp.status == 200, await resp.text()

        async def delete() -> tuple[int, dict[str, Any]]:
            resp = await session.post(f"/api/coprs/admin/{name}/delete/", data={"verify": "yes"})
            return resp.status, await resp.json()

        return await asyncio.gather(*(delete() for _ in range(10)))


@pytest.mark.parametrize("round_", range(3))
def test_ten_concurrent_deletes_one_wins_the_rest_404(live, round_):
    live.new_log(access=True)  # earlier requests' lines
    answers = asyncio.run(_delete_ten_times(live, f"doomed{round_}"))
    assert sorted(status for status, _ in answers) == [200] + [404] * 9, answers
    for status, body in answers:
        if status == 404:
            assert body["output"] == "notok" and body["errcode"] == "not_found"
    status, _, _ = server_request(live, "GET", f"/api/coprs/admin/doomed{round_}/detail/")
    assert status == 404
    assert_clean_log(live)


# ---------------------------------------------------------------- names a client sends

# Control characters, path separators and a byte that is not UTF-8, URL-encoded.
CONTROLS = ["a%00b", "%00", "a%01b", "a%1Bb", "a%7Fb", "a%C2%9Bb"]
SEPARATORS = ["a%2Fb", "a%5Cb", "%2E%2E", "..%2F..%2Fetc", "%FF"]
CONTROLS_AND_SEPARATORS = CONTROLS + SEPARATORS
# Whitespace controls: in a name they are refused; in a list field they separate items.
WHITESPACE = ["a%0Ab", "a%0D%0Ab", "a%09b", "a%0Bb", "a%C2%85b", "a%1Cb"]
BAD_NAMES = CONTROLS_AND_SEPARATORS + WHITESPACE


def _status(live: Live, method: str, path: str, body: bytes = b"") -> tuple[int, dict, bytes]:
    return server_request(live, method, path, body)


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_in_api_urls_are_json_errors(live, name):
    expected = {
        f"/api/coprs/admin/{name}/detail/": 404,
        f"/api/coprs/admin/{name}/monitor/": 404,
        f"/api/coprs/admin/target/detail/{name}/": 404,
        f"/api/coprs/build_status/{name}/": 404,
        f"/api/coprs/build_detail/{name}/": 404,
    }
    for path, status in expected.items():
        api_error(_status(live, "GET", path), status)
    posts = {
        f"/api/coprs/admin/{name}/delete/": (b"verify=yes", {404}),
        f"/api/coprs/admin/{name}/new_build/": (b"pkgs=http://127.0.0.1/a.src.rpm", {404}),
        f"/api/coprs/admin/target/modify/{name}/": (b"buildroot_pkgs=gcc", {404}),
        f"/api/coprs/cancel_build/{name}/": (b"", {404}),
    }
    for path, (body, statuses) in posts.items():
        answer = _status(live, "POST", path, body)
        assert answer[0] in statuses, (path, answer)
        api_error(answer, answer[0])
    # An unknown user's project list is empty, as historically (spec A17).
    status, _, body = _status(live, "GET", f"/api/coprs/{name}/")
    assert status == 200 and json.loads(body) == {"output": "ok", "repos": []}
    # Create ignores a URL user that is no user (spec A14): the project is the caller's.
    project = f"url{BAD_NAMES.index(name)}"
    status, _, body = _status(
        live, "POST", f"/api/coprs/{name}/new/", f"name={project}&{CHROOT}=y".encode()
    )
    assert status == 200, body
    assert _status(live, "GET", f"/api/coprs/admin/{project}/detail/")[0] == 200
    assert_clean_log(live)


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_in_api_fields_are_json_400(live, name):
    cases = [
        ("/api/coprs/admin/new/", f"name={name}&{CHROOT}=y"),
        ("/api/coprs/admin/new/", f"name=fine&{name}=y"),  # a chroot name
        ("/api/coprs/admin/target/new_build/", f"pkgs=http://127.0.0.1/{name}"),
        ("/api/coprs/admin/target/new_build/", f"pkgs=http://127.0.0.1/a.src.rpm&{name}=y"),
        ("/api/coprs/admin/target/delete/", f"verify={name}"),
    ]
    if name in CONTROLS_AND_SEPARATORS:
        cases += [
            ("/api/coprs/admin/target/modify/", f"repos=http://x/ {name}"),
            (f"/api/coprs/admin/target/modify/{CHROOT}/", f"buildroot_pkgs={name}"),
            (f"/api/coprs/admin/target/modify/{CHROOT}/", f"buildroot_pkgs=gcc%20{name}"),
        ]
    for path, body in cases:
        api_error(_status(live, "POST", path, body.encode()), 400)
    assert_clean_log(live)


@pytest.mark.parametrize("name", WHITESPACE)
def test_whitespace_in_list_fields_separates_items(live, name):
    path = f"/api/coprs/admin/target/modify/{CHROOT}/"
    status, _, body = _status(live, "POST", path, f"buildroot_pkgs={name}".encode())
    assert status == 200 and json.loads(body)["buildroot_pkgs"] == "a b", body


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_search_strings_answer_cleanly(live, name):
    for path in (
        f"/api/coprs/search/{name}/",
        f"/api/coprs/search/?project={name}",
        f"/api/coprs/?search={name}",
    ):
        status, headers, body = _status(live, "GET", path)
        if name not in CONTROLS:
            # Words, `owner/name` parts, or a stray byte: searched for, found nowhere.
            assert status == 200 and json.loads(body)["repos"] == [], (path, body)
        else:
            api_error((status, headers, body), 400)
    status, _, body = server_request(live, "GET", f"/search/?q={name}", signed=False)
    assert status in (200, 400) and b"Traceback" not in body
    assert_clean_log(live)


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_in_web_urls_are_html_404(live, name):
    for path in (
        f"/coprs/{name}/",
        f"/coprs/admin/{name}/",
        f"/coprs/admin/{name}/builds/",
        f"/builds/{name}/",
    ):
        html_error(server_request(live, "GET", path, signed=False), 404)
    assert_clean_log(live)


# ---------------------------------------------------------------- web UI forms


class web_session:
    """An aiohttp session signed in to the web UI as admin; yields it and a CSRF token."""

    def __init__(self, live: Live) -> None:
        self.live = live

    async def __aenter__(self) -> tuple[aiohttp.ClientSession, str]:
        # unsafe=True: keep cookies for an IP address host (127.0.0.1).
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        base = self.live.base
        page = await (await self.session.get(f"{base}/login/")).text()
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert csrf
        resp = await self.session.post(
            f"{base}/login/",
            data={"username": "admin", "password": self.live.password, "csrf_token": csrf[1]},
            allow_redirects=False,
        )
        assert resp.status == 302, await resp.text()
        return self.session, csrf[1]

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()


def test_bad_names_in_web_forms_are_shown_as_field_errors(live):
    from urllib.parse import unquote_to_bytes

    async def go() -> list[tuple[str, str, int, str]]:
        results = []
        async with web_session(live) as (session, csrf):
            for raw_name in BAD_NAMES:
                name = unquote_to_bytes(raw_name).decode("utf-8", "replace")
                forms = [
                    ("/coprs/new/", {"name": name, CHROOT: "y"}),
                    (
                        "/coprs/admin/target/new_build/",
                        {"pkgs": f"http://127.0.0.1/{name}", CHROOT: "y"},
                    ),
                ]
                if raw_name in CONTROLS_AND_SEPARATORS:  # whitespace separates list items
                    forms += [
                        ("/coprs/admin/target/edit/", {"repos": f"http://x/ {name}"}),
                        (f"/coprs/admin/target/chroot/{CHROOT}/edit/", {"buildroot_pkgs": name}),
                    ]
                for path, fields in forms:
                    resp = await session.post(
                        live.base + path,
                        data={**fields, "csrf_token": csrf},
                        allow_redirects=False,
                    )
                    results.append((raw_name, path, resp.status, await resp.text()))
            for raw_name in BAD_NAMES:
                name = unquote_to_bytes(raw_name).decode("utf-8", "replace")
                resp = await session.post(
                    f"{live.base}/login/",
                    data={"username": name, "password": name, "csrf_token": csrf},
                    allow_redirects=False,
                )
                results.append((raw_name, "/login/", resp.status, await resp.text()))
                if "%2E" not in raw_name:  # a dot segment is resolved before routing
                    resp = await session.get(
                        f"{live.base}/coprs/admin/target/chroot/{raw_name}/edit/"
                    )
                    results.append((raw_name, "chroot", resp.status, await resp.text()))
        return results

    for name, path, status, text in asyncio.run(go()):
        # The login form says "wrong user name or password"; an unknown chroot is no page.
        expected = {"/login/": 401, "chroot": 404}.get(path, 400)
        assert status == expected, (name, path, status, text[:300])
        assert "Traceback" not in text
    assert_clean_log(live)


def test_an_unknown_expectation_on_a_page_is_417_in_the_error_shape(live):
    api_error(server_request(live, "GET", "/api/coprs/", headers={"Expect": "x"}), 417)
    html_error(server_request(live, "GET", "/coprs/", headers={"Expect": "x"}), 417)


# ---------------------------------------------------------------- refused by the parser


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /api/coprs/ HTTP/1.1\r\nHost: x\r\nX-Note: a\x01b\r\n\r\n",
        b"GET /api/coprs/ HTTP/1.1\r\nHost: x\r\nX-Note: a\x00b\r\n\r\n",
        b"POST /api/coprs/admin/new/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n\r\nzz\r\nname=x\r\n0\r\n\r\n",
        b"POST /api/coprs/admin/new/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
        b"Content-Length: 2\r\n\r\nab",
    ],
)
def test_requests_the_http_parser_refuses_are_one_log_line(live, request_bytes):
    """aiohttp answers these itself, in plain text before the app runs (the one exception
    spec A21 allows); the log gets one line, not a traceback."""
    status, _, _ = raw(
        live, request_bytes.replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n")
    )
    assert status == 400
    log = assert_clean_log(live)
    assert "refused a malformed request from 127.0.0.1" in log, log


# ---------------------------------------------------------------- names inside an SRPM


async def test_an_srpm_whose_package_name_cannot_be_a_path_fails_its_import(
    aiohttp_client, make_app, fixture_srpm, caplog
):
    """The package name comes from the client's SRPM and becomes a results directory:
    braces (which rpmbuild allows) fail the import with a reason, not every chroot with an
    internal error and a traceback."""
    app = make_app(plugins=[BuilderPlugin(FakeBuilder())], chroots={CHROOT: "fake"})
    client = await aiohttp_client(app)
    _, token = await add_user(app, "alice")
    auth = basic_auth(token)
    resp = await client.post("/api/coprs/alice/new/", headers=auth, data={"name": "p", CHROOT: "y"})
    assert resp.status == 200
    form = aiohttp.FormData()
    form.add_field("pkgs", fixture_srpm("copr-lite-bad-name").read_bytes(), filename="b.src.rpm")
    resp = await client.post("/api/coprs/alice/p/new_build_upload/", headers=auth, data=form)
    build_id = (await resp.json())["id"]

    async def ended() -> bool:
        detail = await (await client.get(f"/api/coprs/build/{build_id}/")).json()
        return detail["status"] == "failed"

    await wait_until(ended)
    detail = await (await client.get(f"/api/coprs/build/{build_id}/")).json()
    reason = detail["fail_reasons"][CHROOT]
    assert "import failed" in reason and "copr-lite-bad{name}" in reason, reason
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
