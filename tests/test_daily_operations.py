"""Retention settings and disk usage in API v1 and the web UI; deleting a build from the web UI
and from the command line (through the running server, and with none running)."""

from __future__ import annotations

import asyncio
import gzip
import re

from test_dispatcher import CHROOTS, add_pending, add_project, start, wait_state
from test_retention import cli
from test_web import F40, F41, create, post, setup_alice, sign_in, store_build

from copr_lite import store
from copr_lite.keys import DB, PUBLISHER
from copr_lite.states import State
from copr_lite.testing import FakeBuilder, add_user, basic_auth, wait_until


async def test_api_v1_reads_and_writes_retention_and_shows_disk_usage(aiohttp_client, make_app):
    app, client = await start(aiohttp_client, make_app, FakeBuilder())
    _, token = await add_user(app, "alice")
    auth = basic_auth(token)
    chroots = " ".join(CHROOTS)
    resp = await client.post(
        "/api/coprs/alice/new/",
        headers=auth,
        data={"name": "p", "chroots": chroots, "keep_last": "5", "prune_days": ""},
    )
    assert resp.status == 200, await resp.text()
    detail = (await (await client.get("/api/coprs/alice/p/detail/")).json())["detail"]
    assert (detail["prune_days"], detail["keep_last"], detail["failed_log_days"]) == (14, 5, 30)
    assert detail["disk_usage"] == 0

    resp = await client.post(
        "/api/coprs/alice/p/modify/", headers=auth, data={"failed_log_days": "90"}
    )
    assert resp.status == 200
    detail = (await (await client.get("/api/coprs/alice/p/detail/")).json())["detail"]
    assert (detail["keep_last"], detail["failed_log_days"]) == (5, 90)
    for bad in ({"keep_last": "-1"}, {"prune_days": "x"}, {"failed_log_days": "99999"}):
        resp = await client.post("/api/coprs/alice/p/modify/", headers=auth, data=bad)
        assert resp.status == 400
        body = await resp.json()
        assert body["output"] == "notok" and next(iter(bad)) in body["error"]

    user = await app[DB].read(store.get_user, "alice")
    project = await app[DB].read(store.get_project, "alice", "p")
    build_id = await add_pending(app, project.id, user.id)
    await wait_state(app, build_id, "succeeded")

    async def usage():
        answer = await (await client.get("/api/disk_usage/")).json()
        return answer

    project_dir = app[PUBLISHER].project_dir("alice", "p")

    def bytes_on_disk() -> int:
        return sum(
            f.stat().st_size
            for f in project_dir.rglob("*")
            if f.is_file() and "repodata" not in f.parts
        )

    # Each chroot's bytes are recorded just after its end is stored (the build may read
    # succeeded before the last chroot is counted): wait until both agree.
    for _ in range(100):
        answer, on_disk = await usage(), bytes_on_disk()
        if answer["total"] == on_disk:
            break
        await asyncio.sleep(0.05)
    assert answer["total"] == on_disk > 0
    assert answer["projects"] == [{"owner": "alice", "project": "p", "disk_usage": on_disk}]
    detail = (await (await client.get("/api/coprs/alice/p/detail/")).json())["detail"]
    assert detail["disk_usage"] == on_disk


async def test_web_edits_project_and_package_retention(aiohttp_client, make_app):
    client = await aiohttp_client(make_app(start_dispatcher=False))
    _, csrf = await setup_alice(client)
    await store_build(client, package=True)
    page = await (await client.get("/coprs/alice/hello/")).text()
    assert 'id="disk-usage" data-bytes="0"' in page
    assert 'id="auto-prune">no<' in page  # the form sent no auto_prune checkbox
    assert "/coprs/alice/hello/package/hello/retention/" in page

    data = {F41: "y", F40: "y", "auto_prune": "y", "prune_days": "7", "keep_last": "3"}
    resp = await post(client, "/coprs/alice/hello/edit/", data, csrf)
    assert resp.status == 303
    project = await client.server.app[DB].read(store.get_project, "alice", "hello")
    assert (project.prune_days, project.keep_last, project.failed_log_days) == (7, 3, 30)
    page = await (await client.get("/coprs/alice/hello/")).text()
    assert "superseded builds after 7 days, failed ones after 30 days" in page
    resp = await post(client, "/coprs/alice/hello/edit/", {**data, "keep_last": "-2"}, csrf)
    assert resp.status == 400
    assert 'id="keep_last-error"' in await resp.text()

    path = "/coprs/alice/hello/package/hello/retention/"
    form = await (await client.get(path)).text()
    assert 'name="keep_last" value=""' in form
    resp = await post(client, path, {"auto_prune": "n", "keep_last": "2"}, csrf)
    assert resp.status == 303
    own = await client.server.app[DB].read(store.package_settings, project.id)
    assert own == {
        "hello": {"auto_prune": 0, "prune_days": None, "keep_last": 2, "failed_log_days": None}
    }
    detail = await (await client.get("/api/coprs/alice/hello/detail/")).json()
    assert detail["detail"]["package_retention"] == own
    page = await (await client.get("/coprs/alice/hello/")).text()
    assert "auto_prune = 0, keep_last = 2" in page
    resp = await post(client, path, {"auto_prune": "maybe"}, csrf)
    assert resp.status == 400
    resp = await post(client, path, {"auto_prune": "", "keep_last": ""}, csrf)
    assert resp.status == 303
    assert await client.server.app[DB].read(store.package_settings, project.id) == {}
    assert (await client.get("/coprs/alice/hello/package/nope/retention/")).status == 404

    # Someone who may not modify the project may not change its packages either.
    await add_user(client.server.app, "bob")
    await client.post("/logout/", data={"csrf_token": csrf})
    bob_csrf = await sign_in(client, "bob")
    resp = await post(client, path, {"keep_last": "1"}, bob_csrf)
    assert resp.status == 403


