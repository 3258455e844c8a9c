"""The built-in `container` builder, building for real in podman containers on this machine.

The image is the one `python -m copr_lite builder-image` makes (tests/container_image.py:
debootstrap + podman import the first time, reused afterwards). These tests skip only when
podman cannot run a container here at all, and say why.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from copr_lite import BuildJob, ChrootResult, Outcome
from copr_lite.builders import BuilderRegistry
from copr_lite.config import ConfigError, parse_plugin_settings
from copr_lite.conformance import ALL_CHECKS, check_builder, job_factory, make_srpm, marker_pids

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import CONFORMANCE_MARKER
from container_image import IMAGE, builder_image_or_skip
from test_builders import Run, build, check_read_only_sandbox
from test_builders import make_job as builders_job

ROOT = Path(__file__).resolve().parent.parent
HOST_ARCH = platform.machine()
CHROOT = f"fedora-40-{HOST_ARCH}"
MARKER = CONFORMANCE_MARKER


def _load_plugin() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "test_plugin_container", ROOT / "plugins" / "container.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


container = _load_plugin()


@pytest.fixture(scope="session")
def builder_image() -> str:
    """The test image, built once per machine; skips when podman cannot run at all."""
    return builder_image_or_skip("container builder tests")


@pytest.fixture
def builder(builder_image: str):
    return container.ContainerBuilder(image=builder_image)


def podman_out(*args: str) -> str:
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=True).stdout


def podman_lines(*args: str) -> list[str]:
    return podman_out(*args).split()


def leftovers() -> dict[str, list[str]]:
    """copr-lite containers (any state), volumes, and overlay mounts of podman's storage."""
    mounts = [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if "/containers/storage/overlay/" in line.split()[4]
    ]
    return {
        "containers": podman_lines(
            "ps", "-a", "--filter", "name=copr-lite-", "--format", "{{.Names}}"
        ),
        "volumes": podman_lines("volume", "ls", "--format", "{{.Name}}"),
        "mounts": mounts,
    }


@pytest.fixture
def clean(builder_image: str):
    """Asserts a test leaves no container, volume or mount behind."""
    before = leftovers()
    assert not before["containers"], f"copr-lite containers before the test: {before}"

    def left() -> dict[str, list[str]] | None:
        now = leftovers()
        return None if now == before else now

    yield left
    assert left() is None, f"left behind: {left()} (before: {before})"


def make_job(srpm: Path, chroot: str = CHROOT, **fields: object) -> BuildJob:
    return builders_job(srpm, chroot, **fields)


def spec_srpm(tmp_path: Path, name: str, build_script: str) -> Path:
    """An SRPM of a noarch package whose %build runs `build_script`."""
    spec = tmp_path / f"{name}.spec"
    spec.write_text(
        f"""Name: {name}
Version: 1.0
Release: 1%{{?dist}}
Summary: copr_lite container test package
License: MIT
BuildArch: noarch

%description
Test package.

%prep

%build
{build_script}

%install
mkdir -p %{{buildroot}}%{{_datadir}}/{name}
echo ok > %{{buildroot}}%{{_datadir}}/{name}/ok.txt

%files
%{{_datadir}}/{name}/ok.txt

%changelog
* Mon Jan 01 2024 copr_lite tests <tests@example.invalid> - 1.0-1
- test fixture
"""
    )
    return make_srpm(spec, tmp_path / "srpms")


# ---------------------------------------------------------------- conformance, leftovers


async def test_container_builder_conforms_and_leaves_nothing_behind(
    builder, conformance_srpms: dict[str, Path], tmp_path: Path, clean
):
    """Every check of the kit (success, failure, streaming, cancel, timeout), each followed by
    a look for leftover containers, volumes and mounts. The cancel and timeout checks see the
    marker process inside the container in the host's /proc, and that it is gone after."""
    make = job_factory(conformance_srpms, chroot=CHROOT)
    for check in ALL_CHECKS:
        started = time.monotonic()
        report = await check_builder(
            builder, make_job=make, tmp_path=tmp_path / check, checks=[check], marker=MARKER
        )
        assert report.passed == [check]
        assert clean() is None, f"after {check}: {clean()}"
        assert time.monotonic() - started < 30
    assert not marker_pids(MARKER)


