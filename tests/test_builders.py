"""The built-in builders `rpmbuild` (host rpmbuild in bubblewrap) and `mock` (driven through
the stand-in tests/fixtures/bin/mock), and the conformance kit both pass."""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import CONFORMANCE_MARKER

from copr_lite import BuildContext, BuildJob, Chroot, ChrootResult, Outcome
from copr_lite.builders import BuilderRegistry, read_rpm_headers
from copr_lite.conformance import ALL_CHECKS, check_builder, job_factory

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
STANDIN_BIN = FIXTURES / "bin"
HOST_ARCH = platform.machine()
OTHER_ARCH = "aarch64" if HOST_ARCH != "aarch64" else "x86_64"


def load_plugin(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"test_plugin_{name}", ROOT / "plugins" / f"{name}.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


rpmbuild_plugin = load_plugin("rpmbuild")
mock_plugin = load_plugin("mock")


def make_job(
    srpm: Path, chroot: str = f"fedora-40-{HOST_ARCH}", build_id: int = 7, **fields: object
) -> BuildJob:
    """A job of alice/demo building `srpm` in `chroot` (no package known yet)."""
    return BuildJob(
        build_id=build_id,
        owner="alice",
        project="demo",
        chroot=Chroot.parse(chroot),
        srpm=srpm,
        package=None,
        **fields,  # type: ignore[arg-type]
    )


class Run:
    def __init__(self, tmp_path: Path) -> None:
        self.lines: list[str] = []
        self.ctx = BuildContext(tmp_path / "result", tmp_path / "work", self.log)

    async def log(self, line: str) -> None:
        self.lines.append(line)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


async def build(builder: object, job: BuildJob, tmp_path: Path) -> tuple[ChrootResult, Run]:
    run = Run(tmp_path)
    result = await builder.build(job, run.ctx)  # type: ignore[attr-defined]
    return result, run


def rpm_tag(path: Path, tag: str, tmp_path: Path) -> str:
    return subprocess.run(
        ["rpm", "-qp", "--define", f"_dbpath {tmp_path / 'rpmdb'}", "--qf", f"%{{{tag}}}", path],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.fixture(scope="module", autouse=True)
def home_untouched() -> Iterator[None]:
    """No test of this module writes ~/rpmbuild or ~/.rpmdb (Debian's default _dbpath)."""
    paths = [Path.home() / "rpmbuild", Path.home() / ".rpmdb"]

    def state() -> list[tuple[bool, float | None]]:
        return [(p.exists(), p.stat().st_mtime if p.exists() else None) for p in paths]

    before = state()
    yield
    assert state() == before


@pytest.fixture
def standin_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{STANDIN_BIN}{os.pathsep}{os.environ['PATH']}")


# ---------------------------------------------------------------- conformance


async def conforms(builder: object, conformance_srpms: dict[str, Path], tmp_path: Path) -> Any:
    """The conformance kit's report on `builder`, which passed every check."""
    report = await check_builder(
        builder,  # type: ignore[arg-type]
        make_job=job_factory(conformance_srpms, chroot=f"fedora-40-{HOST_ARCH}"),
        tmp_path=tmp_path,
        marker=CONFORMANCE_MARKER,
    )
    assert report.passed == list(ALL_CHECKS)
    return report


async def test_rpmbuild_builder_conforms(conformance_srpms: dict[str, Path], tmp_path: Path):
    report = await conforms(rpmbuild_plugin.RpmbuildBuilder(), conformance_srpms, tmp_path)
    assert "%build failed: copr-lite-conformance" in report.results["failure"].fail_reason


async def test_mock_builder_conforms(
    conformance_srpms: dict[str, Path], tmp_path: Path, standin_path: None
):
    report = await conforms(mock_plugin.MockBuilder(), conformance_srpms, tmp_path)
    assert report.results["failure"].fail_reason.startswith("mock failed with exit code 10: ")


@pytest.mark.parametrize(
    ("concurrency", "error"),
    [
        ("missing", r"\[protocol\] no `concurrency` attribute"),
        (0, r"\[protocol\] concurrency 0 is neither None nor a number >= 1"),
        ("2", r"\[protocol\] concurrency '2' is neither None"),
    ],
)
async def test_check_builder_holds_a_builder_to_its_attributes(
    tmp_path: Path, concurrency: object, error: str
):
    from copr_lite.conformance import ConformanceError
    from copr_lite.testing import FakeBuilder

    builder = FakeBuilder()
    if concurrency == "missing":
        del builder.concurrency
    else:
        builder.concurrency = concurrency  # type: ignore[assignment]
    with pytest.raises(ConformanceError, match=error):
        await check_builder(
            builder, make_job=job_factory({}), tmp_path=tmp_path, checks=["protocol"]
        )
    builder.concurrency = 2
    report = await check_builder(
        builder, make_job=job_factory({}), tmp_path=tmp_path, checks=["protocol"]
    )
    assert report.passed == ["protocol"]


async def test_check_builder_catches_a_builder_that_ignores_cancel(
    conformance_srpms: dict[str, Path], tmp_path: Path
):
    """A builder that leaves its process running when cancelled fails the kit."""
    import asyncio

    from copr_lite.conformance import ConformanceError, marker_pids

    class Leaky:
        name = "leaky"
        proc: asyncio.subprocess.Process | None = None

        async def build(self, job: BuildJob, ctx: BuildContext) -> ChrootResult:
            self.proc = await asyncio.create_subprocess_exec(
                "sh", "-c", "sleep 30", CONFORMANCE_MARKER
            )
            for i in range(100):
                await ctx.log(f"long build tick {i}")
                await asyncio.sleep(0.1)
            return ChrootResult.failed("done")

    leaky = Leaky()
    with pytest.raises(ConformanceError, match=r"\[cancel\] processes left alive"):
        await check_builder(
            leaky,
            make_job=job_factory(conformance_srpms),
            tmp_path=tmp_path,
            checks=["cancel"],
            marker=CONFORMANCE_MARKER,
        )
    assert leaky.proc is not None
    assert await leaky.proc.wait() == -9  # the kit killed what the builder left behind
    assert not marker_pids(CONFORMANCE_MARKER)


# ---------------------------------------------------------------- rpmbuild builder


@pytest.mark.parametrize(
    ("chroot", "dist"), [("fedora-40", ".fc40"), ("epel-9", ".el9"), ("fedora-rawhide", ".fc42")]
)
async def test_rpmbuild_dist_macro_and_rebuilt_srpm(
    fixture_srpm, tmp_path: Path, chroot: str, dist: str
):
    srpm = fixture_srpm("hello-copr-lite")
    result, run = await build(
        rpmbuild_plugin.RpmbuildBuilder(), make_job(srpm, f"{chroot}-{HOST_ARCH}"), tmp_path
    )
    assert result.status == Outcome.SUCCEEDED, run.text
    assert [p.nevra for p in result.packages] == [f"hello-copr-lite-1.0-1{dist}.noarch"]
    names = sorted(p.name for p in result.files)
    assert names == [
        f"hello-copr-lite-1.0-1{dist}.noarch.rpm",
        f"hello-copr-lite-1.0-1{dist}.src.rpm",
    ]
    assert all(p.parent == run.ctx.result_dir for p in result.files)
    # The published SRPM matches the binary's SOURCERPM header.
    assert rpm_tag(run.ctx.result_dir / names[0], "SOURCERPM", tmp_path) == names[1]
    assert "host build with the Debian rpm toolchain inside bubblewrap" in run.lines[0]
    assert "not a clean Fedora chroot" in run.lines[0]


async def test_rpmbuild_arch_specific_package_on_the_host_arch(fixture_srpm, tmp_path: Path):
    result, run = await build(
        rpmbuild_plugin.RpmbuildBuilder(), make_job(fixture_srpm("hello-copr-lite-c")), tmp_path
    )
    assert result.status == Outcome.SUCCEEDED, run.text
    assert [p.nevra for p in result.packages] == [f"hello-copr-lite-c-1.0-1.fc40.{HOST_ARCH}"]


async def test_rpmbuild_refuses_arch_specific_package_for_another_arch(
    fixture_srpm, tmp_path: Path
):
    builder = rpmbuild_plugin.RpmbuildBuilder()
    result, run = await build(
        builder, make_job(fixture_srpm("hello-copr-lite-c"), f"fedora-40-{OTHER_ARCH}"), tmp_path
    )
    assert result.status == Outcome.FAILED
    assert result.fail_reason.startswith(
        f"cannot build an arch-specific package for {OTHER_ARCH} on this {HOST_ARCH} host"
    )
    assert result.fail_reason in run.text
    assert not list((tmp_path / "result").glob("*.rpm"))

    # A noarch package builds for that chroot all the same.
    result, run = await build(
        builder,
        make_job(fixture_srpm("hello-copr-lite"), f"fedora-40-{OTHER_ARCH}"),
        tmp_path / "n",
    )
    assert result.status == Outcome.SUCCEEDED, run.text
    assert [p.nevra for p in result.packages] == ["hello-copr-lite-1.0-1.fc40.noarch"]


async def test_rpmbuild_build_requires(fixture_srpm, tmp_path: Path):
    builder = rpmbuild_plugin.RpmbuildBuilder()
    srpm = fixture_srpm("copr-lite-breq")
    result, run = await build(builder, make_job(srpm), tmp_path / "refused")
    assert result.status == Outcome.FAILED
    assert result.fail_reason == "BuildRequires not available in this chroot: gcc"
    assert "BuildRequires: gcc" in run.text
    # The log says plainly what this builder cannot do, and which one can.
    assert "builds only packages without BuildRequires" in run.text
    assert "Serve this chroot with the container builder" in run.text

    result, run = await build(
        builder, make_job(srpm, buildroot_pkgs=("make", "gcc >= 12")), tmp_path / "listed"
    )
    assert result.status == Outcome.SUCCEEDED, run.text
    assert "--nodeps" in run.text
    assert [p.name for p in result.packages] == ["copr-lite-breq"]


@pytest.mark.parametrize("enable_net", [False, True])
async def test_rpmbuild_network_only_when_enabled(fixture_srpm, tmp_path: Path, enable_net: bool):
    result, run = await build(
        rpmbuild_plugin.RpmbuildBuilder(),
        make_job(fixture_srpm("copr-lite-probe"), enable_net=enable_net),
        tmp_path,
    )
    assert result.status == Outcome.SUCCEEDED, run.text
    seen = next(line for line in run.lines if line.startswith("copr-lite-probe interfaces:"))
    interfaces = seen.split(":", 1)[1].split()
    host = sorted(
        line.split(":")[0].strip() for line in Path("/proc/net/dev").read_text().splitlines()[2:]
    )
    assert interfaces == (host if enable_net else ["lo"])


async def test_rpmbuild_sandbox_is_read_only_and_private(fixture_srpm, tmp_path: Path):
    builder = rpmbuild_plugin.RpmbuildBuilder()
    probe_lines = await check_read_only_sandbox(builder, make_job, fixture_srpm, tmp_path)
    assert "copr-lite-probe etc: read-only" in probe_lines
    assert not Path("/usr/share/copr-lite-write-usr-test").exists()
    # A server running as root builds as nobody: root could read the host's secrets.
    if os.geteuid() == 0:
        assert "copr-lite-probe uid: 65534" in probe_lines
    if Path("/etc/shadow").exists():
        assert "copr-lite-probe shadow: unreadable" in probe_lines


async def check_read_only_sandbox(
    builder: object, make_job: Callable[[Path], BuildJob], fixture_srpm, tmp_path: Path
) -> list[str]:
    """In `builder`'s sandbox (jobs from `make_job`) the probe SRPM finds /usr read-only and
    /build its home, and a build writing to /usr fails; the probe's log lines."""
    result, run = await build(builder, make_job(fixture_srpm("copr-lite-probe")), tmp_path / "p")
    assert result.status == Outcome.SUCCEEDED, run.text
    assert "copr-lite-probe usr: read-only" in run.lines
    assert "copr-lite-probe home: /build" in run.lines
    result, _ = await build(builder, make_job(fixture_srpm("copr-lite-write-usr")), tmp_path / "w")
    assert result.status == Outcome.FAILED
    assert result.fail_reason.startswith("rpmbuild failed with exit code 1: %build failed: ")
    assert "Read-only file system" in result.fail_reason
    return run.lines


async def test_rpmbuild_without_bwrap_fails_clearly(fixture_srpm, tmp_path: Path):
    builder = rpmbuild_plugin.RpmbuildBuilder(bwrap="copr-lite-no-such-bwrap")
    result, _ = await build(builder, make_job(fixture_srpm("hello-copr-lite")), tmp_path)
    assert result == ChrootResult.failed("bubblewrap (bwrap) is not installed on this server")


def test_rpmbuild_failure_line():
    lines = [
        "+ echo boom",
        "boom: the tests are broken",
        "+ exit 1",
        "error: Bad exit status from /build/tmp/rpm-tmp.x (%check)",
        "",
        "RPM build errors:",
        "    Bad exit status from /build/tmp/rpm-tmp.x (%check)",
    ]
    assert rpmbuild_plugin.failure_line(lines) == "%check failed: boom: the tests are broken"
    assert rpmbuild_plugin.failure_line(["error: File not found: /x"]) == "File not found: /x"
    assert rpmbuild_plugin.failure_line(["a", "last words", ""]) == "last words"


# ---------------------------------------------------------------- mock builder


async def test_mock_command_line(
    fixture_srpm, tmp_path: Path, standin_path: None, monkeypatch: pytest.MonkeyPatch
):
    argv_log = tmp_path / "argv.jsonl"
    monkeypatch.setenv("MOCK_STANDIN_ARGV_LOG", str(argv_log))
    srpm = fixture_srpm("copr-lite-breq")
    job = make_job(
        srpm,
        "epel-9-" + HOST_ARCH,
        enable_net=True,
        repos=("http://127.0.0.1:1/results/alice/demo/epel-9-x86_64/", "https://example.invalid/r"),
        buildroot_pkgs=("gcc", "make >= 4"),
    )
    result, run = await build(mock_plugin.MockBuilder(), job, tmp_path / "b")
    assert result.status == Outcome.SUCCEEDED, run.text
    (argv,) = [json.loads(line) for line in argv_log.read_text().splitlines()]
    result_dir = str(run.ctx.result_dir)
    assert argv == [
        "mock",
        "-r", f"epel-9-{HOST_ARCH}",
        "--uniqueext", "copr-lite-7",
        "--resultdir", result_dir,
        "--enable-network",
        "--addrepo", "http://127.0.0.1:1/results/alice/demo/epel-9-x86_64/",
        "--addrepo", "https://example.invalid/r",
        "--additional-package", "gcc",
        "--additional-package", "make >= 4",
        "--rebuild", str(srpm),
    ]  # fmt: skip
    assert [p.nevra for p in result.packages] == ["copr-lite-breq-1.0-1.el9.noarch"]
    assert sorted(p.name for p in result.files) == [
        "copr-lite-breq-1.0-1.el9.noarch.rpm",
        "copr-lite-breq-1.0-1.el9.src.rpm",
    ]
    assert {"build.log", "root.log", "state.log"} <= {p.name for p in run.ctx.result_dir.iterdir()}
    # rpmbuild's output only goes to build.log; the builder brings it to the live log.
    assert "copr-lite-breq: building" in run.lines
    assert "Start: rpmbuild copr-lite-breq-1.0-1.src.rpm" in run.lines

    # Without enable_net, repos and buildroot packages, none of those options.
    argv_log.unlink()
    result, run = await build(
        mock_plugin.MockBuilder(), make_job(fixture_srpm("hello-copr-lite")), tmp_path / "plain"
    )
    assert result.status == Outcome.SUCCEEDED, run.text
    (argv,) = [json.loads(line) for line in argv_log.read_text().splitlines()]
    assert not {"--enable-network", "--addrepo", "--additional-package"} & set(argv)


async def test_mock_failure_reasons(
    fixture_srpm, conformance_srpms: dict[str, Path], tmp_path: Path, standin_path: None
):
    result, _ = await build(
        mock_plugin.MockBuilder(), make_job(fixture_srpm("copr-lite-breq")), tmp_path / "deps"
    )
    assert result.status == Outcome.FAILED
    assert result.fail_reason.startswith("mock failed with exit code 30: ")
    assert "gcc" in result.fail_reason

    result, _ = await build(
        mock_plugin.MockBuilder(), make_job(conformance_srpms["failing"]), tmp_path / "fail"
    )
    assert result.status == Outcome.FAILED
    assert result.fail_reason == (
        "mock failed with exit code 10: "
        "%build failed: copr-lite-conformance: this build fails on purpose"
    )


async def test_mock_not_installed(fixture_srpm, tmp_path: Path):
    builder = mock_plugin.MockBuilder(command="copr-lite-no-such-mock")
    result, run = await build(builder, make_job(fixture_srpm("hello-copr-lite")), tmp_path)
    assert result == ChrootResult.failed("mock is not installed on this server")
    assert "error: mock is not installed on this server" in run.lines


def test_mock_standin_rejects_unknown_options(tmp_path: Path):
    proc = subprocess.run(
        [str(STANDIN_BIN / "mock"), "-r", "fedora-40-x86_64", "--bogus", "--rebuild", "x.src.rpm"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 5
    assert "unrecognized arguments: --bogus" in proc.stderr


# ---------------------------------------------------------------- registration


def test_plugins_register_both_builders(tmp_path: Path):
    from copr_lite.config import load_config
    from copr_lite.plugins import make_plugin_manager

    config = load_config(
        None,
        data_dir=tmp_path,
        plugin_sections={"mock": {"command": "/opt/mock"}, "rpmbuild": {"bwrap": "/opt/bwrap"}},
    )
    registry = BuilderRegistry()
    make_plugin_manager(config, load_entrypoints=False).hook.register_builders(
        registry=registry, config=config
    )
    assert {"mock", "rpmbuild"} <= set(registry.names())
    assert registry.get("mock").command == "/opt/mock"  # type: ignore[union-attr]
    assert registry.get("rpmbuild").bwrap == "/opt/bwrap"  # type: ignore[union-attr]


async def test_read_rpm_headers_of_results(fixture_srpm, tmp_path: Path):
    """The builders' packages come from the RPM headers, not from file names."""
    result, _ = await build(
        rpmbuild_plugin.RpmbuildBuilder(), make_job(fixture_srpm("hello-copr-lite")), tmp_path
    )
    headers = await read_rpm_headers(list(result.files))
    assert {h.arch for h in headers} == {"noarch", "src"}
