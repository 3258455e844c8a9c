"""Build engine benchmark: the dispatcher's own cost, one real package end to end,
publishing into a large repository, and the cost of installing build dependencies.

Run as `.venv/bin/python bench/engine.py [--quick] [--check] [--keep]`; each part alone with
the others skipped, e.g. `--skip-engine --skip-package --skip-deps` for (c) only. The method follows
perf-notes.md: absolute figures move between runs and machines, so the end-to-end target is a
ratio to the same work done directly, measured in the same run.

(a) Engine. An app built in-process with create_app() on a temporary data dir, its one chroot
    (fedora-40-x86_64) mapped to a no-op builder that writes one tiny file and succeeds at
    once. 1,000 builds x 1 chroot are stored with their SRPM import already done (as
    tests/test_dispatcher.py's add_pending does), the dispatcher is woken, and the wall time
    until every chroot is terminal gives chroots/s and ms per chroot. Every step of the
    dispatcher and the publisher is timed by wrapping it in this process (the server code is
    not changed), so the breakdown shows where the time goes. Runs: the configured concurrency
    (2, judged against the target) and 4; then what-ifs that patch the server's code in this
    process only: createrepo_c stubbed out (what the dispatcher costs by itself); createrepo_c
    coalesced per chroot directory (one run covers every success that arrived while the
    previous run was going; not with --quick); and coalesced with the build slot given back
    before publishing, so finished builds can pile up behind one run.
(b) Package. tests/fixtures/hello-copr-lite.spec made into an SRPM, then, N times each:
    directly, `rpmbuild -ra` (what the builder runs) with the rpmbuild plugin's own bwrap
    sandbox and defines (taken from the plugin's code), `rpmsign --addsign` of the SRPM and
    the built RPMs with an RSA 4096 key, `createrepo_c` on a fresh directory and
    `gpg --detach-sign` of repomd.xml; and through a real server (`python -m copr_lite
    serve`, signing on), the SRPM served over HTTP from this process, new_build POSTed and
    build_status polled every 5 ms until `succeeded`. Each project is created, and its key
    made, before its build is submitted: a key is made once per project, not per package
    (the time it takes is reported on its own). Medians and their ratio; the server's time
    is split using the result files' modification times, and its signing cost is read from
    the build logs.

(c) Publishing. For each size (`--publish-sizes`, default 100 and 10,000), a chroot directory
    holding that many succeeded build directories of distinct real RPMs (made by rpmbuild as
    subpackages of one spec, a thousand per run) is published once from scratch; then
    `--publish-successes` more successes are published one at a time as the dispatcher does
    (`Publisher.createrepo(chroot_dir, add=[build dir])`). Reported per size: the median
    per-success publish time, the createrepo_c process within it, the publisher's own part
    (the rest), and beside them, measured in the same run, what the publisher did before
    for each success (listing every build directory) and one run from scratch.

(d) Build dependencies. The container builder with the image of `python -m copr_lite
    builder-image`, a local file:/// repository of five noarch packages as the chroot's
    distribution, and two packages alike but for five BuildRequires on them. N times each,
    interleaved: ContainerBuilder.build() itself for the package without BuildRequires,
    the one with them and an empty package cache, and with a warm cache; then through a
    real server (signing on), submit to succeeded, without BuildRequires and with them
    (the server's first such build fills its cache, the next ones find it warm).

Targets: (a) under 20 ms per chroot; (b) at most 1.5x the direct run; (c) per-success
publish time at the largest size at most 3x the time at the smallest, judged on the
publisher's own part (createrepo_c rewrites the whole metadata, so it grows with the
repository whatever the publisher does; its time is reported beside it); (d) the cached
build with BuildRequires at most 1.5x the one without, through the server.
The exit status is 0 even when targets fail, unless `--check` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import gzip
import http.client
import http.server
import importlib.util
import json
import logging
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

from aiohttp import web
from runner import exit_status, scratch_dir

import copr_lite.engine.events as events_module
import copr_lite.engine.run as run_module
import copr_lite.publisher as publisher_module
from copr_lite import hookimpl, store
from copr_lite.app import create_app
from copr_lite.builders import BuildContext, BuildJob, Chroot, Outcome
from copr_lite.config import load_config
from copr_lite.db import Database
from copr_lite.engine import Dispatcher
from copr_lite.engine.run import ChrootRun
from copr_lite.keys import DB, DISPATCHER
from copr_lite.liveserver import HOST, free_port, running, serving_directory, wait_ready
from copr_lite.logs import setup_logging
from copr_lite.publisher import Publisher
from copr_lite.resources import resource_dir
from copr_lite.states import State
from copr_lite.testing import (
    BuilderPlugin,
    FakeBuilder,
    Script,
    add_user,
    insert_imported_builds,
)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SPEC = FIXTURES / "hello-copr-lite.spec"
CHROOT = "fedora-40-x86_64"
OWNER = "bench"
PASSWORD = "bench-password-123"

ENGINE_BUILDS = 1000
ENGINE_TARGET_MS = 20.0  # per chroot, at the configured concurrency
DEFAULT_CONCURRENCY = 2  # what the server is configured with unless told otherwise
PACKAGE_REPEATS = 5
PACKAGE_REPEATS_QUICK = 2
PACKAGE_TARGET_RATIO = 1.5
POLL_INTERVAL = 0.005  # build_status polling (seconds): small, so it adds little lag
BUILD_PATIENCE = 300.0  # seconds one real build may take before the bench gives up


def say(text: str = "") -> None:
    print(text, flush=True)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# ================================================================ (a) the engine


def noop_builder() -> FakeBuilder:
    """testing.FakeBuilder as a no-op: no log lines, no wait; one header-only RPM written
    and SUCCEEDED at once. engine_run() times its build() on its own, so the dispatcher's
    overhead can be told apart from the builder's."""
    return FakeBuilder("noop", scripts={"hello": Script(lines=())})


class Finished:
    """A plugin that counts finished builds and sets an event when `expected` are done."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.done = asyncio.Event()
        self.last = 0.0

    @hookimpl
    def build_finished(self, build: object) -> None:
        self.count += 1
        if self.count >= self.expected:
            self.last = time.perf_counter()
            self.done.set()


@dataclass
class Steps:
    """Seconds spent per named step, summed over concurrent tasks, and how often it ran."""

    total: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def add(self, name: str, seconds: float) -> None:
        self.total[name] += seconds
        self.calls[name] += 1
        if name == "createrepo_c":
            self.samples[name].append(seconds)

    def copy(self) -> Steps:
        return Steps(
            defaultdict(float, self.total),
            defaultdict(int, self.calls),
            defaultdict(list, {k: list(v) for k, v in self.samples.items()}),
        )

    def reset(self) -> None:
        self.total.clear()
        self.calls.clear()
        self.samples.clear()

    def timed_async(
        self, name: str | Callable[..., str], original: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(original)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                label = name(*args, **kwargs) if callable(name) else name
                self.add(label, time.perf_counter() - started)

        return wrapper

    def timed_sync(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - started)

        return wrapper


def _db_label(kind: str) -> Callable[..., str]:
    def label(db: Database, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
        return f"db {kind} {getattr(fn, '__name__', repr(fn))}"

    return label


def _hook_label(pm: object, hook: str, **kwargs: Any) -> str:
    return f"hook {hook}"


@contextlib.contextmanager
def patched(owner: object, attr: str, value: object) -> Iterator[None]:
    """Set `owner.attr` to `value` for the duration (this process only)."""
    saved = getattr(owner, attr)
    setattr(owner, attr, value)
    try:
        yield
    finally:
        setattr(owner, attr, saved)


@contextlib.contextmanager
def instrumented(steps: Steps) -> Iterator[None]:
    """Wrap the dispatcher's steps, the publisher and the database calls with timers."""
    timed = steps.timed_async

    class TimedLiveLog(publisher_module.LiveLog):
        def __init__(self, path: Path) -> None:
            started = time.perf_counter()
            super().__init__(path)
            steps.add("livelog", time.perf_counter() - started)

    with contextlib.ExitStack() as stack:
        for owner, attr, label in (
            (Dispatcher, "_round", "round"),
            (Dispatcher, "_claim", "claim"),
            (ChrootRun, "run", "chroot"),
            (ChrootRun, "build", "build"),
            (ChrootRun, "publish", "publish"),
            (ChrootRun, "finish", "finish"),
            (Publisher, "finish_build_dir", "finish_build_dir"),
            (Publisher, "createrepo", "createrepo"),
            (publisher_module, "_run_createrepo", "createrepo_c"),
        ):
            stack.enter_context(patched(owner, attr, timed(label, getattr(owner, attr))))
        stack.enter_context(
            patched(
                publisher_module,
                "_plan_update",
                steps.timed_sync("plan_update", publisher_module._plan_update),
            )
        )
        stack.enter_context(patched(Database, "write", timed(_db_label("write"), Database.write)))
        stack.enter_context(patched(Database, "read", timed(_db_label("read"), Database.read)))
        stack.enter_context(patched(events_module, "fire", timed(_hook_label, events_module.fire)))
        stack.enter_context(patched(run_module, "LiveLog", TimedLiveLog))
        yield


