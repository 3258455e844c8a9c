"""End to end with the real tools: SRPM -> live server -> rpmbuild in bubblewrap -> createrepo_c
-> /results/ over HTTP -> dnf.

One `python -m copr_lite serve` per module on a free 127.0.0.1 port (chroots fedora-40-x86_64
and epel-9-x86_64, both `rpmbuild`; concurrency 2; SRPM URLs allowed on 127.0.0.0/8), and a
second one on its own data directory for the SIGKILL case. The user comes from
`python -m copr_lite user add/token`, like tests/test_client_compat.py. Every build of the
module is submitted at once (fixture `builds`), so the short ones and the two long ones
(cancel, timeout) run while the tests before them check their results.

dnf always runs with `--disableplugin=local` (it would copy RPMs into the host's
/var/lib/dnf/plugins/local, toolchain.md section 2), its own config, cache, log and
persistence directories, and `--refresh`. The long builds carry a per-run marker in their
command lines (see tests/fixtures/copr-lite-e2e-long.spec); whatever still carries it when
the module ends is killed by pid.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from copr_lite import liveserver
from copr_lite.conformance import make_srpm
from copr_lite.liveserver import free_port

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
F40 = "fedora-40-x86_64"
EL9 = "epel-9-x86_64"
CHROOTS = (F40, EL9)
OWNER = "alice"
PROJECT = "e2e"
PASSWORD = "e2e-password-1"
TERMINAL = {"succeeded", "failed", "canceled", "skipped", "forked"}
BROKEN_MESSAGE = "copr-lite-e2e-broken: this build fails on purpose (exit 1)"
GREETING = "Hello from copr_lite"
# Every long build of this run carries MARKER (letters, digits, '_') in its command lines.
MARKER = f"e2e_{os.getpid()}_{secrets.token_hex(4)}"
CALL_TIMEOUT = 120
LOCAL_PLUGIN_DIR = Path("/var/lib/dnf/plugins/local")

_TOOLS = ("rpm", "rpmbuild", "createrepo_c", "dnf", "bwrap", "pgrep")
pytestmark = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in _TOOLS),
    reason="needs " + ", ".join(_TOOLS) + " (Debian: rpm createrepo-c dnf dnf-plugins-core "
    "bubblewrap procps; ./dev installs them)",
)


# ---------------------------------------------------------------- HTTP (urllib, no requests)


def http_get(url: str, timeout: float = 30) -> tuple[int, bytes]:
    """(status, body) of a GET; redirects are followed, errors are answers too."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


@dataclass
class Api:
    """The API v1 as one user (HTTP Basic `login:token`)."""

    url: str
    login: str
    token: str

    def _request(self, method: str, path: str, body: bytes | None, ctype: str | None) -> dict:
        auth = base64.b64encode(f"{self.login}:{self.token}".encode()).decode()
        headers = {"Authorization": f"Basic {auth}"}
        if ctype:
            headers["Content-Type"] = ctype
        req = urllib.request.Request(self.url + path, data=body, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            with exc:
                status, raw = exc.code, exc.read()
        try:
            data = json.loads(raw)
        except ValueError:
            raise AssertionError(f"{method} {path}: {status}, not JSON: {raw[:500]!r}") from None
        data["_status"] = status
        return data

    def get(self, path: str) -> dict:
        return self._request("GET", path, None, None)

    def post(self, path: str, **fields: str) -> dict:
        body = urllib.parse.urlencode(fields).encode()
        return self._request("POST", path, body, "application/x-www-form-urlencoded")

    def upload(self, path: str, srpm: Path, **fields: str) -> dict:
        boundary = uuid.uuid4().hex
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields.items()
        ]
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="pkgs"; '
            f'filename="{srpm.name}"\r\nContent-Type: application/x-rpm\r\n\r\n'.encode()
            + srpm.read_bytes()
            + b"\r\n"
        )
        parts.append(f"--{boundary}--\r\n".encode())
        ctype = f"multipart/form-data; boundary={boundary}"
        return self._request("POST", path, b"".join(parts), ctype)

    def ok(self, method: str, path: str, *args: Any, **fields: str) -> dict:
        data = getattr(self, method)(path, *args, **fields)
        assert data["_status"] == 200 and data.get("output") == "ok", (method, path, data)
        return data

    def detail(self, build_id: int) -> dict:
        return self.ok("get", f"/api/coprs/build/{build_id}/")


