"""The publisher: safe paths, live logs, results.json + markers, createrepo_c (real)."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from copr_lite import publisher as publisher_module
from copr_lite.builders import Outcome, PackageInfo
from copr_lite.publisher import LiveLog, Publisher, PublishError

FIXTURES = Path(__file__).parent / "fixtures"
SHARED_FIXTURES = Path("/work/shared/fixtures")
NEEDS_RPM_TOOLS = pytest.mark.skipif(
    not (shutil.which("rpmbuild") and shutil.which("createrepo_c")),
    reason="needs rpmbuild and createrepo_c (Debian: rpm createrepo-c)",
)
CHROOT = "fedora-40-x86_64"
HELLO = PackageInfo("hello-copr-lite", None, "1.0", "1.fc40", "noarch")
HELLO_SRC = PackageInfo("hello-copr-lite", None, "1.0", "1.fc40", "src")


def spec_dir() -> Path:
    return FIXTURES if (FIXTURES / "hello-copr-lite.spec").exists() else SHARED_FIXTURES


def build_hello_rpms(work: Path) -> list[Path]:
    """A real noarch RPM and its SRPM, built with a private topdir/tmppath/dbpath."""
    for sub in ("top", "tmp", "db"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    source = spec_dir()
    defines = []
    for macro, value in (
        ("_topdir", work / "top"),
        ("_tmppath", work / "tmp"),
        ("_dbpath", work / "db"),
        ("_sourcedir", source),
        ("dist", ".fc40"),
    ):
        defines += ["--define", f"{macro} {value}"]
    subprocess.run(
        ["rpmbuild", "-ba", *defines, str(source / "hello-copr-lite.spec")],
        check=True,
        capture_output=True,
    )
    return sorted((work / "top").glob("*RPMS/**/*.rpm"))


@pytest.fixture(scope="module")
def hello_rpms(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    if not shutil.which("rpmbuild"):
        pytest.skip("needs rpmbuild")
    return build_hello_rpms(tmp_path_factory.mktemp("rpmbuild"))


@pytest.fixture
def pub(tmp_path: Path) -> Publisher:
    return Publisher(tmp_path / "results")


def locations(chroot_dir: Path) -> list[str]:
    primary = next((chroot_dir / "repodata").glob("*-primary.xml.gz"))
    return sorted(
        re.findall(r'<location href="([^"]+)"', gzip.decompress(primary.read_bytes()).decode())
    )


async def publish(pub: Publisher, rpms: list[Path], build_id: int, status: str) -> Path:
    build_dir = pub.build_dir("alice", "proj", CHROOT, build_id, "hello-copr-lite")
    build_dir.mkdir(parents=True)
    for rpm in rpms:
        shutil.copy(rpm, build_dir)
    await pub.finish_build_dir(
        build_dir,
        build_id=build_id,
        chroot=CHROOT,
        status=status,
        packages=[HELLO, HELLO_SRC],
        files=[build_dir / rpm.name for rpm in rpms],
        fail_reason=None if status == "succeeded" else "rpmbuild exited with status 1",
    )
    return build_dir


# ---------------------------------------------------------------------- paths


def test_paths_follow_the_copr_layout(pub: Publisher, tmp_path: Path) -> None:
    root = tmp_path / "results"
    assert pub.project_dir("alice", "proj") == root / "alice" / "proj"
    assert pub.chroot_dir("alice", "proj", CHROOT) == root / "alice" / "proj" / CHROOT
    assert (
        pub.build_dir("alice", "proj", CHROOT, 42, "libstdc++")
        == root / "alice" / "proj" / CHROOT / "00000042-libstdc++"
    )
    assert (
        pub.import_dir("alice", "proj", 7) == root / "alice" / "proj" / "srpm-builds" / "00000007"
    )
    assert pub.build_dir("a", "b", CHROOT, 123456789, "x").name == "123456789-x"


@pytest.mark.parametrize(
    "bad",
    ["", ".", "..", ".hidden", "a/b", "../x", "/etc", "a\x00b", "a b", "ä", "x" * 256, "a\\b"],
)
def test_paths_refuse_names_that_could_escape(pub: Publisher, bad: str) -> None:
    with pytest.raises(ValueError, match="invalid"):
        pub.project_dir(bad, "proj")
    with pytest.raises(ValueError, match="invalid"):
        pub.project_dir("alice", bad)
    with pytest.raises(ValueError, match="invalid"):
        pub.chroot_dir("alice", "proj", bad)
    with pytest.raises(ValueError, match="invalid"):
        pub.build_dir("alice", "proj", CHROOT, 1, bad)


@pytest.mark.parametrize("bad", [-1, 2**63, True, "1", 1.0])
def test_paths_refuse_bad_build_ids(pub: Publisher, bad: object) -> None:
    with pytest.raises(ValueError, match="build id"):
        pub.build_dir("alice", "proj", CHROOT, bad, "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="build id"):
        pub.import_dir("alice", "proj", bad)  # type: ignore[arg-type]


def test_srpm_builds_is_not_a_chroot(pub: Publisher) -> None:
    with pytest.raises(ValueError, match="chroot"):
        pub.chroot_dir("alice", "proj", "srpm-builds")


async def test_operations_refuse_dirs_outside_the_tree(pub: Publisher, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    with pytest.raises(ValueError, match="not inside"):
        await pub.createrepo(outside)
    with pytest.raises(ValueError, match="not inside"):
        await pub.discard(outside)
    with pytest.raises(ValueError, match="not inside"):
        await pub.createrepo(pub.root / "alice" / ".." / ".." / "elsewhere")
    with pytest.raises(ValueError, match="not inside"):
        await pub.finish_build_dir(outside, build_id=1, chroot=CHROOT, status="succeeded")
    assert outside.exists()


# ---------------------------------------------------------------------- live log


async def test_live_log_lines_are_visible_at_once_and_appended(pub: Publisher) -> None:
    build_dir = pub.build_dir("alice", "proj", CHROOT, 1, "hello")
    live = pub.live_log(build_dir)
    await live.write("first")
    assert (build_dir / "builder-live.log").read_text() == "first\n"
    await live.write("second\n")
    assert (build_dir / "builder-live.log").read_text() == "first\nsecond\n"
    live.close()
    await live.write("dropped after close")
    live.close()  # twice is fine
    with LiveLog(build_dir / "builder-live.log") as again:  # append mode keeps the old lines
        await again.write("third ✓")
    assert (build_dir / "builder-live.log").read_text() == "first\nsecond\nthird ✓\n"


async def test_files_the_server_writes_never_follow_planted_symlinks(
    pub: Publisher, tmp_path: Path
) -> None:
    """A builder writes into its build dir; a symlink it leaves there must not make the
    server write outside the tree."""
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched")
    build_dir = pub.build_dir("alice", "proj", CHROOT, 9, "evil")
    build_dir.mkdir(parents=True)
    for name in ("builder-live.log", "results.json", "success", "fail"):
        (build_dir / name).symlink_to(victim)
    with pub.live_log(build_dir) as live:
        await live.write("server line")
    await pub.finish_build_dir(build_dir, build_id=9, chroot=CHROOT, status="failed")
    await pub.finish_build_dir(build_dir, build_id=9, chroot=CHROOT, status="succeeded")
    assert victim.read_text() == "untouched"
    for name in ("builder-live.log", "results.json", "success"):
        assert not (build_dir / name).is_symlink()
    assert (build_dir / "builder-live.log").read_text() == "server line\n"
    assert sorted(p.name for p in build_dir.iterdir()) == [
        "builder-live.log",
        "results.json",
        "success",
    ]


async def test_live_log_write_is_cheap(pub: Publisher) -> None:
    """A write + flush on the loop: measured ~2-5 µs per line, far below a thread hop."""
    with pub.live_log(pub.build_dir("alice", "proj", CHROOT, 1, "hello")) as live:
        started = time.perf_counter()
        for i in range(2000):
            await live.write(f"line {i} " + "x" * 100)
        per_line = (time.perf_counter() - started) / 2000
    assert per_line < 0.0005


# ---------------------------------------------------------------------- results


async def test_finish_build_dir_writes_results_json_and_success(pub: Publisher) -> None:
    build_dir = pub.build_dir("alice", "proj", CHROOT, 3, "hello-copr-lite")
    build_dir.mkdir(parents=True)
    (build_dir / "fail").write_text("an earlier attempt\n")
    await pub.finish_build_dir(
        build_dir,
        build_id=3,
        chroot=CHROOT,
        status=Outcome.SUCCEEDED,
        packages=[HELLO, PackageInfo("other", 2, "3.0", "4", "x86_64")],
        files=[],
        fail_reason=None,
    )
    assert json.loads((build_dir / "results.json").read_text()) == {
        "packages": [
            {
                "name": "hello-copr-lite",
                "epoch": None,
                "version": "1.0",
                "release": "1.fc40",
                "arch": "noarch",
            },
            {"name": "other", "epoch": 2, "version": "3.0", "release": "4", "arch": "x86_64"},
        ]
    }
    assert (build_dir / "success").exists()
    assert not (build_dir / "fail").exists()


async def test_finish_build_dir_failed_writes_the_reason(pub: Publisher) -> None:
    build_dir = pub.build_dir("alice", "proj", CHROOT, 4, "hello-copr-lite")
    build_dir.mkdir(parents=True)
    (build_dir / "success").write_text("")
    await pub.finish_build_dir(
        build_dir,
        build_id=4,
        chroot=CHROOT,
        status="failed",
        packages=[],
        files=[],
        fail_reason="rpmbuild exited with status 1",
    )
    assert (build_dir / "fail").read_text() == "rpmbuild exited with status 1\n"
    assert not (build_dir / "success").exists()
    assert json.loads((build_dir / "results.json").read_text()) == {"packages": []}


async def test_finish_build_dir_checks_status_and_files(
    pub: Publisher, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    build_dir = pub.build_dir("alice", "proj", CHROOT, 5, "x")
    build_dir.mkdir(parents=True)
    with pytest.raises(ValueError, match="status"):
        await pub.finish_build_dir(build_dir, build_id=5, chroot=CHROOT, status="canceled")
    await pub.finish_build_dir(
        build_dir, build_id=5, chroot=CHROOT, status="succeeded", files=[tmp_path / "x.rpm"]
    )
    assert "is outside" in caplog.text
    assert (build_dir / "success").exists()


async def test_discard_and_remove_project(pub: Publisher) -> None:
    build_dir = pub.build_dir("alice", "proj", CHROOT, 6, "x")
    build_dir.mkdir(parents=True)
    (build_dir / "partial.rpm").write_bytes(b"x")
    other = pub.project_dir("alice", "other")
    other.mkdir()
    await pub.discard(build_dir)
    assert not build_dir.exists()
    assert build_dir.parent.exists()
    await pub.discard(build_dir)  # already gone: fine
    await pub.remove_project("alice", "proj")
    assert not pub.project_dir("alice", "proj").exists()
    assert other.exists()
    await pub.remove_project("alice", "other")
    assert not (pub.root / "alice").exists()  # the emptied owner dir goes too
    await pub.remove_project("alice", "never-existed")


# ---------------------------------------------------------------------- createrepo


@NEEDS_RPM_TOOLS
async def test_createrepo_publishes_only_succeeded_builds(
    pub: Publisher, hello_rpms: list[Path]
) -> None:
    await publish(pub, hello_rpms, 1, "succeeded")
    await publish(pub, hello_rpms, 2, "failed")
    running = pub.build_dir("alice", "proj", CHROOT, 3, "hello-copr-lite")
    running.mkdir()
    (running / "hello-copr-lite-1.0-1.fc40.noarch.rpm").write_bytes(b"half written")
    chroot_dir = pub.chroot_dir("alice", "proj", CHROOT)
    await pub.createrepo(chroot_dir)
    assert locations(chroot_dir) == [
        "00000001-hello-copr-lite/hello-copr-lite-1.0-1.fc40.noarch.rpm",
        "00000001-hello-copr-lite/hello-copr-lite-1.0-1.fc40.src.rpm",
    ]
    # The build dir gets dropped (e.g. a deleted build): the next run forgets it.
    await pub.discard(pub.build_dir("alice", "proj", CHROOT, 1, "hello-copr-lite"))
    await pub.createrepo(chroot_dir)
    assert locations(chroot_dir) == []


@NEEDS_RPM_TOOLS
async def test_createrepo_makes_an_empty_repo_for_a_new_chroot(pub: Publisher) -> None:
    chroot_dir = pub.chroot_dir("alice", "proj", "epel-9-x86_64")
    await pub.createrepo(chroot_dir)
    assert (chroot_dir / "repodata" / "repomd.xml").is_file()
    assert locations(chroot_dir) == []


@NEEDS_RPM_TOOLS
async def test_concurrent_createrepo_runs_on_one_dir_are_serialized(
    pub: Publisher, hello_rpms: list[Path]
) -> None:
    await publish(pub, hello_rpms, 1, "succeeded")
    chroot_dir = pub.chroot_dir("alice", "proj", CHROOT)
    # A second Publisher on the same tree shares the lock.
    other = Publisher(pub.root)
    await asyncio.gather(*(p.createrepo(chroot_dir) for p in (pub, other, pub, other, pub)))
    assert len(locations(chroot_dir)) == 2
    assert not (chroot_dir / ".repodata").exists()


@NEEDS_RPM_TOOLS
async def test_different_dirs_run_in_parallel(pub: Publisher) -> None:
    dirs = [pub.chroot_dir("alice", "proj", c) for c in (CHROOT, "epel-9-x86_64")]
    await asyncio.gather(*(pub.createrepo(d) for d in dirs))
    assert all((d / "repodata" / "repomd.xml").is_file() for d in dirs)


@NEEDS_RPM_TOOLS
async def test_createrepo_removes_a_stale_repodata_dir(
    pub: Publisher, hello_rpms: list[Path]
) -> None:
    await publish(pub, hello_rpms, 1, "succeeded")
    chroot_dir = pub.chroot_dir("alice", "proj", CHROOT)
    (chroot_dir / ".repodata").mkdir()
    (chroot_dir / ".repodata" / "junk.xml").write_text("left by a crash")
    # Without the clean-up, createrepo_c itself refuses:
    proc = await asyncio.create_subprocess_exec(
        "createrepo_c", str(chroot_dir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    assert proc.returncode != 0 and b"already exists" in out
    await pub.createrepo(chroot_dir)
    assert not (chroot_dir / ".repodata").exists()
    assert len(locations(chroot_dir)) == 2


@NEEDS_RPM_TOOLS
async def test_remove_project_waits_for_a_running_createrepo(
    pub: Publisher, hello_rpms: list[Path]
) -> None:
    await publish(pub, hello_rpms, 1, "succeeded")
    chroot_dir = pub.chroot_dir("alice", "proj", CHROOT)
    repo = asyncio.create_task(pub.createrepo(chroot_dir))
    await asyncio.sleep(0)  # createrepo holds the lock now
    await pub.remove_project("alice", "proj")
    await repo  # it finished undisturbed before the removal
    assert not pub.project_dir("alice", "proj").exists()


async def test_createrepo_failure_carries_its_message(
    pub: Publisher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "fake-createrepo"
    fake.write_text(
        "#!/bin/sh\necho 'Directory walk started'\necho 'Cannot open dir: boom' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setattr(publisher_module, "CREATEREPO", str(fake))
    with pytest.raises(PublishError, match="Cannot open dir: boom") as info:
        await pub.createrepo(pub.chroot_dir("alice", "proj", CHROOT))
    assert "Directory walk" not in str(info.value)
    monkeypatch.setattr(publisher_module, "CREATEREPO", str(tmp_path / "missing"))
    with pytest.raises(PublishError, match="not installed"):
        await pub.createrepo(pub.chroot_dir("alice", "proj", CHROOT))


async def test_canceled_createrepo_stops_its_process_before_releasing_the_lock(
    pub: Publisher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "ran"
    fake = tmp_path / "slow-createrepo"
    fake.write_text(f"#!/bin/sh\necho $$ >> {marker}\nexec sleep 30\n")
    fake.chmod(0o755)
    monkeypatch.setattr(publisher_module, "CREATEREPO", str(fake))
    chroot_dir = pub.chroot_dir("alice", "proj", CHROOT)
    task = asyncio.create_task(pub.createrepo(chroot_dir))
    for _ in range(100):
        if marker.exists():
            break
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    pid = int(marker.read_text().split()[0])
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


# ---------------------------------------------------------------------- incremental publishing


def make_distinct_rpms(work: Path, count: int, prefix: str = "pkg") -> list[Path]:
    """`count` small noarch RPMs of different names (one rpmbuild run: subpackages)."""
    lines = ["Name: many", "Version: 1.0", "Release: 1", "Summary: m", "License: MIT"]
    lines += ["BuildArch: noarch", "%description", "m"]
    for i in range(count):
        name = f"{prefix}{i:05d}"
        lines += [f"%package -n {name}", f"Summary: {name}", f"%description -n {name}", "x"]
        lines += [f"%files -n {name}"]
    spec = work / "many.spec"
    spec.write_text("\n".join(lines) + "\n")
    subprocess.run(
        ["rpmbuild", "-bb", "--define", f"_topdir {work / 'top'}", "--define",
         f"_tmppath {work}", "--define", f"_dbpath {work / 'db'}", str(spec)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return sorted((work / "top" / "RPMS" / "noarch").glob("*.rpm"))


@pytest.fixture(scope="module")
def distinct_rpms(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    if not shutil.which("rpmbuild"):
        pytest.skip("needs rpmbuild")
    return make_distinct_rpms(tmp_path_factory.mktemp("distinct"), 8)


async def publish_one(pub: Publisher, rpm: Path, build_id: int, status: str = "succeeded") -> Path:
    """A build dir holding just `rpm`."""
    build_dir = pub.build_dir("alice", "proj", CHROOT, build_id, rpm.name.split("-")[0])
    build_dir.mkdir(parents=True)
    shutil.copy(rpm, build_dir)
    await pub.finish_build_dir(
        build_dir, build_id=build_id, chroot=CHROOT, status=status, fail_reason="failed"
    )
    return build_dir


def listed_dirs(chroot_dir: Path) -> set[str]:
    return {path.split("/")[0] for path in locations(chroot_dir)}


def sha256s(chroot_dir: Path) -> dict[str, str]:
    """Each listed package's path and the checksum the metadata gives it."""
    primary = next((chroot_dir / "repodata").glob("*-primary.xml.gz"))
    text = gzip.decompress(primary.read_bytes()).decode()
    pattern = r'<checksum type="sha256" pkgid="YES">(\w+)</checksum>.*?<location href="([^"]+)"'
    return {href: digest for digest, href in re.findall(pattern, text, re.S)}