async def test_cancel_kills_the_container_not_just_the_client(
    builder, conformance_srpms: dict[str, Path], tmp_path: Path, clean
):
    run = Run(tmp_path)
    task = asyncio.create_task(builder.build(make_job(conformance_srpms["long"]), run.ctx))
    while sum("long build tick" in line for line in run.lines) < 2:
        assert not task.done(), run.text
        await asyncio.sleep(0.05)
    (name,) = podman_lines("ps", "--filter", "name=copr-lite-7-", "--format", "{{.Names}}")
    assert name.startswith(f"copr-lite-7-{CHROOT}-")
    assert marker_pids(MARKER)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 3
    assert not marker_pids(MARKER)
    assert not podman_lines("ps", "-a", "--filter", f"name={name}", "--format", "{{.Names}}")


# ---------------------------------------------------------------- what a build gets


@pytest.mark.parametrize(("chroot", "dist"), [("fedora-40", ".fc40"), ("epel-9", ".el9")])
async def test_dist_macro_and_rebuilt_srpm(
    builder, fixture_srpm, tmp_path: Path, chroot: str, dist: str
):
    result, run = await build(
        builder, make_job(fixture_srpm("hello-copr-lite"), f"{chroot}-{HOST_ARCH}"), tmp_path
    )
    assert result.status == Outcome.SUCCEEDED, run.text
    assert [p.nevra for p in result.packages] == [f"hello-copr-lite-1.0-1{dist}.noarch"]
    assert sorted(p.name for p in result.files) == [
        f"hello-copr-lite-1.0-1{dist}.noarch.rpm",
        f"hello-copr-lite-1.0-1{dist}.src.rpm",
    ]
    assert all(p.parent == run.ctx.result_dir for p in result.files)
    assert f"from image {IMAGE}" in run.lines[0]


@pytest.mark.parametrize("enable_net", [False, True])
async def test_network_only_when_enabled(
    builder, fixture_srpm, tmp_path: Path, enable_net: bool, clean
):
    result, run = await build(
        builder, make_job(fixture_srpm("copr-lite-probe"), enable_net=enable_net), tmp_path
    )
    assert result.status == Outcome.SUCCEEDED, run.text
    seen = next(line for line in run.lines if line.startswith("copr-lite-probe interfaces:"))
    interfaces = seen.split(":", 1)[1].split()
    if enable_net:
        assert "lo" in interfaces and len(interfaces) > 1, interfaces
    else:
        assert interfaces == ["lo"]


async def test_root_is_read_only_except_build_and_tmpfs(
    builder, fixture_srpm, tmp_path: Path, clean
):
    script = "\n".join(
        f'if touch {path}/copr-lite-w 2>/dev/null; then echo "probe {path}: writable"; '
        f'else echo "probe {path}: read-only"; fi'
        for path in ("/", "/usr/bin", "/etc", "/root", "/opt", "/var", "/srpm", "/tmp",
                     "/var/tmp", "/build")
    )  # fmt: skip
    srpm = spec_srpm(tmp_path, "copr-lite-container-ro", script)
    result, run = await build(builder, make_job(srpm), tmp_path / "b")
    assert result.status == Outcome.SUCCEEDED, run.text
    seen = {
        line.split(":")[0][6:]: line.split(": ")[1]
        for line in run.lines
        if line.startswith("probe /")
    }
    assert seen == {
        "/": "read-only",
        "/usr/bin": "read-only",
        "/etc": "read-only",
        "/root": "read-only",
        "/opt": "read-only",
        "/var": "read-only",
        "/srpm": "read-only",
        "/tmp": "writable",
        "/var/tmp": "writable",
        "/build": "writable",
    }

    # The fixtures the rpmbuild builder is tested with, too.
    await check_read_only_sandbox(builder, make_job, fixture_srpm, tmp_path)