async def _no_createrepo(chroot_dir: Path, pkglist: Path, trusted: bool = False) -> None:
    """What-if: the createrepo_c process costs nothing (the lock and the package list
    remain). It leaves a repomd.xml, so the publisher goes on incrementally as it would."""
    (chroot_dir / "repodata").mkdir(exist_ok=True)
    (chroot_dir / "repodata" / "repomd.xml").touch()


@dataclass
class _Coalesce:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    requested: int = 0  # requests so far
    covered: int = 0  # requests made before the start of the last completed run


def coalescing(
    original: Callable[..., Awaitable[None]],
) -> Callable[..., Awaitable[None]]:
    """What-if: Publisher.createrepo where one run covers every request made before it
    started; a caller whose request is covered by a completed run returns at once."""
    states: dict[str, _Coalesce] = {}

    async def createrepo(publisher: Publisher, chroot_dir: Path, **changes: Any) -> None:
        state = states.setdefault(str(chroot_dir), _Coalesce())
        state.requested += 1
        mine = state.requested
        async with state.lock:
            if state.covered >= mine:
                return
            upto = state.requested
            await original(publisher, chroot_dir, **changes)
            state.covered = upto

    return createrepo


def publishing_outside_slot(
    original: Callable[..., Awaitable[None]],
) -> Callable[..., Awaitable[None]]:
    """What-if: a chroot whose builder is done gives its build slot back before publishing,
    so more builds run (and more successes queue for one coalesced createrepo_c run)."""

    async def publish(self: ChrootRun, *args: Any) -> None:
        self.release_slot()
        return await original(self, *args)

    return publish


VARIANTS = {
    "shipped": "as shipped",
    "stub": "what-if: createrepo_c process stubbed out",
    "coalesce": "what-if: createrepo_c runs coalesced per chroot dir",
    "decouple": "what-if: coalesced + publishing outside the slot",
}


@dataclass
class EngineRun:
    variant: str
    concurrency: int
    chroots: int
    wall: float
    succeeded: int
    builder_seconds: float
    cpu_self: float  # this process, all threads
    cpu_children: float  # createrepo_c processes
    steps: Steps

    @property
    def ms_per_chroot(self) -> float:
        return 1000 * self.wall / self.chroots

    @property
    def per_second(self) -> float:
        return self.chroots / self.wall if self.wall else 0.0


def _cpu() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


async def engine_run(work: Path, variant: str, concurrency: int, builds: int) -> EngineRun:
    """One run of `builds` builds through the no-op builder; see the module docstring."""
    data_dir = work / f"engine-{variant}-c{concurrency}"
    config = load_config(
        None,
        data_dir=data_dir,
        chroots={CHROOT: "noop"},
        concurrency=concurrency,
        srpm_allowed_networks=("127.0.0.0/8",),
        sign=False,  # the no-op builder's header-only RPMs cannot be signed; (b) signs
    )
    builder, finished, steps = noop_builder(), Finished(builds), Steps()
    builder.build = steps.timed_async("builder", builder.build)  # type: ignore[method-assign]
    app = create_app(config, plugins=[BuilderPlugin(builder), finished], load_entrypoints=False)
    with contextlib.ExitStack() as stack:
        stack.enter_context(instrumented(steps))
        if variant == "stub":
            stack.enter_context(patched(publisher_module, "_run_createrepo", _no_createrepo))
        if variant in ("coalesce", "decouple"):
            stack.enter_context(patched(Publisher, "createrepo", coalescing(Publisher.createrepo)))
        if variant == "decouple":
            publish = publishing_outside_slot(ChrootRun.publish)
            stack.enter_context(patched(ChrootRun, "publish", publish))
        runner = web.AppRunner(app)
        await runner.setup()  # opens the database and starts the dispatcher
        try:
            db = app[DB]
            user, _ = await add_user(app, OWNER)
            project_id = await db.write(store.create_project, user.id, {"name": "engine"}, [CHROOT])
            # Their import done, as tests/test_dispatcher.py's add_pending stores them.
            await db.write(
                insert_imported_builds, project_id, user.id, [CHROOT], count=builds, timeout=3600
            )
            steps.reset()
            cpu_before = _cpu()
            started = time.perf_counter()
            app[DISPATCHER].wake()
            try:
                async with asyncio.timeout(max(600.0, builds * 2.0)):
                    await finished.done.wait()
            except TimeoutError:
                raise SystemExit(
                    f"engine run {variant} c={concurrency}: only {finished.count} of {builds} "
                    "builds finished in time"
                ) from None
            wall = finished.last - started
            for _ in range(1000):  # let the last chroot task return, for complete step counts
                if not app[DISPATCHER].running:
                    break
                await asyncio.sleep(0.001)
            cpu_after = _cpu()
            measured = steps.copy()
            succeeded = await db.read(_count_state, State.SUCCEEDED)
        finally:
            await runner.cleanup()
    return EngineRun(
        variant=variant,
        concurrency=concurrency,
        chroots=builds,
        wall=wall,
        succeeded=succeeded,
        builder_seconds=measured.total["builder"],
        cpu_self=cpu_after[0] - cpu_before[0],
        cpu_children=cpu_after[1] - cpu_before[1],
        steps=measured,
    )


def _count_state(conn: Any, state: State) -> int:
    row = conn.execute("SELECT count(*) FROM build_chroots WHERE status = ?", (state.code,))
    return int(row.fetchone()[0])


# (key, label, indent): the dispatcher's steps as they nest; db calls and hooks follow.
LAYOUT = (
    ("round", "dispatcher rounds (_round: import scan + claim)", 0),
    ("claim", "claim (_claim: candidates query + scheduler)", 1),
    ("chroot", "chroot runs (ChrootRun.run: claimed to terminal)", 0),
    ("livelog", "open builder-live.log", 1),
    ("build", "build step (ChrootRun.build: work dir, builder, rmtree)", 1),
    ("builder", "inside the no-op builder", 2),
    ("publish", "publish step (ChrootRun.publish)", 1),
    ("finish_build_dir", "results.json + success marker", 2),
    ("createrepo", "repository update (Publisher.createrepo)", 2),
    ("lock_wait", "waiting for the chroot dir's lock (derived)", 3),
    ("plan_update", "what to publish, write pkglist (thread)", 3),
    ("createrepo_c", "createrepo_c process", 3),
    ("finish", "terminal state + hooks (ChrootRun.finish)", 1),
)


