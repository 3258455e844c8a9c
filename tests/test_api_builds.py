"""Builds through the API: submit, upload, status, detail, cancel, monitor, derived states."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import aiohttp
import pytest
from conftest import new_project

from copr_lite import store
from copr_lite.builders import PackageInfo
from copr_lite.keys import CONFIG, DB
from copr_lite.states import State
from copr_lite.testing import basic_auth, upload_srpm, wait_until

CHROOTS = ("epel-9-x86_64", "fedora-41-x86_64")
SRPM = "http://127.0.0.1:9/pkgs/hello-1.0-1.src.rpm"


@pytest.fixture
async def client(aiohttp_client, make_app):
    """These tests arrange build states themselves: no dispatcher moves them."""
    return await aiohttp_client(make_app(start_dispatcher=False))


@pytest.fixture
async def project(client, make_user):
    _, token = await make_user("alice")
    await new_project(client, token, "proj", CHROOTS)
    return token


async def submit(client, token, **fields):
    data = {"pkgs": SRPM, **fields}
    return await client.post(
        "/api/coprs/alice/proj/new_build/", data=data, headers=basic_auth(token)
    )


def multipart(fields: dict[str, str]) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for key, value in fields.items():
        form.add_field(key, value)
    form._is_multipart = True  # python copr sends new_build as multipart
    return form


async def test_new_build_stores_one_build_per_url(client, project):
    resp = await submit(client, project, pkgs=f"{SRPM} http://127.0.0.1:9/b-2-1.src.rpm")
    assert resp.status == 200
    body = await resp.json()
    assert body["output"] == "ok"
    assert body["message"] == "Build was added to proj."
    assert len(body["ids"]) == 2
    assert body["id"] == body["ids"][0]
    detail = await (await client.get(f"/api/coprs/build/{body['id']}/")).json()
    assert detail["status"] == "importing"
    assert detail["chroots"] == dict.fromkeys(CHROOTS, "importing")
    assert detail["src_pkg"] == SRPM
    assert detail["submitted_by"] == "alice"
    assert detail["owner"] == "alice"
    assert detail["project"] == "proj"
    assert detail["results"] is None
    assert detail["built_pkgs"] is None
    assert detail["memory_reqs"] == 2048
    assert detail["timeout"] == 18000
    assert detail["results_by_chroot"]["epel-9-x86_64"] == (
        f"http://127.0.0.1:8080/results/alice/proj/epel-9-x86_64/{body['id']:08d}-hello"
    )
    assert detail["fail_reasons"] == {}


async def test_python_copr_multipart_with_empty_fields(client, project):
    form = multipart(
        {"pkgs": SRPM, "memory_reqs": "", "timeout": "", "epel-9-x86_64": "y", "username": "alice"}
    )
    resp = await client.post(
        "/api/coprs/alice/proj/new_build/", data=form, headers=basic_auth(project)
    )
    assert resp.status == 200, await resp.text()
    build_id = (await resp.json())["ids"][0]
    detail = await (await client.get(f"/api/coprs/build_detail/{build_id}/")).json()
    assert list(detail["chroots"]) == ["epel-9-x86_64"]


@pytest.mark.parametrize(
    ("fields", "status", "text"),
    [
        ({"pkgs": ""}, 400, "- pkgs: This field is required."),
        ({"pkgs": "http://x.example/a.tar.gz"}, 400, "URLs must end with .src.rpm"),
        ({"pkgs": "file:///etc/passwd.src.rpm"}, 400, "http[s] URLs"),
        ({"pkgs": "http://169.254.169.254/x.src.rpm"}, 400, "link-local"),
        ({"pkgs": "http://[::ffff:169.254.169.254]/x.src.rpm"}, 400, "link-local"),
        ({"pkgs": "http://10.1.2.3/x.src.rpm"}, 400, "loopback or private"),
        ({"pkgs": "http://0xa9fea9fe/x.src.rpm"}, 400, "link-local"),
        ({"memory_reqs": "9000"}, 400, "- memory_reqs: Must be between 2048 and 4096"),
        ({"timeout": "-1"}, 400, "- timeout:"),
        ({"timeout": "abc"}, 400, "- timeout: Must be a whole number"),
        ({"fedora-40-x86_64": "y"}, 400, "Unknown arguments passed: fedora-40-x86_64"),
        ({"chroots": "fedora-40-x86_64"}, 400, "chroots"),
        ({"surprise": "1"}, 400, "Unknown arguments passed: surprise"),
    ],
)
async def test_new_build_validation(client, project, fields, status, text):
    resp = await submit(client, project, **fields)
    assert resp.status == status
    assert text in (await resp.json())["error"]


async def test_memory_timeout_and_net_are_stored(client, project):
    resp = await submit(client, project, memory_reqs="4096", timeout="600", enable_net="")
    build_id = (await resp.json())["id"]
    build = await client.server.app[DB].read(store.get_build, build_id)
    assert (build.memory_reqs, build.timeout, build.enable_net) == (4096, 600, False)


async def test_new_build_permissions(client, project, make_user):
    bob, bob_token = await make_user("bob")
    assert (await submit(client, bob_token)).status == 403
    assert (
        await client.post("/api/coprs/alice/proj/new_build/", data={"pkgs": SRPM})
    ).status == 401
    resp = await client.post(
        "/api/coprs/alice/none/new_build/", data={"pkgs": SRPM}, headers=basic_auth(bob_token)
    )
    assert resp.status == 404
    db = client.server.app[DB]
    proj = await db.read(store.get_project, "alice", "proj")
    await db.write(store.grant, proj.id, bob.id, "builder")
    assert (await submit(client, bob_token)).status == 200


async def test_upload_stores_the_srpm(client, project, make_config):
    form = aiohttp.FormData()
    form.add_field(
        "pkgs",
        io.BytesIO(b"\xed\xab\xee\xdb fake rpm lead"),
        filename="hello-1.0-1.src.rpm",
        content_type="application/x-rpm",
    )
    form.add_field("memory_reqs", "")
    form.add_field("timeout", "")
    resp = await client.post(
        "/api/coprs/alice/proj/new_build_upload/", data=form, headers=basic_auth(project)
    )
    assert resp.status == 200, await resp.text()
    build_id = (await resp.json())["ids"][0]
    build = await client.server.app[DB].read(store.get_build, build_id)
    assert Path(build.srpm_path).read_bytes() == b"\xed\xab\xee\xdb fake rpm lead"
    assert build.source_url.endswith(f"/srpm-builds/{build_id:08d}/hello-1.0-1.src.rpm")


async def test_upload_refuses_bad_names_and_oversize(aiohttp_client, make_app, make_user):
    app = make_app(upload_size_limit_mb=1)
    client = await aiohttp_client(app)
    from copr_lite.testing import add_user

    _, token = await add_user(app, "alice")
    await new_project(client, token, "proj", ["epel-9-x86_64"])
    url = "/api/coprs/alice/proj/new_build_upload/"
    for name, size, status in (
        ("evil.sh", 10, 400),
        ("big-1-1.src.rpm", 2 * 2**20, 413),
        ("../../y-1-1.src.rpm", 10, 400),
        ("x-1-1.src.rpm", 10, 200),
    ):
        form = aiohttp.FormData()
        form.add_field(
            "pkgs", io.BytesIO(b"x" * size), filename=name, content_type="application/x-rpm"
        )
        resp = await client.post(url, data=form, headers=basic_auth(token))
        assert resp.status == status, (name, await resp.text())
    stored = list((app[CONFIG].data_dir / "uploads").rglob("*"))
    files = [p for p in stored if p.is_file()]
    assert [p.name for p in files] == ["x-1-1.src.rpm"]  # nothing partial left behind
    resp = await client.post(url, data={"memory_reqs": ""}, headers=basic_auth(token))
    assert resp.status == 400


async def test_build_status_needs_login_and_reports_derived_state(client, project):
    build_id = (await (await submit(client, project)).json())["id"]
    assert (await client.get(f"/api/coprs/build_status/{build_id}/")).status == 401
    resp = await client.get(f"/api/coprs/build_status/{build_id}/", headers=basic_auth(project))
    assert await resp.json() == {"output": "ok", "status": "importing"}
    for bad in ("999999", "abc", "-1", "1" * 25, "9223372036854775808"):
        resp = await client.get(f"/api/coprs/build_status/{bad}/", headers=basic_auth(project))
        assert resp.status == 404, bad
        assert (await resp.json())["output"] == "notok"
        assert (await client.get(f"/api/coprs/build/{bad}/")).status == 404


async def put_states(db, build_id, states: dict[str, State], now=1000):
    """Drive chroots through allowed transitions to the wanted states."""
    path = {
        State.PENDING: [State.PENDING],
        State.STARTING: [State.PENDING, State.STARTING],
        State.RUNNING: [State.PENDING, State.STARTING, State.RUNNING],
        State.SUCCEEDED: [State.PENDING, State.STARTING, State.RUNNING, State.SUCCEEDED],
        State.FAILED: [State.PENDING, State.STARTING, State.RUNNING, State.FAILED],
        State.SKIPPED: [State.PENDING, State.SKIPPED],
        State.IMPORTING: [],
    }
    for chroot, state in states.items():
        for step, s in enumerate(path[state]):
            moved = await db.write(
                store.set_chroot_state,
                build_id,
                chroot,
                s,
                now=now + step,
                fail_reason="boom" if s is State.FAILED else None,
            )
            assert moved


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ({"epel-9-x86_64": State.RUNNING, "fedora-41-x86_64": State.FAILED}, "running"),
        ({"epel-9-x86_64": State.PENDING, "fedora-41-x86_64": State.FAILED}, "pending"),
        ({"epel-9-x86_64": State.SUCCEEDED, "fedora-41-x86_64": State.FAILED}, "failed"),
        ({"epel-9-x86_64": State.SUCCEEDED, "fedora-41-x86_64": State.SKIPPED}, "succeeded"),
        ({"epel-9-x86_64": State.SKIPPED, "fedora-41-x86_64": State.SKIPPED}, "skipped"),
        ({"epel-9-x86_64": State.STARTING, "fedora-41-x86_64": State.IMPORTING}, "starting"),
    ],
)
async def test_derived_state_timestamps_and_results(client, project, states, expected):
    build_id = (await (await submit(client, project)).json())["id"]
    db = client.server.app[DB]
    await db.write(
        store.set_build_package, build_id, PackageInfo("hello", None, "1.0", "1.fc41", "src")
    )
    await put_states(db, build_id, states)
    resp = await client.get(f"/api/coprs/build_status/{build_id}/", headers=basic_auth(project))
    assert (await resp.json())["status"] == expected
    detail = await (await client.get(f"/api/coprs/build/{build_id}/")).json()
    assert detail["status"] == expected
    assert detail["src_version"] == "1.0-1.fc41"
    assert detail["chroots"] == {c: s.value for c, s in states.items()}
    finished = all(s.terminal for s in states.values())
    assert (detail["ended_on"] is not None) == finished
    started = any(s not in (State.IMPORTING, State.PENDING, State.SKIPPED) for s in states.values())
    assert (detail["started_on"] == 1001) == started
    if "failed" in detail["chroots"].values():
        assert detail["fail_reasons"] == {"fedora-41-x86_64": "boom"}
    waiting = any(s in (State.IMPORTING, State.PENDING, State.STARTING) for s in states.values())
    assert (detail["results"] is None) == waiting


async def test_built_packages_and_last_modified(client, project):
    db = client.server.app[DB]
    build_id = (await (await submit(client, project)).json())["id"]
    await put_states(
        db, build_id, {"epel-9-x86_64": State.SUCCEEDED, "fedora-41-x86_64": State.FAILED}, now=5000
    )

    def add_packages(conn):
        conn.execute(
            "INSERT INTO built_packages VALUES (?, 'epel-9-x86_64', 'hello', NULL,"
            " '1.0', '1.el9', 'x86_64')",
            (build_id,),
        )
        conn.execute(
            "INSERT INTO built_packages VALUES (?, 'epel-9-x86_64', 'hello-devel',"
            " NULL, '1.0', '1.el9', 'x86_64')",
            (build_id,),
        )

    await db.write(add_packages)
    detail = await (await client.get(f"/api/coprs/build/{build_id}/")).json()
    assert detail["built_pkgs"] == ["hello 1.0", "hello-devel 1.0"]
    project_detail = await (await client.get("/api/coprs/alice/proj/detail/")).json()
    assert project_detail["detail"]["last_modified"] == 5003


async def test_cancel(client, project, make_user):
    db = client.server.app[DB]
    build_id = (await (await submit(client, project)).json())["id"]
    _, bob_token = await make_user("bob")
    url = f"/api/coprs/cancel_build/{build_id}/"
    assert (await client.post(url)).status == 401
    assert (await client.post(url, headers=basic_auth(bob_token))).status == 403
    assert (
        await client.post("/api/coprs/cancel_build/4242/", headers=basic_auth(project))
    ).status == 404
    await put_states(
        db, build_id, {"epel-9-x86_64": State.SUCCEEDED, "fedora-41-x86_64": State.RUNNING}
    )
    resp = await client.post(url, headers=basic_auth(project))
    assert await resp.json() == {"output": "ok", "status": "Build canceled"}
    detail = await (await client.get(f"/api/coprs/build/{build_id}/")).json()
    assert detail["status"] == "canceled"
    assert detail["chroots"] == {"epel-9-x86_64": "succeeded", "fedora-41-x86_64": "canceled"}
    resp = await client.post(url, headers=basic_auth(project))
    assert resp.status == 409
    assert (await resp.json())["error"] == f"Cannot cancel build {build_id}"


async def test_monitor_is_per_package_and_chroot(client, project):
    db = client.server.app[DB]
    ids = []
    for name, version in (("hello", "1.0"), ("hello", "2.0"), ("world", "0.1")):
        build_id = (await (await submit(client, project)).json())["id"]
        await db.write(
            store.set_build_package, build_id, PackageInfo(name, None, version, "1", "src")
        )
        ids.append(build_id)
    first, second, world = ids
    await put_states(
        db, first, {"epel-9-x86_64": State.SUCCEEDED, "fedora-41-x86_64": State.SUCCEEDED}
    )
    await put_states(db, second, {"epel-9-x86_64": State.FAILED})
    # Canceling the newer build's fedora chroot leaves the older build as the newest there.
    await db.write(store.set_chroot_state, second, "fedora-41-x86_64", State.CANCELED)
    await db.write(store.cancel_build, world)
    body = await (await client.get("/api/coprs/alice/proj/monitor/")).json()
    assert body["output"] == "ok"
    assert body["chroots"] == list(CHROOTS)
    assert body["packages"] == [
        {
            "pkg_name": "hello",
            "pkg_version": "2.0-1",
            "results": {
                "epel-9-x86_64": [second, "failed"],
                "fedora-41-x86_64": [first, "succeeded"],
            },
        },
    ]
    assert [b["id"] for b in body["builds"]] == [second, first]
    entry = body["builds"][1]
    assert entry["state"] == "succeeded"
    assert entry["status"] == 1
    assert entry["built_packages"] == []
    paged = await (await client.get("/api/coprs/alice/proj/monitor/?limit=2")).json()
    assert [b["id"] for b in paged["builds"]] == [world, second]
    paged = await (await client.get("/api/coprs/alice/proj/monitor/?offset=2&limit=2")).json()
    assert [b["id"] for b in paged["builds"]] == [first]
    assert (await client.get("/api/coprs/alice/nope/monitor/")).status == 404
    assert (await client.get("/api/coprs/alice/proj/monitor/?limit=0")).status == 400


async def test_fifty_concurrent_new_builds(client, project):
    responses = await asyncio.gather(*(submit(client, project) for _ in range(50)))
    bodies = [await r.json() for r in responses]
    assert [r.status for r in responses] == [200] * 50, bodies
    ids = [body["id"] for body in bodies]
    assert len(set(ids)) == 50
    assert not any("locked" in str(body) for body in bodies)


async def test_delete_cancels_unfinished_builds_and_removes_everything(client, project):
    db = client.server.app[DB]
    build_id = (await (await submit(client, project)).json())["id"]
    await put_states(db, build_id, {"epel-9-x86_64": State.RUNNING})
    resp = await client.post(
        "/api/coprs/alice/proj/delete/", data={"verify": "yes"}, headers=basic_auth(project)
    )
    assert resp.status == 200
    assert (await client.get(f"/api/coprs/build/{build_id}/")).status == 404
    counts = await db.read(
        lambda conn: [
            conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("builds", "build_chroots", "latest_builds", "project_chroots")
        ]
    )
    assert counts == [0, 0, 0, 0]


async def test_an_imported_upload_leaves_only_its_published_copy(
    aiohttp_client, make_app, make_user, fixture_srpm
):
    """The import copies an upload into the results; the upload itself then goes."""
    app = make_app(chroots={CHROOTS[0]: "mock"})
    client = await aiohttp_client(app)
    _, token = await make_user("alice")
    await new_project(client, token, "proj", CHROOTS[:1])
    srpm = fixture_srpm("hello-copr-lite")
    build_id = await upload_srpm(client, token, "alice/proj", srpm)
    uploads = app[CONFIG].upload_dir
    assert [p.name for p in uploads.rglob("*.src.rpm")] == [srpm.name]

    async def imported() -> bool:
        build = await app[DB].read(store.get_build, build_id)
        return build.pkg_name is not None

    await wait_until(imported, within=30)
    build = await app[DB].read(store.get_build, build_id)
    assert Path(build.srpm_path).read_bytes() == srpm.read_bytes()
    assert not Path(build.srpm_path).is_relative_to(uploads)
    assert list(uploads.iterdir()) == []
