"""The `remote` plugin (plugins/remote/): its builder and real worker processes.

The conformance kit runs the remote builder with an in-process worker. Everything else runs
`python -m copr_lite serve` with every chroot mapped to `remote` and real
`python -m copr_lite worker` processes on loopback, building with the real rpmbuild builder;
heartbeats are fast (interval 0.3 s, timeout 2 s). Each test uses its own chroot, so a job
one test leaves behind cannot reach another test's workers.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import CONFORMANCE_MARKER
from copr_lite._plugins.remote import accounts
from copr_lite._plugins.remote.worker import RemoteWorker, WorkerOptions

from copr_lite import auth
from copr_lite.conformance import ALL_CHECKS, make_srpm
from copr_lite.keys import BUILDERS, DB
from copr_lite.liveserver import free_port, serving, wait_for
from copr_lite.testing import check_builder, job_factory, read_log

FAST = {"heartbeat_timeout": "2", "heartbeat_interval": "0.25", "claim_wait": "5"}


async def test_remote_builder_conforms_with_an_in_process_worker(
    aiohttp_server, make_app, conformance_srpms, tmp_path
):
    """The conformance kit, process check included: the kit's long build runs in the worker's
    rpmbuild (same machine), so a cancel must reach the worker and stop it within 5 s."""
    app = make_app(chroots={"fedora-40-x86_64": "remote"}, plugin_sections={"remote": FAST})
    server = await aiohttp_server(app)
    token = "cw_conformance-token-0123456789"
    await app[DB].write(accounts.create_worker, "in-process", auth.hash_token(token))
    options = WorkerOptions(
        str(server.make_url("")),
        token,
        ["fedora-40-x86_64"],
        work_dir=tmp_path / "worker",
        grace=0,
        poll_wait=5,
    )
    worker = RemoteWorker(options, app[BUILDERS].get("rpmbuild"))
    running = asyncio.create_task(worker.run())
    try:
        report = await check_builder(
            app[BUILDERS].get("remote"),
            make_job=job_factory(conformance_srpms),
            tmp_path=tmp_path,
            marker=CONFORMANCE_MARKER,
        )
    finally:
        worker.stop()
        await asyncio.wait_for(running, 30)
    assert report.passed == list(ALL_CHECKS)
    assert any("took the job" in line for line in report.logs["success"])


# ---------------------------------------------------------------- a live server and workers

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
HEARTBEAT_TIMEOUT = 2.0
HEARTBEAT_INTERVAL = 0.3
CHROOTS = (
    "fedora-39-x86_64",
    "fedora-40-x86_64",
    "fedora-41-x86_64",
    "fedora-42-x86_64",
    "fedora-rawhide-x86_64",
    "epel-8-x86_64",
    "epel-9-x86_64",
)
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
HELLO_SPEC = """\
Name:           {name}
Version:        1.0
Release:        1%{{?dist}}
Summary:        copr_lite remote worker test package
License:        MIT
BuildArch:      noarch

%description
One small file.

%prep

%build
echo "building {name}"

%install
mkdir -p %{{buildroot}}%{{_datadir}}/{name}
echo {name} > %{{buildroot}}%{{_datadir}}/{name}/hello.txt

%files
%{{_datadir}}/{name}/hello.txt

