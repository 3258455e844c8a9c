"""The dispatcher with FakeBuilder: limits, fairness, timeout, cancel, skip, recovery, hooks."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import pytest

from copr_lite import hookimpl, store
from copr_lite.builders import Outcome, PackageInfo
from copr_lite.keys import CONFIG, DB, DISPATCHER
from copr_lite.states import State
from copr_lite.testing import (
    BuilderPlugin,
    FakeBuilder,
    Script,
    add_user,
    basic_auth,
    insert_imported_builds,
    read_log,
    wait_until,
)

CHROOTS = {"fedora-40-x86_64": "fake", "epel-9-x86_64": "fake"}


@dataclass
class Events:
    """A plugin recording every lifecycle event."""

    seen: list[tuple] = field(default_factory=list)

    @hookimpl
    def startup(self, app):
        self.seen.append(("startup",))

    @hookimpl
    def build_submitted(self, build):
        self.seen.append(("build_submitted", build.id))

    @hookimpl
    def chroot_started(self, build, chroot):
        self.seen.append(("chroot_started", build.id, chroot))

    @hookimpl
    def chroot_finished(self, build, chroot, result, state):
        self.seen.append(("chroot_finished", build.id, chroot, state))

    @hookimpl
    def build_finished(self, build):
        async def later():
            self.seen.append(("build_finished", build.id))

        return later()  # awaitables returned by hooks are awaited


async def start(aiohttp_client, make_app, builder, *extra, **settings):
    settings.setdefault("chroots", CHROOTS)
    app = make_app(plugins=[BuilderPlugin(builder), *extra], **settings)
    client = await aiohttp_client(app)
    return app, client


async def add_project(app, owner="alice", name="proj", chroots=tuple(CHROOTS)):
    db = app[DB]
    user = await db.read(store.get_user, owner)
    if user is None:
        user, _ = await add_user(app, owner)
    project_id = await db.write(store.create_project, user.id, {"name": name}, list(chroots))
    return user, project_id


async def add_pending(
    app,
    project_id,
    user_id,
    pkg="hello",
    chroots=tuple(CHROOTS),
    *,
    sha=None,
    seconds=60,
    background=False,
    count=1,
):
    """Store `count` builds whose SRPM import is done (their chroots are pending)."""
    ids = await app[DB].write(
        insert_imported_builds,
        project_id,
        user_id,
        chroots,
        package=PackageInfo(pkg, None, "1.0", "1", "src"),
        count=count,
        sha=sha,
        timeout=seconds,
        background=background,
    )
    app[DISPATCHER].wake()
    return ids[0] if count == 1 else ids


async def build_to(app, state: str, project_id, user_id, *args, **kwargs) -> int:
    """add_pending(...) a build, and wait until every chroot of it is in `state`."""
    build_id = await add_pending(app, project_id, user_id, *args, **kwargs)
    await wait_state(app, build_id, state)
    return build_id


async def _exists(path) -> bool:
    return path.exists()


def states(app, build_id):
    async def read():
        build = await app[DB].read(store.get_build, build_id)
        return {c.chroot: State.from_code(c.status).value for c in build.chroots}

    return read


async def wait_state(app, build_id, expected: dict[str, str] | str, within=15.0):
    async def done():
        now = await states(app, build_id)()
        if isinstance(expected, str):
            return set(now.values()) == {expected}
        return now == expected

    await wait_until(done, within=within)


async def test_success_publishes_results_and_fires_every_hook(aiohttp_client, make_app):
    builder, events = FakeBuilder(), Events()
    app, _ = await start(aiohttp_client, make_app, builder, events)
    user, project_id = await add_project(app)
    build_id = await build_to(app, "succeeded", project_id, user.id)
    build = await app[DB].read(store.get_build, build_id)
    assert build.built_packages == ("hello 1.0",)
    assert build.started_on is not None and build.ended_on is not None
    results = app[CONFIG].data_dir / "results" / "alice" / "proj"
    for chroot, dist in (("fedora-40-x86_64", ".fc40"), ("epel-9-x86_64", ".el9")):
        build_dir = results / chroot / f"{build_id:08d}-hello"
        assert (build_dir / "success").exists()
        data = json.loads((build_dir / "results.json").read_text())
        assert data["packages"][0]["release"] == f"1{dist}"
        assert "fake build step" in read_log(build_dir)
        assert (results / chroot / "repodata" / "repomd.xml").exists()
    await wait_until(lambda: _has(events, ("build_finished", build_id)))
    kinds = [e[0] for e in events.seen]
    assert kinds[0] == "startup"
    assert kinds.count("chroot_started") == 2
    assert ("chroot_finished", build_id, "epel-9-x86_64", "succeeded") in events.seen
    assert kinds.count("build_finished") == 1
    assert not (app[CONFIG].data_dir / "work" / f"{build_id}-epel-9-x86_64").exists()


async def _has(events, item):
    return item in events.seen


async def test_failure_is_recorded_with_its_reason(aiohttp_client, make_app):
    builder = FakeBuilder(scripts={"broken": Script(Outcome.FAILED, fail_reason="no luck")})
    app, client = await start(aiohttp_client, make_app, builder)
    user, project_id = await add_project(app)
    build_id = await build_to(app, "failed", project_id, user.id, "broken", ["epel-9-x86_64"])
    detail = await (await client.get(f"/api/coprs/build/{build_id}/")).json()
    assert detail["fail_reasons"] == {"epel-9-x86_64": "no luck"}
    build_dir = app[CONFIG].data_dir / "results/alice/proj/epel-9-x86_64" / f"{build_id:08d}-broken"
    assert (build_dir / "fail").exists()


async def test_global_and_per_builder_limits(aiohttp_client, make_app):
    active, peak = 0, 0

    class Counting(FakeBuilder):
        async def build(self, job, ctx):
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            try:
                return await super().build(job, ctx)
            finally:
                active -= 1

    builder = Counting(scripts={"hello": Script(seconds=0.2)})
    app, _ = await start(aiohttp_client, make_app, builder, concurrency=3)
    user, project_id = await add_project(app)
    ids = [await add_pending(app, project_id, user.id) for _ in range(4)]
    for build_id in ids:
        await wait_state(app, build_id, "succeeded")
    assert peak == 3

    active = peak = 0
    builder.concurrency = 1
    ids = [await add_pending(app, project_id, user.id) for _ in range(3)]
    for build_id in ids:
        await wait_state(app, build_id, "succeeded")
    assert peak == 1


async def test_one_owners_queue_does_not_starve_another(aiohttp_client, make_app):
    builder = FakeBuilder(scripts={"flood": Script(seconds=0.1), "single": Script()})
    app, _ = await start(aiohttp_client, make_app, builder, concurrency=1)
    alice, alice_project = await add_project(app, "alice")
    await add_pending(app, alice_project, alice.id, "flood", ["epel-9-x86_64"], count=1000)
    bob, bob_project = await add_project(app, "bob")
    single = await add_pending(app, bob_project, bob.id, "single", ["epel-9-x86_64"])
    started_before = len(builder.started)  # alice's, while bob's user and project were made
    await wait_state(app, single, "succeeded")
    # At most the build running when bob's arrived, and one claimed in the same round.
    position = builder.started.index((single, "epel-9-x86_64"))
    assert position <= started_before + 1, builder.started[:6]


async def test_timeout_fails_the_chroot(aiohttp_client, make_app):
    builder = FakeBuilder(scripts={"slow": Script(seconds=60)})
    app, client = await start(aiohttp_client, make_app, builder)
    user, project_id = await add_project(app)
    build_id = await add_pending(app, project_id, user.id, "slow", ["epel-9-x86_64"], seconds=1)
    await wait_state(app, build_id, "failed", within=10)
    detail = await (await client.get(f"/api/coprs/build/{build_id}/")).json()
    assert detail["fail_reasons"]["epel-9-x86_64"] == "build timed out after 1 s"
    assert builder.canceled == [(build_id, "epel-9-x86_64")]


async def test_cancel_stops_the_running_builder_and_discards_results(aiohttp_client, make_app):
    builder = FakeBuilder(scripts={"slow": Script(seconds=60)})
    app, client = await start(aiohttp_client, make_app, builder)
    user, project_id = await add_project(app)
    token = (await add_user(app, "other-admin", admin=True))[1]
    build_id = await add_pending(app, project_id, user.id, "slow")
    await wait_state(app, build_id, "running")
    resp = await client.post(f"/api/coprs/cancel_build/{build_id}/", headers=basic_auth(token))
    assert resp.status == 200
    assert sorted(builder.canceled) == sorted((build_id, c) for c in CHROOTS)
    await wait_state(app, build_id, "canceled")
    chroot_dir = app[CONFIG].data_dir / "results/alice/proj/epel-9-x86_64"
    # The partial results are gone; the log stays, saying what happened.
    build_dir = chroot_dir / f"{build_id:08d}-slow"
    # Compressed once the chroot has ended, as every finished log.
    await wait_until(lambda: _exists(build_dir / "builder-live.log.gz"))
    assert [p.name for p in build_dir.iterdir()] == ["builder-live.log.gz"]
    assert "Build canceled" in read_log(build_dir)
    assert app[DISPATCHER].running == []


async def test_identical_srpm_is_skipped(aiohttp_client, make_app):
    builder = FakeBuilder()
    app, _ = await start(aiohttp_client, make_app, builder)
    user, project_id = await add_project(app)
    await build_to(app, "succeeded", project_id, user.id, sha="same")
    second = await build_to(app, "skipped", project_id, user.id, sha="same")
    assert all(key[0] != second for key in builder.started)


async def test_interrupted_chroots_are_requeued_once_then_failed(
    aiohttp_client, make_app, make_config
):
    from copr_lite.app import create_app

    builder = FakeBuilder()
    config = make_config(chroots=CHROOTS)
    first = create_app(config, plugins=[BuilderPlugin(builder)], load_entrypoints=False)
    client = await aiohttp_client(first)
    user, project_id = await add_project(first)
    await first[DISPATCHER].stop()  # no dispatching while rows are arranged

    def arrange(conn):
        ids = []
        for attempts in (0, 1):
            [build_id] = store.insert_builds(
                conn,
                project_id,
                user.id,
                [store.NewBuild("http://x.example/a-1-1.src.rpm")],
                ["epel-9-x86_64"],
                memory_reqs=2048,
                timeout=60,
                enable_net=False,
                repos="",
                background=False,
            )
            store.import_succeeded(
                conn,
                build_id,
                "/x.src.rpm",
                f"s{build_id}",
                PackageInfo("a", None, "1", "1", "src"),
            )
            for state in (State.STARTING, State.RUNNING):
                store.set_chroot_state(conn, build_id, "epel-9-x86_64", state)
            conn.execute(
                "UPDATE build_chroots SET attempts = ? WHERE build_id = ?", (attempts, build_id)
            )
            ids.append(build_id)
        return ids

    fresh, retried = await first[DB].write(arrange)
    await client.close()

    second = create_app(config, plugins=[BuilderPlugin(builder)], load_entrypoints=False)
    await aiohttp_client(second)
    await wait_state(second, fresh, "succeeded")
    await wait_state(second, retried, "failed")
    build = await second[DB].read(store.get_build, retried)
    assert build.chroots[0].fail_reason == "the server stopped twice while building this chroot"


async def test_shutdown_puts_running_chroots_back_in_the_queue(aiohttp_client, make_app):
    builder = FakeBuilder(scripts={"slow": Script(seconds=60)})
    app, _ = await start(aiohttp_client, make_app, builder)
    user, project_id = await add_project(app)
    build_id = await add_pending(app, project_id, user.id, "slow", ["epel-9-x86_64"])
    await wait_state(app, build_id, "running")
    await app[DISPATCHER].stop()
    assert await states(app, build_id)() == {"epel-9-x86_64": "pending"}


@pytest.mark.parametrize("concurrency", [1])
async def test_unknown_builder_in_config_is_a_startup_error(make_app, concurrency):
    from copr_lite.config import ConfigError

    with pytest.raises(ConfigError, match="no plugin provides: nosuch"):
        make_app(chroots={"epel-9-x86_64": "nosuch"}, concurrency=concurrency)


async def test_events_of_many_builds_do_not_block_submission(aiohttp_client, make_app):
    builder = FakeBuilder()
    app, client = await start(aiohttp_client, make_app, builder)
    await add_project(app)
    token = (await add_user(app, "bob", admin=True))[1]
    responses = await asyncio.gather(
        *(
            client.post(
                "/api/coprs/alice/proj/new_build/",
                headers=basic_auth(token),
                data={"pkgs": "http://127.0.0.1:9/x-1-1.src.rpm"},
            )
            for _ in range(10)
        )
    )
    assert all(r.status == 200 for r in responses)
