"""Serving the results tree, .repo files and live logs; checked with real dnf over HTTP."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from test_publisher import HELLO, HELLO_SRC, build_hello_rpms

from copr_lite import store
from copr_lite.builders import Chroot, PackageInfo
from copr_lite.config import load_config
from copr_lite.keys import CONFIG, DB, PUBLISHER
from copr_lite.liveserver import free_port
from copr_lite.publisher import Publisher
from copr_lite.states import State
from copr_lite.testing import add_user, basic_auth, store_builds
from copr_lite.views.results import repo_file, stop_live_logs

CHROOT = "fedora-40-x86_64"
NEEDS_DNF = pytest.mark.skipif(
    not (shutil.which("dnf") and shutil.which("rpmbuild") and shutil.which("createrepo_c")),
    reason="needs dnf, rpmbuild and createrepo_c (Debian: dnf dnf-plugins-core rpm createrepo-c)",
)
RPM_NAME = "hello-copr-lite-1.0-1.fc40.noarch.rpm"


@pytest.fixture(scope="module")
def hello_rpms(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    if not shutil.which("rpmbuild"):
        pytest.skip("needs rpmbuild")
    return build_hello_rpms(tmp_path_factory.mktemp("rpmbuild"))


def publisher_of(client) -> Publisher:
    return client.server.app[PUBLISHER]


async def publish_hello(client, rpms: list[Path], chroot: str = CHROOT, build_id: int = 1) -> Path:
    """Put the RPMs into a succeeded build dir of alice/proj and create the chroot's repo."""
    pub = publisher_of(client)
    build_dir = pub.build_dir("alice", "proj", chroot, build_id, "hello-copr-lite")
    build_dir.mkdir(parents=True)
    for rpm in rpms:
        shutil.copy(rpm, build_dir)
    with pub.live_log(build_dir) as live:
        await live.write("build started")
    await pub.finish_build_dir(
        build_dir,
        build_id=build_id,
        chroot=chroot,
        status="succeeded",
        packages=[HELLO, HELLO_SRC],
        files=[build_dir / rpm.name for rpm in rpms],
    )
    await pub.createrepo(pub.chroot_dir("alice", "proj", chroot))
    return build_dir


async def create_project(client, token, name="proj", chroots=(CHROOT, "epel-9-x86_64")) -> None:
    resp = await client.post(
        "/api/coprs/alice/new/",
        headers=basic_auth(token),
        data={"name": name, **dict.fromkeys(chroots, "y")},
    )
    assert resp.status == 200, await resp.text()


async def raw_get(client, target: str) -> tuple[int, bytes]:
    """GET `target` byte for byte (no client-side normalisation of `..` or `%2e`)."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


# ---------------------------------------------------------------------- dnf helpers


async def run(*argv: str, env: dict[str, str] | None = None) -> str:
    """Run a command without blocking the loop (the server under test shares it)."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode("utf-8", "replace")
    assert proc.returncode == 0, f"{argv} failed ({proc.returncode}):\n{text}"
    return text


@pytest.fixture
def dnf(tmp_path: Path):
    """`await dnf(*args)`: dnf isolated in tmp_path (own config, installroot, cache, repos)."""
    work = tmp_path / "dnf"
    for sub in ("root", "cache", "repos.d", "home", "log"):
        (work / sub).mkdir(parents=True)
    conf = work / "dnf.conf"
    conf.write_text(
        "[main]\ngpgcheck=0\nskip_if_unavailable=False\ninstall_weak_deps=False\n"
        f"reposdir={work / 'repos.d'}\n"
    )
    env = {**os.environ, "HOME": str(work / "home")}

    async def go(*args: str) -> str:
        return await run(
            "dnf",
            "-y",
            # local: copies RPMs to the host's /var/lib/dnf/plugins/local (toolchain.md §2);
            # generate_completion_cache: writes the host's /var/cache/dnf/packages.db.
            "--disableplugin=local,generate_completion_cache",
            f"--config={conf}",
            f"--installroot={work / 'root'}",
            "--releasever=40",
            f"--setopt=cachedir={work / 'cache'}",
            f"--setopt=reposdir={work / 'repos.d'}",
            f"--setopt=logdir={work / 'log'}",
            *args,
            env=env,
        )

    go.reposdir = work / "repos.d"  # type: ignore[attr-defined]
    yield go
    # dnf with gpgcheck=0 starts no gpg-agent; stop any a keyring dir might have got anyway.
    for pubring in work.glob("**/pubring") if shutil.which("gpgconf") else ():
        subprocess.run(
            ["gpgconf", "--homedir", str(pubring), "--kill", "gpg-agent"],
            check=False,
            capture_output=True,
        )