# ---------------------------------------------------------------- the live server


@dataclass
class Server:
    url: str
    workdir: Path
    config: Path
    data_dir: Path
    logs: list[Path]

    def log_tail(self, chars: int = 4000) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-chars:]}" for p in self.logs if p.exists())

    def cli(self, *args: str, stdin: str = "") -> str:
        return liveserver.cli(self.config, *args, stdin=stdin, timeout=CALL_TIMEOUT).stdout

    def make_user(self, name: str) -> Api:
        self.cli("user", "add", name, "--password-stdin", stdin=PASSWORD)
        block = self.cli("user", "token", name)
        values = dict(re.findall(r"^(\w+) = (.*)$", block, re.MULTILINE))
        assert values["username"] == name and values["copr_url"] == self.url, block
        return Api(self.url, values["login"], values["token"])


def make_server(
    workdir: Path, chroots: tuple[str, ...] = CHROOTS, builder: str = "rpmbuild"
) -> Server:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = workdir / "copr-lite.ini"
    data_dir = workdir / "data"
    config.write_text(
        "[server]\n"
        f"port = {port}\n"
        f"data_dir = {data_dir}\n"
        "\n[builds]\n"
        "concurrency = 2\n"
        "srpm_allowed_networks = 127.0.0.0/8\n"
        "\n[chroots]\n" + "".join(f"{name} = {builder}\n" for name in chroots)
    )
    return Server(url, workdir, config, data_dir, [])


@contextlib.contextmanager
def serving(server: Server) -> Iterator[subprocess.Popen[str]]:
    """`python -m copr_lite serve` until the block ends (SIGTERM; it must exit 0 then),
    unless the block killed it itself. Its output and its builds' go to one log file."""
    log_path = server.workdir / f"server-{len(server.logs) + 1}.log"
    server.logs.append(log_path)
    command = [sys.executable, "-m", "copr_lite", "serve", "--config", str(server.config)]
    with liveserver.running(command, log_path, server.workdir) as proc:

        def started() -> bool:
            assert proc.poll() is None, f"serve exited:\n{server.log_tail()}"
            return "serving on" in log_path.read_text(errors="replace")

        liveserver.wait_for(started, 60, "start of serve", server.log_tail)
        yield proc
        stopped = liveserver.stop(proc)
    if stopped:
        # README: "Stops cleanly on SIGTERM".
        assert proc.returncode == 0, f"serve exited {proc.returncode}:\n{server.log_tail()}"


# ---------------------------------------------------------------- processes, dnf


def marker_pids(marker: str) -> list[int]:
    """Processes whose command line contains `marker` (bwrap, rpmbuild, the build's loop)."""
    proc = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True, check=False)
    return [int(pid) for pid in proc.stdout.split() if int(pid) != os.getpid()]


def kill_marker_processes(marker: str) -> list[int]:
    pids = marker_pids(marker)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