@pytest.fixture(scope="module")
def rebuilt_rpms(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The same package built again: same names, other bytes (its build time differs)."""
    if not shutil.which("rpmbuild"):
        pytest.skip("needs rpmbuild")
    time.sleep(1.1)
    return build_hello_rpms(tmp_path_factory.mktemp("rebuild"))


@NEEDS_RPM_TOOLS
async def test_a_success_is_published_without_listing_the_other_builds(
    pub: Publisher, distinct_rpms: list[Path]
) -> None:
    chroot_dir = pub.chroot_dir("alice", "proj", CHROOT)
    first = await publish_one(pub, distinct_rpms[0], 1)
    await pub.createrepo(chroot_dir)  # the first run of the process lists everything
    # A succeeded build dir nobody names is not looked for by later runs ...
    unnamed = await publish_one(pub, distinct_rpms[1], 2)
    third = await publish_one(pub, distinct_rpms[2], 3)
    await pub.createrepo(chroot_dir, add=[third.name])
    assert listed_dirs(chroot_dir) == {first.name, third.name}
    # ... which is how a success is published when its chroot holds thousands of builds.
    # A run from scratch finds it.
    await pub.createrepo(chroot_dir)
    assert listed_dirs(chroot_dir) == {first.name, unnamed.name, third.name}
    # A failed build named for publishing stays out; so nothing runs at all.
    failed = await publish_one(pub, distinct_rpms[3], 4, "failed")
    repomd = (chroot_dir / "repodata" / "repomd.xml").read_bytes()
    await pub.createrepo(chroot_dir, add=[failed.name])
    assert (chroot_dir / "repodata" / "repomd.xml").read_bytes() == repomd
    for href, digest in sha256s(chroot_dir).items():
        assert digest == hashlib.sha256((chroot_dir / href).read_bytes()).hexdigest()


@NEEDS_RPM_TOOLS
async def test_withdrawn_builds_leave_the_repository(
    pub: Publisher, distinct_rpms: list[Path]
) -> None:
    chroot_dir = pub.chroot_dir("alice", "proj", CHROOT)
    dirs = [await publish_one(pub, distinct_rpms[i], i + 1) for i in range(3)]
    await pub.createrepo(chroot_dir)
    # A canceled or deleted build: its directory goes first, then the repository forgets it.
    await pub.discard(dirs[1], keep_log=True)
    await pub.createrepo(chroot_dir, remove=[dirs[1].name])
    assert listed_dirs(chroot_dir) == {dirs[0].name, dirs[2].name}
    # Withdrawing and publishing together, and several at once (coalesced).
    fourth = await publish_one(pub, distinct_rpms[3], 4)
    await pub.discard(dirs[0])
    await pub.discard(dirs[2])
    await asyncio.gather(
        pub.createrepo(chroot_dir, remove=[dirs[0].name]),
        pub.createrepo(chroot_dir, add=[fourth.name], remove=[dirs[2].name]),
    )
    assert listed_dirs(chroot_dir) == {fourth.name}
    # Withdrawing what was never published changes nothing.
    await pub.createrepo(chroot_dir, remove=["00000009-pkg00009"])
    assert listed_dirs(chroot_dir) == {fourth.name}


@NEEDS_RPM_TOOLS
async def test_identical_packages_in_two_build_dirs_stay_listed(
    pub: Publisher, hello_rpms: list[Path]
) -> None:
    chroot_dir = pub.chroot_dir("alice", "proj", CHROOT)
    dirs = [await publish(pub, hello_rpms, build_id, "succeeded") for build_id in (1, 2, 3)]
    await pub.createrepo(chroot_dir)
    await pub.discard(dirs[1])
    await pub.createrepo(chroot_dir, remove=[dirs[1].name])
    assert listed_dirs(chroot_dir) == {dirs[0].name, dirs[2].name}
    fourth = await publish(pub, hello_rpms, 4, "succeeded")
    await pub.createrepo(chroot_dir, add=[fourth.name])
    assert listed_dirs(chroot_dir) == {dirs[0].name, dirs[2].name, fourth.name}
    assert len(locations(chroot_dir)) == 6


@NEEDS_RPM_TOOLS
async def test_a_build_dir_published_again_gets_its_new_checksums(
    pub: Publisher, hello_rpms: list[Path], rebuilt_rpms: list[Path]
) -> None:
    chroot_dir = pub.chroot_dir("alice", "proj", CHROOT)
    build_dir = await publish(pub, hello_rpms, 1, "succeeded")
    await pub.createrepo(chroot_dir, add=[build_dir.name])
    before = sha256s(chroot_dir)
    # An attempt run again after an interruption writes other bytes under the same names
    # (later: createrepo_c --update goes by size and modification time, in seconds).
    for rpm in rebuilt_rpms:
        shutil.copy(rpm, build_dir)
        later = time.time() + 5
        os.utime(build_dir / rpm.name, (later, later))
    await pub.createrepo(chroot_dir, add=[build_dir.name])
    after = sha256s(chroot_dir)
    assert before.keys() == after.keys()
    for href, digest in after.items():
        assert digest != before[href]
        assert digest == hashlib.sha256((chroot_dir / href).read_bytes()).hexdigest()


@NEEDS_RPM_TOOLS
async def test_after_a_failed_run_the_next_one_starts_from_scratch(
    pub: Publisher, distinct_rpms: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chroot_dir = pub.chroot_dir("alice", "proj", CHROOT)
    first = await publish_one(pub, distinct_rpms[0], 1)
    await pub.createrepo(chroot_dir)
    second = await publish_one(pub, distinct_rpms[1], 2)
    fake = tmp_path / "failing-createrepo"
    fake.write_text("#!/bin/sh\necho 'disk full' >&2\nexit 1\n")
    fake.chmod(0o755)
    with monkeypatch.context() as patch:
        patch.setattr(publisher_module, "CREATEREPO", str(fake))
        with pytest.raises(PublishError, match="disk full"):
            await pub.createrepo(chroot_dir, add=[second.name])
    # The failed run's request is not lost: the next run lists every build again.
    third = await publish_one(pub, distinct_rpms[2], 3)
    await pub.createrepo(chroot_dir, add=[third.name])
    assert listed_dirs(chroot_dir) == {first.name, second.name, third.name}
