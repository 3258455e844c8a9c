"""Retention: each pruning rule and its edges, on rows (pure) and on a real server's builds
and results tree; `prune` from the command line against a running server and a stopped one."""

from __future__ import annotations

import asyncio
import gzip
import os
import re
import sys
import time

import pytest
from test_dispatcher import CHROOTS, add_pending, add_project, start, wait_state

from copr_lite import store
from copr_lite.builders import ChrootResult, Outcome, PackageInfo
from copr_lite.keys import CONFIG, DB, PUBLISHER
from copr_lite.retention import DAY, ChrootRow, Policy, plan_removals, prune
from copr_lite.states import State
from copr_lite.testing import FakeBuilder, Script, write_fake_rpm

F40, EPEL = "fedora-40-x86_64", "epel-9-x86_64"
NOW = 1_000 * DAY
S, F, R = State.SUCCEEDED, State.FAILED, State.RUNNING


async def two_built(app, project_id: int, user_id: int) -> tuple[int, int]:
    """Two builds of the same package, one built after the other: (older, newer)."""
    older = await add_pending(app, project_id, user_id)
    await wait_state(app, older, "succeeded")
    newer = await add_pending(app, project_id, user_id)
    await wait_state(app, newer, "succeeded")
    return older, newer


def row(build_id, state=S, days_ago=30.0, pkg="hello", project=1, chroot=F40, pruned=False):
    return ChrootRow(
        project,
        "alice",
        f"p{project}",
        build_id,
        pkg,
        chroot,
        state,
        None if not state.terminal else int(NOW - days_ago * DAY),
        100,
        NOW if pruned else None,
        10,
    )


def removed(rows, policies=None) -> list[tuple[int, str]]:
    plan = plan_removals(rows, policies or {}, NOW)
    return [(r.row.build_id, r.row.chroot) for r in plan.removals]


# ---------------------------------------------------------------- the rules, on rows


def test_superseded_succeeded_builds_go_after_prune_days():
    rows = [row(1, days_ago=20), row(2, days_ago=13), row(3, days_ago=1)]
    assert removed(rows) == [(1, F40)]  # 2 is superseded but only 13 days old
    assert removed(rows, {(1, "hello"): Policy(prune_days=10)}) == [(1, F40), (2, F40)]


def test_the_newest_succeeded_build_stays_whatever_the_rules():
    rows = [row(1, days_ago=400), row(2, F, days_ago=300), row(3, F, days_ago=200)]
    # A newer failed build does not supersede an older succeeded one.
    assert (1, F40) not in removed(rows)
    # keep_last 1 keeps the newest finished build, and still the newest succeeded one.
    assert removed(rows, {(1, "hello"): Policy(keep_last=1, failed_log_days=1000)}) == [(2, F40)]


def test_failed_results_have_their_own_days():
    rows = [row(1, days_ago=5), row(2, F, days_ago=31), row(3, F, days_ago=29)]
    assert removed(rows) == [(2, F40)]
    assert removed(rows, {(1, "hello"): Policy(failed_log_days=60)}) == []


def test_unfinished_builds_are_never_touched_nor_count():
    rows = [row(1, days_ago=40), row(2, R), row(3, State.PENDING)]
    # The running build is not a newer succeeded build, and is never removed itself.
    assert removed(rows) == []
    assert removed(rows, {(1, "hello"): Policy(keep_last=1)}) == []


def test_keep_last_counts_finished_builds_per_package_and_chroot():
    rows = [row(i, days_ago=1) for i in range(1, 6)] + [row(9, days_ago=1, chroot=EPEL)]
    assert removed(rows, {(1, "hello"): Policy(keep_last=2)}) == [(1, F40), (2, F40), (3, F40)]
    assert removed(rows, {(1, "hello"): Policy(keep_last=0)}) == []  # 0: unlimited


def test_auto_prune_off_removes_nothing_by_age_but_keep_last_holds():
    rows = [row(1, days_ago=400), row(2, F, days_ago=400), row(3, days_ago=1)]
    assert removed(rows, {(1, "hello"): Policy(auto_prune=False)}) == []
    assert removed(rows, {(1, "hello"): Policy(auto_prune=False, keep_last=2)}) == [(1, F40)]


def test_packages_of_two_projects_and_two_packages_are_apart():
    rows = [
        row(1, days_ago=40, project=1),
        row(2, days_ago=40, project=2),  # the same package name in another project
        row(3, days_ago=40, pkg="other"),  # another package of project 1
        row(4, days_ago=1, project=1),
    ]
    assert removed(rows) == [(1, F40)]


