"""What a builder returns is checked before it is published: by the dispatcher, the remote
plugin (tests/test_remote.py) and the conformance kit."""

from __future__ import annotations

from pathlib import Path

import pytest

from copr_lite import store
from copr_lite.builders import BuildContext, BuildJob, Chroot, ChrootResult, Outcome, PackageInfo
from copr_lite.conformance import ConformanceError, check_builder
from copr_lite.keys import CONFIG, DB, DISPATCHER
from copr_lite.states import State
from copr_lite.testing import (
    BuilderPlugin,
    FakeBuilder,
    add_user,
    store_builds,
    wait_until,
    write_fake_rpm,
)
from copr_lite.verify import ResultError, check_result, read_result_files, verify_result

HELLO = PackageInfo("hello", None, "1.0", "1.fc40", "noarch")
OTHER = PackageInfo("other", None, "2.0", "1.fc40", "x86_64")
SOURCE = PackageInfo("hello", None, "1.0", "1.fc40", "src")


def rpm(directory: Path, package: PackageInfo) -> Path:
    path = directory / f"{package.nevra}.rpm"
    write_fake_rpm(path, package)
    return path


def succeeded(packages: tuple[PackageInfo, ...], files: tuple[Path, ...]) -> ChrootResult:
    return ChrootResult(Outcome.SUCCEEDED, packages, files)


async def test_an_honest_result_holds(tmp_path):
    files = (rpm(tmp_path, HELLO), rpm(tmp_path, OTHER), rpm(tmp_path, SOURCE))
    result = succeeded((OTHER, HELLO), files)
    await check_result(result, tmp_path)
    assert await verify_result(result, tmp_path, "honest") is result
    # A relative name is taken inside the result directory.
    await check_result(succeeded((HELLO,), (Path(files[0].name),)), tmp_path)
    assert await read_result_files(files) == [HELLO, OTHER, SOURCE]


def lie_no_file(d: Path) -> ChrootResult:
    return succeeded((HELLO,), (d / "hello-1.0-1.fc40.noarch.rpm",))


def lie_no_files_at_all(d: Path) -> ChrootResult:
    return succeeded((HELLO,), ())


def lie_not_an_rpm(d: Path) -> ChrootResult:
    (d / "hello-1.0-1.fc40.noarch.rpm").write_text("not an rpm")
    return succeeded((HELLO,), (d / "hello-1.0-1.fc40.noarch.rpm",))


def lie_not_named_rpm(d: Path) -> ChrootResult:
    path = rpm(d, HELLO).rename(d / "hello.txt")
    return succeeded((HELLO,), (path,))


def lie_wrong_header(d: Path) -> ChrootResult:
    path = rpm(d, OTHER).rename(d / "hello-1.0-1.fc40.noarch.rpm")
    return succeeded((HELLO,), (path,))


def lie_unlisted_rpm(d: Path) -> ChrootResult:
    return succeeded((HELLO,), (rpm(d, HELLO), rpm(d, OTHER)))


def lie_outside(d: Path) -> ChrootResult:
    outside = d.parent / "elsewhere"
    outside.mkdir()
    return succeeded((HELLO,), (rpm(outside, HELLO),))


def lie_symlink_outside(d: Path) -> ChrootResult:
    outside = d.parent / "elsewhere"
    outside.mkdir()
    link = d / "hello-1.0-1.fc40.noarch.rpm"
    link.symlink_to(rpm(outside, HELLO))
    return succeeded((HELLO,), (link,))


def lie_source_listed(d: Path) -> ChrootResult:
    return succeeded((HELLO, SOURCE), (rpm(d, HELLO), rpm(d, SOURCE)))


def lie_listed_twice(d: Path) -> ChrootResult:
    return succeeded((HELLO, HELLO), (rpm(d, HELLO),))


def lie_no_packages(d: Path) -> ChrootResult:
    return succeeded((), (rpm(d, HELLO),))


