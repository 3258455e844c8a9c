"""Remote workers benchmark: chroots/s through 1, 2 and 4 worker processes.

Run as `.venv/bin/python bench/workers.py [--builds N] [--build-seconds S] [--workers 1,2,4]`.

For each worker count: a fresh `python -m copr_lite serve` (its one chroot mapped to the
`remote` builder, `[builds] concurrency` 16) and that many `python -m copr_lite worker`
processes on loopback, each with a no-op local builder loaded from a plugins_dir file: it
waits `--build-seconds` (standing in for the compiler) and copies one prebuilt noarch RPM into
its result directory. N distinct SRPMs (made once with `rpmbuild -bs`) are uploaded, and the
wall time from the first upload until every chroot is terminal gives chroots/s. Everything
else is real: the import, claims, SRPM downloads, log lines, heartbeats, uploads with
checksums, the server's RPM header check, publishing and createrepo_c.

With `--build-seconds 0` the figure is the server's and protocol's own ceiling; with a build
time, scaling shows how close N workers get to N times one.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from copr_lite.conformance import make_srpm  # noqa: E402
from copr_lite.liveserver import cli, free_port, running, serving, wait_for  # noqa: E402

CHROOT = "fedora-40-x86_64"
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
SPEC = """\
Name:           {name}
Version:        1.0
Release:        1%{{?dist}}
Summary:        copr_lite workers benchmark package
License:        MIT
BuildArch:      noarch

%description
Benchmark.

%prep

%build

%install
mkdir -p %{{buildroot}}%{{_datadir}}/{name}
echo {name} > %{{buildroot}}%{{_datadir}}/{name}/x

%files
%{{_datadir}}/{name}/x