def test_a_build_goes_whole_only_when_all_its_chroots_go():
    rows = [
        row(1, days_ago=40),
        row(1, days_ago=40, chroot=EPEL),
        row(2, days_ago=1),
        row(3, F, days_ago=40),
        row(3, F, days_ago=40, chroot=EPEL, pruned=True),
        row(4, F, days_ago=40, chroot=EPEL),
        row(4, R),  # still running in fedora
    ]
    plan = plan_removals(rows, {}, NOW)
    assert sorted((r.row.build_id, r.row.chroot) for r in plan.removals) == [
        (1, F40),
        (3, F40),
        (4, EPEL),
    ]
    assert plan.builds == [3]  # 1 keeps its epel chroot (its only succeeded build there)
    assert plan.bytes_freed == 3 * 100 + 10


# ---------------------------------------------------------------- on a real server


def published(app, project="proj", chroot=F40) -> list[str]:
    repodata = app[PUBLISHER].chroot_dir("alice", project, chroot) / "repodata"
    primary = next(repodata.glob("*-primary.xml.gz"))
    return sorted(
        re.findall(r'<location href="([^"]+)"', gzip.decompress(primary.read_bytes()).decode())
    )


async def age(app, build_id: int, days: float) -> None:
    """Make the build look as if it ended `days` ago."""
    when = int(time.time() - days * DAY)

    def tx(conn):
        conn.execute("UPDATE build_chroots SET ended_on = ? WHERE build_id = ?", (when, build_id))
        conn.execute("UPDATE builds SET ended_on = ? WHERE id = ?", (when, build_id))

    await app[DB].write(tx)


async def usage(app) -> dict[str, int]:
    _, projects = await app[DB].read(store.disk_usage)
    return {f"{owner}/{name}": size for owner, name, size in projects}


class SameRpmBuilder(FakeBuilder):
    """Every package builds one binary RPM named `common-libs`."""

    async def build(self, job, ctx):
        package = PackageInfo("common-libs", None, "1", f"1{job.chroot.dist}", "noarch")
        path = ctx.result_dir / f"{package.nevra}-{job.build_id}.rpm"
        write_fake_rpm(path, package)
        return ChrootResult(Outcome.SUCCEEDED, (package,), (path,))


async def test_prune_removes_by_the_rules_and_frees_the_bytes(aiohttp_client, make_app):
    builder = FakeBuilder(scripts={"broken": Script(outcome=Outcome.FAILED)})
    app, _ = await start(aiohttp_client, make_app, builder)
    alice, project_id = await add_project(app)
    _, other_id = await add_project(app, name="other")
    old, new = await two_built(app, project_id, alice.id)
    broken = await add_pending(app, project_id, alice.id, pkg="broken")
    await wait_state(app, broken, "failed")
    elsewhere = await add_pending(app, other_id, alice.id)  # same package, other project
    await wait_state(app, elsewhere, "succeeded")
    for build_id in (old, new, broken, elsewhere):
        await age(app, build_id, 40)
    publisher = app[PUBLISHER]
    old_dir = publisher.build_dir("alice", "proj", F40, old, "hello")
    assert (old_dir / "builder-live.log.gz").is_file()
    before = await usage(app)
    assert before["alice/proj"] > 0 and before["alice/other"] > 0
    assert before["alice/proj"] == publisher_size(app, "proj")

    plan = await prune(app[DB], publisher, dry_run=True)
    expected = [(old, c) for c in sorted(CHROOTS)] + [(broken, c) for c in sorted(CHROOTS)]
    assert sorted((r.row.build_id, r.row.chroot) for r in plan.removals) == sorted(expected)
    assert sorted(plan.builds) == [old, broken]
    assert old_dir.is_dir() and await usage(app) == before  # a dry run changes nothing

    done = await prune(app[DB], publisher)
    assert done.bytes_freed == plan.bytes_freed > 0
    assert not old_dir.exists()
    assert not publisher.import_dir("alice", "proj", old).exists()
    assert await app[DB].read(store.get_build, old) is None
    assert await app[DB].read(store.get_build, broken) is None
    assert [p.split("/")[0] for p in published(app)] == [f"{new:08d}-hello"]
    assert published(app, "other") != []
    after = await usage(app)
    assert after["alice/proj"] == before["alice/proj"] - plan.bytes_freed
    assert after["alice/proj"] == publisher_size(app, "proj")
    assert after["alice/other"] == before["alice/other"]
    # The newest build of each package stays; nothing is left to prune.
    assert (await prune(app[DB], publisher, dry_run=True)).removals == []


def publisher_size(app, project: str) -> int:
    """What the project's builds and imports really hold on disk (repodata aside)."""
    root = app[PUBLISHER].project_dir("alice", project)
    return sum(
        p.stat().st_size
        for p in root.rglob("*")
        if p.is_file() and "repodata" not in p.parts and p.name != "pubkey.gpg"
    )