async def test_memory_limit_is_applied_and_enforced(
    builder, conformance_srpms: dict[str, Path], tmp_path: Path, clean
):
    # podman gives the container the job's memory_reqs...
    run = Run(tmp_path / "long")
    job = make_job(conformance_srpms["long"], memory_reqs=300)
    task = asyncio.create_task(builder.build(job, run.ctx))
    try:
        while not any("long build tick" in line for line in run.lines):
            assert not task.done(), run.text
            await asyncio.sleep(0.05)
        (name,) = podman_lines("ps", "--filter", "name=copr-lite-7-", "--format", "{{.Names}}")
        inspect = json.loads(await asyncio.to_thread(podman_out, "inspect", name))[0]
        assert inspect["HostConfig"]["Memory"] == 300 * 1024 * 1024
        assert inspect["HostConfig"]["NetworkMode"] == "none"
        assert inspect["HostConfig"]["ReadonlyRootfs"] is True
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    # ...the build sees it in its cgroup, and nothing warns that it is not enforced...
    assert f"copr-lite container: memory limit {300 * 1024 * 1024}" in run.lines
    assert not any("NOT enforced" in line for line in run.lines)

    # ...and a build that needs more is killed.
    hog = spec_srpm(
        tmp_path,
        "copr-lite-container-hog",
        "head -c 400000000 /dev/zero | tail -c 300000000 >/dev/null",
    )
    result, run = await build(builder, make_job(hog, memory_reqs=64), tmp_path / "hog")
    assert result.status == Outcome.FAILED, run.text
    assert result.fail_reason == (
        "rpmbuild failed with exit code 1: %build failed: Killed (over the memory limit of 64 MiB?)"
    ), run.text
    # The same build with enough memory passes.
    result, run = await build(builder, make_job(hog, memory_reqs=1024), tmp_path / "ok")
    assert result.status == Outcome.SUCCEEDED, run.text


def test_memory_note():
    line = container.MEMORY_LINE
    assert container.memory_note(f"{line}{2048 * 1024 * 1024}", 2048) is None
    assert "is 1024 MiB, not the 2048 MiB" in container.memory_note(f"{line}{1 << 30}", 2048)
    for value in ("max", "9223372036854771712", "unknown"):
        note = container.memory_note(f"{line}{value}", 2048)
        assert "memory limit of 2048 MiB is NOT enforced" in note and value in note


async def test_podman_timeout_backstop(
    builder, conformance_srpms: dict[str, Path], tmp_path: Path, clean
):
    """Even with nobody cancelling the task, conmon stops the container at the job's timeout."""
    started = time.monotonic()
    result, _ = await build(builder, make_job(conformance_srpms["long"], timeout=2), tmp_path)
    assert time.monotonic() - started < 10
    assert result == ChrootResult.failed("the container was stopped at its timeout of 2 s")


# ---------------------------------------------------------------- images and rules


async def test_per_chroot_image(builder_image: str, fixture_srpm, tmp_path: Path, clean):
    missing = "localhost/copr-lite-no-such-image:1"
    builder = container.ContainerBuilder(
        image=builder_image, images={f"fedora-41-{HOST_ARCH}": missing}, pull="never"
    )
    srpm = fixture_srpm("hello-copr-lite")
    result, run = await build(builder, make_job(srpm, f"fedora-41-{HOST_ARCH}"), tmp_path / "a")
    assert result == ChrootResult.failed(
        f"container image {missing} for fedora-41-{HOST_ARCH} does not exist on this server "
        "(pull = never)"
    )
    assert f"from image {missing}" in run.lines[0]
    result, run = await build(builder, make_job(srpm), tmp_path / "b")
    assert result.status == Outcome.SUCCEEDED, run.text

    # With pulling allowed, podman's own error is the reason.
    builder = container.ContainerBuilder(images={CHROOT: "copr-lite-no-such.invalid/x:1"})
    result, run = await build(builder, make_job(srpm), tmp_path / "c")
    assert result.status == Outcome.FAILED
    assert result.fail_reason.startswith(
        "podman could not run the container from copr-lite-no-such.invalid/x:1: "
    ), result.fail_reason


async def test_image_without_rpmbuild(builder_image: str, fixture_srpm, tmp_path: Path, clean):
    builder = container.ContainerBuilder(
        image=builder_image, extra_args=["--env", "PATH=/nonexistent"]
    )
    result, _ = await build(builder, make_job(fixture_srpm("hello-copr-lite")), tmp_path)
    assert result.status == Outcome.FAILED
    assert result.fail_reason.startswith(f"the image {builder_image} cannot run the build")


