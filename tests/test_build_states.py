"""build_status answers from the in-memory build states: kept until the build changes,
never kept from a read that a write overtook, forgotten with the build or its project."""

from __future__ import annotations

import orjson
import pytest
from conftest import new_project

from copr_lite import services, store
from copr_lite.build_states import STATES, BuildStates
from copr_lite.keys import ANSWERS, BUILD_STATES, DB, SERVICES
from copr_lite.states import State
from copr_lite.testing import basic_auth

CHROOTS = ("epel-9-x86_64", "fedora-41-x86_64")


@pytest.fixture
async def client(aiohttp_client, make_app):
    """Build states are arranged by the tests: no dispatcher moves them."""
    return await aiohttp_client(make_app(start_dispatcher=False))


@pytest.fixture
async def token(client, make_user):
    _, token = await make_user("alice")
    for name in ("one", "two"):
        await new_project(client, token, name, CHROOTS)
    return token


async def submit(client, token, project: str) -> int:
    resp = await client.post(
        f"/api/coprs/alice/{project}/new_build/",
        data={"pkgs": "http://127.0.0.1:9/hello-1.0-1.src.rpm"},
        headers=basic_auth(token),
    )
    assert resp.status == 200, await resp.text()
    return int((await resp.json())["id"])


async def status(client, token, build_id: int) -> tuple[int, dict[str, str]]:
    resp = await client.get(f"/api/coprs/build_status/{build_id}/", headers=basic_auth(token))
    return resp.status, await resp.json()


async def test_a_state_is_kept_until_its_build_changes(client, token):
    app = client.server.app
    db, states = app[DB], app[BUILD_STATES]
    build_id, sibling = await submit(client, token, "one"), await submit(client, token, "one")
    assert states.get(build_id) is None
    assert await status(client, token, build_id) == (200, {"output": "ok", "status": "importing"})
    assert await status(client, token, sibling) == (200, {"output": "ok", "status": "importing"})
    assert states.get(build_id) == "importing"

    # Served from memory: the database is not read again while nothing changed.
    reads = []
    real = db.read_point

    async def counted(fn, *args):
        reads.append(args)
        return await real(fn, *args)

    db.read_point = counted  # type: ignore[method-assign]
    assert await status(client, token, build_id) == (200, {"output": "ok", "status": "importing"})
    assert reads == []

    # A state change clears that build only; the next poll reads the new state.
    for state in (State.PENDING, State.STARTING, State.RUNNING):
        assert await db.write(store.set_chroot_state, build_id, CHROOTS[0], state)
    assert states.get(build_id) is None and states.get(sibling) == "importing"
    assert (await status(client, token, build_id))[1]["status"] == "running"
    assert reads == [(build_id,)]

    # The answers are byte for byte what encoding them gives.
    resp = await client.get(f"/api/coprs/build_status/{build_id}/", headers=basic_auth(token))
    assert await resp.read() == orjson.dumps({"output": "ok", "status": "running"})

    # Cancelling is a change of the build's row.
    resp = await client.post(f"/api/coprs/cancel_build/{build_id}/", headers=basic_auth(token))
    assert resp.status == 200, await resp.text()
    assert (await status(client, token, build_id))[1]["status"] == "canceled"


async def test_a_state_read_before_a_write_is_not_kept(client, token):
    app = client.server.app
    db, states = app[DB], app[BUILD_STATES]
    build_id = await submit(client, token, "one")
    snapshot = states.version
    before = await db.read_point(store.get_build_state, build_id)
    for chroot in CHROOTS:
        assert await db.write(store.set_chroot_state, build_id, chroot, State.PENDING)
    states.put(build_id, snapshot, "importing")  # read before the write: stale
    assert states.get(build_id) is None
    assert before is not None
    assert (await status(client, token, build_id))[1]["status"] == "pending"
    assert states.get(build_id) == "pending"


async def test_deleted_builds_and_projects_are_forgotten(client, token):
    app = client.server.app
    states = app[BUILD_STATES]
    deleted, in_project = await submit(client, token, "one"), await submit(client, token, "two")
    for build_id in (deleted, in_project):
        assert (await status(client, token, build_id))[0] == 200
        assert states.get(build_id) == "importing"

    for chroot in CHROOTS:  # only finished builds may be deleted
        for state in (State.PENDING, State.STARTING, State.RUNNING, State.SUCCEEDED):
            assert await app[DB].write(store.set_chroot_state, deleted, chroot, state)
    assert (await status(client, token, deleted))[1]["status"] == "succeeded"
    alice = await app[DB].read(store.get_user, "alice")
    assert await services.delete_builds(app[SERVICES], alice, [deleted]) == [deleted]
    assert states.get(deleted) is None
    code, body = await status(client, token, deleted)
    assert code == 404 and body["output"] == "notok"

    resp = await client.post(
        "/api/coprs/alice/two/delete/", headers=basic_auth(token), data={"verify": "yes"}
    )
    assert resp.status == 200, await resp.text()
    assert states.get(in_project) is None
    assert (await status(client, token, in_project))[0] == 404


async def test_the_table_grows_to_its_limit_only(client):
    app = client.server.app
    states = BuildStates(app[DB], app[ANSWERS], limit=100)
    snapshot = states.version
    for build_id, state in ((5, "succeeded"), (60, "failed"), (99, "canceled")):
        states.put(build_id, snapshot, state)
        assert states.get(build_id) == state
    states.put(100, snapshot, "running")  # past the limit: not kept
    assert states.get(100) is None and states.get(10**12) is None
    assert states.get(6) is None
    assert len(states._codes) <= 100
    assert set(STATES) >= {s.value for s in State} | {"unknown"}