async def test_packages_are_told_apart_by_name_not_by_their_rpms(aiohttp_client, make_app):
    builder = SameRpmBuilder(scripts={})
    app, _ = await start(aiohttp_client, make_app, builder)
    alice, project_id = await add_project(app)
    foo = await add_pending(app, project_id, alice.id, pkg="foo")
    await wait_state(app, foo, "succeeded")
    bar = await add_pending(app, project_id, alice.id, pkg="bar")
    await wait_state(app, bar, "succeeded")
    for build_id in (foo, bar):
        await age(app, build_id, 100)
    # Both packages built an RPM named common-libs: still two packages, each its newest.
    assert (await prune(app[DB], app[PUBLISHER], dry_run=True)).removals == []


async def test_a_running_build_is_never_pruned_nor_supersedes(aiohttp_client, make_app):
    app, _ = await start(
        aiohttp_client, make_app, FakeBuilder(scripts={"slow": Script(seconds=60)})
    )
    alice, project_id = await add_project(app)
    done = await add_pending(app, project_id, alice.id, pkg="slow", seconds=1)
    await wait_state(app, done, "failed")  # over its 1 s timeout
    await age(app, done, 10)
    running = await add_pending(app, project_id, alice.id, pkg="slow")
    await wait_state(app, running, "running")
    await app[DB].write(store.update_project, project_id, {"keep_last": 1, "failed_log_days": 100})
    plan = await prune(app[DB], app[PUBLISHER], dry_run=True)
    assert plan.removals == []  # the running build is not counted among the last 1


# ---------------------------------------------------------------- the command


async def cli(*args: str, cwd) -> tuple[int, str, str]:
    """`python -m copr_lite ARGS` in `cwd`: (exit status, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "copr_lite",
        *args,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()


@pytest.mark.parametrize("server_running", [True, False])
async def test_prune_command(aiohttp_client, make_app, tmp_path, server_running):
    app, client = await start(aiohttp_client, make_app, FakeBuilder())
    alice, project_id = await add_project(app)
    old, new = await two_built(app, project_id, alice.id)
    await age(app, old, 15)
    ini = tmp_path / "copr-lite.ini"
    ini.write_text(f"[server]\ndata_dir = {tmp_path / 'data'}\n[signing]\nsign = no\n")
    if not server_running:
        await client.close()  # the app's cleanup: database closed, lock released

    status, out, err = await cli("prune", "--dry-run", cwd=tmp_path)
    assert status == 0, err
    lines = out.splitlines()
    assert len(lines) == len(CHROOTS) + 1
    assert all(
        line.startswith(f"would remove build {old} alice/proj hello ") for line in lines[:-1]
    )
    freed = int(re.search(r"would free (\d+) bytes", lines[-1]).group(1))
    assert freed > 0

    status, out, err = await cli("prune", cwd=tmp_path)
    assert status == 0, err
    assert f"freed {freed} bytes" in out
    assert not (tmp_path / f"data/results/alice/proj/{F40}/{old:08d}-hello").exists()
    if server_running:
        assert [p.split("/")[0] for p in published(app)] == [f"{new:08d}-hello"]
        resp = await client.get(f"/api/coprs/build/{old}/")
        assert resp.status == 404
    status, out, err = await cli("prune", "--dry-run", cwd=tmp_path)
    assert out.splitlines()[-1].startswith("0 chroot result(s), 0 whole build(s)")


async def test_prune_removes_the_uploads_no_build_refers_to(aiohttp_client, make_app):
    """An upload stays while a build reads from it, and a young one may still be getting its
    build; an old one no build refers to (its build deleted before its import) goes."""
    app = make_app(chroots={F40: "mock"}, start_dispatcher=False)
    await aiohttp_client(app)
    user, project_id = await add_project(app, chroots=(F40,))
    upload_dir = app[CONFIG].upload_dir
    hour_ago = time.time() - 3700
    for name, age in (("kept", hour_ago), ("stray", hour_ago), ("young", None)):
        (upload_dir / name).mkdir(parents=True)
        (upload_dir / name / "x-1-1.src.rpm").write_bytes(b"srpm")
        if age is not None:
            os.utime(upload_dir / name, (age, age))
    kept = str(upload_dir / "kept" / "x-1-1.src.rpm")

    def stored(conn) -> None:
        store.insert_builds(
            conn, project_id, user.id, [store.NewBuild("x-1-1.src.rpm", kept)], [F40],
            memory_reqs=2048, timeout=3600, enable_net=False, repos="", background=False,
        )  # fmt: skip

    await app[DB].write(stored)
    plan = await prune(app[DB], app[PUBLISHER], upload_dir=upload_dir, dry_run=True)
    assert plan.uploads == ["stray"]
    assert "would remove upload stray: no build refers to it" in plan.lines(True)
    assert (upload_dir / "stray").is_dir()
    plan = await prune(app[DB], app[PUBLISHER], upload_dir=upload_dir)
    assert plan.uploads == ["stray"] and plan.to_json()["uploads"] == ["stray"]
    assert sorted(p.name for p in upload_dir.iterdir()) == ["kept", "young"]
