"""The web UI in a real headless browser: Debian's chromium driven by Playwright (sync API).

One `python -m copr_lite serve` per module on a free port (chroots fedora-40-x86_64 and
epel-9-x86_64, both `rpmbuild`), user alice from `python -m copr_lite user add`. The tests run
in order on one browser page: sign in, create a project, upload real SRPMs and watch their
logs and states change without a reload, cancel a long build, search. Screenshots go to
<repo>/test-artifacts/ (kept after the run, for people to look at).

Playwright never downloads a browser here: it launches /usr/bin/chromium (apt `chromium`)
with a fresh profile directory.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from live import free_port, serving
from playwright import sync_api as playwright_sync

from copr_lite.conformance import make_srpm

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
F40, EL9 = "fedora-40-x86_64", "epel-9-x86_64"
PASSWORD = "browser-password-1"
PROJECT = "web-ui"
BUILD_WAIT_MS = 120_000
MARKER = f"webui_{os.getpid()}_{secrets.token_hex(4)}"


@dataclass
class Server:
    url: str
    workdir: Path
    log_path: Path


def _copr_lite(config: Path, *args: str, stdin: str = "") -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "copr_lite", *args, "--config", str(config)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=config.parent,
        check=False,
    )
    assert proc.returncode == 0, f"copr_lite {' '.join(args)}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _marker_pids(marker: str) -> list[int]:
    proc = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True, check=False)
    return [int(pid) for pid in proc.stdout.split() if int(pid) != os.getpid()]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("copr-lite-web")
    port = free_port()
    config = workdir / "copr-lite.ini"
    config.write_text(
        "[server]\n"
        f"port = {port}\n"
        f"data_dir = {workdir / 'data'}\n"
        "access_log = no\n"
        "\n[builds]\nconcurrency = 2\n"
        f"\n[chroots]\n{F40} = rpmbuild\n{EL9} = rpmbuild\n"
    )
    log_path = workdir / "server.log"
    try:
        with serving(config, workdir, log_path) as (proc, _):
            assert proc.poll() is None, f"serve exited:\n{log_path.read_text()[-4000:]}"
            _copr_lite(config, "user", "add", "alice", "--password-stdin", stdin=PASSWORD)
            yield Server(f"http://127.0.0.1:{port}", workdir, log_path)
    finally:
        for pid in _marker_pids(MARKER):  # a failed test may leave a long build behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def page(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One chromium page for the whole module (its cookies carry the sign-in along)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    ARTIFACTS.mkdir(exist_ok=True)
    profile = tmp_path_factory.mktemp("chromium-profile")
    with playwright_sync.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(30_000)
        page = context.pages[0] if context.pages else context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            yield page
        finally:
            context.close()
        assert not errors, f"JavaScript errors on the pages: {errors}"


def shot(page: Any, name: str, *, phone: bool = False) -> None:
    """Save a full-page screenshot; `phone` lays the page out again at 390 x 844 first."""
    if phone:
        page.set_viewport_size({"width": 390, "height": 844})
        page.reload()
    page.screenshot(path=str(ARTIFACTS / f"web-{name}.png"), full_page=True)
    if phone:
        page.set_viewport_size({"width": 1280, "height": 900})
        page.reload()


def long_srpm(out_dir: Path, marker: str, ticks: int) -> Path:
    """tests/fixtures/copr-lite-e2e-long.spec with its own marker and length (ticks x 0.2 s)."""
    text = (FIXTURES / "copr-lite-e2e-long.spec").read_text()
    text = re.sub(r"(?m)^%global ticks .*$", f"%global ticks {ticks}", text)
    text = re.sub(r"(?m)^%global marker .*$", f"%global marker {marker}", text)
    spec = out_dir / f"copr-lite-e2e-long-{marker}.spec"
    out_dir.mkdir(parents=True, exist_ok=True)
    spec.write_text(text)
    return make_srpm(spec, out_dir / "srpms", sourcedir=FIXTURES)


def upload_build(page: Any, server: Server, srpm: Path, chroots: tuple[str, ...]) -> int:
    """Submit `srpm` through the new-build form; returns the build id (on its page now)."""
    page.goto(f"{server.url}/coprs/alice/{PROJECT}/new_build/")
    for chroot in (F40, EL9):
        box = page.get_by_label(chroot, exact=True)
        box.set_checked(chroot in chroots)
    page.set_input_files("#srpm", str(srpm))
    page.click("#build-submit")
    page.wait_for_url(re.compile(r"/builds/\d+/$"))
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


WATCH_STATES = """() => {
  window.__noReload = true;
  const badge = document.getElementById('build-state');
  window.__states = [badge.textContent];
  new MutationObserver(() => {
    if (window.__states.at(-1) !== badge.textContent) window.__states.push(badge.textContent);
  }).observe(badge, {childList: true, characterData: true, subtree: true});
}"""


def log_lines(page: Any, chroot: str) -> int:
    return int(page.eval_on_selector(f"#log-{chroot} pre.log", "e => +(e.dataset.lines || 0)"))


# ---------------------------------------------------------------- the tests, in order


def test_sign_in(page: Any, server: Server) -> None:
    page.goto(server.url + "/")
    shot(page, "home-anonymous")
    page.click("nav >> text=Sign in")
    page.fill("#username", "alice")
    page.fill("#password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_load_state()
    page.goto(server.url + "/")
    assert page.locator("nav.site-nav").inner_text().count("alice") >= 1
    assert page.locator("nav.site-nav >> text=Sign out").is_visible()


def test_create_project(page: Any, server: Server) -> None:
    page.click("nav >> text=New project")
    page.fill("#name", "bad name")
    page.fill("#description", "A project made in a browser.")
    page.click("#project-submit")  # the browser's own pattern check stops this
    assert page.url.endswith("/coprs/new/")
    page.fill("#name", PROJECT)
    page.get_by_label(EL9, exact=True).uncheck()
    page.get_by_label(F40, exact=True).uncheck()
    page.click("#project-submit")
    # Server-side validation: beside the field, with what was typed kept.
    assert "Select at least one chroot." in page.inner_text("#chroots-error")
    assert page.input_value("#name") == PROJECT
    assert page.input_value("#description") == "A project made in a browser."
    shot(page, "project-form-errors")
    page.get_by_label(F40, exact=True).check()
    page.get_by_label(EL9, exact=True).check()
    page.fill("#instructions", "Install hello-copr-lite and run it.")
    page.click("#project-submit")
    page.wait_for_url(f"{server.url}/coprs/alice/{PROJECT}/")
    assert page.inner_text("h1") == PROJECT
    assert f"dnf copr enable --hub {server.url} alice/{PROJECT}" in page.inner_text(
        "#dnf-copr-enable"
    )


def test_upload_build_log_and_state_update_live(
    page: Any, server: Server, fixture_srpm: Any, tmp_path: Path
) -> None:
    # A real SRPM, uploaded through the form, built in both chroots.
    build_id = upload_build(page, server, fixture_srpm("hello-copr-lite"), (F40, EL9))
    page.evaluate(WATCH_STATES)
    page.wait_for_function(
        "document.getElementById('build-state').textContent === 'succeeded'",
        timeout=BUILD_WAIT_MS,
    )
    for chroot in (F40, EL9):
        page.wait_for_function(
            f"document.querySelector('#log-{chroot}').dataset.ended === 'succeeded'"
        )
        assert log_lines(page, chroot) > 5
        assert "hello-copr-lite" in page.inner_text(f"#chroot-{chroot} .built")
    assert page.evaluate("window.__noReload === true"), "the page was reloaded"
    assert not page.locator("#cancel-form").is_visible()
    assert page.evaluate("window.__states")[-1] == "succeeded"
    shot(page, f"build-{build_id}-succeeded")

    # A longer one (about 6 s of "long build tick <n>" lines): the log visibly grows.
    srpm = long_srpm(tmp_path, MARKER + "_short", 30)
    build_id = upload_build(page, server, srpm, (F40,))
    page.evaluate(WATCH_STATES)
    page.wait_for_function(
        f"document.querySelector('#log-{F40} pre.log').textContent.includes('long build tick 3')",
        timeout=BUILD_WAIT_MS,
    )
    seen = [log_lines(page, F40)]
    page.wait_for_function("document.getElementById('build-state').textContent === 'running'")
    shot(page, f"build-{build_id}-running")
    page.wait_for_function(
        f"document.querySelector('#log-{F40} pre.log').textContent.includes('long build tick 20')"
    )
    seen.append(log_lines(page, F40))
    page.wait_for_function(
        "document.getElementById('build-state').textContent === 'succeeded'",
        timeout=BUILD_WAIT_MS,
    )
    seen.append(log_lines(page, F40))
    assert seen[0] < seen[1] < seen[2], seen
    states = page.evaluate("window.__states")
    assert states[-2:] == ["running", "succeeded"], states
    text = page.inner_text(f"#log-{F40} pre.log")
    assert text.index("long build tick 1\n") < text.index("long build tick 30\n")
    assert page.evaluate("window.__noReload === true"), "the page was reloaded"
    assert page.inner_text(f"#chroot-{F40} .duration")

    # The project page shows both packages in the monitor.
    page.goto(f"{server.url}/coprs/alice/{PROJECT}/")
    monitor = page.inner_text("table.monitor")
    assert "hello-copr-lite" in monitor and "copr-lite-e2e-long" in monitor
    shot(page, "project")
    shot(page, "project-phone", phone=True)


def test_cancel_a_running_build(page: Any, server: Server, tmp_path: Path) -> None:
    srpm = long_srpm(tmp_path, MARKER, 300)
    build_id = upload_build(page, server, srpm, (F40,))
    page.wait_for_function(
        f"document.querySelector('#log-{F40} pre.log').textContent.includes('long build tick 2')",
        timeout=BUILD_WAIT_MS,
    )
    assert _marker_pids(MARKER), "the long build is not running"
    page.click("#cancel-button")
    page.wait_for_url(f"{server.url}/builds/{build_id}/")
    assert page.inner_text("#build-state") == "canceled"
    assert page.inner_text(f"#chroot-{F40} .state") == "canceled"
    assert page.locator("#cancel-form").count() == 0
    shot(page, f"build-{build_id}-canceled")
    deadline = time.monotonic() + 20
    while _marker_pids(MARKER) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _marker_pids(MARKER), "the canceled build left processes behind"


def test_search_and_home(page: Any, server: Server) -> None:
    page.fill("#nav-search", "browser")
    page.press("#nav-search", "Enter")
    page.wait_for_url(re.compile(r"/search/\?q=browser"))
    assert f"alice/{PROJECT}" in page.inner_text("#search-results")
    shot(page, "search")
    page.click(f"#search-results >> text=alice/{PROJECT}")
    page.wait_for_url(f"{server.url}/coprs/alice/{PROJECT}/")
    page.goto(server.url + "/")
    recent = page.inner_text("#recent-heading + .table-wrap")
    assert "canceled" in recent and "succeeded" in recent
    shot(page, "home")
    shot(page, "home-phone", phone=True)