# ---------------------------------------------------------------------- /results/ files


@NEEDS_DNF
async def test_dnf_lists_a_published_package_over_http(client, hello_rpms, dnf) -> None:
    await publish_hello(client, hello_rpms)
    url = client.make_url(f"/results/alice/proj/{CHROOT}/")
    out = await dnf("--refresh", f"--repofrompath=r,{url}", "--repo=r", "repoquery", "-a")
    assert "hello-copr-lite-0:1.0-1.fc40.noarch" in out
    assert "hello-copr-lite-0:1.0-1.fc40.src" in out


async def test_files_are_served_with_their_content_types(client) -> None:
    pub = publisher_of(client)
    build_dir = pub.build_dir("alice", "proj", CHROOT, 1, "hello")
    build_dir.mkdir(parents=True)
    (build_dir / RPM_NAME).write_bytes(b"\xed\xab\xee\xdb rpm")
    (build_dir / "builder-live.log").write_text("line ✓\n")
    (build_dir / "results.json").write_text("{}")
    (build_dir / "success").write_text("")
    repodata = build_dir.parent / "repodata"
    repodata.mkdir()
    (repodata / "repomd.xml").write_text("<repomd/>")
    (repodata / "abc-primary.xml.gz").write_bytes(b"\x1f\x8b gz bytes")
    (pub.project_dir("alice", "proj") / "pubkey.gpg").write_text("-----BEGIN PGP")
    base = f"/results/alice/proj/{CHROOT}"
    expected = {
        f"{base}/00000001-hello/{RPM_NAME}": "application/x-rpm",
        f"{base}/00000001-hello/builder-live.log": "text/plain; charset=utf-8",
        f"{base}/00000001-hello/results.json": "application/json",
        f"{base}/00000001-hello/success": "text/plain; charset=utf-8",
        f"{base}/repodata/repomd.xml": "application/xml",
        f"{base}/repodata/abc-primary.xml.gz": "application/gzip",
        "/results/alice/proj/pubkey.gpg": "application/pgp-keys",
    }
    for path, content_type in expected.items():
        resp = await client.get(path, headers={"Accept-Encoding": "gzip, deflate"})
        assert resp.status == 200, path
        assert resp.headers["Content-Type"] == content_type, path
        assert "Content-Encoding" not in resp.headers, path
        assert resp.headers["ETag"] and resp.headers["Last-Modified"]
    resp = await client.get(f"{base}/repodata/abc-primary.xml.gz", auto_decompress=False)
    assert await resp.read() == b"\x1f\x8b gz bytes"
    etag = resp.headers["ETag"]
    resp = await client.get(f"{base}/repodata/abc-primary.xml.gz", headers={"If-None-Match": etag})
    assert resp.status == 304
    resp = await client.head(f"{base}/00000001-hello/{RPM_NAME}")
    assert resp.status == 200 and resp.headers["Content-Length"] == "8"


async def test_range_requests_get_206_with_the_right_bytes(client) -> None:
    root = publisher_of(client).project_dir("alice", "proj")
    root.mkdir(parents=True)
    (root / "data.bin").write_bytes(bytes(range(256)) * 4)
    resp = await client.get("/results/alice/proj/data.bin", headers={"Range": "bytes=10-19"})
    assert resp.status == 206
    assert await resp.read() == bytes(range(10, 20))
    assert resp.headers["Content-Range"] == "bytes 10-19/1024"
    resp = await client.get("/results/alice/proj/data.bin", headers={"Range": "bytes=-4"})
    assert resp.status == 206 and await resp.read() == bytes(range(252, 256))
    resp = await client.get("/results/alice/proj/data.bin", headers={"Range": "bytes=5000-"})
    assert resp.status == 416