%changelog
* Mon Jan 01 2024 copr_lite tests <tests@example.invalid> - 1.0-1
- test fixture
"""


def http(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with DIRECT.open(request, timeout=30) as resp:
            raw, status = resp.read(), resp.status
    except urllib.error.HTTPError as exc:
        with exc:
            raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


def multipart(parts: list[tuple[str, str | None, bytes, str]]) -> tuple[bytes, str]:
    """(field, file name or None, content, content type) parts -> body, Content-Type."""
    boundary = f"copr-lite-test-{os.getpid()}"
    body = b""
    for name, filename, content, ctype in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += (
            f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
            f"Content-Type: {ctype}\r\n\r\n".encode()
            + content
            + b"\r\n"
        )
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class Live:
    url: str
    workdir: Path
    config: Path
    data_dir: Path
    server_log: Path
    admin: dict[str, str]
    alice: dict[str, str]
    srpms: Path
    workers: list[Proc] = field(default_factory=list)

    def cli(self, *args: str, stdin: str = "", rc: int = 0) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "copr_lite", *args, "--config", str(self.config)],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=self.workdir,
            check=False,
        )
        assert proc.returncode == rc, f"copr_lite {args}: {proc.stdout}\n{proc.stderr}"
        return proc

    def worker_token(self, name: str) -> str:
        out = self.cli("worker-token", "create", name).stdout
        found = re.search(r"^token: (\S+)$", out, re.M)
        assert found, out
        return found[1]

    def start_worker(self, name: str, chroots: str, *extra: str, token: str | None = None) -> Proc:
        token = token or self.worker_token(name)
        log_path = self.workdir / f"worker-{name}.log"
        config = self.workdir / "worker.ini"
        config.write_text("[server]\nlog_level = INFO\n")
        with log_path.open("wb") as out:
            popen = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "copr_lite",
                    "worker",
                    "--server",
                    self.url,
                    "--builder",
                    "rpmbuild",
                    "--chroots",
                    chroots,
                    "--poll-wait",
                    "5",
                    "--config",
                    str(config),
                    *extra,
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env={**os.environ, "COPR_LITE_WORKER_TOKEN": token, "PYTHONUNBUFFERED": "1"},
            )
        proc = Proc(name, popen, log_path)
        self.workers.append(proc)
        return proc

    def wait_polling(self, *names: str, within: float = 20) -> None:
        """Until every named worker is asking for work (its claim reached the server)."""

        def ready() -> bool:
            # A worker's first request is seen before its claim reports what it serves.
            listed = {w["name"]: w for w in self.workers_json()["workers"]}
            return all(
                name in listed and listed[name]["state"] == "idle" and listed[name]["serves"]
                for name in names
            )

        wait_for(ready, within, f"workers {names} polling", self.logs)

    def workers_json(self) -> dict[str, Any]:
        status, body = http("GET", f"{self.url}/api/workers", headers=self.admin)
        assert status == 200, body
        return body

    def project_with_workers(self, project: str, chroot: str, *workers: str) -> list[Proc]:
        """A project of one chroot, and the named workers serving it, polling."""
        self.project(project, chroot)
        started = [self.start_worker(name, chroot) for name in workers]
        self.wait_polling(*workers)
        return started

    def project(self, name: str, *chroots: str) -> None:
        form = urllib.parse.urlencode({"name": name, **{c: "y" for c in chroots}}).encode()
        status, body = http(
            "POST",
            f"{self.url}/api/coprs/alice/new/",
            body=form,
            headers={**self.alice, "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert status == 200, body

    def upload(self, project: str, srpm: Path) -> int:
        body, ctype = multipart([("pkgs", srpm.name, srpm.read_bytes(), "application/x-rpm")])
        status, answer = http(
            "POST",
            f"{self.url}/api/coprs/alice/{project}/new_build_upload/",
            body=body,
            headers={**self.alice, "Content-Type": ctype},
        )
        assert status == 200, answer
        return int(answer["id"])

    def detail(self, build_id: int) -> dict[str, Any]:
        status, body = http("GET", f"{self.url}/api/coprs/build/{build_id}/")
        assert status == 200, body
        return body

    def wait_state(self, build_id: int, states: set[str], within: float = 60) -> dict:
        found: dict[str, Any] = {}

        def done() -> bool:
            found.update(self.detail(build_id))
            return found["status"] in states

        wait_for(done, within, f"build {build_id} in {states}", self.logs)
        return found

    def build_dir(self, project: str, chroot: str, build_id: int, package: str) -> Path:
        return self.data_dir / f"results/alice/{project}/{chroot}/{build_id:08d}-{package}"

    def wait_ticks(self, project: str, chroot: str, build_id: int) -> None:
        """Until the long build's own output reaches the server: it runs on a worker."""
        log = self.build_dir(project, chroot, build_id, "copr-lite-e2e-long") / "builder-live.log"
        wait_for(
            lambda: log.exists() and "long build tick 2" in log.read_text(), 30, "ticks", self.logs
        )

    def hello(self, name: str) -> Path:
        spec = self.srpms / f"{name}.spec"
        spec.write_text(HELLO_SPEC.format(name=name))
        return make_srpm(spec, self.srpms)

    def long(self, marker: str, ticks: int) -> Path:
        text = (FIXTURES / "copr-lite-e2e-long.spec").read_text()
        text = re.sub(r"(?m)^%global ticks .*$", f"%global ticks {ticks}", text)
        text = re.sub(r"(?m)^%global marker .*$", f"%global marker {marker}", text)
        spec = self.srpms / f"long-{marker}.spec"
        spec.write_text(text)
        return make_srpm(spec, self.srpms, sourcedir=FIXTURES)

    def logs(self) -> str:
        parts = [f"--- server\n{self.server_log.read_text(errors='replace')[-6000:]}"]
        parts += [f"--- worker {w.name}\n{w.log()[-3000:]}" for w in self.workers]
        return "\n".join(parts)