def wait_no_marker_processes(marker: str, within: float) -> list[int]:
    deadline = time.monotonic() + within
    while (pids := marker_pids(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return pids


def describe(pids: list[int]) -> str:
    out = []
    for pid in pids:
        with contextlib.suppress(OSError):
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            stat = Path(f"/proc/{pid}/stat").read_text()
            ppid, _pgrp, sid = stat[stat.rfind(")") + 2 :].split()[1:4]
            parent = Path(f"/proc/{ppid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            work = re.search(r"--bind (\S+) /build", cmd)
            out.append(
                f"{pid} (session {sid}, parent {ppid}: {parent[:120]}): {cmd[:300]}"
                + (f" [work dir {work[1]}]" if work else "")
            )
    return "\n".join(out)


class Dnf:
    """dnf isolated in `work`: own config (gpgcheck=0, reposdir=/dev/null unless given,
    skip_if_unavailable=False), cache, logs, persistdir and HOME; never the local plugin."""

    def __init__(self, work: Path) -> None:
        self.work = work
        for sub in ("cache", "log", "persist", "home"):
            (work / sub).mkdir(parents=True, exist_ok=True)
        self.conf = work / "dnf.conf"
        self.conf.write_text(
            "[main]\ngpgcheck=0\nreposdir=/dev/null\nskip_if_unavailable=False\n"
            "install_weak_deps=False\n"
        )

    def __call__(self, *args: str, installroot: Path | None = None) -> str:
        argv = [
            "dnf",
            "-y",
            # local: writes the host's /var/lib/dnf/plugins/local (toolchain.md section 2);
            # generate_completion_cache: writes the host's /var/cache/dnf/packages.db.
            "--disableplugin=local,generate_completion_cache",
            f"--config={self.conf}",
            f"--setopt=cachedir={self.work / 'cache'}",
            f"--setopt=logdir={self.work / 'log'}",
            f"--setopt=persistdir={self.work / 'persist'}",
            *([f"--installroot={installroot}", "--releasever=40"] if installroot else []),
            *args,
        ]
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CALL_TIMEOUT,
            env={**os.environ, "HOME": str(self.work / "home")},
            check=False,
        )
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"{' '.join(argv)}: exit {proc.returncode}\n{out}"
        return out

    def cleanup(self) -> None:
        # gpgcheck=0 and no project key: no gpg-agent should start; stop any that did.
        for pubring in self.work.glob("**/pubring"):
            subprocess.run(
                ["gpgconf", "--homedir", str(pubring), "--kill", "gpg-agent"],
                check=False,
                capture_output=True,
            )


# ---------------------------------------------------------------- SRPMs


def long_srpm(out_dir: Path, marker: str, ticks: int) -> Path:
    """The SRPM of tests/fixtures/copr-lite-e2e-long.spec with its own marker and length
    (`ticks` x 0.2 s)."""
    assert re.fullmatch(r"\w+", marker), marker
    text = (FIXTURES / "copr-lite-e2e-long.spec").read_text()
    text = re.sub(r"(?m)^%global ticks .*$", f"%global ticks {ticks}", text)
    text = re.sub(r"(?m)^%global marker .*$", f"%global marker {marker}", text)
    spec = out_dir / f"copr-lite-e2e-long-{marker}.spec"
    spec.write_text(text)
    return make_srpm(spec, out_dir, sourcedir=FIXTURES)


@pytest.fixture(scope="module")
def srpm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(base URL, directory): a plain HTTP server on 127.0.0.1 serving the directory."""
    directory = tmp_path_factory.mktemp("srpm-http")

    with liveserver.serving_directory(directory) as url:
        yield url, directory


# ---------------------------------------------------------------- module fixtures


@pytest.fixture(scope="module")
def host_guard() -> Iterator[None]:
    """No leftovers on the host: marker processes are killed, and dnf's local plugin
    directory must not appear."""
    local_existed = LOCAL_PLUGIN_DIR.exists()
    yield
    leftovers = kill_marker_processes(MARKER)
    assert not leftovers, f"processes of this module's builds were still alive: {leftovers}"
    if not local_existed:
        assert not LOCAL_PLUGIN_DIR.exists(), f"dnf's local plugin wrote {LOCAL_PLUGIN_DIR}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, host_guard: None) -> Iterator[Server]:
    live = make_server(tmp_path_factory.mktemp("e2e-server"))
    with serving(live):
        yield live
    text = live.logs[0].read_text(errors="replace")
    assert "Traceback" not in text and "level=ERROR" not in text, live.log_tail(20000)


@pytest.fixture(scope="module")
def api(server: Server) -> Api:
    alice = server.make_user(OWNER)
    alice.ok("post", f"/api/coprs/{OWNER}/new/", name=PROJECT, chroots=" ".join(CHROOTS))
    return alice


@dataclass
class Builds:
    hello: int
    stub: int
    broken: int
    cancel: int
    timeout: int
    cancel_marker: str
    timeout_marker: str


@pytest.fixture(scope="module")
def builds(api: Api, srpm_server: tuple[str, Path], fixture_srpm, tmp_path_factory) -> Builds:
    """Every build of the module, submitted now, fastest first: they run two at a time."""
    base, directory = srpm_server
    hello = fixture_srpm("hello-copr-lite")
    shutil.copy(hello, directory / hello.name)
    out = tmp_path_factory.mktemp("e2e-srpms")
    cancel_marker, timeout_marker = f"{MARKER}_cancel", f"{MARKER}_timeout"
    cancel_srpm = long_srpm(out, cancel_marker, 300)
    timeout_srpm = long_srpm(out, timeout_marker, 300)
    shutil.copy(timeout_srpm, directory / timeout_srpm.name)

    prefix = f"/api/coprs/{OWNER}/{PROJECT}"
    ids = {
        "hello": api.ok("post", f"{prefix}/new_build/", pkgs=f"{base}/{hello.name}")["id"],
        "stub": api.ok(
            "upload", f"{prefix}/new_build_upload/", fixture_srpm("copr-lite-base-stub")
        )["id"],
        "broken": api.ok(
            "upload",
            f"{prefix}/new_build_upload/",
            fixture_srpm("copr-lite-e2e-broken"),
            **{F40: "y"},
        )["id"],
        "cancel": api.ok("upload", f"{prefix}/new_build_upload/", cancel_srpm, **{F40: "y"})["id"],
        "timeout": api.ok(
            "post",
            f"{prefix}/new_build/",
            pkgs=f"{base}/{timeout_srpm.name}",
            timeout="3",
            **{F40: "y"},
        )["id"],
    }
    return Builds(**ids, cancel_marker=cancel_marker, timeout_marker=timeout_marker)


def wait_for_build(
    api: Api,
    build_id: int,
    done: Callable[[dict], bool],
    within: float,
    server: Server | None,
    what: str = "",
    interval: float = 0.1,
) -> dict:
    """Poll build detail every `interval` s until `done(detail)`, at most `within` seconds;
    a failure shows the detail and the end of `server`'s logs."""
    detail: dict = {}

    def reached() -> bool:
        nonlocal detail
        detail = api.detail(build_id)
        return done(detail)

    liveserver.wait_for(
        reached,
        within,
        f"end for build {build_id} ({what or 'did not get there'})",
        interval=interval,
        details=lambda: f"{json.dumps(detail, indent=1)}\n{server.log_tail() if server else ''}",
    )
    return detail


def finished(detail: dict) -> bool:
    return bool(detail["chroots"]) and all(s in TERMINAL for s in detail["chroots"].values())


def live_log(detail: dict, chroot: str) -> str:
    status, body = http_get(detail["results_by_chroot"][chroot] + "/builder-live.log")
    return body.decode("utf-8", "replace") if status == 200 else ""


# ---------------------------------------------------------------- 1. builds succeed


def _check_succeeded(api: Api, server: Server, build_id: int, name: str) -> dict:
    detail = wait_for_build(api, build_id, finished, 60, server, "did not finish")
    assert detail["chroots"] == dict.fromkeys(CHROOTS, "succeeded"), detail
    assert detail["status"] == "succeeded"
    assert detail["fail_reasons"] == {}
    assert detail["src_version"] == "1.0-1"
    assert detail["built_pkgs"] == [f"{name} 1.0"], detail
    results = f"{server.url}/results/{OWNER}/{PROJECT}/"
    assert detail["results"] == results
    status, body = http_get(results)
    assert status == 200 and all(f'href="{c}/"' in body.decode() for c in CHROOTS), body
    for chroot, dist in ((F40, "fc40"), (EL9, "el9")):
        url = detail["results_by_chroot"][chroot]
        assert url == f"{results}{chroot}/{build_id:08d}-{name}"
        status, body = http_get(url)
        rpm = f"{name}-1.0-1.{dist}.noarch.rpm"
        assert status == 200 and rpm in body.decode(), (url, status, body[:2000])
        status, body = http_get(f"{url}/{rpm}")
        assert status == 200 and body[:4] == b"\xed\xab\xee\xdb", (url, rpm, status)
        status, body = http_get(f"{url}/{name}-1.0-1.{dist}.src.rpm")
        assert status == 200 and body[:4] == b"\xed\xab\xee\xdb", (url, status)
    return detail


def test_builds_by_url_and_by_upload_succeed_in_both_chroots(
    api: Api, server: Server, builds: Builds, srpm_server: tuple[str, Path]
) -> None:
    hello = _check_succeeded(api, server, builds.hello, "hello-copr-lite")
    assert hello["src_pkg"] == f"{srpm_server[0]}/hello-copr-lite-1.0-1.src.rpm"
    stub = _check_succeeded(api, server, builds.stub, "copr-lite-base-stub")
    # An uploaded SRPM is published with the build's import results.
    status, body = http_get(stub["src_pkg"])
    assert status == 200 and body[:4] == b"\xed\xab\xee\xdb", stub["src_pkg"]

    monitor = api.ok("get", f"/api/coprs/{OWNER}/{PROJECT}/monitor/")
    assert sorted(monitor["chroots"]) == sorted(CHROOTS)
    packages = {p["pkg_name"]: p for p in monitor["packages"]}
    for name, build_id in (("hello-copr-lite", builds.hello), ("copr-lite-base-stub", builds.stub)):
        entry = packages[name]
        assert entry["pkg_version"] == "1.0-1", entry
        assert entry["results"] == {c: [build_id, "succeeded"] for c in CHROOTS}, entry


# ---------------------------------------------------------------- 2. dnf over HTTP


@pytest.fixture
def dnf(tmp_path: Path) -> Iterator[Dnf]:
    runner = Dnf(tmp_path / "dnf")
    yield runner
    runner.cleanup()


def _wait_repo_ready(api: Api, server: Server, builds: Builds) -> None:
    for build_id in (builds.hello, builds.stub):
        detail = wait_for_build(api, build_id, finished, 60, server, "did not finish")
        assert detail["chroots"][F40] == "succeeded", detail


def test_dnf_installs_from_the_results_over_http(
    api: Api, server: Server, builds: Builds, dnf: Dnf, tmp_path: Path
) -> None:
    _wait_repo_ready(api, server, builds)
    repo = f"{server.url}/results/{OWNER}/{PROJECT}/{F40}/"
    install_hello(dnf, tmp_path / "root", "--refresh", f"--repofrompath=cl,{repo}", "--repo=cl")


# ---------------------------------------------------------------- 3. dnf copr enable


def test_dnf_copr_enable_writes_a_repo_file_dnf_installs_from(
    api: Api, server: Server, builds: Builds, dnf: Dnf, tmp_path: Path
) -> None:
    _wait_repo_ready(api, server, builds)
    reposdir = tmp_path / "repos.d"
    out = dnf_copr_enable(dnf, server, reposdir, PROJECT)
    repo_file = reposdir / f"_copr:127.0.0.1:{OWNER}:{PROJECT}.repo"
    assert repo_file.is_file(), (out, sorted(p.name for p in reposdir.iterdir()))
    text = repo_file.read_text()
    assert f"[copr:127.0.0.1:{OWNER}:{PROJECT}]" in text, text
    assert f"baseurl={server.url}/results/{OWNER}/{PROJECT}/fedora-$releasever-$basearch/" in text

    install_hello(dnf, tmp_path / "root2", f"--setopt=reposdir={reposdir}", "--refresh")


def install_hello(dnf: Dnf, root: Path, *options: str) -> None:
    """dnf (with `options`) installs the stub and hello-copr-lite into the new installroot
    `root`, and the program greets."""
    root.mkdir()
    out = dnf(*options, "install", "copr-lite-base-stub", "hello-copr-lite", installroot=root)
    assert "hello-copr-lite-1.0-1.fc40.noarch" in out, out
    hello = root / "usr" / "bin" / "hello-copr-lite"
    proc = subprocess.run([str(hello)], capture_output=True, text=True, timeout=30, check=True)
    assert proc.stdout.strip() == GREETING


def dnf_copr_enable(dnf: Dnf, server: Server, reposdir: Path, project: str) -> str:
    """`dnf copr enable` of OWNER/project on the server, into the new directory `reposdir`."""
    reposdir.mkdir()
    out = dnf(
        f"--setopt=reposdir={reposdir}",
        "copr",
        "enable",
        "--hub",
        server.url,
        f"{OWNER}/{project}",
        F40,
    )
    assert "Repository successfully enabled" in out, out
    return out


# ---------------------------------------------------------------- 4. a broken build


def test_a_broken_build_fails_with_its_message_in_the_live_log(
    api: Api, server: Server, builds: Builds
) -> None:
    detail = wait_for_build(api, builds.broken, finished, 60, server, "did not finish")
    assert detail["chroots"] == {F40: "failed"}, detail
    assert detail["status"] == "failed"
    reason = detail["fail_reasons"].get(F40)
    assert reason and reason != "failed", detail
    assert "%build" in reason, reason
    assert detail["built_pkgs"] is None, detail
    log = live_log(detail, F40)
    assert BROKEN_MESSAGE in log, log


# ---------------------------------------------------------------- 5. cancel


def test_cancel_stops_a_running_build_and_its_processes(
    api: Api, server: Server, builds: Builds
) -> None:
    marker = builds.cancel_marker
    wait_for_build(
        api,
        builds.cancel,
        lambda d: d["chroots"][F40] == "running" and "long build tick 2" in live_log(d, F40),
        60,
        server,
        "did not start running",
    )
    assert marker_pids(marker), "the long build runs, yet no process carries its marker"

    started = time.monotonic()
    answer = api.post(f"/api/coprs/cancel_build/{builds.cancel}/")
    assert answer["_status"] == 200 and answer["output"] == "ok", answer
    detail = wait_for_build(
        api, builds.cancel, lambda d: d["status"] == "canceled", 5, server, "was not canceled"
    )
    assert time.monotonic() - started < 8, "cancel took too long"
    assert detail["chroots"] == {F40: "canceled"}, detail
    assert detail["fail_reasons"] == {}, detail
    left = wait_no_marker_processes(marker, 5)
    assert not left, f"processes of the canceled build survived:\n{describe(left)}"


# ---------------------------------------------------------------- 6. timeout


def test_a_build_timeout_is_honoured(
    api: Api, server: Server, builds: Builds, srpm_server: tuple[str, Path]
) -> None:
    # The API takes 0..86400 (0: the server's default); anything else is refused.
    url = f"{srpm_server[0]}/hello-copr-lite-1.0-1.src.rpm"
    for bad in ("86401", "-1", "3.5", "soon"):
        answer = api.post(f"/api/coprs/{OWNER}/{PROJECT}/new_build/", pkgs=url, timeout=bad)
        assert answer["_status"] == 400 and answer["output"] == "notok", (bad, answer)
        assert "timeout" in answer["error"], (bad, answer)
    detail = wait_for_build(api, builds.timeout, finished, 60, server, "did not finish")
    assert detail["timeout"] == 3, detail
    assert detail["chroots"] == {F40: "failed"}, detail
    reason = detail["fail_reasons"][F40]
    assert "timed out" in reason, reason
    # 300 ticks of 0.2 s would take a minute: it ended after about 3 s of building.
    assert detail["started_on"] is not None and detail["ended_on"] is not None, detail
    assert detail["ended_on"] - detail["started_on"] <= 10, detail
    assert "long build tick 1" in live_log(detail, F40)
    left = wait_no_marker_processes(builds.timeout_marker, 5)
    assert not left, f"processes of the timed-out build survived:\n{describe(left)}"


# ---------------------------------------------------------------- 7. SIGKILL and restart


def test_a_build_interrupted_by_sigkill_is_requeued_after_restart(
    tmp_path_factory: pytest.TempPathFactory, host_guard: None
) -> None:
    live = make_server(tmp_path_factory.mktemp("e2e-sigkill"))
    marker = f"{MARKER}_kill"
    srpm = long_srpm(tmp_path_factory.mktemp("e2e-kill-srpm"), marker, 40)  # about 8 s
    with serving(live) as proc:
        api = live.make_user(OWNER)
        api.ok("post", f"/api/coprs/{OWNER}/new/", name=PROJECT, chroots=F40)
        build_id = api.ok("upload", f"/api/coprs/{OWNER}/{PROJECT}/new_build_upload/", srpm)["id"]
        wait_for_build(
            api,
            build_id,
            lambda d: d["chroots"][F40] == "running" and "long build tick 2" in live_log(d, F40),
            60,
            live,
            "did not start running",
        )
        proc.kill()
        proc.wait(timeout=30)
    # bwrap --die-with-parent should take the sandbox down with the server.
    orphans = wait_no_marker_processes(marker, 3)
    orphan_text = describe(orphans)

    try:
        with serving(live):
            detail = wait_for_build(
                api, build_id, finished, 45, live, "did not finish after restart"
            )
            assert detail["chroots"] == {F40: "succeeded"}, (detail, live.log_tail())
            assert detail["built_pkgs"] == ["copr-lite-e2e-long 1.0"], detail
            log = live_log(detail, F40)
            assert "long build tick 40" in log, log
            rpm = f"copr-lite-e2e-long-1.0-1.{marker}.fc40.noarch.rpm"
            status, body = http_get(detail["results_by_chroot"][F40])
            assert status == 200 and rpm in body.decode(), body
            assert "re-queued build=" in live.logs[-1].read_text(), live.log_tail()
    finally:
        kill_marker_processes(marker)
    assert not orphans, (
        "processes of the killed server's build outlived it (then killed by the test):\n"
        + orphan_text
    )