async def test_a_growing_log_is_served_as_far_as_it_goes(client) -> None:
    pub = publisher_of(client)
    build_dir = pub.build_dir("alice", "proj", CHROOT, 2, "hello")
    url = f"/results/alice/proj/{CHROOT}/00000002-hello/builder-live.log"
    with pub.live_log(build_dir) as live:
        await live.write("one")
        resp = await client.get(url)
        assert await resp.text() == "one\n"
        assert resp.headers["Content-Length"] == "4"
        await live.write("two")
        resp = await client.get(url)
        assert await resp.text() == "one\ntwo\n"


async def test_directory_listing_is_sorted_and_escaped(client) -> None:
    chroot_dir = publisher_of(client).chroot_dir("alice", "proj", CHROOT)
    for name in ("00000010-b", "00000002-a"):
        (chroot_dir / name).mkdir(parents=True)
    (chroot_dir / "<b>&x.txt").write_text("x")
    (chroot_dir / "a.rpm").write_text("rpm")
    os.symlink("/etc", chroot_dir / "escape")
    resp = await client.get(f"/results/alice/proj/{CHROOT}", allow_redirects=False)
    assert resp.status == 301
    assert resp.headers["Location"] == f"/results/alice/proj/{CHROOT}/"
    resp = await client.get(f"/results/alice/proj/{CHROOT}/")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
    page = await resp.text()
    assert "<b>" not in page
    assert '<a href="%3Cb%3E%26x.txt">&lt;b&gt;&amp;x.txt</a>' in page
    order = [page.index(s) for s in ('"../"', "00000002-a/", "00000010-b/", "%3Cb%3E", "a.rpm")]
    assert order == sorted(order)
    assert "escape" not in page  # a symlink out of the tree is not listed
    root = await client.get("/results/")
    assert root.status == 200 and 'href="alice/"' in await root.text()
    assert '"../"' not in await root.text()
    resp = await client.get("/results", allow_redirects=False)
    assert resp.status == 301 and resp.headers["Location"] == "/results/"
    resp = await client.get(f"/results/alice/proj/{CHROOT}/a.rpm/")
    assert resp.status == 404


async def test_nothing_outside_the_results_tree_is_served(client, tmp_path) -> None:
    config = client.server.app[CONFIG]
    assert config.db_path.exists()  # data/copr-lite.sqlite3, next to data/results
    pub = publisher_of(client)
    project = pub.project_dir("alice", "proj")
    project.mkdir(parents=True)
    (project / "ok.txt").write_text("fine")
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    os.symlink(secret, project / "link-to-file.txt")
    os.symlink(tmp_path, project / "link-to-dir")
    os.symlink("../../../copr-lite.sqlite3", project / "relative-link")
    os.mkfifo(project / "fifo")
    os.symlink("loop", project / "loop")
    attempts = [
        "/results/../copr-lite.sqlite3",
        "/results/%2e%2e/copr-lite.sqlite3",
        "/results/%2E%2E/copr-lite.sqlite3",
        "/results/alice/..%2f..%2fcopr-lite.sqlite3",
        "/results/alice/proj/%2e%2e/%2e%2e/%2e%2e/copr-lite.sqlite3",
        "/results/alice/proj/..%2F..%2F..%2Fcopr-lite.sqlite3",
        "/results/..%5ccopr-lite.sqlite3",
        f"/results/{tmp_path}/secret.txt",
        f"/results/%2f{str(tmp_path).strip('/').replace('/', '%2f')}%2fsecret.txt",
        "/results//etc/passwd",
        "/results/%2fetc%2fpasswd",
        "/results/alice/proj/link-to-file.txt",
        "/results/alice/proj/link-to-dir/secret.txt",
        "/results/alice/proj/link-to-dir/",
        "/results/alice/proj/relative-link",
        "/results/alice/proj/fifo",
        "/results/alice/proj/loop",
        "/results/alice/proj/ok.txt%00",
        "/results/alice/proj/nope.txt",
    ]
    for target in attempts:
        status, body = await raw_get(client, target)
        assert status == 404, target
        assert b"SQLite format" not in body and b"top secret" not in body and b"root:" not in body
    status, body = await raw_get(client, "/results/alice/proj/ok.txt")
    assert (status, body) == (200, b"fine")
    # A symlink that stays inside the tree is fine.
    os.symlink("ok.txt", project / "alias.txt")
    status, body = await raw_get(client, "/results/alice/./proj/alias.txt")
    assert (status, body) == (200, b"fine")


