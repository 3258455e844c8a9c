"""A cancel put into each window of a chroot's start and publish sequence, deterministically.

The dispatcher's `step_hook` pauses the chroot's task at one named step; the cancel goes
through the API while it waits there (or, as a cancel the dispatcher never hears of, into
the database alone); then the task goes on. Whatever the window, the
chroot ends canceled, no process of it is alive, and nothing of it is published. The
builder is the real rpmbuild one; the long SRPM carries a marker in its command lines.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import secrets
import shutil
import sqlite3
from pathlib import Path

import pytest
from test_e2e import long_srpm, marker_pids

from copr_lite import store
from copr_lite.builders import PackageInfo
from copr_lite.conformance import build_conformance_srpms
from copr_lite.engine.importer import import_build
from copr_lite.keys import CONFIG, DB, DISPATCHER
from copr_lite.rpmheader import read_nevra
from copr_lite.states import State
from copr_lite.testing import add_user, basic_auth, store_builds, wait_until

F40 = "fedora-40-x86_64"
MARKER = f"windows_{os.getpid()}_{secrets.token_hex(3)}"

pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("rpmbuild", "createrepo_c", "bwrap")),
    reason="needs rpmbuild, createrepo_c and bwrap (./dev installs them)",
)


@pytest.fixture(scope="module")
def srpms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("window-srpms")
    found = build_conformance_srpms(out)
    return {"good": found["good"], "long": long_srpm(out, MARKER, 150)}


class Pause:
    """A step hook that stops the chroot task at `step` until released."""

    def __init__(self, step: str) -> None:
        self.step = step
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, step: str, build_id: int, chroot: str) -> None:
        if step == self.step:
            self.reached.set()
            await self.release.wait()


async def submit(app, user_id: int, srpm: Path) -> int:
    """Store a build of `srpm` whose import is done (its chroot is pending)."""
    package = PackageInfo(*read_nevra(srpm))

    def tx(conn: sqlite3.Connection) -> int:
        project = store.get_project(conn, "alice", "proj")
        url = f"http://x.example/{srpm.name}"
        [build_id] = store_builds(conn, project.id, user_id, [url], [F40], timeout=120)
        store.import_succeeded(conn, build_id, str(srpm), srpm.name, package)
        return build_id

    build_id = await app[DB].write(tx)
    app[DISPATCHER].wake()
    return build_id


async def chroot_state(app, build_id: int) -> str:
    build = await app[DB].read(store.get_build, build_id)
    return State.from_code(build.chroots[0].status).value


WINDOWS = [
    ("claimed", "long"),  # picked, the database not yet told
    ("starting", "long"),  # starting in the database, nothing prepared
    ("prepared", "long"),  # result dir and live log ready, not yet running
    ("running", "long"),  # running in the database, the builder not yet called
    ("built", "good"),  # the builder is done, nothing published yet
    ("published", "good"),  # in the repository, the final state not yet written
]
# A running builder is stopped by its task's cancellation, which a database-only cancel
# does not give; every other window is closed by the database's answer alone.
CASES = [(step, kind, "api") for step, kind in WINDOWS] + [
    (step, kind, "database") for step, kind in WINDOWS if step != "running"
]


@pytest.mark.parametrize(("step", "kind", "via"), CASES)
async def test_a_cancel_in_each_window_leaves_nothing_running_or_published(
    aiohttp_client, make_app, srpms: dict[str, Path], step: str, kind: str, via: str
) -> None:
    app = make_app(chroots={F40: "rpmbuild"})
    client = await aiohttp_client(app)
    pause = Pause(step)
    app[DISPATCHER].step_hook = pause
    user, token = await add_user(app, "alice")
    resp = await client.post(
        "/api/coprs/alice/new/", data={"name": "proj", "chroots": F40}, headers=basic_auth(token)
    )
    assert resp.status == 200, await resp.text()
    build_id = await submit(app, user.id, srpms[kind])
    await asyncio.wait_for(pause.reached.wait(), 60)

    if via == "api":
        resp = await client.post(f"/api/coprs/cancel_build/{build_id}/", headers=basic_auth(token))
        assert resp.status == 200, await resp.text()
    else:
        assert await app[DB].write(store.cancel_build, build_id) == [F40]
    pause.release.set()

    async def task_gone() -> bool:
        return not app[DISPATCHER].running and not app[DISPATCHER].publishing

    await wait_until(task_gone, within=30)
    assert await chroot_state(app, build_id) == "canceled"
    await asyncio.sleep(0.5)  # a process spawned regardless would have started by now
    assert not marker_pids(MARKER), "a process of the canceled chroot is alive"
    chroot_dir = app[CONFIG].data_dir / "results" / "alice" / "proj" / F40
    assert not list(chroot_dir.glob("*/*.rpm")), "the canceled chroot's RPMs are published"
    primary = list((chroot_dir / "repodata").glob("*primary.xml*"))
    if primary:
        opener = gzip.open if primary[0].suffix == ".gz" else open
        with opener(primary[0], "rt") as f:
            assert 'packages="0"' in f.read(), "the repository still lists the package"


async def test_an_import_started_after_its_build_was_canceled_does_nothing(
    aiohttp_client, make_app
) -> None:
    """The loop reads the builds waiting for an import, a cancel commits, then the import
    task starts (too late for the cancel to find it): it must not fetch, read or log."""
    app = make_app(chroots={F40: "rpmbuild"})
    client = await aiohttp_client(app)
    user, token = await add_user(app, "alice")
    resp = await client.post(
        "/api/coprs/alice/new/", data={"name": "proj", "chroots": F40}, headers=basic_auth(token)
    )
    assert resp.status == 200, await resp.text()

    def stored_and_canceled(conn: sqlite3.Connection) -> int:
        project = store.get_project(conn, "alice", "proj")
        [build_id] = store_builds(conn, project.id, user.id, ["http://x.example/a.src.rpm"], [F40])
        assert store.cancel_build(conn, build_id) == [F40]
        return build_id

    build_id = await app[DB].write(stored_and_canceled)
    await import_build(app[DISPATCHER].deps, build_id)
    import_dir = app[DISPATCHER].deps.publisher.import_dir("alice", "proj", build_id)
    assert not import_dir.exists(), "the canceled build's import began"
    assert await chroot_state(app, build_id) == "canceled"