def render_breakdown(run: EngineRun) -> str:
    steps = run.steps
    total = dict(steps.total)
    calls = dict(steps.calls)
    total["builder"], calls["builder"] = run.builder_seconds, run.chroots
    if "createrepo" in total:
        total["lock_wait"] = max(
            0.0,
            total["createrepo"] - total.get("plan_update", 0) - total.get("createrepo_c", 0),
        )
        calls["lock_wait"] = calls["createrepo"]
    header = (
        f"{'step':<56} {'calls':>6} {'total s':>8} {'ms/chroot':>9} {'ms/call':>8} {'% wall':>7}"
    )
    lines = [header, "-" * len(header)]

    def line(label: str, key: str) -> None:
        seconds, count = total.get(key, 0.0), calls.get(key, 0)
        if not count:
            return
        lines.append(
            f"{label:<56} {count:>6} {seconds:>8.2f} {1000 * seconds / run.chroots:>9.2f} "
            f"{1000 * seconds / count:>8.2f} {100 * seconds / run.wall:>6.0f}%"
        )

    for key, label, indent in LAYOUT:
        line("  " * indent + label, key)
    others = sorted((k for k in total if k.startswith(("db ", "hook "))), key=lambda k: -total[k])
    lines.append("database calls (lock wait + thread hop + SQL) and plugin hooks:")
    for key in others:
        line("  " + key, key)
    return "\n".join(lines)