@pytest.mark.parametrize(
    ("lie", "message"),
    [
        (lie_no_file, "hello-1.0-1.fc40.noarch.rpm does not exist"),
        (lie_no_files_at_all, "no RPM among its files holds hello-1.0-1.fc40.noarch"),
        (lie_not_an_rpm, "hello-1.0-1.fc40.noarch.rpm is not an RPM file"),
        (lie_not_named_rpm, "hello.txt is not an RPM file"),
        (lie_wrong_header, "no RPM among its files holds hello-1.0-1.fc40.noarch"),
        (lie_unlisted_rpm, "it did not list the packages of its RPMs other-2.0-1.fc40.x86_64"),
        (lie_outside, "is not inside the result directory"),
        (lie_symlink_outside, "is not inside the result directory"),
        (lie_source_listed, "it lists the source package among the built packages"),
        (lie_listed_twice, "it lists a package twice"),
        (lie_no_packages, "it succeeded without packages"),
    ],
)
async def test_a_lying_result_is_refused_by_name(tmp_path, lie, message):
    result_dir = tmp_path / "result"
    result_dir.mkdir()
    result = lie(result_dir)
    with pytest.raises(ResultError, match=message):
        await check_result(result, result_dir)
    verified = await verify_result(result, result_dir, "liar")
    assert verified.status is Outcome.FAILED and verified.packages == ()
    reason = verified.fail_reason or ""
    assert reason.startswith("builder liar returned a result that does not hold: ")
    assert message in reason


async def test_a_failure_is_not_checked(tmp_path):
    failed = ChrootResult(Outcome.FAILED, files=(tmp_path / "gone.rpm",), fail_reason="no luck")
    assert await verify_result(failed, tmp_path, "any") is failed


class Liar(FakeBuilder):
    """Reports the package FakeBuilder would, but leaves no RPM behind."""

    async def build(self, job: BuildJob, ctx: BuildContext) -> ChrootResult:
        result = await super().build(job, ctx)
        for path in result.files:
            path.unlink()
        return result


async def test_the_dispatcher_fails_a_lying_builder(aiohttp_client, make_app):
    chroots = {"fedora-40-x86_64": "liar", "epel-9-x86_64": "fake"}
    app = make_app(plugins=[BuilderPlugin(Liar("liar"), FakeBuilder())], chroots=chroots)
    await aiohttp_client(app)
    user, _ = await add_user(app, "alice")
    db = app[DB]
    project_id = await db.write(store.create_project, user.id, {"name": "p"}, list(chroots))

    def insert(conn):
        url = "http://x.example/hello-1.0-1.src.rpm"
        ids = store_builds(conn, project_id, user.id, [url], chroots, timeout=60)
        store.import_succeeded(
            conn, ids[0], "/nonexistent.src.rpm", "s", PackageInfo("hello", None, "1.0", "1", "src")
        )
        return ids[0]

    build_id = await db.write(insert)
    app[DISPATCHER].wake()

    async def ended():
        build = await db.read(store.get_build, build_id)
        return all(State.from_code(c.status).terminal for c in build.chroots)

    await wait_until(ended)
    build = await db.read(store.get_build, build_id)
    by_chroot = {c.chroot: c for c in build.chroots}
    assert State.from_code(by_chroot["epel-9-x86_64"].status) is State.SUCCEEDED
    lied = by_chroot["fedora-40-x86_64"]
    assert State.from_code(lied.status) is State.FAILED
    assert lied.fail_reason == (
        "builder liar returned a result that does not hold: "
        "hello-1.0-1.fc40.noarch.rpm does not exist"
    )
    build_dir = app[CONFIG].data_dir / "results/alice/p/fedora-40-x86_64" / f"{build_id:08d}-hello"
    assert (build_dir / "fail").exists() and not (build_dir / "success").exists()


async def test_the_conformance_kit_catches_a_lying_builder(tmp_path):
    def make_job(kind: str) -> BuildJob:
        package = PackageInfo("hello", None, "1.0", "1", "src")
        return BuildJob(1, "o", "p", Chroot.parse("fedora-40-x86_64"), Path("x"), package)

    # The honest fake passes the same check.
    await check_builder(FakeBuilder(), make_job=make_job, tmp_path=tmp_path, checks=["success"])
    with pytest.raises(ConformanceError, match=r"\[success\] the result does not hold: .*exist"):
        await check_builder(Liar(), make_job=make_job, tmp_path=tmp_path, checks=["success"])