%changelog
* Mon Jan 01 2024 bench <bench@example.invalid> - 1.0-1
- bench
"""
NOOP_PLUGIN = '''\
"""Benchmark builder "noop": waits, then copies a prebuilt RPM into the result dir."""

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path

from copr_lite import ChrootResult, Outcome, PackageInfo, hookimpl, plugin_setting


@dataclass(frozen=True)
class NoopSettings:
    rpm: str = plugin_setting("", "The prebuilt RPM each build copies. Empty: no builder.")
    seconds: float = plugin_setting(0.0, "How long each build waits.", min=0)


class NoopBuilder:
    name = "noop"

    def __init__(self, rpm, seconds):
        self.rpm = Path(rpm)
        self.seconds = seconds

    async def build(self, job, ctx):
        await ctx.log(f"noop build of {job.srpm.name}")
        await asyncio.sleep(self.seconds)
        target = ctx.result_dir / self.rpm.name
        shutil.copyfile(self.rpm, target)
        package = PackageInfo("bench-noop", None, "1.0", "1", "noarch")
        return ChrootResult(Outcome.SUCCEEDED, (package,), (target,))


@hookimpl
def register_settings(registry):
    registry.add("noop", NoopSettings)


@hookimpl
def register_builders(registry, config):
    settings = config.plugin_settings("noop", NoopSettings)
    if settings.rpm:
        registry.add(NoopBuilder(settings.rpm, settings.seconds))
'''


def say(text: str = "") -> None:
    print(text, flush=True)


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None) -> Any:
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with DIRECT.open(request, timeout=60) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            raise RuntimeError(f"{method} {url}: {exc.code} {exc.read()[:300]!r}") from None


def prepare(work: Path, builds: int) -> tuple[list[Path], Path]:
    """N distinct SRPMs and one prebuilt binary RPM."""
    srpm_dir = work / "srpms"
    srpms = []
    for n in range(builds):
        spec = srpm_dir / f"bench-{n}.spec"
        spec.parent.mkdir(parents=True, exist_ok=True)
        spec.write_text(SPEC.format(name=f"bench-{n}"))
        srpms.append(make_srpm(spec, srpm_dir))
    top = work / "rpmbuild"
    spec = work / "bench-noop.spec"
    spec.write_text(SPEC.format(name="bench-noop").replace("%{?dist}", ""))
    subprocess.run(
        [
            "rpmbuild",
            "-bb",
            "--define",
            f"_topdir {top}",
            "--define",
            f"_dbpath {work / 'rpmdb'}",
            str(spec),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return srpms, next((top / "RPMS").rglob("*.rpm"))


def multipart(name: str, content: bytes) -> tuple[bytes, str]:
    boundary = "copr-lite-bench-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="pkgs"; filename="{name}"\r\n'
        "Content-Type: application/x-rpm\r\n\r\n".encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def one_run(
    work: Path, count: int, srpms: list[Path], rpm: Path, seconds: float
) -> tuple[float, int]:
    """(seconds from the first upload until all chroots ended, how many succeeded)."""
    run_dir = work / f"run-{count}"
    run_dir.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = run_dir / "copr-lite.ini"
    config.write_text(
        f"[server]\nport = {port}\ndata_dir = {run_dir / 'data'}\naccess_log = no\n"
        "log_level = WARNING\n\n[builds]\nconcurrency = 16\n\n"
        f"[chroots]\n{CHROOT} = remote\n"
    )
    plugins = run_dir / "plugins"
    plugins.mkdir()
    (plugins / "bench_noop.py").write_text(NOOP_PLUGIN)
    worker_config = run_dir / "worker.ini"
    worker_config.write_text(
        f"[server]\nlog_level = WARNING\n\n[plugins]\nplugins_dir = {plugins}\n\n"
        f"[plugin:noop]\nrpm = {rpm}\nseconds = {seconds}\n"
    )
    cli(config, "user", "add", "bench", "--admin", "--password-stdin", stdin="password123\n")
    block = cli(config, "user", "token", "bench").stdout
    values = dict(re.findall(r"^(\w+) = (.*)$", block, re.M))
    credential = base64.b64encode(f"{values['login']}:{values['token']}".encode()).decode()
    auth = {"Authorization": f"Basic {credential}"}
    tokens = []
    for n in range(count):
        out = cli(config, "worker-token", "create", f"bench-{n}").stdout
        tokens.append(re.search(r"^token: (\S+)$", out, re.M)[1])  # type: ignore[index]
    with contextlib.ExitStack() as stack:
        stack.enter_context(serving(config, run_dir, run_dir / "server.log"))
        form = f"name=bench&{CHROOT}=y".encode()
        http(
            "POST",
            f"{url}/api/coprs/bench/new/",
            form,
            {**auth, "Content-Type": "application/x-www-form-urlencoded"},
        )
        for n, token in enumerate(tokens):
            argv = [sys.executable, "-m", "copr_lite", "worker", "--server", url]
            argv += ["--builder", "noop", "--chroots", CHROOT, "--config", str(worker_config)]
            env = {"COPR_LITE_WORKER_TOKEN": token}
            stack.enter_context(running(argv, run_dir / f"worker-{n}.log", run_dir, env=env))

        def all_idle() -> bool:
            workers = http("GET", f"{url}/api/workers", None, auth)["workers"]
            return sum(w["state"] == "idle" for w in workers) >= count

        wait_for(all_idle, 30, "workers all started")
        started = time.monotonic()
        ids = []
        for srpm in srpms:
            body, ctype = multipart(srpm.name, srpm.read_bytes())
            answer = http(
                "POST",
                f"{url}/api/coprs/bench/bench/new_build_upload/",
                body,
                {**auth, "Content-Type": ctype},
            )
            ids.append(answer["id"])
        pending = set(ids)
        succeeded = 0
        while pending:
            time.sleep(0.02)
            for build_id in list(pending):
                status = http("GET", f"{url}/api/coprs/build_status/{build_id}/", None, auth)
                if status["status"] in ("succeeded", "failed", "canceled", "skipped"):
                    pending.discard(build_id)
                    succeeded += status["status"] == "succeeded"
            if time.monotonic() - started > 600:
                raise RuntimeError("the builds did not finish within 10 minutes")
        return time.monotonic() - started, succeeded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--builds", type=int, default=40, help="builds per run (default 40)")
    parser.add_argument(
        "--build-seconds",
        type=float,
        default=0.5,
        help="how long the no-op builder waits per build (default 0.5)",
    )
    parser.add_argument("--workers", default="1,2,4", help="worker counts (default 1,2,4)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    counts = [int(c) for c in args.workers.split(",")]
    work = Path(tempfile.mkdtemp(prefix="copr-lite-bench-workers-"))
    try:
        srpms, rpm = prepare(work, args.builds)
        say(
            f"{args.builds} builds x 1 chroot, no-op builder waiting {args.build_seconds:g} s, "
            f"{os.cpu_count()} CPUs"
        )
        say(f"{'workers':>7}  {'seconds':>8}  {'chroots/s':>9}  {'vs 1 worker':>11}  ok")
        base = None
        for count in counts:
            seconds, ok = one_run(work, count, srpms, rpm, args.build_seconds)
            rate = args.builds / seconds
            base = base or rate
            say(f"{count:>7}  {seconds:>8.2f}  {rate:>9.2f}  {rate / base:>10.2f}x  {ok}")
    finally:
        if args.keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