def engine_notes(run: EngineRun) -> list[str]:
    """Plain-words conclusions from one run's figures."""
    notes = []
    total, calls = run.steps.total, run.steps.calls
    chroot = total.get("chroot", 0.0)
    process = total.get("createrepo_c", 0.0)
    if process and chroot:
        samples = run.steps.samples.get("createrepo_c", [])
        tenth = max(1, len(samples) // 10)
        first, last = samples[:tenth], samples[-tenth:]
        growth = median(last) / median(first) if first and median(first) else 1.0
        notes.append(
            f"createrepo_c ran {calls['createrepo_c']} times (once per success), one at a time "
            f"per chroot dir: its processes alone filled {100 * process / run.wall:.0f} % of the "
            f"wall time, {run.cpu_children / calls['createrepo_c'] * 1000:.0f} ms CPU and "
            f"{1000 * process / calls['createrepo_c']:.0f} ms wall per run; median run "
            f"{1000 * median(first):.0f} ms over the first {len(first)} builds, "
            f"{1000 * median(last):.0f} ms over the last {len(last)}"
            + (
                " (a run grows with the repository, so the total grows with its square)."
                if growth > 1.5
                else "."
            )
        )
        waiting = total.get("createrepo", 0.0) - process - total.get("plan_update", 0.0)
        notes.append(
            f"Of the {chroot:.1f} chroot-task seconds (summed over the {run.concurrency} slots), "
            f"{total.get('createrepo', 0.0):.1f} s are the repository update, {waiting:.1f} s "
            "of them waiting for the chroot dir's lock while another chroot's createrepo_c runs."
        )
    scan = total.get("plan_update", 0.0)
    if scan:
        notes.append(
            f"Before every createrepo_c run, under the same lock, the publisher works out the "
            f"package list (the added build dir, the rest from memory; every build dir only "
            f"on a chroot's first run): {1000 * scan / calls['plan_update']:.2f} ms per call "
            f"on average here, {100 * scan / run.wall:.1f} % of the wall time."
        )
    rest = chroot - total.get("createrepo", 0.0)
    notes.append(
        f"Everything else in a chroot task (database writes, files, hooks, work dir) costs "
        f"{1000 * rest / run.chroots:.1f} ms per chroot summed over slots; the builder itself "
        f"{1000 * run.builder_seconds / run.chroots:.3f} ms."
    )
    return notes


# ================================================================ (b) one real package


def run_checked(
    cmd: Sequence[str], log: Path, *, input_text: str | None = None, cwd: Path | None = None
) -> str:
    """Run `cmd` to completion; its output goes to `log` too; fail loudly on an error."""
    done = subprocess.run(
        list(cmd),
        input=input_text,
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
        stdin=None if input_text is not None else subprocess.DEVNULL,
    )
    with log.open("a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n{done.stdout}{done.stderr}\n")
    if done.returncode != 0:
        raise SystemExit(
            f"{cmd[0]} failed ({done.returncode}): {' '.join(cmd)}\n"
            + _tail_text(done.stdout + done.stderr)
        )
    return done.stdout


def make_srpm(work: Path) -> Path:
    """The fixture spec as an SRPM (private _topdir, _tmppath and _dbpath)."""
    top = work / "srpm-top"
    run_checked(
        [
            "rpmbuild", "-bs",
            "--define", f"_topdir {top}",
            "--define", f"_tmppath {top / 'tmp'}",
            "--define", f"_dbpath {top / 'rpmdb'}",
            "--define", f"_sourcedir {FIXTURES}",
            str(SPEC),
        ],
        work / "srpm.log",
    )  # fmt: skip
    found = sorted((top / "SRPMS").glob("*.src.rpm"))
    if not found:
        raise SystemExit(f"rpmbuild -bs produced no SRPM in {top / 'SRPMS'}")
    return found[0]


def load_builtin_plugin(name: str) -> ModuleType:
    """The shipped plugins/<name>.py, so the direct runs use its exact code (sandbox,
    defines, container arguments)."""
    path = resource_dir("plugins") / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"copr_lite_bench_{name}", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@dataclass
class Direct:
    rebuild: float  # the plugin's rpmbuild -ra (binaries + rebuilt SRPM) in its sandbox
    sign: float  # rpmsign --addsign of the SRPM and the built RPMs
    createrepo: float  # createrepo_c on a fresh dir
    sign_repomd: float  # gpg --detach-sign --armor repomd.xml
    packages: int  # how many files rpmsign signed
    total: float  # all of it, with moving the RPMs into the repository dir


@dataclass
class Keyring:
    home: Path
    name: str
    seconds: float  # gpg --gen-key, RSA 4096


def make_keyring(work: Path) -> Keyring:
    """A GnuPG home with one RSA 4096 signing key, made as the server makes project keys."""
    home = work / "gnupg"
    home.mkdir(mode=0o700)
    params = work / "key.params"
    params.write_text(
        "%no-protection\nKey-Type: RSA\nKey-Length: 4096\nKey-Usage: sign\n"
        "Name-Real: bench_direct\nName-Email: bench#direct@copr-lite\nExpire-Date: 0\n%commit\n"
    )
    started = time.perf_counter()
    gen_key = ["gpg", "--homedir", str(home), "--batch", "--gen-key", str(params)]
    run_checked(gen_key, work / "gpg.log")
    return Keyring(home, "bench#direct@copr-lite", time.perf_counter() - started)


def stop_agent(home: Path) -> None:
    subprocess.run(
        ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False, capture_output=True
    )


def direct_once(plugin: ModuleType, srpm: Path, root: Path, keyring: Keyring) -> Direct:
    """The plugin's rpmbuild command run by hand, then createrepo_c on a fresh dir."""
    log = root / "direct.log"
    root.mkdir(parents=True)
    builder = plugin.RpmbuildBuilder()
    job = BuildJob(
        build_id=1,
        owner=OWNER,
        project="direct",
        chroot=Chroot.parse(CHROOT),
        srpm=srpm,
        package=None,
    )
    build_dir = root / "rpmbuild"
    for sub in ("top", "tmp", "rpmdb"):
        (build_dir / sub).mkdir(parents=True)
    srpm_in = f"/srpm/{srpm.name}"
    target = job.chroot.arch if job.chroot.arch == plugin.host_arch() else None
    sandbox = builder.bwrap_argv(job, build_dir, srpm_in)
    rpmbuild = builder.rpmbuild_args(job, nodeps=False, target=target)
    repo = root / "repo" / CHROOT
    package_dir = repo / "00000001-hello-copr-lite"

    imported = root / "srpm" / srpm.name  # the published copy of the SRPM, signed too
    imported.parent.mkdir()
    shutil.copy(srpm, imported)

    started = time.perf_counter()
    run_checked([*sandbox, *rpmbuild, "-ra", srpm_in], log)
    built = time.perf_counter()
    package_dir.mkdir(parents=True)
    for path in sorted((build_dir / "top").glob("*RPMS/**/*.rpm")):
        shutil.move(path, package_dir / path.name)
    moved = time.perf_counter()
    files = [imported, *sorted(package_dir.glob("*.rpm"))]
    run_checked(
        [
            "rpmsign", "--addsign",
            "--define", f"__gpg {shutil.which('gpg')}",
            "--define", f"_gpg_path {keyring.home}",
            "--define", f"_gpg_name {keyring.name}",
            "--define", f"_dbpath {build_dir / 'rpmdb'}",
            *map(str, files),
        ],
        log,
    )  # fmt: skip
    signed = time.perf_counter()
    run_checked(["createrepo_c", str(repo)], log)
    indexed = time.perf_counter()
    repomd = repo / "repodata" / "repomd.xml"
    run_checked(
        [
            "gpg", "--homedir", str(keyring.home), "--batch", "--yes", "--local-user",
            keyring.name, "--armor", "--detach-sign", "--output", f"{repomd}.asc", str(repomd),
        ],
        log,
    )  # fmt: skip
    done = time.perf_counter()
    if not list(package_dir.glob("*.rpm")) or not repomd.with_name("repomd.xml.asc").is_file():
        raise SystemExit(f"the direct build produced no RPM or no signed repodata (see {log})")
    return Direct(
        rebuild=built - started,
        sign=signed - moved,
        createrepo=indexed - signed,
        sign_repomd=done - indexed,
        packages=len(files),
        total=done - started,
    )


@contextlib.contextmanager
def srpm_server(directory: Path) -> Iterator[int]:
    """Serve `directory` over HTTP on 127.0.0.1 from a thread of this process; yield the port."""
    with serving_directory(directory) as url:
        yield int(url.rsplit(":", 1)[1])


def _tail_text(text: str, lines: int = 30) -> str:
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def serving_srpms(
    config: Path, port: int, credential: tuple[str, str], srpms: Path, work: Path
) -> Iterator[tuple[Api, int]]:
    """`python -m copr_lite serve` with `config` (listening on `port`, its output in
    work/server.log) and `srpms` served over HTTP, for the length of the block: an Api
    with `credential` (login, token) and the SRPM server's port."""
    log = work / "server.log"
    command = [sys.executable, "-m", "copr_lite", "serve", "--config", str(config)]
    with srpm_server(srpms) as srpm_port, running(command, log, work) as proc:
        wait_ready(proc, port, log)
        api = Api(port, *credential)
        try:
            yield api, srpm_port
        finally:
            api.close()


class Api:
    """The API calls the package phase makes, with one keep-alive connection."""

    def __init__(self, port: int, login: str, token: str) -> None:
        self.port = port
        raw = base64.b64encode(f"{login}:{token}".encode()).decode()
        self.auth = {"Authorization": f"Basic {raw}"}
        self.conn = http.client.HTTPConnection(HOST, port, timeout=30)

    def close(self) -> None:
        self.conn.close()

    def call(self, method: str, path: str, form: dict[str, str] | None = None) -> dict[str, Any]:
        headers = dict(self.auth)
        body = None
        if form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            body = urllib.parse.urlencode(form).encode()
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        payload = response.read()
        try:
            answer = json.loads(payload)
        except ValueError:
            answer = {}
        if response.status != 200 or answer.get("output") != "ok":
            raise SystemExit(f"{method} {path} answered {response.status}: {payload[:300]!r}")
        return answer


@dataclass
class ServerBuild:
    total: float  # submit to `succeeded` seen by the poller
    marks: dict[str, float]  # seconds after submit (file times and first-seen states)
    sign: float  # rpmsign runs as the build logs report them (import + chroot)
    packages: int  # files they signed


# (from mark, to mark, label, direct counterpart): consecutive segments of one build through
# the server, each mark being a first-seen state or the mtime of a file the step writes last.
SEGMENTS = (
    ("submit", "answered", "submit -> new_build answered", None),
    ("answered", "imported", "-> import done (SRPM fetched, header read)", None),
    ("imported", "running", "-> 'running' seen (queue wait, claim; 5 ms poll)", None),
    ("running", "results", "-> results.json written (the rpmbuild builder)", "rebuild"),
    ("results", "repodata", "-> repomd.xml written (createrepo_c --update)", "createrepo"),
    ("repodata", "signed", "-> repomd.xml.asc written (gpg --detach-sign)", "sign_repomd"),
    ("signed", "succeeded", "-> 'succeeded' seen (state write; 5 ms poll)", None),
)
# What the build logs say each rpmsign run took: "Signed 3 package(s) with key ... in 0.12 s".
SIGNED_RE = re.compile(r"^Signed (\d+) package\(s\) with key \w+ in ([0-9.]+) s$", re.M)


def create_project(api: Api, data_dir: Path, project: str) -> float:
    """Create `project` and wait for its key (pubkey.gpg): seconds until it appeared."""
    started = time.perf_counter()
    api.call("POST", f"/api/coprs/{OWNER}/new/", {"name": project, CHROOT: "y"})
    pubkey = data_dir / "results" / OWNER / project / "pubkey.gpg"
    while not pubkey.exists():
        if time.perf_counter() - started > BUILD_PATIENCE:
            raise SystemExit(f"no key for {project} after {BUILD_PATIENCE:g} s")
        time.sleep(POLL_INTERVAL)
    return time.perf_counter() - started


def server_build(api: Api, data_dir: Path, project: str, srpm_url: str) -> ServerBuild:
    """Submit the SRPM to `project` (made with its key), poll until succeeded; the timings."""
    wall_start, started = time.time(), time.perf_counter()
    answer = api.call("POST", f"/api/coprs/{OWNER}/{project}/new_build/", {"pkgs": srpm_url})
    marks = {"submit": 0.0, "answered": time.perf_counter() - started}
    build_id = int(answer["id"])
    deadline = started + BUILD_PATIENCE
    while True:
        status = api.call("GET", f"/api/coprs/build_status/{build_id}/")["status"]
        now = time.perf_counter() - started
        marks.setdefault(status, now)
        if status == "succeeded":
            break
        if status in ("failed", "canceled", "skipped") or time.perf_counter() > deadline:
            raise SystemExit(f"build {build_id} ended {status!r}; see the logs in {data_dir}")
        time.sleep(POLL_INTERVAL)
    total = marks["succeeded"]
    project_dir = data_dir / "results" / OWNER / project
    build_dir = project_dir / CHROOT / f"{build_id:08d}-hello-copr-lite"

    def mtime(path: Path | None) -> float | None:
        return path.stat().st_mtime - wall_start if path is not None and path.exists() else None

    files = {
        "imported": project_dir / "srpm-builds" / f"{build_id:08d}" / "builder-live.log",
        "results": build_dir / "results.json",
        "repodata": project_dir / CHROOT / "repodata" / "repomd.xml",
        "signed": project_dir / CHROOT / "repodata" / "repomd.xml.asc",
    }
    for name, path in files.items():
        value = mtime(path)
        if value is not None:
            marks[name] = value
    marks.setdefault("running", marks.get("pending", marks.get("imported", 0.0)))
    logs = (files["imported"], build_dir / "builder-live.log")
    signed = [m for log in logs if log.exists() for m in SIGNED_RE.findall(log.read_text())]
    if not signed:
        raise SystemExit(f"build {build_id} logged no signing; see the logs in {data_dir}")
    return ServerBuild(
        total, marks, sum(float(s) for _, s in signed), sum(int(n) for n, _ in signed)
    )


def write_server_config(path: Path, data_dir: Path, port: int) -> None:
    path.write_text(
        "[server]\n"
        f"host = {HOST}\nport = {port}\ndata_dir = {data_dir}\nlog_level = INFO\n"
        "[builds]\nsrpm_allowed_networks = 127.0.0.0/8\n"
        f"[chroots]\n{CHROOT} = rpmbuild\n"
    )


def create_user(config: Path, work: Path) -> tuple[str, str]:
    """`copr_lite user add` and `user token` through the CLI; return (login, token)."""
    cli = [sys.executable, "-m", "copr_lite", "user"]
    log = work / "cli.log"
    run_checked(
        [*cli, "add", OWNER, "--password-stdin", "--config", str(config)],
        log,
        input_text=PASSWORD + "\n",
        cwd=work,
    )
    out = run_checked([*cli, "token", OWNER, "--config", str(config)], log, cwd=work)
    fields = dict(re.findall(r"^(login|token) = (\S+)$", out, re.M))
    if "login" not in fields or "token" not in fields:
        raise SystemExit(f"no login/token in the output of `user token`:\n{out}")
    return fields["login"], fields["token"]


@dataclass
class PackageResult:
    direct: list[Direct]
    server: list[ServerBuild]
    key_seconds: list[float]  # making a project key: directly, then through the server

    @property
    def direct_median(self) -> float:
        return median([d.total for d in self.direct])

    @property
    def server_median(self) -> float:
        return median([s.total for s in self.server])

    @property
    def ratio(self) -> float:
        return self.server_median / self.direct_median


def package_phase(work: Path, repeats: int) -> PackageResult:
    for tool in ("rpmbuild", "rpm", "rpmsign", "gpg", "gpgconf", "bwrap", "createrepo_c"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed: run ./dev setup")
    srpm = make_srpm(work)
    plugin = load_builtin_plugin("rpmbuild")
    say(f"  SRPM {srpm.name} ({srpm.stat().st_size:,} bytes)")

    say(
        "  directly: the rpmbuild plugin's bwrap + rpmbuild -ra, rpmsign, createrepo_c, "
        "gpg --detach-sign"
    )
    keyring = make_keyring(work)
    say(f"    RSA 4096 key made in {keyring.seconds:.2f} s")
    try:
        direct_once(plugin, srpm, work / "direct-warmup", keyring)  # warm the page cache
        direct = []
        for index in range(repeats):
            result = direct_once(plugin, srpm, work / f"direct-{index}", keyring)
            direct.append(result)
            say(
                f"    run {index + 1}: {1000 * result.total:6.0f} ms  (rpmbuild -ra "
                f"{1000 * result.rebuild:.0f} ms, rpmsign of {result.packages} "
                f"{1000 * result.sign:.0f} ms, createrepo_c {1000 * result.createrepo:.0f} ms, "
                f"repomd signature {1000 * result.sign_repomd:.0f} ms)"
            )
    finally:
        stop_agent(keyring.home)
    key_seconds = [keyring.seconds]

    say("  through copr_lite: POST new_build, poll build_status every 5 ms")
    data_dir = work / "server-data"
    port = free_port()
    config = work / "copr-lite.ini"
    write_server_config(config, data_dir, port)
    login, token = create_user(config, work)
    server = []
    with serving_srpms(config, port, (login, token), srpm.parent, work) as (api, srpm_port):
        url = f"http://{HOST}:{srpm_port}/{srpm.name}"
        projects = ["warmup", *(f"hello-{index}" for index in range(repeats))]
        for project in projects:
            key_seconds.append(create_project(api, data_dir, project))
        say(
            "    project keys made in "
            + ", ".join(f"{s:.2f}" for s in key_seconds[1:])
            + " s (creation to pubkey.gpg)"
        )
        server_build(api, data_dir, "warmup", url)  # first-use costs are not measured
        for index in range(repeats):
            result = server_build(api, data_dir, f"hello-{index}", url)
            server.append(result)
            say(
                f"    run {index + 1}: {1000 * result.total:6.0f} ms  (signing "
                f"{result.packages} files: {1000 * result.sign:.0f} ms)"
            )
    return PackageResult(direct, server, key_seconds)


def render_package(result: PackageResult) -> list[str]:
    direct = result.direct

    def ms(values: Sequence[float]) -> str:
        return f"{1000 * median(values):>6.0f}"

    lines = [
        f"{'median ms':<60} {'copr_lite':>9} {'direct':>7}",
        "-" * 78,
    ]
    for start, end, label, counterpart in SEGMENTS:
        values = [s.marks[end] - s.marks[start] for s in result.server if end in s.marks]
        theirs = ms([getattr(d, counterpart) for d in direct]) if counterpart else "-"
        lines.append(f"{label:<60} {ms(values):>9} {theirs:>7}")
    lines.append(
        f"{'total, submit to succeeded seen / the direct chain':<60} "
        f"{ms([s.total for s in result.server]):>9} {ms([d.total for d in direct]):>7}"
    )
    lines.append(
        "(segments are medians of their own; the 'running' mark is up to 5 ms late, which "
        "moves time from the builder segment to the queue segment; results.json is written "
        "after the packages are signed)"
    )
    server_sign = median([s.sign for s in result.server])
    server_files = median([s.packages for s in result.server])
    direct_sign = median([d.sign for d in direct])
    direct_files = median([d.packages for d in direct])
    repomd = median([d.sign_repomd for d in direct])
    lines.append(
        f"signing per build: copr_lite {1000 * server_sign:.0f} ms for {server_files:g} files "
        f"(two rpmsign runs: the SRPM at import, the chroot's packages), direct "
        f"{1000 * direct_sign:.0f} ms for {direct_files:g} files (one run), so about "
        f"{1000 * direct_sign / direct_files:.0f} ms per package plus "
        f"{1000 * repomd:.0f} ms per repomd.xml signature"
    )
    keys = result.key_seconds
    lines.append(
        f"RSA 4096 key generation (once per project): direct {keys[0]:.2f} s, through the "
        f"server median {median(keys[1:]):.2f} s (min {min(keys[1:]):.2f}, "
        f"max {max(keys[1:]):.2f})"
    )
    return lines


# ================================================================ (c) build dependencies

DEPS_COUNT = 5
DEPS_TARGET_RATIO = 1.5  # a cached build with BuildRequires against one without
DEPS_KINDS = ("none", "first", "cached")


def deps_spec(name: str, requires: Sequence[str], release: int = 1) -> str:
    """A noarch package; its %build reads a file of each of its BuildRequires."""
    build = "\n".join(f"cat %{{_datadir}}/{req}/{req}.txt" for req in requires) or "true"
    return "\n".join(
        [
            f"Name: {name}",
            "Version: 1.0",
            f"Release: {release}%{{?dist}}",
            "Summary: copr_lite benchmark package",
            "License: MIT",
            "BuildArch: noarch",
            *(f"BuildRequires: {req}" for req in requires),
            "%description",
            "Benchmark package.",
            "%prep",
            "%build",
            build,
            "%install",
            f"mkdir -p %{{buildroot}}%{{_datadir}}/{name}",
            f"echo {name} > %{{buildroot}}%{{_datadir}}/{name}/{name}.txt",
            "%files",
            f"%{{_datadir}}/{name}/{name}.txt",
            "",
        ]
    )


def deps_repository(work: Path, names: Sequence[str]) -> Path:
    """The chroot's "distribution": a local repository of `names` (rpmbuild, createrepo_c)."""
    repo = work / "distro"
    for name in names:
        spec = work / "specs" / f"{name}.spec"
        spec.parent.mkdir(parents=True, exist_ok=True)
        spec.write_text(deps_spec(name, ()))
        run_checked(
            [
                "rpmbuild", "-bb",
                "--define", f"_topdir {work / 'top'}",
                "--define", f"_dbpath {work / 'rpmdb'}",
                "--define", f"_rpmdir {repo}",
                str(spec),
            ],
            work / "rpmbuild.log",
        )  # fmt: skip
    run_checked(["createrepo_c", str(repo)], work / "createrepo.log")
    return repo


def deps_srpm(work: Path, name: str, requires: Sequence[str], release: int = 1) -> Path:
    """The SRPM of `name`; each release is a new package to the server (an identical SRPM
    would be skipped)."""
    spec = work / "specs" / f"{name}-{release}.spec"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(deps_spec(name, requires, release))
    top = work / "srpm-top"
    run_checked(
        [
            "rpmbuild", "-bs",
            "--define", f"_topdir {top}",
            "--define", f"_dbpath {top / 'rpmdb'}",
            "--define", f"_srcrpmdir {work / 'srpms'}",
            str(spec),
        ],
        work / "srpm.log",
    )  # fmt: skip
    return next((work / "srpms").glob(f"{name}-1.0-{release}.*src.rpm"))


async def builder_once(builder: Any, srpm: Path, repo: Path, chroot: str, root: Path) -> float:
    """One build by the container builder itself: seconds."""
    lines: list[str] = []

    async def log(line: str) -> None:
        lines.append(line)

    job = BuildJob(
        build_id=1,
        owner=OWNER,
        project="deps",
        chroot=Chroot.parse(chroot),
        srpm=srpm,
        package=None,
        distro_repos=(repo.as_uri(),),
    )
    started = time.perf_counter()
    result = await builder.build(job, BuildContext(root / "result", root / "work", log))
    seconds = time.perf_counter() - started
    if result.status != Outcome.SUCCEEDED:
        raise SystemExit(f"{srpm.name} failed: {result.fail_reason}\n" + "\n".join(lines[-30:]))
    shutil.rmtree(root, ignore_errors=True)
    return seconds


def deps_server_build(api: Api, project: str, srpm_url: str, data_dir: Path) -> float:
    """Submit to `project`, poll until succeeded: seconds from submit."""
    started = time.perf_counter()
    build_id = int(
        api.call("POST", f"/api/coprs/{OWNER}/{project}/new_build/", {"pkgs": srpm_url})["id"]
    )
    while True:
        status = api.call("GET", f"/api/coprs/build_status/{build_id}/")["status"]
        if status == "succeeded":
            return time.perf_counter() - started
        if status in ("failed", "canceled", "skipped"):
            raise SystemExit(f"build {build_id} ended {status!r}; see the logs in {data_dir}")
        if time.perf_counter() - started > BUILD_PATIENCE:
            raise SystemExit(f"build {build_id} took over {BUILD_PATIENCE:g} s")
        time.sleep(POLL_INTERVAL)


@dataclass
class DepsResult:
    builder: dict[str, list[float]]  # kind -> seconds of builder.build() itself
    server: dict[str, list[float]]  # kind -> seconds from submit to succeeded
    image_seconds: float | None  # making the image, when it did not exist

    def ratio(self, where: str, kind: str) -> float:
        values = self.builder if where == "builder" else self.server
        return median(values[kind]) / median(values["none"])


def deps_phase(work: Path, repeats: int) -> DepsResult:
    from copr_lite.builder_image import ImageError, ensure_image

    for tool in ("rpmbuild", "createrepo_c", "podman"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (./dev setup), or use --skip-deps")
    try:
        image, image_seconds = ensure_image()
    except ImageError as exc:
        raise SystemExit(f"no builder image: {exc} (or use --skip-deps)") from None
    say(f"  image {image}" + (f" (made in {image_seconds:.0f} s)" if image_seconds else ""))
    work = work / "deps"
    chroot = f"fedora-40-{platform.machine()}"
    names = [f"bench-dep-{n}" for n in range(1, DEPS_COUNT + 1)]
    repo = deps_repository(work, names)
    srpms = {
        "none": deps_srpm(work, "bench-free", ()),
        "deps": deps_srpm(work, "bench-deps", names),
    }
    plugin = load_builtin_plugin("container")
    cached = plugin.ContainerBuilder(image=image, cache_dir=work / "cache")
    builder: dict[str, list[float]] = {kind: [] for kind in DEPS_KINDS}

    async def directly() -> None:
        runs = work / "runs"
        await builder_once(cached, srpms["none"], repo, chroot, runs / "warm-none")
        await builder_once(cached, srpms["deps"], repo, chroot, runs / "warm-deps")
        for index in range(repeats):
            fresh = plugin.ContainerBuilder(image=image, cache_dir=work / f"cache-first-{index}")
            for kind, use, srpm in (
                ("none", cached, srpms["none"]),
                ("first", fresh, srpms["deps"]),
                ("cached", cached, srpms["deps"]),
            ):
                builder[kind].append(await builder_once(use, srpm, repo, chroot, runs / kind))
            say(
                f"    builder run {index + 1}: "
                + ", ".join(f"{kind} {1000 * builder[kind][-1]:.0f} ms" for kind in DEPS_KINDS)
            )

    say(f"  the container builder directly, {repeats} runs of each (after a warm-up)")
    asyncio.run(directly())

    say("  through copr_lite (container builder, signing on): POST new_build, poll build_status")
    data_dir = work / "server-data"
    port = free_port()
    config = work / "copr-lite.ini"
    config.write_text(
        f"[server]\nhost = {HOST}\nport = {port}\ndata_dir = {data_dir}\nlog_level = INFO\n"
        "[builds]\nsrpm_allowed_networks = 127.0.0.0/8\n"
        f"[chroots]\n{chroot} = container\n"
        f"[repos]\n{chroot} = {repo.as_uri()}\n"
        f"[plugin:container]\nimage = {image}\n"
    )
    login, token = create_user(config, work)
    server: dict[str, list[float]] = {kind: [] for kind in DEPS_KINDS}
    with serving_srpms(config, port, (login, token), work / "srpms", work) as (api, srpm_port):
        for project in ("free", "deps"):
            api.call("POST", f"/api/coprs/{OWNER}/new/", {"name": project, chroot: "y"})
        release = iter(range(2, 3 * repeats + 10))

        def submit(project: str, kind: str) -> float:
            srpm = deps_srpm(
                work, f"bench-{project}", names if kind == "deps" else (), next(release)
            )
            url = f"http://{HOST}:{srpm_port}/{srpm.name}"
            return deps_server_build(api, project, url, data_dir)

        submit("free", "none")  # first-use costs
        # The server's first build with dependencies fills its (empty) cache.
        server["first"].append(submit("deps", "deps"))
        for index in range(repeats):
            server["none"].append(submit("free", "none"))
            server["cached"].append(submit("deps", "deps"))
            say(
                f"    server run {index + 1}: none {1000 * server['none'][-1]:.0f} ms, "
                f"cached {1000 * server['cached'][-1]:.0f} ms"
            )
    return DepsResult(builder, server, image_seconds)


def render_deps(result: DepsResult) -> list[str]:
    labels = {
        "none": "no BuildRequires",
        "first": f"{DEPS_COUNT} BuildRequires, empty cache",
        "cached": f"{DEPS_COUNT} BuildRequires, cached",
    }
    lines = [
        f"{'median ms (ratio to no BuildRequires)':<40} {'builder':>16} {'copr_lite':>16}",
        "-" * 74,
    ]
    for kind in DEPS_KINDS:
        cells = []
        for where, values in (("builder", result.builder), ("server", result.server)):
            cell = f"{1000 * median(values[kind]):.0f}"
            if kind != "none":
                cell += f" ({result.ratio(where, kind):.2f}x)"
            cells.append(cell)
        lines.append(f"{labels[kind]:<40} {cells[0]:>16} {cells[1]:>16}")
    lines.append(
        "(builder: ContainerBuilder.build() itself, a fresh cache per 'empty cache' run; "
        "copr_lite: submit to succeeded, import, signing and createrepo_c included; its "
        "'empty cache' figure is one run, the server's first build with dependencies)"
    )
    return lines


# ================================================================ the run


def engine_phase(work: Path, quick: bool, builds: int) -> list[EngineRun]:
    plan = [("shipped", DEFAULT_CONCURRENCY), ("shipped", 4), ("stub", DEFAULT_CONCURRENCY)]
    if not quick:
        plan += [("coalesce", DEFAULT_CONCURRENCY), ("coalesce", 4)]
    plan.append(("decouple", DEFAULT_CONCURRENCY))
    runs = []
    for variant, concurrency in plan:
        run = asyncio.run(engine_run(work, variant, concurrency, builds))
        runs.append(run)
        say(
            f"  {VARIANTS[variant]:<52} c={concurrency}: {run.wall:7.2f} s  "
            f"{run.per_second:7.1f} chroots/s  {run.ms_per_chroot:7.2f} ms/chroot  "
            f"({run.succeeded} succeeded; cpu: this process {run.cpu_self:.1f} s, "
            f"createrepo_c {run.cpu_children:.1f} s)"
        )
        if run.succeeded != run.chroots:
            raise SystemExit(f"only {run.succeeded} of {run.chroots} chroots succeeded")
    return runs


# ================================================================ (c) publishing


PUBLISH_SIZES = (100, 10_000)
PUBLISH_SUCCESSES = 5
PUBLISH_SUCCESSES_QUICK = 3
PUBLISH_TARGET_RATIO = 3.0
RPMS_PER_SPEC = 1000  # subpackages per rpmbuild run: a thousand small RPMs in about a second


def make_rpms(work: Path, count: int, prefix: str) -> list[Path]:
    """`count` small noarch RPMs of distinct names (and so distinct bytes)."""
    rpms: list[Path] = []
    for batch, start in enumerate(range(0, count, RPMS_PER_SPEC)):
        top = work / f"{prefix}-{batch}"
        (top / "tmp").mkdir(parents=True)
        lines = ["Name: bench-many", "Version: 1.0", "Release: 1", "Summary: bench"]
        lines += ["License: MIT", "BuildArch: noarch", "%description", "bench"]
        for index in range(start, min(count, start + RPMS_PER_SPEC)):
            name = f"{prefix}{index:06d}"
            lines += [f"%package -n {name}", f"Summary: {name}", f"%description -n {name}"]
            lines += [name, f"%files -n {name}"]
        spec = top / "many.spec"
        spec.write_text("\n".join(lines) + "\n")
        run_checked(
            ["rpmbuild", "-bb", "--define", f"_topdir {top}", "--define", f"_tmppath {top / 'tmp'}",
             str(spec)],
            top / "rpmbuild.log",
        )  # fmt: skip
        rpms += sorted((top / "RPMS" / "noarch").glob("*.rpm"))
    if len(rpms) != count:
        raise SystemExit(f"rpmbuild made {len(rpms)} RPMs, not {count}")
    return rpms


def place(publisher: Publisher, build_id: int, rpm: Path) -> Path:
    """A succeeded build directory holding `rpm` (moved there), as a finished build leaves."""
    build_dir = publisher.build_dir(OWNER, "big", CHROOT, build_id, rpm.name.split("-")[0])
    build_dir.mkdir(parents=True)
    rpm.rename(build_dir / rpm.name)
    (build_dir / "success").touch()
    return build_dir


def listed_packages(chroot_dir: Path) -> int:
    primary = next((chroot_dir / "repodata").glob("*-primary.xml.gz"))
    with gzip.open(primary, "rt", encoding="utf-8") as fh:
        match = re.search(r'packages="(\d+)"', fh.read(4096))
    return int(match[1]) if match else -1


def _listed_pkglist(chroot_dir: Path) -> Path:
    """The package list made by listing every build directory (a run from scratch)."""
    dirs = publisher_module._succeeded_dirs(chroot_dir)
    return publisher_module._pkglist(
        {name: publisher_module._lines(name, rpms) for name, rpms in dirs.items()}
    )


@dataclass
class PublishSize:
    size: int
    scratch_first: float  # the chroot's first run: every build dir listed, every RPM read
    total: list[float] = field(default_factory=list)  # per success: Publisher.createrepo
    process: list[float] = field(default_factory=list)  # the createrepo_c process within it
    listing: list[float] = field(default_factory=list)  # before: every build dir, per success
    scratch_again: float = 0.0  # a run from scratch with the metadata in place

    @property
    def own(self) -> list[float]:
        """The publisher's own part of each success (total less createrepo_c)."""
        return [total - process for total, process in zip(self.total, self.process, strict=True)]


async def publish_size(work: Path, size: int, successes: int) -> PublishSize:
    rpms = await asyncio.to_thread(make_rpms, work / f"rpms-{size}", size + successes, f"s{size}p")
    publisher = Publisher(work / f"publish-{size}" / "results")
    chroot_dir = publisher.chroot_dir(OWNER, "big", CHROOT)
    for build_id, rpm in enumerate(rpms[:size], 1):
        place(publisher, build_id, rpm)
    process = [0.0]
    original = publisher_module._run_createrepo

    async def timed_createrepo_c(*args: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        try:
            await original(*args, **kwargs)
        finally:
            process[0] += time.perf_counter() - started

    with patched(publisher_module, "_run_createrepo", timed_createrepo_c):
        started = time.perf_counter()
        await publisher.createrepo(chroot_dir)
        result = PublishSize(size, time.perf_counter() - started)
        for build_id, rpm in enumerate(rpms[size:], size + 1):
            build_dir = place(publisher, build_id, rpm)
            # What the publisher did for every success before: list each build dir's RPMs
            # and write them all to the package list.
            started = time.perf_counter()
            publisher_module._unlink(_listed_pkglist(chroot_dir))
            result.listing.append(time.perf_counter() - started)
            before = process[0]
            started = time.perf_counter()
            await publisher.createrepo(chroot_dir, add=[build_dir.name])
            result.total.append(time.perf_counter() - started)
            result.process.append(process[0] - before)
        listed = listed_packages(chroot_dir)
        if listed != size + successes:
            raise SystemExit(f"the repository lists {listed} packages, not {size + successes}")
        started = time.perf_counter()
        await publisher.createrepo(chroot_dir)
        result.scratch_again = time.perf_counter() - started
    await asyncio.to_thread(shutil.rmtree, work / f"publish-{size}", True)
    await asyncio.to_thread(shutil.rmtree, work / f"rpms-{size}", True)
    return result


def publish_phase(work: Path, sizes: Sequence[int], successes: int) -> list[PublishSize]:
    results = []
    for size in sizes:
        result = asyncio.run(publish_size(work, size, successes))
        results.append(result)
        say(
            f"  {size:>7,} packages: first run {result.scratch_first:6.2f} s; per success "
            f"{1000 * median(result.total):7.1f} ms (createrepo_c "
            f"{1000 * median(result.process):7.1f} ms, "
            f"publisher {1000 * median(result.own):6.2f} ms)"
        )
    return results


def render_publish(results: list[PublishSize]) -> tuple[list[str], bool]:
    """The table of (c) and the verdict against the target."""
    header = (
        f"{'packages':>9} {'per success':>11} {'createrepo_c':>12} {'publisher':>9} "
        f"{'before: listing':>15} {'from scratch':>12}"
    )
    lines = [header + "   (medians, ms)", "-" * len(header)]
    for r in results:
        lines.append(
            f"{r.size:>9,} {1000 * median(r.total):>11.1f} {1000 * median(r.process):>12.1f} "
            f"{1000 * median(r.own):>9.2f} {1000 * median(r.listing):>15.2f} "
            f"{1000 * r.scratch_again:>12.0f}"
        )
    small, large = results[0], results[-1]
    ok = True
    if len(results) > 1:

        def ratio(values: Callable[[PublishSize], list[float]]) -> float:
            return median(values(large)) / median(values(small))

        own = ratio(lambda r: r.own)
        ok = own <= PUBLISH_TARGET_RATIO
        lines += [
            "",
            f"publisher's own part per success, {large.size:,} / {small.size:,} packages: "
            f"{own:.2f}x  target <= {PUBLISH_TARGET_RATIO:.0f}x  {'PASS' if ok else 'FAIL'}",
            f"whole publish per success (createrepo_c included): {ratio(lambda r: r.total):.1f}x;"
            f" createrepo_c alone {ratio(lambda r: r.process):.1f}x (information)",
            f"before, listing every build dir per success: {ratio(lambda r: r.listing):.1f}x "
            f"({1000 * median(large.listing):.1f} ms at {large.size:,})",
        ]
    return lines, ok


def report(
    runs: list[EngineRun],
    package: PackageResult | None,
    published: list[PublishSize],
    deps: DepsResult | None = None,
) -> bool:
    all_ok = report_engine(runs) if runs else True
    if package is not None:
        ok = package.ratio <= PACKAGE_TARGET_RATIO
        all_ok = all_ok and ok
        say(
            f"\n=== (b) one small real package, medians of {len(package.server)} runs each "
            "(after one unmeasured warm-up each)"
        )
        for line in render_package(package):
            say(line)
        say(
            f"\nratio copr_lite / direct: {package.ratio:.2f}x  target <= "
            f"{PACKAGE_TARGET_RATIO}x  {'PASS' if ok else 'FAIL'}"
        )
    if published:
        say(
            f"\n=== (c) publishing one success into a chroot of n packages, "
            f"{len(published[0].total)} successes each"
        )
        lines, ok = render_publish(published)
        all_ok = all_ok and ok
        for line in lines:
            say(line)
    if deps is not None:
        ratio = deps.ratio("server", "cached")
        ok = ratio <= DEPS_TARGET_RATIO
        all_ok = all_ok and ok
        say(
            f"\n=== (d) a package with {DEPS_COUNT} BuildRequires from a local repository, "
            f"container builder, medians of {len(deps.server['cached'])} runs each"
        )
        for line in render_deps(deps):
            say(line)
        say(
            f"\nratio cached build with BuildRequires / build without, through copr_lite: "
            f"{ratio:.2f}x  target <= {DEPS_TARGET_RATIO}x  {'PASS' if ok else 'FAIL'}"
            f" (the builder by itself: {deps.ratio('builder', 'cached'):.2f}x)"
        )
    return all_ok


def report_engine(runs: list[EngineRun]) -> bool:
    all_ok = True
    say("\n=== (a) dispatcher overhead, 1,000 builds x 1 chroot, no-op builder")
    header = (
        f"{'run':<52} {'conc':>4} {'wall s':>7} {'chroots/s':>9} {'ms/chroot':>9} "
        f"{'in builder':>10} {'cr runs':>7}  {'target':<10} result"
    )
    say(header)
    say("-" * len(header))
    for run in runs:  # 'cr runs': createrepo_c processes started
        judged = run.variant == "shipped" and run.concurrency == DEFAULT_CONCURRENCY
        ok = run.ms_per_chroot < ENGINE_TARGET_MS
        if judged:
            all_ok = all_ok and ok
        verdict = ("PASS" if ok else "FAIL") if judged else ("(would pass)" if ok else "(info)")
        say(
            f"{VARIANTS[run.variant]:<52} {run.concurrency:>4} {run.wall:>7.2f} "
            f"{run.per_second:>9.1f} {run.ms_per_chroot:>9.2f} "
            f"{1000 * run.builder_seconds / run.chroots:>8.3f}ms "
            f"{run.steps.calls.get('createrepo_c', 0):>7}  "
            f"{'< 20 ms' if judged else '':<10} {verdict}"
        )
    for run in runs:
        if run.variant in ("shipped", "stub"):
            say(f"\nwhere the time goes: {VARIANTS[run.variant]}, concurrency {run.concurrency}")
            say(render_breakdown(run))
            for note in engine_notes(run):
                say(f"- {note}")
    return all_ok


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{PACKAGE_REPEATS_QUICK} package runs instead of {PACKAGE_REPEATS}, "
        "and no coalescing-only what-ifs",
    )
    parser.add_argument(
        "--builds", type=int, default=ENGINE_BUILDS, help="builds per engine run (the target: 1000)"
    )
    parser.add_argument("--skip-engine", action="store_true", help="no engine phase (a)")
    parser.add_argument("--skip-package", action="store_true", help="no package phase (b)")
    parser.add_argument("--skip-publish", action="store_true", help="no publishing phase (c)")
    parser.add_argument(
        "--publish-sizes",
        default=",".join(map(str, PUBLISH_SIZES)),
        help="packages already published in the chroot, smallest first (the target compares "
        "the last with the first)",
    )
    parser.add_argument(
        "--publish-successes",
        type=int,
        default=0,
        help=f"successes published per size (default {PUBLISH_SUCCESSES}, "
        f"{PUBLISH_SUCCESSES_QUICK} with --quick)",
    )
    parser.add_argument(
        "--skip-deps", action="store_true", help="no build dependency phase (d) (needs podman)"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    parser.add_argument("--keep", action="store_true", help="keep the data dirs and logs")
    return parser.parse_args(argv)


def run_phases(args: argparse.Namespace, work: Path) -> bool:
    """The phases the arguments ask for, in `work`; whether every target was met."""
    runs: list[EngineRun] = []
    package = None
    if not args.skip_engine:
        say(f"(a) engine: {args.builds:,} builds through a no-op builder, data in {work}")
        runs = engine_phase(work, args.quick, args.builds)
    if not args.skip_package:
        repeats = PACKAGE_REPEATS_QUICK if args.quick else PACKAGE_REPEATS
        say(f"(b) package: hello-copr-lite, {repeats} runs each way")
        package = package_phase(work, repeats)
    published: list[PublishSize] = []
    if not args.skip_publish:
        sizes = [int(size) for size in args.publish_sizes.split(",")]
        quick = PUBLISH_SUCCESSES_QUICK if args.quick else PUBLISH_SUCCESSES
        successes = args.publish_successes or quick
        say(f"(c) publishing: {successes} successes into chroots of {sizes} packages")
        published = publish_phase(work, sizes, successes)
    deps = None
    if not args.skip_deps:
        repeats = PACKAGE_REPEATS_QUICK if args.quick else PACKAGE_REPEATS
        say(f"(d) build dependencies: {DEPS_COUNT} BuildRequires, {repeats} runs each")
        deps = deps_phase(work, repeats)
    return report(runs, package, published, deps)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)

    def measure() -> bool:
        with (
            scratch_dir("copr-lite-engine-", args.keep) as work,
            open(work / "engine-server.log", "a", encoding="utf-8") as server_log,
        ):
            # The in-process server logs as `copr_lite serve` does, to a file.
            setup_logging("INFO", server_log)
            try:
                return run_phases(args, work)
            finally:
                logging.getLogger().handlers.clear()

    return exit_status(measure, args.check)


if __name__ == "__main__":
    sys.exit(main())