async def test_build_requires_the_image_provides_need_no_repository(
    builder, fixture_srpm, tmp_path: Path
):
    # copr-lite-breq needs gcc, which the Debian image's rpm database provides: with no
    # repository at all rpmbuild checks it (without --nodeps); with one, dnf finds it installed.
    srpm = fixture_srpm("copr-lite-breq")
    result, run = await build(builder, make_job(srpm), tmp_path / "none")
    assert result.status == Outcome.SUCCEEDED, run.text
    assert "BuildRequires: gcc" in run.lines
    assert "no repositories: the BuildRequires must be in the image" in run.lines
    assert "--nodeps" not in run.text
    empty = tmp_path / "empty-repo"
    empty.mkdir()
    await asyncio.to_thread(subprocess.run, ["createrepo_c", "-q", str(empty)], check=True)
    result, run = await build(
        builder, make_job(srpm, distro_repos=(empty.as_uri(),)), tmp_path / "repo"
    )
    assert result.status == Outcome.SUCCEEDED, run.text
    assert container.DEPS_PRESENT in run.lines  # rpm said so: dnf did not run
    assert "copr-lite: build dependencies installed" in run.lines


def test_podman_command_line(tmp_path: Path):
    builder = container.ContainerBuilder.from_settings(
        parse_plugin_settings(
            "container",
            container.ContainerSettings,
            {
                "runtime": "runc",
                "ulimits": "nofile=1024:1024, nproc=512:512",
                "image.fedora-40-x86_64": "registry.fedoraproject.org/fedora:40",
                "extra_args": "--pids-limit 100",
            },
        ),
        tmp_path,
    )
    job = make_job(tmp_path / "x.src.rpm", "fedora-40-x86_64", memory_reqs=512, timeout=60)
    argv = builder.run_argv(job, "copr-lite-7-x", tmp_path / "w", "/srpm/x.src.rpm")
    assert argv[:4] == ["podman", "--runtime", "runc", "run"]
    assert argv[-1] == "registry.fedoraproject.org/fedora:40"
    joined = " ".join(argv)
    for part in (
        "--rm --name copr-lite-7-x",
        "--network=none",
        "--read-only --tmpfs /tmp --tmpfs /var/tmp",
        f"-v {tmp_path / 'w'}:/build:rw -v {tmp_path / 'x.src.rpm'}:/srpm/x.src.rpm:ro",
        "--memory 512m --memory-swap 512m",
        "--timeout 60",
        "--ulimit nofile=1024:1024 --ulimit nproc=512:512",
        "--pids-limit 100",
    ):
        assert part in joined
    enabled = builder.run_argv(
        make_job(tmp_path / "x.src.rpm", "epel-9-x86_64", enable_net=True), "n", tmp_path, "/s"
    )
    assert not any(a.startswith("--network") for a in enabled)
    assert enabled[-1] == container.DEFAULT_IMAGE

    settings = container.ContainerSettings
    with pytest.raises(ConfigError, match=r"unknown key \[plugin:container\] imgae"):
        parse_plugin_settings("container", settings, {"imgae": "x"})
    with pytest.raises(ConfigError, match="pull = 'sometimes': choose one of always, missing"):
        parse_plugin_settings("container", settings, {"pull": "sometimes"})
    with pytest.raises(ConfigError, match=r"extra_args = '--label \"x': No closing quotation"):
        parse_plugin_settings("container", settings, {"extra_args": '--label "x'})


def test_plugin_registers_the_container_builder(tmp_path: Path):
    from copr_lite.config import load_config
    from copr_lite.plugins import make_plugin_manager

    config = load_config(
        None,
        data_dir=tmp_path,
        plugin_sections={
            "container": {"podman": "/opt/podman", "runtime": "", "image.epel-9-x86_64": "e:9"}
        },
    )
    registry = BuilderRegistry()
    make_plugin_manager(config, load_entrypoints=False).hook.register_builders(
        registry=registry, config=config
    )
    registered = registry.get("container")
    assert registered is not None
    assert registered.podman_base() == ["/opt/podman"]  # type: ignore[attr-defined]
    assert registered.image_for("epel-9-x86_64") == "e:9"  # type: ignore[attr-defined]
    assert registered.image_for("fedora-40-x86_64") == container.DEFAULT_IMAGE  # type: ignore[attr-defined]
