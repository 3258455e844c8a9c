"""A canceled build never keeps running, and no build outlives the server: the real server,
real rpmbuild in bubblewrap, and /proc as the judge.

Each long build carries a per-round marker in its SRPM name and in its looping shell's
command line (tests/fixtures/copr-lite-e2e-long.spec), so `pgrep -f` finds every process
of it: bwrap, rpmbuild and the loop.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from container_image import ensure_builder_image, podman_unusable
from test_e2e import (
    Api,
    Server,
    describe,
    kill_marker_processes,
    long_srpm,
    make_server,
    marker_pids,
    serving,
    wait_no_marker_processes,
)

from copr_lite.liveserver import wait_for

CHROOTS = ("fedora-40-x86_64", "fedora-41-x86_64", "fedora-rawhide-x86_64", "epel-9-x86_64")
OWNER, PROJECT = "carol", "race"
RUN = f"race_{os.getpid()}_{secrets.token_hex(3)}"

_TOOLS = ("rpm", "rpmbuild", "createrepo_c", "bwrap", "pgrep")
pytestmark = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in _TOOLS),
    reason="needs " + ", ".join(_TOOLS) + " (./dev installs them)",
)


@pytest.fixture(scope="module")
def host_guard() -> Iterator[None]:
    yield
    leftovers = kill_marker_processes(RUN)
    assert not leftovers, f"processes of this module's builds were still alive: {leftovers}"


def submit(api: Api, srpm: Path, count: int) -> list[int]:
    path = f"/api/coprs/{OWNER}/{PROJECT}/new_build_upload/"
    return [api.ok("upload", path, srpm)["id"] for _ in range(count)]


def wait_running(api: Api, build_ids: list[int], count: int, within: float) -> None:

    def enough() -> bool:
        states = [s for b in build_ids for s in api.detail(b)["chroots"].values()]
        return states.count("running") >= count

    wait_for(enough, within, f"{count} chroots running")


def published_rpms(server: Server, build_ids: list[int]) -> list[Path]:
    """Binary or source RPMs of these builds anywhere under the results tree."""
    results = server.data_dir / "results" / OWNER / PROJECT
    found = []
    for build_id in build_ids:
        found += [p for p in results.glob(f"*/{build_id:08d}-*/*.rpm")]
    return found


def containers() -> list[str]:
    """copr-lite build containers in any state."""
    out = subprocess.run(
        ["podman", "ps", "-a", "--filter", "name=copr-lite-", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()


@pytest.fixture(scope="module", params=["rpmbuild", "container"])
def project_server(request, tmp_path_factory: pytest.TempPathFactory, host_guard: None):
    builder = request.param
    if builder == "container":
        if reason := podman_unusable():
            pytest.skip(f"container builds need a working podman: {reason}")
        ensure_builder_image()
    server = make_server(tmp_path_factory.mktemp("race-server"), CHROOTS, builder)
    with serving(server):
        api = server.make_user(OWNER)
        api.ok("post", f"/api/coprs/{OWNER}/new/", name=PROJECT, chroots=" ".join(CHROOTS))
        yield server, api, builder
    text = server.logs[0].read_text(errors="replace")
    assert "Traceback" not in text, server.log_tail(20000)


# (seconds after submitting, seconds between the cancels): the cancels land while the
# builds import, while chroots start, and while they run with the next ones starting.
ROUNDS = [(0.0, 0.0), (0.3, 0.02), (1.0, 0.05), (2.5, 0.0), (2.5, 0.2), (4.0, 0.1)]


@pytest.mark.parametrize(("delay", "gap"), ROUNDS)
def test_queued_builds_canceled_one_after_another_leave_nothing(
    project_server: tuple[Server, Api, str], tmp_path: Path, delay: float, gap: float
) -> None:
    """Three builds x four chroots on concurrency 2, canceled one after another: each
    cancel frees slots that the dispatcher refills while the next cancel arrives."""
    server, api, builder = project_server
    marker = f"{RUN}_{builder}_d{int(delay * 10)}_g{int(gap * 100)}"
    srpm = long_srpm(tmp_path, marker, 150)
    build_ids = submit(api, srpm, 3)
    if delay:
        time.sleep(delay)
    for build_id in build_ids:
        answer = api.post(f"/api/coprs/cancel_build/{build_id}/")
        assert answer["_status"] in (200, 409), answer
        time.sleep(gap)
    for build_id in build_ids:
        detail = api.detail(build_id)
        assert set(detail["chroots"].values()) == {"canceled"}, detail
    left = wait_no_marker_processes(marker, 5)
    assert not left, f"processes of canceled builds survived:\n{describe(left)}"
    # Nothing of them may be published later either (a leaked build finishes in ~30 s;
    # the short wait here catches a build still starting).
    time.sleep(1.0)
    late = marker_pids(marker)
    assert not late, f"processes of canceled builds started late:\n{describe(late)}"
    assert not published_rpms(server, build_ids)
    if builder == "container":
        assert not containers(), "containers of canceled builds are left"


def test_sigterm_with_builds_starting_and_running_leaves_no_process(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, host_guard: None
) -> None:
    server = make_server(tmp_path_factory.mktemp("race-stop"), chroots=CHROOTS)
    marker = f"{RUN}_stop"
    srpm = long_srpm(tmp_path, marker, 150)
    with serving(server) as proc:
        api = server.make_user(OWNER)
        api.ok("post", f"/api/coprs/{OWNER}/new/", name=PROJECT, chroots=" ".join(CHROOTS))
        build_ids = submit(api, srpm, 2)
        wait_running(api, build_ids, 2, 60)
        # A third build and a cancel make the dispatcher start chroots as the stop arrives.
        build_ids += submit(api, srpm, 1)
        api.post(f"/api/coprs/cancel_build/{build_ids[0]}/")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert proc.returncode == 0, server.log_tail()
    left = wait_no_marker_processes(marker, 2)
    assert not left, f"build processes outlived the server:\n{describe(left)}"