# ---------------------------------------------------------------------- .repo files


async def test_dnf_repo_file(client, make_user) -> None:
    _, token = await make_user("alice")
    await create_project(client, token)
    resp = await client.get("/coprs/alice/proj/repo/fedora-40/dnf.repo?arch=x86_64")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert await resp.text() == (
        "[copr:127.0.0.1:alice:proj]\n"
        "name=Copr repo for proj owned by alice\n"
        "baseurl=http://127.0.0.1:8080/results/alice/proj/fedora-$releasever-$basearch/\n"
        "type=rpm-md\n"
        "skip_if_unavailable=True\n"
        "gpgcheck=0\n"
        "repo_gpgcheck=0\n"
        "enabled=1\n"
        "enabled_metadata=1\n"
    )
    # arch defaults to x86_64; EPEL keeps its version.
    text = await (await client.get("/coprs/alice/proj/repo/epel-9/dnf.repo")).text()
    assert "baseurl=http://127.0.0.1:8080/results/alice/proj/epel-9-$basearch/\n" in text
    # With signing on (the default outside these tests) dnf checks packages and metadata.
    signed = repo_file(
        load_config(None, sign=True), "alice", "proj", Chroot.parse(CHROOT), fixed=False
    )
    assert (
        "gpgcheck=1\ngpgkey=http://127.0.0.1:8080/results/alice/proj/pubkey.gpg\nrepo_gpgcheck=1\n"
    ) in signed
    # Per chroot, the arch and version fixed.
    resp = await client.get(f"/coprs/alice/proj/repo/{CHROOT}/alice-proj-{CHROOT}.repo")
    assert resp.status == 200
    text = await resp.text()
    assert text.startswith("[copr:127.0.0.1:alice:proj]\n")
    assert f"baseurl=http://127.0.0.1:8080/results/alice/proj/{CHROOT}/\n" in text
    # Copr's own form, <os>-<version> in place of the chroot, answers like dnf.repo.
    resp = await client.get("/coprs/alice/proj/repo/fedora-40/alice-proj-fedora-40.repo")
    assert "fedora-$releasever-$basearch/" in await resp.text()


async def test_dnf_repo_errors(client, make_user) -> None:
    _, token = await make_user("alice")
    await create_project(client, token)
    resp = await client.get("/coprs/alice/nope/repo/fedora-40/dnf.repo?arch=x86_64")
    assert resp.status == 404
    assert await resp.text() == "Project alice/nope does not exist.\n"
    assert "Copr-Error-Data" not in resp.headers
    for url in (
        "/coprs/alice/proj/repo/fedora-41/dnf.repo?arch=x86_64",
        "/coprs/alice/proj/repo/fedora-40/dnf.repo?arch=aarch64",
        "/coprs/alice/proj/repo/fedora-40/dnf.repo?arch=%2F..",
        "/coprs/alice/proj/repo/fedora-41-x86_64/alice-proj-fedora-41-x86_64.repo",
    ):
        resp = await client.get(url)
        assert resp.status == 404, url
        data = json.loads(base64.b64decode(resp.headers["Copr-Error-Data"]))
        assert data == {"available chroots": ["epel-9-x86_64", CHROOT]}
    resp = await client.get("/coprs/..%2f..%2fetc/proj/repo/fedora-40/dnf.repo")
    assert resp.status == 404


