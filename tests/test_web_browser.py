"""The web UI in a real headless browser: Debian's chromium driven by Playwright (sync API).

One `python -m copr_lite serve` per module on a free port (four chroots, all `rpmbuild`),
users alice and bob from `python -m copr_lite user add`. The tests run in order on one
browser page: sign in, create a project, upload real SRPMs and watch their logs and states
change without a reload, open several build pages at once, triage a failed build and rebuild
it, filter the builds list, grant a role, cancel a long build, search, and check every page at
phone width and with axe-core. Screenshots go to <repo>/test-artifacts/ (kept after the run,
for people to look at).

axe-core comes from npm (`npm install` into <repo>/.test-cache/, once) and is injected into
the pages by Playwright.

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
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright import sync_api as playwright_sync

from copr_lite.conformance import make_srpm
from copr_lite.liveserver import cli, free_port, serving

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
F40, EL9, F41, RAW = (
    "fedora-40-x86_64",
    "epel-9-x86_64",
    "fedora-41-x86_64",
    "fedora-rawhide-x86_64",
)
CHROOTS = (F40, EL9, F41, RAW)
AXE_VERSION = "4.10.3"
AXE_DIR = ROOT / ".test-cache" / f"axe-core-{AXE_VERSION}"
PASSWORD = "browser-password-1"
PROJECT = "web-ui"
BUILD_WAIT_MS = 120_000
MARKER = f"webui_{os.getpid()}_{secrets.token_hex(4)}"


@dataclass
class Server:
    url: str
    workdir: Path
    log_path: Path


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
        "\n[signing]\nkey_length = 2048\n"
        "\n[chroots]\n" + "".join(f"{chroot} = rpmbuild\n" for chroot in CHROOTS)
    )
    log_path = workdir / "server.log"
    try:
        with serving(config, workdir, log_path) as served:
            assert served.proc.poll() is None, f"serve exited:\n{log_path.read_text()[-4000:]}"
            cli(config, "user", "add", "alice", "--password-stdin", stdin=PASSWORD)
            cli(config, "user", "add", "bob", "--password-stdin", stdin=PASSWORD)
            yield Server(f"http://127.0.0.1:{port}", workdir, log_path)
    finally:
        for pid in _marker_pids(MARKER):  # a failed test may leave a long build behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A function that opens a new chromium context (fresh profile, its own cookies)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_sync.sync_playwright() as pw:

        def launch() -> Any:
            context = pw.chromium.launch_persistent_context(
                str(tmp_path_factory.mktemp("chromium-profile")),
                executable_path=CHROMIUM,
                args=CHROMIUM_ARGS,
                headless=True,
                viewport={"width": 1280, "height": 900},
            )
            context.set_default_timeout(30_000)
            return context

        yield launch


@pytest.fixture(scope="module")
def page(server: Server, chromium: Any) -> Iterator[Any]:
    """One chromium page for the whole module (its cookies carry the sign-in along)."""
    context = chromium()
    page = context.pages[0] if context.pages else context.new_page()
    errors: list[str] = []
    context.on("weberror", lambda error: errors.append(str(error.error)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the pages: {errors}"


@pytest.fixture
def other_browser(chromium: Any) -> Iterator[Any]:
    """A page in a second browser profile (another user's cookies)."""
    context = chromium()
    try:
        yield context.pages[0] if context.pages else context.new_page()
    finally:
        context.close()


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


def upload_build(
    page: Any, server: Server, srpm: Path, chroots: tuple[str, ...], *, wait: bool = True
) -> int:
    """Submit `srpm` through the new-build form; returns the build id (on its page now)."""
    page.goto(f"{server.url}/coprs/alice/{PROJECT}/new_build/")
    for chroot in CHROOTS:
        page.get_by_label(chroot, exact=True).set_checked(chroot in chroots)
    page.set_input_files("#srpm", str(srpm))
    page.click("#build-submit")
    page.wait_for_url(re.compile(r"/builds/\d+/$"))
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


WATCH_STATES = """() => {
  window.__noReload = true;
  const badge = document.getElementById('build-state');
  window.__states = [badge.textContent];
  window.__badgeAtFinish = {};
  new MutationObserver(() => {
    if (window.__states.at(-1) !== badge.textContent) window.__states.push(badge.textContent);
  }).observe(badge, {childList: true, characterData: true, subtree: true});
  // What each chroot's badge said when its log's "Finished:" line appeared.
  document.querySelectorAll('details.chroot-log[data-log]').forEach((d) => {
    const view = d.querySelector('.log-view');
    new MutationObserver(() => {
      const last = view.lastElementChild;
      const seen = d.dataset.log in window.__badgeAtFinish;
      if (last && last.textContent.includes('Finished: ') && !seen) {
        const row = document.getElementById('chroot-' + d.dataset.log);
        window.__badgeAtFinish[d.dataset.log] = row.querySelector('.state').textContent;
      }
    }).observe(view, {childList: true});
  });
}"""


def log_lines(page: Any, chroot: str) -> int:
    return int(page.eval_on_selector(f"#log-{chroot} .log-view", "e => +(e.dataset.lines || 0)"))


def log_text(page: Any, chroot: str) -> str:
    return str(page.inner_text(f"#log-{chroot} .log-view"))


def wait_log(page: Any, chroot: str, text: str, timeout: int = BUILD_WAIT_MS) -> None:
    page.wait_for_function(
        f"document.querySelector('#log-{chroot} .log-view').textContent.includes({text!r})",
        timeout=timeout,
    )


def wait_state(page: Any, state: str, timeout: int = BUILD_WAIT_MS) -> None:
    page.wait_for_function(
        f"document.getElementById('build-state').textContent === {state!r}", timeout=timeout
    )


def fits(page: Any) -> dict[str, Any]:
    """Whether the page scrolls sideways, and which tables stick out of their box."""
    return dict(
        page.evaluate(
            """() => ({
  page: document.documentElement.scrollWidth - document.documentElement.clientWidth,
  tables: [...document.querySelectorAll('table')].filter((t) => {
    const box = t.closest('.table-wrap');
    return !box || box.getBoundingClientRect().right > document.documentElement.clientWidth + 1;
  }).map((t) => t.className || t.id),
})"""
        )
    )


def axe_script() -> Path:
    """axe-core's browser build, installed from npm into .test-cache/ the first time."""
    script = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists():
        AXE_DIR.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [
                "npm",
                "install",
                "--no-save",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(AXE_DIR),
                f"axe-core@{AXE_VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0 and script.exists(), f"npm install axe-core: {proc.stderr}"
    return script


def axe_violations(page: Any) -> list[str]:
    """The serious and critical axe-core violations on the current page."""
    page.add_script_tag(path=str(axe_script()))
    found = page.evaluate(
        """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => v.id + ': ' + v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', '));
}"""
    )
    return list(found)


def sign_in(page: Any, server: Server, name: str, path: str = "/") -> None:
    page.goto(server.url + path)
    page.click("nav >> text=Sign in")
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(server.url + path)


# ---------------------------------------------------------------- the tests, in order


def test_sign_in(page: Any, server: Server) -> None:
    page.goto(server.url + "/coprs/")
    shot(page, "home-anonymous")
    # A wrong password keeps the user name and focuses the password.
    page.click("nav >> text=Sign in")
    page.fill("#username", "alice")
    page.fill("#password", "not-the-password")
    page.click("#login-form button[type=submit]")
    assert "Wrong user name or password." in page.inner_text("#login-error")
    assert page.input_value("#username") == "alice"
    assert page.evaluate("document.activeElement.id") == "password"
    page.fill("#password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(server.url + "/coprs/")  # back where sign-in started
    assert "Signed in as alice." in page.inner_text("#flash")
    assert page.get_attribute("nav.site-nav a[href='/coprs/']", "aria-current") == "page"
    assert page.locator("nav.site-nav >> text=Sign out").is_visible()
    # The focus ring: 3:1 or better against what surrounds it.
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    ratio = page.evaluate(CONTRAST_OF_FOCUS)
    assert ratio >= 3, ratio


CONTRAST_OF_FOCUS = """() => {
  const el = document.activeElement;
  const parse = (c) => c.match(/[0-9.]+/g).slice(0, 3).map(Number);
  const lum = (rgb) => {
    const [r, g, b] = rgb.map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  let bg = null;
  for (let n = el.parentElement; n; n = n.parentElement) {
    const c = getComputedStyle(n).backgroundColor;
    if (c && !c.startsWith('rgba(0, 0, 0, 0)') && c !== 'transparent') { bg = c; break; }
  }
  const ring = getComputedStyle(el).outlineColor;
  const [a, b] = [lum(parse(ring)), lum(parse(bg || 'rgb(255, 255, 255)'))];
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""


def test_create_project(page: Any, server: Server) -> None:
    page.click("nav >> text=New project")
    assert page.get_attribute("nav.site-nav a[href='/coprs/new/']", "aria-current") == "page"
    page.fill("#name", "bad name")
    page.fill("#description", "A project made in a browser.")
    page.click("#project-submit")  # the browser's own pattern check stops this
    assert page.url.endswith("/coprs/new/")
    page.fill("#name", PROJECT)
    for chroot in CHROOTS:
        page.get_by_label(chroot, exact=True).uncheck()
    page.click("#project-submit")
    # Server-side validation: beside the field, with what was typed kept.
    assert "Select at least one chroot." in page.inner_text("#chroots-error")
    assert page.input_value("#name") == PROJECT
    assert page.input_value("#description") == "A project made in a browser."
    shot(page, "project-form-errors")
    for chroot in CHROOTS:
        page.get_by_label(chroot, exact=True).check()
    page.fill("#instructions", "Install `hello-copr-lite` and **run it**.\n\n<b>raw</b>")
    page.fill("#homepage", "https://example.org/hello")
    page.click("#project-submit")
    page.wait_for_url(f"{server.url}/coprs/alice/{PROJECT}/")
    assert "Project web-ui created." in page.inner_text("#flash")
    assert page.inner_text("h1") == PROJECT
    assert page.inner_text("#instructions strong") == "run it"
    assert "<b>raw</b>" in page.inner_text("#instructions")
    assert page.get_attribute("#homepage a", "href") == "https://example.org/hello"
    # The install instructions follow the chosen chroot.
    page.select_option("#install-chroot", EL9)
    shown = page.locator(".install:visible")
    assert shown.count() == 1
    assert f"alice/{PROJECT} {EL9}" in shown.inner_text()
    assert f"/repo/{EL9}/alice-{PROJECT}-{EL9}.repo" in shown.inner_text()


def test_upload_build_log_and_state_update_live(
    page: Any, server: Server, fixture_srpm: Any, tmp_path: Path
) -> None:
    # A real SRPM, uploaded through the form, built in two chroots.
    build_id = upload_build(page, server, fixture_srpm("hello-copr-lite"), (F40, EL9))
    assert f"Build {build_id} submitted." in page.inner_text("#flash")
    page.evaluate(WATCH_STATES)
    wait_state(page, "succeeded")
    for chroot in (F40, EL9):
        page.wait_for_function(
            f"document.querySelector('#log-{chroot}').dataset.ended === 'succeeded'"
        )
        assert log_lines(page, chroot) > 5
        assert "hello-copr-lite" in page.inner_text(f"#chroot-{chroot} .built")
    assert page.evaluate("window.__noReload === true"), "the page was reloaded"
    assert not page.locator("#cancel-form").is_visible()
    assert page.evaluate("window.__states")[-1] == "succeeded"
    # The badge said "succeeded" when the log said so, never later.
    assert page.evaluate("window.__badgeAtFinish") == {F40: "succeeded", EL9: "succeeded"}
    assert "is succeeded" in page.inner_text("#live-status")  # announced (aria-live)
    shot(page, f"build-{build_id}-succeeded")

    # A longer one (about 6 s of "long build tick <n>" lines): the log visibly grows.
    srpm = long_srpm(tmp_path, MARKER + "_short", 30)
    build_id = upload_build(page, server, srpm, (F40,))
    page.evaluate(WATCH_STATES)
    wait_log(page, F40, "long build tick 3")
    seen = [log_lines(page, F40)]
    wait_state(page, "running")
    shot(page, f"build-{build_id}-running")
    wait_log(page, F40, "long build tick 20")
    seen.append(log_lines(page, F40))
    wait_state(page, "succeeded")
    page.wait_for_function(f"document.querySelector('#log-{F40}').dataset.ended")
    seen.append(log_lines(page, F40))
    assert seen[0] < seen[1] < seen[2], seen
    states = page.evaluate("window.__states")
    assert states[-2:] == ["running", "succeeded"], states
    assert page.evaluate("window.__badgeAtFinish") == {F40: "succeeded"}
    text = log_text(page, F40)
    assert text.index("long build tick 1\n") < text.index("long build tick 30\n")
    assert page.evaluate("window.__noReload === true"), "the page was reloaded"
    assert page.inner_text(f"#chroot-{F40} .duration")

    # The project page shows both packages in the monitor.
    page.goto(f"{server.url}/coprs/alice/{PROJECT}/")
    monitor = page.inner_text("table.monitor")
    assert "hello-copr-lite" in monitor and "copr-lite-e2e-long" in monitor
    shot(page, "project")
    shot(page, "project-phone", phone=True)


def test_many_build_pages_open_at_once(page: Any, server: Server, tmp_path: Path) -> None:
    """Three 4-chroot builds, each page with its live stream, and the home page: every page
    loads within 2 s (one connection per page keeps them under the 6 per host)."""
    builds = [
        upload_build(page, server, long_srpm(tmp_path / str(n), f"{MARKER}_many{n}", 400), CHROOTS)
        for n in range(3)
    ]
    context = page.context
    pages = []
    try:
        for build_id in builds:
            other = context.new_page()
            started = time.monotonic()
            other.goto(f"{server.url}/builds/{build_id}/", wait_until="load")
            other.wait_for_function("document.getElementById('build-state').textContent !== ''")
            pages.append((other, time.monotonic() - started))
        home = context.new_page()
        started = time.monotonic()
        home.goto(server.url + "/", wait_until="load")
        pages.append((home, time.monotonic() - started))
        # Each of the home page's streams and the build pages' is one connection.
        home.wait_for_function("document.querySelector('[data-live-builds]').dataset.ready === '1'")
        slow = [round(took, 2) for _, took in pages if took >= 2.0]
        assert not slow, f"pages took {[round(t, 2) for _, t in pages]} s to load"
        # The home page follows the running builds live: a cancel shows without a reload.
        home.evaluate("window.__noReload = true")
        for build_id in builds:
            page.goto(f"{server.url}/builds/{build_id}/cancel/")
            page.click("#confirm-cancel")
            page.wait_for_url(f"{server.url}/builds/{build_id}/")
            assert f"Build {build_id} canceled." in page.inner_text("#flash")
        badge = f"document.querySelector('.state[data-build=\"{builds[0]}\"]')"
        home.wait_for_function(f"{badge}.textContent === 'canceled'", timeout=15_000)
        assert home.evaluate("window.__noReload === true")
    finally:
        for other, _ in pages:
            other.close()


def test_failed_build_triage_and_rebuild(page: Any, server: Server, fixture_srpm: Any) -> None:
    build_id = upload_build(page, server, fixture_srpm("copr-lite-e2e-broken"), (F40, EL9))
    wait_state(page, "failed")
    page.wait_for_function("document.getElementById('build').dataset.streamEnded === '1'")
    # From the project page, as a team member would: the failed build, then its log.
    page.goto(f"{server.url}/coprs/alice/{PROJECT}/")
    page.click(f"table.builds a[href='/builds/{build_id}/']")
    page.wait_for_function("document.getElementById('build').dataset.streamEnded === '1'")
    assert page.locator(f"#log-{F40}").evaluate("d => d.open")
    first = page.locator(f"#log-{F40} .first-err")
    assert "error" in first.inner_text().lower()
    box = page.locator(f"#log-{F40} .log-view").bounding_box()
    line = first.bounding_box()
    assert box["y"] <= line["y"] and line["y"] + line["height"] <= box["y"] + box["height"]
    assert first.is_visible()
    # The line's number links to it; the link opens the page on that line.
    href = first.locator("a.ln").get_attribute("href")
    page.goto(f"{server.url}/builds/{build_id}/{href}")
    page.wait_for_function("document.getElementById('build').dataset.streamEnded === '1'")
    assert page.evaluate("document.querySelector(':target') !== null")
    # The log can be searched.
    page.fill("#log-search", "fails on purpose")
    assert re.match(r"1 of \d+ match", page.inner_text("#log-search-status"))
    assert "fails on purpose" in page.inner_text("#logs .current-hit")
    # The chroot table fits its box at 1280 px.
    assert fits(page) == {"page": 0, "tables": []}
    shot(page, f"build-{build_id}-failed")
    shot(page, f"build-{build_id}-failed-phone", phone=True)

    # Rebuild the failed chroots: a new build of the same SRPM.
    page.click("#rebuild-failed")
    page.wait_for_url(re.compile(r"/builds/\d+/$"))
    new_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    assert new_id != build_id
    assert f"a rebuild of {build_id}" in page.inner_text("#flash")
    assert page.locator("#chroot-" + F40).count() == 1
    assert page.locator("#chroot-" + EL9).count() == 1
    assert page.locator("#chroot-" + F41).count() == 0
    wait_state(page, "failed")


def test_failed_import_shows_its_log_and_reason(page: Any, server: Server) -> None:
    page.goto(f"{server.url}/coprs/alice/{PROJECT}/new_build/")
    for chroot in CHROOTS:
        page.get_by_label(chroot, exact=True).set_checked(chroot in (F40, EL9))
    # A name that never resolves (RFC 6761): the import fails at once, with a reason.
    page.fill("#pkgs", "http://copr-lite-test.invalid/nothing-1.0-1.src.rpm")
    page.click("#build-submit")
    page.wait_for_url(re.compile(r"/builds/\d+/$"))
    page.wait_for_function("document.getElementById('build').dataset.streamEnded === '1'")
    assert page.inner_text("#build-state") == "failed"
    assert page.locator("#import-failure").is_visible()
    assert "import failed" in page.inner_text("#import-failure-reason")
    assert page.locator("#log-import").evaluate("d => d.open")
    assert "Import failed" in page.inner_text("#log-import .log-view")
    for chroot in (F40, EL9):  # no empty boxes: each says why it has no log
        assert not page.locator(f"#log-{chroot}").evaluate("d => d.open")
        status = page.text_content(f"#log-{chroot} .log-status")
        assert "No build log: import failed" in status
    shot(page, "build-import-failed")


def test_builds_list_filters_and_packages_tab(page: Any, server: Server) -> None:
    page.goto(f"{server.url}/coprs/alice/{PROJECT}/builds/")
    page.select_option("#filter-state", "failed")
    page.click("#filter-submit")
    page.wait_for_url(re.compile(r"state=failed"))
    states = page.locator("#builds-table tbody tr td .state[data-build]").all_inner_texts()
    assert states and set(states) == {"failed"}
    page.click("#builds-table thead >> text=Package")
    page.wait_for_url(re.compile(r"state=failed.*sort=-package|sort=-package.*state=failed"))
    assert page.evaluate("location.hash") == "#builds"
    page.goto(f"{server.url}/coprs/alice/{PROJECT}/builds/?page=40")
    assert "past the end" in page.inner_text("#past-end")
    page.click("#past-end a")
    assert page.locator("#builds-table").count() == 1
    page.click("nav[aria-label=Project] >> text=Packages")
    table = page.inner_text("#packages-table")
    assert "copr-lite-e2e-broken" in table and "hello-copr-lite" in table
    shot(page, "packages")


def test_access_request_and_grant(page: Any, server: Server, other_browser: Any) -> None:
    # bob (another browser) asks for access; the owner sees the request and approves it.
    bob = other_browser
    sign_in(bob, server, "bob", f"/coprs/alice/{PROJECT}/")
    assert bob.locator("#new-build-link").count() == 0
    bob.goto(f"{server.url}/coprs/alice/{PROJECT}/edit/")
    assert "403" in bob.inner_text("h1")
    assert "Signed in as bob" in bob.inner_text("nav.site-nav")
    assert "Permissions" in bob.inner_text("#access-help")
    bob.goto(f"{server.url}/coprs/alice/{PROJECT}/permissions/")
    bob.click("#request-submit")
    assert "You asked for builder" in bob.inner_text("#flash")
    page.goto(f"{server.url}/coprs/alice/{PROJECT}/permissions/")
    assert "requested" in page.inner_text("#user-bob")
    shot(page, "permissions-request")
    page.click("#user-bob >> text=Approve")
    assert "bob now holds builder" in page.inner_text("#flash")
    assert "yes" in page.inner_text("#user-bob")
    bob.goto(f"{server.url}/coprs/alice/{PROJECT}/")
    assert bob.locator("#new-build-link").count() == 1
    # The owner grants and revokes by name too.
    page.fill("#username", "bob")
    page.check("#role-admin")
    page.click("#grant-submit")
    assert "bob now holds builder and admin" in page.inner_text("#flash")
    shot(page, "permissions")


def test_cancel_a_running_build(page: Any, server: Server, tmp_path: Path) -> None:
    srpm = long_srpm(tmp_path, MARKER, 300)
    build_id = upload_build(page, server, srpm, (F40,))
    wait_log(page, F40, "long build tick 2")
    assert _marker_pids(MARKER), "the long build is not running"
    page.click("#cancel-button")
    page.wait_for_url(f"{server.url}/builds/{build_id}/cancel/")
    page.click("#confirm-cancel")
    page.wait_for_url(f"{server.url}/builds/{build_id}/")
    assert page.inner_text("#build-state") == "canceled"
    assert page.inner_text(f"#chroot-{F40} .state") == "canceled"
    assert f"Build {build_id} canceled." in page.inner_text("#flash")
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
    page.fill("#q", "hello-copr")
    page.press("#q", "Enter")
    assert "succeeded" in page.inner_text("#package-results")
    page.click(f"#package-results >> text=alice/{PROJECT}")
    page.wait_for_url(f"{server.url}/coprs/alice/{PROJECT}/")
    page.goto(server.url + "/")
    recent = page.inner_text("#recent-heading + .table-wrap")
    assert "canceled" in recent and "succeeded" in recent
    shot(page, "home")
    shot(page, "home-phone", phone=True)


def test_results_browser_leads_back_to_the_build(page: Any, server: Server) -> None:
    page.goto(f"{server.url}/coprs/alice/{PROJECT}/builds/?state=succeeded")
    build_id = int(page.locator("#builds-table tbody tr").first.get_attribute("data-build-id"))
    page.goto(f"{server.url}/builds/{build_id}/")
    page.click(f"#chroot-{F40} .results-link")
    assert page.locator("nav.site-nav").count() == 1
    page.click("#back-to-build")
    page.wait_for_url(f"{server.url}/builds/{build_id}/")


def test_every_page_fits_and_passes_axe(page: Any, server: Server) -> None:
    """At 1280 and 390 px no page scrolls sideways and every table stays in its box; axe-core
    finds no serious or critical violation."""
    page.goto(f"{server.url}/coprs/alice/{PROJECT}/builds/?state=failed")
    failed = page.locator("#builds-table tbody tr").first.get_attribute("data-build-id")
    base = f"/coprs/alice/{PROJECT}/"
    paths = [
        "/",
        "/coprs/",
        base,
        base + "builds/",
        base + "packages/",
        base + "permissions/",
        base + "integrations/",
        base + "package/new/",
        base + "webhooks/outgoing/",
        base + "edit/",
        base + "new_build/",
        f"/builds/{failed}/",
        f"/builds/{failed}/cancel/",
        base + "delete/",
        base + f"chroot/{F40}/edit/",
        base + "builds/?page=99",
        "/coprs/alice/",
        "/login/",
        "/search/?q=hello",
        f"/results/alice/{PROJECT}/",
        "/api/",
        "/no/such/page/",
    ]
    problems: dict[str, Any] = {}
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        for path in paths:
            page.goto(server.url + path)
            got = fits(page)
            if got != {"page": 0, "tables": []}:
                problems[f"{path} at {width}"] = got
            if width == 1280:
                violations = axe_violations(page)
                if violations:
                    problems[f"{path} axe"] = violations
    page.set_viewport_size({"width": 1280, "height": 900})
    assert not problems, problems