async def test_web_deletes_a_finished_build(aiohttp_client, make_app):
    client = await aiohttp_client(make_app(start_dispatcher=False))
    _, csrf = await setup_alice(client)
    done = await store_build(client, package=True, moves={F40: State.SUCCEEDED, F41: State.FAILED})
    running = await store_build(client, package=True, moves={F40: State.RUNNING})
    page = await (await client.get(f"/builds/{done}/")).text()
    assert 'id="delete-form"' in page
    assert 'id="delete-form"' not in await (await client.get(f"/builds/{running}/")).text()

    # The page's button asks first: a confirmation page whose form does the delete.
    confirm = await (await client.get(f"/builds/{done}/delete/")).text()
    assert 'id="confirm-delete-form"' in confirm and "cannot be undone" in confirm
    assert (await client.get(f"/builds/{done}/")).status == 200  # nothing deleted yet
    unfinished = await (await client.get(f"/builds/{running}/delete/")).text()
    assert 'id="confirm-delete-form"' not in unfinished and "cancel it first" in unfinished

    resp = await post(client, f"/builds/{running}/delete/", {}, csrf)
    assert resp.status == 409
    resp = await post(client, f"/builds/{done}/delete/", {}, None)  # no CSRF token
    assert resp.status == 403
    resp = await post(client, f"/builds/{done}/delete/", {}, csrf)
    assert resp.status == 303 and resp.headers["Location"] == "/coprs/alice/hello/builds/"
    assert (await client.get(f"/builds/{done}/")).status == 404
    await create(client, csrf, "other")  # the page still works for the project


async def test_build_delete_command(aiohttp_client, make_app, tmp_path):
    app, client = await start(aiohttp_client, make_app, FakeBuilder())
    alice, project_id = await add_project(app)
    first = await add_pending(app, project_id, alice.id)
    second = await add_pending(app, project_id, alice.id)
    await wait_state(app, first, "succeeded")
    await wait_state(app, second, "succeeded")
    (tmp_path / "copr-lite.ini").write_text(f"[server]\ndata_dir = {tmp_path / 'data'}\n")
    build_dir = app[PUBLISHER].build_dir("alice", "proj", F40, first, "hello")
    assert build_dir.is_dir()

    status, out, err = await cli("build", "delete", str(first), cwd=tmp_path)
    assert (status, out.strip()) == (0, f"deleted build(s) {first}"), err
    assert not build_dir.exists()
    assert (await client.get(f"/api/coprs/build/{first}/")).status == 404
    status, _, err = await cli("build", "delete", "999999", cwd=tmp_path)
    assert status == 1 and "Build 999999 does not exist" in err

    await client.close()  # no server: the command does the work itself
    status, out, err = await cli("build", "delete", str(second), cwd=tmp_path)
    assert status == 0, err
    assert re.search(rf"deleted build\(s\) {second}$", out.strip())
    assert not app[PUBLISHER].build_dir("alice", "proj", F40, second, "hello").exists()


async def test_a_finished_log_is_compressed_and_served_at_both_names(aiohttp_client, make_app):
    app, client = await start(aiohttp_client, make_app, FakeBuilder())
    alice, project_id = await add_project(app)
    build_id = await add_pending(app, project_id, alice.id)
    await wait_state(app, build_id, "succeeded")
    build_dir = app[PUBLISHER].build_dir("alice", "proj", F40, build_id, "hello")

    async def sealed():
        return (build_dir / "builder-live.log.gz").is_file()

    await wait_until(sealed)
    assert not (build_dir / "builder-live.log").exists()
    base = f"/results/alice/proj/{F40}/{build_id:08d}-hello/"
    for name in ("builder-live.log", "builder-live.log.gz"):
        # A client that accepts gzip gets the compressed bytes, marked as such.
        resp = await client.get(base + name, auto_decompress=False)
        assert resp.headers["Content-Encoding"] == "gzip"
        assert resp.headers["Content-Type"].startswith("text/plain")
        assert gzip.decompress(await resp.read()).decode().count("fake build step") == 1
        # One that does not gets plain text.
        resp = await client.get(base + name, headers={"Accept-Encoding": "identity"})
        assert resp.status == 200 and "Content-Encoding" not in resp.headers
        assert "fake build step" in await resp.text()
    # The live log of a finished chroot is read from the compressed file.
    resp = await client.get(f"/builds/{build_id}/{F40}/live-log")
    text = await resp.text()
    assert "data: fake build step" in text and text.endswith("event: end\ndata: succeeded\n\n")
    assert (await client.get(base + "nothing.log.gz")).status == 404


async def test_api_v1_build_detail_leaves_out_pruned_chroots(aiohttp_client, make_app):
    client = await aiohttp_client(make_app(start_dispatcher=False))
    await setup_alice(client)
    build_id = await store_build(
        client, package=True, moves={F40: State.SUCCEEDED, F41: State.FAILED}
    )

    def prune_one(conn):  # type: ignore[no-untyped-def]
        conn.execute(
            "UPDATE build_chroots SET pruned_on = 1 WHERE build_id = ? AND chroot = ?",
            (build_id, F41),
        )

    await client.server.app[DB].write(prune_one)
    detail = await (await client.get(f"/api/coprs/build/{build_id}/")).json()
    assert list(detail["results_by_chroot"]) == [F40]
    assert detail["chroots"][F41] == "failed"  # its state stays readable