@NEEDS_DNF
async def test_dnf_copr_enable_writes_a_working_repo(
    aiohttp_client, make_app, hello_rpms, dnf
) -> None:
    port = free_port()  # the repo file names the public URL: use the real port
    app = make_app(base_url=f"http://127.0.0.1:{port}")
    client = await aiohttp_client(app, server_kwargs={"port": port})
    _, token = await add_user(app, "alice")
    await create_project(client, token)
    await publish_hello(client, hello_rpms)
    hub = f"http://127.0.0.1:{port}"
    out = await dnf("copr", "enable", "--hub", hub, "alice/proj", CHROOT)
    assert "Repository successfully enabled." in out
    repo_file = dnf.reposdir / "_copr:127.0.0.1:alice:proj.repo"
    assert repo_file.read_text().startswith("[copr:127.0.0.1:alice:proj]\n")
    out = await dnf("--refresh", "repoquery", "-a")
    assert "hello-copr-lite-0:1.0-1.fc40.noarch" in out
    # An unknown project and a missing chroot are reported as the plugin words them.
    with pytest.raises(AssertionError, match="Project alice/nope does not exist"):
        await dnf("copr", "enable", "--hub", hub, "alice/nope", CHROOT)
    with pytest.raises(AssertionError, match="Available repositories: 'epel-9-x86_64'"):
        await dnf("copr", "enable", "--hub", hub, "alice/proj", "fedora-41-x86_64")


# ---------------------------------------------------------------------- live logs


def _insert_running_build(conn, owner: str, project: str, user_id: int) -> int:
    """A build whose chroot is already `running` (one transaction, so the app's dispatcher
    never sees it importing or pending and leaves it alone)."""
    project_id = store.get_project(conn, owner, project).id
    url = "http://127.0.0.1:9/hello-copr-lite-1.0-1.src.rpm"
    [build_id] = store_builds(conn, project_id, user_id, [url], [CHROOT])
    store.set_build_package(conn, build_id, PackageInfo("hello-copr-lite", None, "1.0", "1", "src"))
    for state in (State.PENDING, State.STARTING, State.RUNNING):
        assert store.set_chroot_state(conn, build_id, CHROOT, state)
    return build_id


async def submit_build(client, make_user) -> int:
    user, token = await make_user("alice")
    await create_project(client, token)
    return await insert_running_build(client, user)


async def insert_running_build(client, user) -> int:
    db = client.server.app[DB]
    return await db.write(_insert_running_build, "alice", "proj", user.id)


async def read_event(resp) -> dict[str, str]:
    fields: dict[str, str] = {}
    while True:
        line = (await asyncio.wait_for(resp.content.readline(), 5)).decode().rstrip("\n")
        if not line:
            if fields:
                return fields
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(": ")
        fields[key] = value


async def test_live_log_stream_follows_the_log_until_the_end(client, make_user) -> None:
    build_id = await submit_build(client, make_user)
    pub = publisher_of(client)
    build_dir = pub.build_dir("alice", "proj", CHROOT, build_id, "hello-copr-lite")
    live = pub.live_log(build_dir)
    await live.write("existing 1")
    await live.write("existing 2")
    resp = await client.get(f"/builds/{build_id}/{CHROOT}/live-log")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/event-stream"
    assert await read_event(resp) == {"id": str(len("existing 1\n")), "data": "existing 1"}
    second = await read_event(resp)
    assert second == {"id": str(len("existing 1\nexisting 2\n")), "data": "existing 2"}
    await live.write("appended ✓")
    assert (await read_event(resp))["data"] == "appended ✓"
    # A partial line waits for its newline.
    with open(build_dir / "builder-live.log", "a") as fh:
        fh.write("half")
        fh.flush()
        await asyncio.sleep(0.4)
        fh.write(" line\nlast\n")
    assert (await read_event(resp))["data"] == "half line"
    with open(build_dir / "builder-live.log", "ab") as raw:  # a builder's stray bytes
        raw.write(b"bad \xff byte\r\n")
    await live.write("after")
    live.close()
    db = client.server.app[DB]
    assert await db.write(store.set_chroot_state, build_id, CHROOT, State.SUCCEEDED)
    assert (await read_event(resp))["data"] == "last"
    assert (await read_event(resp))["data"] == "bad \ufffd byte"  # replaced, not broken
    assert (await read_event(resp))["data"] == "after"
    assert await read_event(resp) == {"event": "end", "data": "succeeded"}
    assert await resp.content.read() == b""
    # Resuming from an event id sends only what came after it.
    resp = await client.get(
        f"/builds/{build_id}/{CHROOT}/live-log", headers={"Last-Event-ID": second["id"]}
    )
    assert (await read_event(resp))["data"] == "appended ✓"
    events = [await read_event(resp) for _ in range(5)]
    assert [e.get("data") for e in events] == [
        "half line",
        "last",
        "bad \ufffd byte",
        "after",
        "succeeded",
    ]