def stop(proc: Proc, timeout: float = 20) -> int:
    if proc.popen.poll() is None:
        proc.popen.send_signal(signal.SIGTERM)
    try:
        return proc.popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.popen.kill()
        proc.popen.wait()
        pytest.fail(f"worker {proc.name} did not stop on SIGTERM:\n{proc.log()[-3000:]}")


def marker_pids(marker: str) -> list[int]:
    found = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True, check=False)
    return [int(pid) for pid in found.stdout.split()]


def basic(login: str, token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{login}:{token}".encode()).decode()}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """`python -m copr_lite serve` with every chroot mapped to `remote`, fast heartbeats, an
    admin and a user `alice`; workers started by a test are stopped after it."""
    workdir = tmp_path_factory.mktemp("remote")
    port = free_port()
    data_dir = workdir / "data"
    config = workdir / "copr-lite.ini"
    config.write_text(
        f"[server]\nport = {port}\ndata_dir = {data_dir}\naccess_log = no\n"
        "\n[builds]\nconcurrency = 8\n"
        # Signing stays on (the server signs what workers send), with keys quicker to make
        # than 4096-bit ones: this module's timing checks share two cores with them.
        "\n[signing]\nkey_length = 2048\n"
        "\n[chroots]\n" + "".join(f"{c} = remote\n" for c in CHROOTS) + "\n[plugin:remote]\n"
        f"heartbeat_timeout = {HEARTBEAT_TIMEOUT}\nheartbeat_interval = {HEARTBEAT_INTERVAL}\n"
        "claim_wait = 5\n"
    )
    url = f"http://127.0.0.1:{port}"
    (workdir / "srpms").mkdir()
    live = Live(url, workdir, config, data_dir, workdir / "server.log", {}, {}, workdir / "srpms")
    for name, admin in (("admin", True), ("alice", False)):
        live.cli(
            "user",
            "add",
            name,
            *(["--admin"] if admin else []),
            "--password-stdin",
            stdin="password123\n",
        )
        block = live.cli("user", "token", name).stdout
        values = dict(re.findall(r"^(\w+) = (.*)$", block, re.M))
        setattr(live, name, basic(values["login"], values["token"]))
    with serving(config, workdir, live.server_log):
        yield live


@pytest.fixture
def workers(live: Live) -> Iterator[Live]:
    """The live server; every worker the test started is stopped (SIGTERM) after it."""
    yield live
    for proc in live.workers:
        if proc.popen.poll() is None:
            stop(proc)
    live.workers.clear()


def published(live: Live, project: str, chroot: str) -> list[str]:
    """The package file names the chroot's repository lists."""
    repodata = live.data_dir / f"results/alice/{project}/{chroot}/repodata"
    primary = next(repodata.glob("*-primary.xml.gz"))
    return re.findall(r'<location href="([^"]+)"', gzip.decompress(primary.read_bytes()).decode())


# ---------------------------------------------------------------- the tests


def test_two_workers_build_ten_builds_in_parallel(workers: Live):
    live = workers
    chroot = "fedora-40-x86_64"
    a, b = live.project_with_workers("ten", chroot, "ten-a", "ten-b")
    names = [f"remote-ten-{n}" for n in range(10)]
    ids = [live.upload("ten", live.hello(name)) for name in names]
    for build_id in ids:
        detail = live.wait_state(build_id, {"succeeded", "failed"})
        assert detail["status"] == "succeeded", (detail, live.logs())
    # Each chroot was claimed once and finished once, and both workers took part.
    claimed = re.findall(r"job claimed job=\S+ build=(\d+)", live.server_log.read_text())
    assert sorted(int(b) for b in claimed if int(b) in ids) == sorted(ids)
    finished = [re.findall(r"job finished job=\S+ build=(\d+)", w.log()) for w in (a, b)]
    assert sorted(int(b) for done in finished for b in done) == sorted(ids)
    assert all(finished), f"one worker built nothing: {finished}"
    # The repository lists each package exactly once.
    listed = sorted(path.rsplit("/", 1)[-1] for path in published(live, "ten", chroot))
    expected = [f"{name}-1.0-1.fc40.{arch}.rpm" for name in names for arch in ("noarch", "src")]
    assert listed == sorted(expected)
    build_dir = live.build_dir("ten", chroot, ids[0], names[0])
    log = read_log(build_dir)
    assert "took the job: attempt 1 of 3" in log
    assert "building with the rpmbuild builder" in log
    assert f"building {names[0]}" in log  # the build's own output came through
    # Signed on the server with the project's key, which never left it.
    rpmdb = live.workdir / "rpmdb-ten"
    rpmdb.mkdir()
    pubkey = live.data_dir / "results" / "alice" / "ten" / "pubkey.gpg"
    subprocess.run(["rpmkeys", "--dbpath", str(rpmdb), "--import", str(pubkey)], check=True)
    for rpm in build_dir.glob("*.rpm"):
        checked = subprocess.run(
            ["rpmkeys", "--dbpath", str(rpmdb), "--define", "_pkgverify_level signature",
             "--checksig", str(rpm)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert checked.returncode == 0 and "signatures OK" in checked.stdout, checked.stdout
    assert "Signed 2 package(s) with key" in log
    assert stop(a) == 0 and stop(b) == 0


def test_a_killed_worker_loses_its_job_to_the_other(workers: Live):
    live = workers
    chroot = "fedora-39-x86_64"
    marker = f"copr_lite_remote_kill_{os.getpid()}"
    one, two = live.project_with_workers("kill", chroot, "kill-a", "kill-b")
    build_id = live.upload("kill", live.long(marker, ticks=20))
    holder: dict[str, str] = {}

    def taken() -> bool:
        for worker in live.workers_json()["workers"]:
            if worker["current_job"] and worker["current_job"]["build_id"] == build_id:
                holder["name"] = worker["name"]
        return bool(holder)

    wait_for(taken, 30, "the long build running on a worker", live.logs)
    live.wait_ticks("kill", chroot, build_id)
    victim, other = (one, two) if holder["name"] == one.name else (two, one)
    time.sleep(0.5)
    victim.popen.kill()  # SIGKILL: no hand-back, heartbeats just stop
    victim.popen.wait()
    detail = live.wait_state(build_id, {"succeeded", "failed"}, within=60)
    assert detail["status"] == "succeeded", (detail, live.logs())
    text = read_log(live.build_dir("kill", chroot, build_id, "copr-lite-e2e-long"))
    assert f"worker {victim.name} stopped heartbeating" in text
    assert f"Worker {other.name} (" in text and "attempt 2 of 3" in text
    assert re.search(rf"job finished job=\S+ build={build_id} ", other.log())
    assert not marker_pids(marker)


def test_cancel_reaches_the_worker_within_one_heartbeat(workers: Live):
    live = workers
    chroot = "fedora-41-x86_64"
    marker = f"copr_lite_remote_cancel_{os.getpid()}"
    (worker,) = live.project_with_workers("cancel", chroot, "cancel-a")
    build_id = live.upload("cancel", live.long(marker, ticks=300))
    live.wait_ticks("cancel", chroot, build_id)
    status, body = http(
        "POST", f"{live.url}/api/coprs/cancel_build/{build_id}/", headers=live.alice
    )
    assert status == 200, body
    canceled_at = time.monotonic()
    wait_for(lambda: "job canceled by the server" in worker.log(), 5, "the cancel", live.logs)
    reached = time.monotonic() - canceled_at
    wait_for(lambda: not marker_pids(marker), 5, "the build's processes gone", live.logs)
    # One heartbeat interval, plus the time to notice the line in the log file.
    assert reached <= HEARTBEAT_INTERVAL + 0.5, reached
    assert live.detail(build_id)["status"] == "canceled"
    # The worker logs the stop once its build's session is reaped, just after the
    # processes are gone.
    wait_for(lambda: "job stopped" in worker.log(), 5, "the job's stop", live.logs)
    assert worker.popen.poll() is None
    live.wait_polling("cancel-a")  # and it asks for the next job
    assert stop(worker) == 0


def test_a_tampered_upload_is_rejected_and_nothing_is_published(workers: Live):
    live = workers
    chroot = "fedora-rawhide-x86_64"
    live.project("tamper", chroot)
    build_id = live.upload("tamper", live.hello("remote-tamper"))
    token = live.worker_token("tamper")
    bearer = {"Authorization": f"Bearer {token}"}

    def claim() -> dict[str, Any]:
        status, body = http(
            "POST",
            f"{live.url}/worker/v1/claim",
            body=json.dumps({"chroots": [chroot], "wait": 5}).encode(),
            headers={**bearer, "Content-Type": "application/json"},
        )
        assert status == 200 and body["job"], body
        return body["job"]

    def upload(job: dict[str, Any], name: str, content: bytes, sha256: str) -> tuple[int, Any]:
        manifest = json.dumps({"outcome": "succeeded", "files": {name: sha256}}).encode()
        body, ctype = multipart(
            [
                ("manifest", None, manifest, "application/json"),
                ("file", name, content, "application/x-rpm"),
            ]
        )
        return http(
            "POST",
            f"{live.url}/worker/v1/jobs/{job['id']}/result",
            body=body,
            headers={**bearer, "Content-Type": ctype},
        )

    job = claim()
    status, srpm = http("GET", f"{live.url}{job['srpm']['url']}", headers=bearer)
    assert status == 200 and hashlib.sha256(srpm).hexdigest() == job["srpm"]["sha256"]
    # 1: a file changed after its checksum was computed.
    tampered = srpm[:-1] + bytes([srpm[-1] ^ 1])
    status, body = upload(job, "remote-tamper-1.0-1.noarch.rpm", tampered, job["srpm"]["sha256"])
    assert status == 400 and "Checksum mismatch for remote-tamper" in body["error"], body
    # The attempt is over: the old job id is gone, the job is queued again.
    status, body = http("POST", f"{live.url}/worker/v1/jobs/{job['id']}/heartbeat", headers=bearer)
    assert status == 404, body
    # 2: the right checksum of something that is not an RPM.
    job = claim()
    assert job["attempt"] == 2
    junk = b"not an rpm at all"
    status, body = upload(job, "x-1-1.noarch.rpm", junk, hashlib.sha256(junk).hexdigest())
    assert status == 400 and "x-1-1.noarch.rpm is not an RPM file" in body["error"], body
    # 3: a file missing from the upload.
    job = claim()
    manifest = {"outcome": "succeeded", "files": {"a-1-1.noarch.rpm": "0" * 64}}
    body, ctype = multipart([("manifest", None, json.dumps(manifest).encode(), "text/plain")])
    status, answer = http(
        "POST",
        f"{live.url}/worker/v1/jobs/{job['id']}/result",
        body=body,
        headers={**bearer, "Content-Type": ctype},
    )
    assert status == 400 and "were not sent: a-1-1.noarch.rpm" in answer["error"], answer
    detail = live.wait_state(build_id, {"succeeded", "failed"}, within=15)
    assert detail["status"] == "failed"
    reason = detail["fail_reasons"][chroot]
    assert reason.startswith("3 attempts on workers failed: upload from worker tamper rejected")
    build_dir = live.build_dir("tamper", chroot, build_id, "remote-tamper")
    assert not list(build_dir.glob("*.rpm")) and (build_dir / "fail").exists()
    assert published(live, "tamper", chroot) == []


def test_a_worker_serving_epel_9_never_gets_a_fedora_40_job(workers: Live):
    live = workers
    live.project("scope", "fedora-40-x86_64", "epel-9-x86_64")
    worker = live.start_worker("epel-only", "epel-9-x86_64")
    live.wait_polling("epel-only")
    build_id = live.upload("scope", live.hello("remote-scope"))

    def epel_done() -> bool:
        return live.detail(build_id)["chroots"]["epel-9-x86_64"] == "succeeded"

    wait_for(epel_done, 30, "the epel-9 chroot built", live.logs)
    time.sleep(2 * HEARTBEAT_INTERVAL + 1)  # time enough to take the other one, if it would
    detail = live.detail(build_id)
    assert detail["chroots"]["fedora-40-x86_64"] == "running"  # waiting for a worker
    queued = live.workers_json()["queued"]
    assert {"build_id": build_id, "chroot": "fedora-40-x86_64", "attempt": 1} in queued
    claimed = re.findall(r"job claimed \S+ build=\d+ chroot=(\S+)", worker.log())
    assert claimed == ["epel-9-x86_64"], worker.log()
    status, _ = http("POST", f"{live.url}/api/coprs/cancel_build/{build_id}/", headers=live.alice)
    assert status == 200
    assert live.wait_state(build_id, {"canceled"}, within=15)["chroots"] == {
        "epel-9-x86_64": "succeeded",
        "fedora-40-x86_64": "canceled",
    }
    assert stop(worker) == 0


def test_worker_tokens_are_checked_and_workers_listed_for_admins(workers: Live):
    live = workers
    # A made-up token: the worker stops with one line and status 1.
    bad = live.start_worker("bad", "epel-8-x86_64", token="cw_not-a-real-token")
    assert bad.popen.wait(timeout=20) == 1
    assert "the server refused the worker token: Unknown or revoked worker token." in bad.log()
    status, body = http(
        "POST", f"{live.url}/worker/v1/claim", headers={"Authorization": "Bearer nope"}
    )
    assert (status, body["errcode"]) == (401, "unauthorized")
    status, body = http("POST", f"{live.url}/worker/v1/claim", headers=live.admin)
    assert status == 401  # a user's API token is no worker token
    # A revoked token: the running worker is refused from its next request.
    revoked = live.start_worker("revoked", "epel-8-x86_64,epel-9-*")
    live.wait_polling("revoked")
    listed = {w["name"]: w for w in live.workers_json()["workers"]}
    assert listed["revoked"]["serves"] == ["epel-8-x86_64", "epel-9-*"]
    assert listed["revoked"]["builder"] == "rpmbuild" and listed["revoked"]["current_job"] is None
    assert listed["revoked"]["last_heartbeat"] >= time.time() - 10
    assert listed["ten-a"]["state"] == "offline"
    live.cli("worker-token", "revoke", "revoked")
    assert revoked.popen.wait(timeout=20) == 1
    assert "refused the worker token" in revoked.log()
    assert {w["name"]: w["state"] for w in live.workers_json()["workers"]}["revoked"] == "revoked"
    listing = live.cli("worker-token", "list").stdout
    assert re.search(r"^revoked\s+revoked\s", listing, re.M), listing
    failed = live.cli("worker-token", "create", "tamper", rc=1)
    assert failed.stderr.strip() == "copr_lite: worker tamper already has a token: revoke it first"
    # Admins only.
    status, body = http("GET", f"{live.url}/api/workers", headers=live.alice)
    assert (status, body["errcode"]) == (403, "forbidden")
    status, body = http("GET", f"{live.url}/api/workers/")
    assert (status, body["errcode"]) == (401, "unauthorized")


def test_sigterm_finishes_a_short_build_and_hands_back_a_long_one(workers: Live):
    live = workers
    chroot = "fedora-42-x86_64"
    marker = f"copr_lite_remote_term_{os.getpid()}"
    live.project("term", chroot)
    # A build that ends within the grace period is finished and uploaded.
    patient = live.start_worker("term-a", chroot, "--grace", "30")
    live.wait_polling("term-a")
    short = live.upload("term", live.long(f"{marker}_short", ticks=10))
    live.wait_ticks("term", chroot, short)
    assert stop(patient) == 0
    assert live.wait_state(short, {"succeeded", "failed"}, 15)["status"] == "succeeded"
    # One that does not is handed back, and another worker builds it; no attempt is lost.
    hasty = live.start_worker("term-b", chroot, "--grace", "0.5")
    live.wait_polling("term-b")
    long = live.upload("term", live.long(f"{marker}_long", ticks=15))
    live.wait_ticks("term", chroot, long)
    assert stop(hasty) == 0
    assert "job handed back" in hasty.log()
    assert not marker_pids(f"{marker}_long")
    live.start_worker("term-c", chroot)
    assert live.wait_state(long, {"succeeded", "failed"}, 40)["status"] == "succeeded"
    text = read_log(live.build_dir("term", chroot, long, "copr-lite-e2e-long"))
    assert "Worker term-b handed the job back" in text
    assert "Worker term-c (" in text and "attempt 1 of 3" in text
    assert "failed:" not in text
