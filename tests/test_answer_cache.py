"""Cached answers: evicted by what they depend on only, computed once when asked together,
and the monitor's kept rows byte for byte what encoding the whole answer gives; build_status
from the build states table, kept until the build changes."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from conftest import new_project

from copr_lite import services, store
from copr_lite.build_states import STATES, BuildStates
from copr_lite.builders import PackageInfo
from copr_lite.cache import AnswerCache, Fresh
from copr_lite.changes import build_tag, chroots_tag, project_tag
from copr_lite.keys import ANSWERS, BUILD_STATES, CONFIG, DB, SERVICES
from copr_lite.monitor import build_entry, package_entries
from copr_lite.states import State
from copr_lite.testing import basic_auth
from copr_lite.views.common import results_base

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


async def submit(client, token, project: str, package: str) -> int:
    resp = await client.post(
        f"/api/coprs/alice/{project}/new_build/",
        data={"pkgs": f"http://127.0.0.1:9/{package}-1.0-1.src.rpm"},
        headers=basic_auth(token),
    )
    assert resp.status == 200, await resp.text()
    build_id = int((await resp.json())["id"])
    await client.server.app[DB].write(
        store.set_build_package, build_id, PackageInfo(package, None, "1.0", "1", "src")
    )
    return build_id


async def succeed(db, build_id: int) -> None:
    """Move every chroot of the build through its states to succeeded."""
    for chroot in CHROOTS:
        for state in (State.PENDING, State.STARTING, State.RUNNING, State.SUCCEEDED):
            assert await db.write(store.set_chroot_state, build_id, chroot, state)


def cached(client, key) -> bytes | None:
    return client.server.app[ANSWERS].get(key)


async def test_a_write_evicts_only_what_depends_on_it(client, token):
    db = client.server.app[DB]
    first = await submit(client, token, "one", "hello")
    second = await submit(client, token, "one", "world")
    other = await submit(client, token, "two", "hello")
    auth = basic_auth(token)
    urls = {
        ("monitor", "alice", "one", None): "/api/coprs/alice/one/monitor/",
        ("monitor", "alice", "two", None): "/api/coprs/alice/two/monitor/",
        ("detail", "alice", "one"): "/api/coprs/alice/one/detail/",
        ("detail", "alice", "two"): "/api/coprs/alice/two/detail/",
        ("build", first): f"/api/coprs/build/{first}/",
        ("list", "alice"): "/api/coprs/alice/",
    }

    async def read_all() -> None:
        for url in urls.values():
            assert (await client.get(url, headers=auth)).status == 200
        for build_id in (first, second, other):
            resp = await client.get(f"/api/coprs/build_status/{build_id}/", headers=auth)
            assert resp.status == 200

    def kept() -> set[object]:
        answers = {key for key in urls if cached(client, key) is not None}
        states = client.server.app[BUILD_STATES]
        known = {("status", i) for i in (first, second, other) if states.get(i) is not None}
        return answers | known

    everything = set(urls) | {("status", first), ("status", second), ("status", other)}

    await read_all()
    assert kept() == everything

    # A new build in project two leaves every answer of project one alone.
    await submit(client, token, "two", "extra")
    assert kept() == everything - {
        ("monitor", "alice", "two", None),
        ("detail", "alice", "two"),
    }

    # A state change of one build evicts that build and its own project's monitor and
    # detail, not its sibling's status nor the other project.
    await read_all()
    await db.write(store.set_chroot_state, first, CHROOTS[0], State.PENDING)
    assert kept() == everything - {
        ("monitor", "alice", "one", None),
        ("detail", "alice", "one"),
        ("status", first),
        ("build", first),
    }
    body = await (await client.get(f"/api/coprs/build/{first}/")).json()
    assert body["chroots"][CHROOTS[0]] == "pending"

    # A change of a project itself reaches its owner's project list.
    await read_all()
    resp = await client.post(
        "/api/coprs/alice/two/modify/", headers=auth, data={"description": "changed"}
    )
    assert resp.status == 200
    assert ("list", "alice") not in kept()
    listed = await (await client.get("/api/coprs/alice/")).json()
    assert {r["name"]: r["description"] for r in listed["repos"]}["two"] == "changed"
    assert ("monitor", "alice", "one", None) in kept()


async def test_deleting_a_project_evicts_its_builds(client, token):
    build_id = await submit(client, token, "two", "hello")
    auth = basic_auth(token)
    assert (await client.get(f"/api/coprs/build/{build_id}/")).status == 200
    resp = await client.post("/api/coprs/alice/two/delete/", headers=auth, data={"verify": "yes"})
    assert resp.status == 200, await resp.text()
    assert (await client.get(f"/api/coprs/build/{build_id}/")).status == 404
    assert (await client.get("/api/coprs/alice/two/monitor/")).status == 404


async def test_the_monitor_kept_rows_are_the_whole_answer(client, token):
    """After every kind of change the incremental monitor equals a full encoding."""
    app = client.server.app
    db = app[DB]
    hello = [await submit(client, token, "one", "hello") for _ in range(3)]
    world = await submit(client, token, "one", "world")

    async def check() -> None:
        got = await (await client.get("/api/coprs/alice/one/monitor/")).read()
        project, _, chroots = await db.read(store.get_project_with_roles, "alice", "one", None)
        latest, builds = await db.read(store.monitor, project.id, None)
        base = results_base(app[CONFIG], project.owner_name, project.name)
        packages = package_entries(latest, chroots)
        whole = {
            "output": "ok",
            "chroots": list(chroots),
            "builds": [build_entry(build, base) for build in builds],
            "packages": [packages[name] for name in sorted(packages)],
        }
        assert got == orjson.dumps(whole)

    await check()
    await db.write(store.set_chroot_state, hello[2], CHROOTS[0], State.PENDING)
    await db.write(store.set_chroot_state, hello[2], CHROOTS[0], State.RUNNING)
    await check()
    await db.write(
        store.finish_chroot,
        hello[2],
        CHROOTS[0],
        State.SUCCEEDED,
        None,
        [("hello", None, "1.0", "1", "x86_64")],
    )
    await check()
    await db.write(store.cancel_build, hello[1])  # hello's newest stays hello[2]
    await db.write(store.cancel_build, world)  # world leaves the monitor
    await check()
    await submit(client, token, "one", "newcomer")
    await check()
    resp = await client.post(
        "/api/coprs/alice/one/modify/", headers=basic_auth(token), data={"chroots": CHROOTS[1]}
    )
    assert resp.status == 200
    await check()


async def test_concurrent_requests_compute_once(client, token):
    app = client.server.app
    cache, db = app[ANSWERS], app[DB]
    computed = 0

    async def compute() -> Fresh:
        nonlocal computed
        computed += 1
        await asyncio.sleep(0.05)  # a slow read: the others arrive meanwhile
        count = await db.fetchone("SELECT count(*) FROM builds")
        return Fresh(b"%d" % count[0], [project_tag(1)])

    bodies = await asyncio.gather(*(cache.answer("k", compute) for _ in range(20)))
    assert computed == 1
    assert set(bodies) == {b"0"}
    # Through HTTP: sixteen monitors at once on an empty cache are one computation.
    before = cache.version
    answers = await asyncio.gather(
        *(client.get("/api/coprs/alice/one/monitor/") for _ in range(16))
    )
    assert {resp.status for resp in answers} == {200}
    assert len({await resp.read() for resp in answers}) == 1
    assert cache.version == before


async def test_an_answer_read_before_a_write_is_not_served_after_it(client, token):
    app = client.server.app
    cache, db = app[ANSWERS], app[DB]
    build_id = await submit(client, token, "one", "hello")
    started, release = asyncio.Event(), asyncio.Event()
    computed = []

    async def compute() -> Fresh:
        state = await db.read(store.get_build_state, build_id)
        computed.append(state)
        started.set()
        await release.wait()
        return Fresh(orjson.dumps(state), [build_tag(build_id)])

    first = asyncio.create_task(cache.answer("state", compute))
    await started.wait()
    # The build changes while its old state is being encoded; a request that comes after
    # the change must not get the old state.
    await db.write(store.set_chroot_state, build_id, CHROOTS[0], State.PENDING)
    late = asyncio.create_task(cache.answer("state", compute))
    await asyncio.sleep(0.01)
    release.set()
    old, new = await first, await late
    assert orjson.loads(old) != orjson.loads(new)
    assert State.PENDING.code in orjson.loads(new)[1]
    assert len(computed) == 2
    assert cache.get("state") == new


async def test_an_exception_reaches_every_waiter_and_is_not_kept(client, token):
    cache: AnswerCache = client.server.app[ANSWERS]
    calls = 0

    async def compute() -> Fresh:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise LookupError("gone")

    outcomes = await asyncio.gather(
        *(cache.answer("x", compute) for _ in range(5)), return_exceptions=True
    )
    assert calls == 1
    assert all(isinstance(outcome, LookupError) for outcome in outcomes)
    assert cache.get("x") is None
    resp = await client.get("/api/coprs/build_status/999999/", headers=basic_auth(token))
    assert resp.status == 404
    assert (await resp.json())["output"] == "notok"


async def test_the_cache_stays_within_its_bounds(client):
    cache = AnswerCache(client.server.app[DB], entries=3, size=10)
    for key in "abcd":
        cache.put(key, cache.version, [], b"12")
    assert [cache.get(key) for key in "abcd"] == [None, b"12", b"12", b"12"]
    cache.put("big", cache.version, [], b"123456789")
    assert cache.get("big") == b"123456789"
    assert cache.get("b") is None  # the least recently used went first


async def test_deleted_builds_leave_the_cached_answers(client, token):
    app = client.server.app
    db = app[DB]
    older = await submit(client, token, "one", "hello")
    newer = await submit(client, token, "one", "hello")
    for build_id in (older, newer):
        await succeed(db, build_id)

    async def monitored() -> set[int]:
        body = await (await client.get("/api/coprs/alice/one/monitor/")).json()
        return {build["id"] for build in body["builds"]}

    assert await monitored() == {newer}
    assert (await client.get(f"/api/coprs/build/{newer}/")).status == 200
    alice = await db.read(store.get_user, "alice")
    assert await services.delete_builds(app[SERVICES], alice, [newer]) == [newer]
    assert (await client.get(f"/api/coprs/build/{newer}/")).status == 404
    assert await monitored() == {older}


async def test_a_waiter_computes_when_the_computing_request_goes_away(client):
    cache: AnswerCache = client.server.app[ANSWERS]
    started = asyncio.Event()
    calls = 0

    async def compute() -> Fresh:
        nonlocal calls
        calls += 1
        started.set()
        if calls == 1:
            await asyncio.sleep(30)  # the first request is cancelled while it computes
        return Fresh(b"answer", [])

    leader = asyncio.create_task(cache.answer("k", compute))
    await started.wait()
    waiter = asyncio.create_task(cache.answer("k", compute))
    await asyncio.sleep(0.01)
    leader.cancel()
    assert await asyncio.wait_for(waiter, 5) == b"answer"
    assert calls == 2
    with pytest.raises(asyncio.CancelledError):
        await leader


async def test_api_v3_answers_follow_what_they_depend_on(client, token, make_user):
    """v3's cached reads: the all-projects list sees another owner's new project while the
    first owner's list and an unrelated build stay kept, and the monitor loses a package
    deleted through API v3."""
    app = client.server.app
    auth = basic_auth(token)
    bob, _ = await make_user("bob")  # a new user changes every answer: before the reads
    hello = await submit(client, token, "one", "hello")
    world = await submit(client, token, "one", "world")
    for chroot in CHROOTS:  # only a finished build can be deleted
        await app[DB].write(store.set_chroot_state, world, chroot, State.FAILED)

    async def get(url: str) -> dict:
        resp = await client.get(url, headers=auth)
        assert resp.status == 200, await resp.text()
        return await resp.json()

    def names(listed: dict) -> set[str]:
        return {item["full_name"] for item in listed["items"]}

    everyone, alices = "/api_3/project/list", "/api_3/project/list?ownername=alice"
    monitor = "/api_3/monitor?ownername=alice&projectname=one"
    assert names(await get(everyone)) == {"alice/one", "alice/two"}
    assert names(await get(alices)) == {"alice/one", "alice/two"}
    assert (await get(f"/api_3/build/{hello}"))["id"] == hello
    assert {p["name"] for p in (await get(monitor))["packages"]} == {"hello", "world"}

    await app[DB].write(store.create_project, bob.id, {"name": "three"}, list(CHROOTS))
    assert names(await get(everyone)) == {"alice/one", "alice/two", "bob/three"}
    assert cached(client, ("v3 projects", "alice", 0, 100)) is not None
    assert cached(client, ("v3 build", hello)) is not None

    resp = await client.delete(
        "/api_3/package/delete",
        headers=auth,
        json={"ownername": "alice", "projectname": "one", "package_name": "world"},
    )
    assert resp.status == 200, await resp.text()
    assert {p["name"] for p in (await get(monitor))["packages"]} == {"hello"}


async def test_disk_usage_changes_its_project_not_its_chroots(client, token):
    """Recording a chroot's bytes (after every build) changes the project's answers, but
    not its chroots: the monitor's kept package rows stay valid."""
    app = client.server.app
    db = app[DB]
    build_id = await submit(client, token, "one", "hello")
    project = await db.read(store.get_project, "alice", "one")
    seen: list[set] = []
    db.on_change(lambda tags, writes: seen.append(tags))
    await db.write(store.record_chroot_bytes, build_id, CHROOTS[0], 12345)
    assert seen and project_tag(project.id) in seen[-1]
    assert chroots_tag(project.id) not in seen[-1]
    await db.write(store.update_project, project.id, {"description": "changed"})
    assert chroots_tag(project.id) in seen[-1]


# ---------------------------------------------------------------- build states


async def status(client, token, build_id: int) -> tuple[int, dict[str, str]]:
    resp = await client.get(f"/api/coprs/build_status/{build_id}/", headers=basic_auth(token))
    return resp.status, await resp.json()


async def test_a_state_is_kept_until_its_build_changes(client, token):
    app = client.server.app
    db, states = app[DB], app[BUILD_STATES]
    build_id = await submit(client, token, "one", "hello")
    sibling = await submit(client, token, "one", "world")
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
    build_id = await submit(client, token, "one", "hello")
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
    deleted = await submit(client, token, "one", "hello")
    in_project = await submit(client, token, "two", "hello")
    for build_id in (deleted, in_project):
        assert (await status(client, token, build_id))[0] == 200
        assert states.get(build_id) == "importing"

    await succeed(app[DB], deleted)  # only finished builds may be deleted
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