async def test_live_log_stream_waits_for_the_log_to_appear(client, make_user) -> None:
    build_id = await submit_build(client, make_user)
    resp = await client.get(f"/builds/{build_id}/{CHROOT}/live-log")
    assert resp.status == 200
    await asyncio.sleep(0.3)
    pub = publisher_of(client)
    with pub.live_log(pub.build_dir("alice", "proj", CHROOT, build_id, "hello-copr-lite")) as live:
        await live.write("finally")
    assert (await read_event(resp))["data"] == "finally"
    await client.server.app[DB].write(
        store.set_chroot_state, build_id, CHROOT, State.FAILED, fail_reason="x"
    )
    assert await read_event(resp) == {"event": "end", "data": "failed"}


async def test_live_log_stream_does_not_follow_a_symlink_out(client, make_user, tmp_path) -> None:
    build_id = await submit_build(client, make_user)
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret\n")
    build_dir = publisher_of(client).build_dir("alice", "proj", CHROOT, build_id, "hello-copr-lite")
    build_dir.mkdir(parents=True)
    (build_dir / "builder-live.log").symlink_to(secret)
    await client.server.app[DB].write(store.set_chroot_state, build_id, CHROOT, State.FAILED)
    resp = await client.get(f"/builds/{build_id}/{CHROOT}/live-log")
    assert await resp.text() == "event: end\ndata: failed\n\n"


async def test_live_log_stream_survives_a_client_going_away(
    client, make_user, caplog, monkeypatch
) -> None:
    build_id = await submit_build(client, make_user)
    polls = []
    get_build = store.get_build

    def counting_get_build(conn, build_id):
        polls.append(build_id)
        return get_build(conn, build_id)

    monkeypatch.setattr(store, "get_build", counting_get_build)
    resp = await client.get(f"/builds/{build_id}/{CHROOT}/live-log")
    assert resp.status == 200
    resp.close()
    await asyncio.sleep(0.5)  # the handler notices within a poll or two and returns
    seen = len(polls)
    await asyncio.sleep(1.2)  # ... so it no longer looks at the build's state
    assert len(polls) == seen
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


async def test_live_log_streams_end_when_the_server_stops(aiohttp_client, make_app) -> None:
    app = make_app()
    app.on_shutdown.append(stop_live_logs)  # as app.py registers it
    client = await aiohttp_client(app)
    user, token = await add_user(app, "alice")
    await create_project(client, token)
    build_id = await insert_running_build(client, user)
    resp = await client.get(f"/builds/{build_id}/{CHROOT}/live-log")
    assert resp.status == 200
    loop = asyncio.get_running_loop()
    started = loop.time()
    await client.server.close()
    assert loop.time() - started < 3  # not aiohttp's 60 s shutdown_timeout
    assert await resp.content.read() == b""  # no `end` event: the client may resume later


async def test_live_log_not_found_and_redirect(client, make_user) -> None:
    build_id = await submit_build(client, make_user)
    for url in (
        f"/builds/{build_id + 1}/{CHROOT}/live-log",
        f"/builds/{build_id}/epel-9-x86_64/live-log",
        f"/builds/{build_id}/..%2f..%2f/live-log",
        f"/builds/{2**63}/{CHROOT}/live-log",
        f"/builds/x1/{CHROOT}/log",
    ):
        assert (await client.get(url)).status == 404, url
    resp = await client.get(f"/builds/{build_id}/{CHROOT}/log", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"] == (
        f"http://127.0.0.1:8080/results/alice/proj/{CHROOT}/"
        f"{build_id:08d}-hello-copr-lite/builder-live.log"
    )
