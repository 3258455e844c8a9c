"""Deleting finished builds: rows, results and logs go, the repositories are republished
without them, and the monitor falls back to the package's previous build."""

from __future__ import annotations

import gzip
import re

import pytest
from test_dispatcher import CHROOTS, add_pending, add_project, start, wait_state
from test_retention import two_built

from copr_lite import services, store
from copr_lite.errors import Conflict, Forbidden, NotFound
from copr_lite.keys import DB, PUBLISHER, SERVICES
from copr_lite.testing import FakeBuilder, Script, add_user

F40 = "fedora-40-x86_64"


def published(app, chroot: str = F40) -> list[str]:
    """The package locations createrepo_c listed in the chroot's primary metadata."""
    repodata = app[PUBLISHER].chroot_dir("alice", "proj", chroot) / "repodata"
    primary = next(repodata.glob("*-primary.xml.gz"))
    return sorted(
        re.findall(r'<location href="([^"]+)"', gzip.decompress(primary.read_bytes()).decode())
    )


async def latest_build(app, project_id: int, chroot: str = F40) -> int | None:
    latest, _ = await app[DB].read(store.monitor, project_id, None)
    return next((row.build_id for row in latest if row.chroot == chroot), None)


async def test_delete_removes_results_and_republishes(aiohttp_client, make_app):
    app, _ = await start(aiohttp_client, make_app, FakeBuilder())
    alice, project_id = await add_project(app)
    older, newer = await two_built(app, project_id, alice.id)
    publisher = app[PUBLISHER]
    newer_dir = publisher.build_dir("alice", "proj", F40, newer, "hello")
    assert newer_dir.is_dir() and len(published(app)) == 2
    assert await latest_build(app, project_id) == newer

    assert await services.delete_builds(app[SERVICES], alice, [newer]) == [newer]

    assert await app[DB].read(store.get_build, newer) is None
    for chroot in CHROOTS:
        assert not publisher.build_dir("alice", "proj", chroot, newer, "hello").exists()
        assert publisher.build_dir("alice", "proj", chroot, older, "hello").is_dir()
        assert [p.split("/")[0] for p in published(app, chroot)] == [f"{older:08d}-hello"]
    assert not publisher.import_dir("alice", "proj", newer).exists()
    assert await latest_build(app, project_id) == older

    await services.delete_builds(app[SERVICES], alice, [older])
    assert published(app) == []
    assert await latest_build(app, project_id) is None


async def test_unfinished_or_unknown_builds_stop_the_whole_delete(aiohttp_client, make_app):
    app, _ = await start(
        aiohttp_client, make_app, FakeBuilder(scripts={"slow": Script(seconds=60)})
    )
    alice, project_id = await add_project(app)
    done = await add_pending(app, project_id, alice.id)
    await wait_state(app, done, "succeeded")
    slow = await add_pending(app, project_id, alice.id, pkg="slow")
    await wait_state(app, slow, "running")

    with pytest.raises(Conflict, match=f"`{slow}` which is not finished"):
        await services.delete_builds(app[SERVICES], alice, [done, slow])
    with pytest.raises(NotFound, match="Build 999999 does not exist"):
        await services.delete_builds(app[SERVICES], alice, [done, 999999])
    assert await app[DB].read(store.get_build, done) is not None
    assert len(published(app)) == 1


async def test_only_the_submitter_or_a_project_admin_deletes(aiohttp_client, make_app):
    app, _ = await start(aiohttp_client, make_app, FakeBuilder())
    alice, project_id = await add_project(app)
    bob, _ = await add_user(app, "bob")
    carol, _ = await add_user(app, "carol")
    await app[DB].write(store.grant, project_id, bob.id, "builder")
    by_bob = await add_pending(app, project_id, bob.id)
    by_alice = await add_pending(app, project_id, alice.id)
    await wait_state(app, by_bob, "succeeded")
    await wait_state(app, by_alice, "succeeded")

    with pytest.raises(Forbidden, match=f"not allowed to delete build {by_alice}"):
        await services.delete_builds(app[SERVICES], bob, [by_alice])
    with pytest.raises(Forbidden):
        await services.delete_builds(app[SERVICES], carol, [by_bob])
    assert await services.delete_builds(app[SERVICES], bob, [by_bob]) == [by_bob]
    await app[DB].write(store.grant, project_id, carol.id, "admin")
    assert await services.delete_builds(app[SERVICES], carol, [by_alice]) == [by_alice]
