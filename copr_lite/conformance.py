"""The builder conformance kit: `check_builder()` proves a builder keeps the contract.

Every builder, built-in or third-party, should pass it::

    from copr_lite.conformance import build_conformance_srpms, check_builder, job_factory

    async def test_my_builder_conforms(tmp_path):
        srpms = build_conformance_srpms(tmp_path / "srpms")   # needs rpmbuild on the host
        await check_builder(MyBuilder(), make_job=job_factory(srpms), tmp_path=tmp_path)

`make_job(kind)` returns the BuildJob for one of three SRPMs (`kind` is "good", "failing"
or "long"); `job_factory(srpms, chroot=..., **fields)` makes one from the SRPMs that
`build_conformance_srpms()` produces, but any factory works as long as its SRPMs behave
like these (the specs are in `CONFORMANCE_SPECS`):

- good: builds a package with at least one binary RPM;
- failing: fails in %build after printing `failure_message`;
- long: prints "long build tick <n>" every 0.2 s for about a minute, from a process whose
  command line holds `marker` (so the kit can tell whether any of its processes survived).

What is checked, in this order (`checks=` runs a subset):

- "protocol": the builder has a non-empty `name` and a `concurrency` that is None (no
  limit of its own) or a whole number of at least 1.
- "success": SUCCEEDED, no fail_reason, something was logged, and the result holds as
  the server checks it before publishing (`copr_lite.verify.check_result`): at least one
  package, every file reported is an RPM inside `ctx.result_dir`, and the packages
  reported are exactly the headers of its binary RPMs.
- "failure": FAILED with a non-empty one-line fail_reason, and `failure_message` reached
  the log (the build's own error output is logged).
- "streaming": the long build's lines reach `ctx.log` while it runs, not only at the end.
- "cancel": `task.cancel()` during the long build raises CancelledError within
  `cancel_within` seconds and no process carrying `marker` is left alive.
- "timeout": the same under `asyncio.timeout()` (TimeoutError instead of CancelledError).
- "cancel-at-start": `task.cancel()` at moments spread over the long build's start (its
  first event-loop steps, then fractions of the time it takes to print its first line):
  each attempt raises CancelledError within `cancel_within` seconds, and once a normal
  start would have printed its first lines, no process carrying `marker` is alive (a
  process spawned regardless, or lost while it started, would show by then).

A broken promise raises `ConformanceError` (an AssertionError, so pytest shows it as a
test failure) saying which check failed and why; the kit kills leftover marker processes
before raising so a failing run does not leave a minute-long build behind. On success it
returns a `ConformanceReport` with the checks passed and the log of every run.

The process check reads /proc, so "cancel" and "timeout" need Linux, and a builder whose
processes run elsewhere (another machine, a VM) should pass `process_check=False`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .builders import BuildContext, Builder, BuildJob, Chroot, ChrootResult, Outcome
from .processes import proc_files
from .verify import ResultError, check_result

__all__ = [
    "ALL_CHECKS",
    "CONFORMANCE_SPECS",
    "FAILURE_MESSAGE",
    "LONG_MARKER",
    "ConformanceError",
    "ConformanceReport",
    "build_conformance_srpms",
    "check_builder",
    "job_factory",
    "make_srpm",
    "marker_pids",
]

LONG_MARKER = "copr-lite-conformance-long-build-marker"
FAILURE_MESSAGE = "copr-lite-conformance: this build fails on purpose"
ALL_CHECKS = (
    "protocol",
    "success",
    "failure",
    "streaming",
    "cancel",
    "timeout",
    "cancel-at-start",
)
# Where "cancel-at-start" cancels: after N event-loop steps, then at fractions of the time
# the long build takes to print its first tick line.
_START_STEPS = (0, 1, 2, 3)
_START_FRACTIONS = (0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.9)

_CHANGELOG = """%changelog
* Mon Jan 01 2024 copr_lite tests <tests@example.invalid> - 1.0-1
- conformance fixture
"""


def _spec(name: str, summary: str, description: str, build: str, text_file: str = "") -> str:
    """A noarch spec of the kit; `text_file` names the one file it installs (none: empty
    %install and %files)."""
    install = files = ""
    if text_file:
        install = (
            "mkdir -p %{buildroot}%{_datadir}/copr-lite-conformance\n"
            f"echo {text_file} > %{{buildroot}}%{{_datadir}}/copr-lite-conformance/"
            f"{text_file}.txt\n"
        )
        files = f"%{{_datadir}}/copr-lite-conformance/{text_file}.txt\n"
    return f"""\
Name:           copr-lite-conformance-{name}
Version:        1.0
Release:        1%{{?dist}}
Summary:        copr_lite conformance kit: {summary}
License:        MIT
BuildArch:      noarch

%description
{description}

%prep

%build
{build}

%install
{install}
%files
{files}
{_CHANGELOG}"""


CONFORMANCE_SPECS: dict[str, str] = {
    "good": _spec(
        "good",
        "a package that builds",
        "Installs one small text file.",
        'echo "copr-lite-conformance: building the good package"',
        text_file="good",
    ),
    "failing": _spec(
        "fail",
        "a package whose build fails",
        "Fails in %build with a clear message.",
        f'echo "{FAILURE_MESSAGE}" >&2\nexit 1',
    ),
    "long": _spec(
        "long",
        "a build that takes about a minute",
        "Prints a line every 0.2 s for about 60 s; the looping shell carries a marker in its\n"
        "command line so that tests can see whether it outlived a cancel.",
        'sh -c \'i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo "long build tick $i"; '
        f"sleep 0.2; done' \\\n    {LONG_MARKER}",
        text_file="long",
    ),
}


class ConformanceError(AssertionError):
    """A builder broke the contract; the message names the check and what went wrong."""


@dataclass
class ConformanceReport:
    """What check_builder() ran: the checks passed and the log lines of each run."""

    builder: str
    passed: list[str] = field(default_factory=list)
    logs: dict[str, list[str]] = field(default_factory=dict)
    results: dict[str, ChrootResult] = field(default_factory=dict)


# ---------------------------------------------------------------- SRPMs and jobs


def make_srpm(spec: Path, out_dir: Path, *, sourcedir: Path | None = None) -> Path:
    """Build an SRPM from `spec` with rpmbuild -bs, privately (nothing in ~/rpmbuild or
    ~/.rpmdb): _topdir, _tmppath and _dbpath live in a temporary directory."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="copr-lite-srpm-") as tmp:
        top = Path(tmp)
        (top / "tmp").mkdir()
        proc = subprocess.run(
            [
                "rpmbuild",
                "-bs",
                "--define",
                f"_topdir {top / 'top'}",
                "--define",
                f"_tmppath {top / 'tmp'}",
                "--define",
                f"_dbpath {top / 'db'}",
                "--define",
                f"_sourcedir {sourcedir or spec.parent}",
                "--define",
                f"_srcrpmdir {out_dir}",
                str(spec),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"rpmbuild -bs {spec} failed: {proc.stderr.strip()}")
    for line in proc.stdout.splitlines():
        if line.startswith("Wrote: "):
            return Path(line.removeprefix("Wrote: ").strip())
    raise RuntimeError(f"rpmbuild -bs {spec} wrote no SRPM: {proc.stdout.strip()}")


def build_conformance_srpms(directory: Path, marker: str = LONG_MARKER) -> dict[str, Path]:
    """Write CONFORMANCE_SPECS into `directory` and build them: {"good": srpm, ...}.

    `marker` replaces LONG_MARKER in the long build's command line: test runs that may share
    a machine give each its own (and pass the same to `check_builder`), so that one run's
    long builds are never taken for another's leftovers."""
    if not re.fullmatch(r"[\w.-]+", marker):
        raise ValueError(f"a marker is letters, digits, '_', '.' and '-' only: {marker!r}")
    directory.mkdir(parents=True, exist_ok=True)
    srpms = {}
    for kind, text in CONFORMANCE_SPECS.items():
        spec = directory / f"copr-lite-conformance-{kind}.spec"
        spec.write_text(text.replace(LONG_MARKER, marker))
        srpms[kind] = make_srpm(spec, directory)
    return srpms


def job_factory(
    srpms: Mapping[str, Path], chroot: str = "fedora-40-x86_64", **fields: Any
) -> Callable[[str], BuildJob]:
    """A `make_job` for check_builder(): one BuildJob per kind, other fields from `fields`."""
    counter = iter(range(1, 1_000_000))

    def make_job(kind: str) -> BuildJob:
        job = BuildJob(
            build_id=next(counter),
            owner="conformance",
            project="kit",
            chroot=Chroot.parse(chroot),
            srpm=srpms[kind],
            package=None,
        )
        return replace(job, **fields) if fields else job

    return make_job


# ---------------------------------------------------------------- processes


def marker_pids(marker: str) -> set[int]:
    """Pids of the live processes whose command line contains `marker` (reads /proc)."""
    needle = marker.encode()
    own = os.getpid()
    return {pid for pid, cmdline in proc_files("cmdline") if needle in cmdline and pid != own}


def _kill(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------- the kit


class _Run:
    """One build of the kit: its own result/work dirs and a recording log writer."""

    def __init__(self, tmp_path: Path, name: str) -> None:
        base = tmp_path / f"conformance-{name}"
        self.result_dir = base / "result"
        self.work_dir = base / "work"
        self.result_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.lines: list[str] = []
        self.times: list[float] = []
        self.ctx = BuildContext(self.result_dir, self.work_dir, self.log)

    async def log(self, line: str) -> None:
        self.lines.append(line)
        self.times.append(time.monotonic())


def _fail(check: str, message: str, run: _Run | None = None) -> ConformanceError:
    tail = ""
    if run is not None and run.lines:
        tail = "\n  last log lines:\n    " + "\n    ".join(run.lines[-15:])
    return ConformanceError(f"[{check}] {message}{tail}")


async def check_builder(
    builder: Builder,
    *,
    make_job: Callable[[str], BuildJob],
    tmp_path: Path,
    marker: str = LONG_MARKER,
    failure_message: str | None = FAILURE_MESSAGE,
    checks: Iterable[str] = ALL_CHECKS,
    build_timeout: float = 120.0,
    start_timeout: float = 60.0,
    cancel_within: float = 5.0,
    process_check: bool = True,
) -> ConformanceReport:
    """Run the conformance checks on `builder`; raise ConformanceError on the first failure.

    :param make_job: `make_job(kind)` -> BuildJob, kind being "good", "failing" or "long".
    :param tmp_path: a scratch directory (result and work dirs of each run go there).
    :param marker: a string in the command line of the long build's looping process.
    :param failure_message: a text the failing build prints; it must reach the log
        (None skips that part).
    :param checks: which of ALL_CHECKS to run.
    :param build_timeout: how long the good and failing builds may take.
    :param start_timeout: how long the long build may take to print its first lines.
    :param cancel_within: how soon a cancelled or timed-out build must be gone.
    :param process_check: look for surviving marker processes in /proc.
    """
    wanted = list(checks)
    unknown = set(wanted) - set(ALL_CHECKS)
    if unknown:
        raise ValueError(f"unknown checks: {sorted(unknown)}; known: {ALL_CHECKS}")
    if process_check and (stale := marker_pids(marker)):
        raise ConformanceError(
            f"processes with the marker {marker!r} are already running ({sorted(stale)}); "
            "stop them first, the kit cannot tell them apart from a builder's leftovers"
        )
    kit = _Kit(
        builder,
        make_job,
        tmp_path,
        marker,
        failure_message,
        build_timeout,
        start_timeout,
        cancel_within,
        process_check,
    )
    report = ConformanceReport(builder=builder.name)
    for check in wanted:
        run = _Run(tmp_path, check)
        report.logs[check] = run.lines
        if check == "protocol":
            _check_protocol(builder)
        elif check == "success":
            report.results[check] = await _check_success(kit, run)
        elif check == "failure":
            report.results[check] = await _check_failure(kit, run)
        elif check == "streaming":
            await _check_streaming(kit, run)
        elif check == "cancel-at-start":
            await _check_cancel_at_start(kit, run)
        else:
            await _check_stop(kit, check, run)
        report.passed.append(check)
    return report


@dataclass(frozen=True)
class _Kit:
    """The builder under test and the settings of one check_builder() call."""

    builder: Builder
    make_job: Callable[[str], BuildJob]
    tmp_path: Path
    marker: str
    failure_message: str | None
    build_timeout: float
    start_timeout: float
    cancel_within: float
    process_check: bool

    def start_long_build(self, run: _Run) -> asyncio.Task[ChrootResult]:
        return asyncio.create_task(self.builder.build(self.make_job("long"), run.ctx))

    async def stop(self, task: asyncio.Task[Any]) -> None:
        """Cancel a kit build and make sure nothing of it stays, whatever happened."""
        task.cancel()
        with contextlib.suppress(BaseException):
            async with asyncio.timeout(10):
                await task
        self.kill_leftovers()

    def kill_leftovers(self) -> None:
        if self.process_check:
            _kill(marker_pids(self.marker))


def _check_protocol(builder: Builder) -> None:
    name = getattr(builder, "name", None)
    if not isinstance(name, str) or not name:
        raise _fail("protocol", f"name {name!r} is not a non-empty string")
    if not hasattr(builder, "concurrency"):
        raise _fail("protocol", "no `concurrency` attribute (None: no limit of its own)")
    limit = builder.concurrency
    if limit is not None and (type(limit) is not int or limit < 1):
        raise _fail("protocol", f"concurrency {limit!r} is neither None nor a number >= 1")


async def _build(kit: _Kit, kind: str, run: _Run, check: str) -> ChrootResult:
    limit = kit.build_timeout
    try:
        async with asyncio.timeout(limit):
            result = await kit.builder.build(kit.make_job(kind), run.ctx)
    except TimeoutError:
        raise _fail(check, f"the build did not finish within {limit:.0f} s", run) from None
    except Exception as exc:
        raise _fail(
            check, f"build() raised {exc.__class__.__name__}: {exc} (it must return a result)", run
        ) from exc
    if not isinstance(result, ChrootResult):
        raise _fail(check, f"build() returned {result!r}, not a ChrootResult", run)
    return result


async def _check_success(kit: _Kit, run: _Run) -> ChrootResult:
    check = "success"
    result = await _build(kit, "good", run, check)
    if result.status != Outcome.SUCCEEDED:
        raise _fail(check, f"status {result.status!s}, reason {result.fail_reason!r}", run)
    if result.fail_reason:
        raise _fail(check, f"a successful build has a fail_reason: {result.fail_reason!r}", run)
    if not result.packages:
        raise _fail(check, "no packages reported", run)
    if not run.lines:
        raise _fail(check, "nothing was logged", run)
    # The same rules the server applies before it publishes a result.
    try:
        await check_result(result, run.result_dir)
    except ResultError as exc:
        raise _fail(check, f"the result does not hold: {exc}", run) from None
    return result


async def _check_failure(kit: _Kit, run: _Run) -> ChrootResult:
    check = "failure"
    failure_message = kit.failure_message
    result = await _build(kit, "failing", run, check)
    if result.status != Outcome.FAILED:
        raise _fail(check, f"status {result.status!s} for a build that fails", run)
    reason = result.fail_reason or ""
    if not reason.strip():
        raise _fail(check, "no fail_reason", run)
    if "\n" in reason.strip():
        raise _fail(check, f"fail_reason is not one line: {reason!r}", run)
    if failure_message and not any(failure_message in line for line in run.lines):
        raise _fail(check, f"the build's error {failure_message!r} is not in the log", run)
    return result


_TICK = re.compile(r"long build tick \d+")


def _ticks(run: _Run) -> int:
    return sum(bool(_TICK.search(line)) for line in run.lines)


async def _wait_for(
    task: asyncio.Task[Any],
    run: _Run,
    predicate: Callable[[], bool],
    limit: float,
    check: str,
    what: str,
) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if task.done():
            raise _fail(check, f"the long build ended before {what}: {_outcome(task)}", run)
        if time.monotonic() > deadline:
            raise _fail(check, f"no {what} within {limit:.0f} s", run)
        await asyncio.sleep(0.05)


async def _wait_started(task: asyncio.Task[Any], run: _Run, limit: float, check: str) -> None:
    await _wait_for(task, run, lambda: _ticks(run) >= 2, limit, check, "'tick' lines in the log")


async def _check_streaming(kit: _Kit, run: _Run) -> None:
    check = "streaming"
    task = kit.start_long_build(run)
    try:
        await _wait_started(task, run, kit.start_timeout, check)
        seen = _ticks(run)
        await _wait_for(task, run, lambda: _ticks(run) >= seen + 3, 5.0, check, "further lines")
        if task.done():
            raise _fail(check, "the long build ended while its lines were being read", run)
    finally:
        await kit.stop(task)


async def _check_stop(kit: _Kit, check: str, run: _Run) -> None:
    builder, make_job, marker = kit.builder, kit.make_job, kit.marker
    process_check, cancel_within = kit.process_check, kit.cancel_within
    loop = asyncio.get_running_loop()
    scope: list[asyncio.Timeout] = []

    async def build_with_timeout() -> ChrootResult:
        async with asyncio.timeout(None) as cm:
            scope.append(cm)
            return await builder.build(make_job("long"), run.ctx)

    coro = build_with_timeout() if check == "timeout" else builder.build(make_job("long"), run.ctx)
    task = asyncio.create_task(coro)
    expected: type[BaseException] = TimeoutError if check == "timeout" else asyncio.CancelledError
    try:
        await _wait_started(task, run, kit.start_timeout, check)
        if process_check and not marker_pids(marker):
            raise _fail(check, f"no process with the marker {marker!r} while it runs", run)
        started = time.monotonic()
        if check == "timeout":
            scope[0].reschedule(loop.time())
        else:
            task.cancel()
        done, _ = await asyncio.wait({task}, timeout=cancel_within)
        elapsed = time.monotonic() - started
        if not done:
            raise _fail(check, f"the build was still running {cancel_within:.0f} s later", run)
        if check == "cancel" and not task.cancelled():
            raise _fail(check, f"expected CancelledError, got {_outcome(task)}", run)
        if check == "timeout" and not isinstance(task.exception(), expected):
            raise _fail(check, f"expected TimeoutError, got {_outcome(task)}", run)
        if process_check:
            # The builder must stop its processes before re-raising; allow the kernel a
            # moment to finish killing a sandbox's pid namespace.
            for _ in range(20):
                if not (left := marker_pids(marker)):
                    break
                await asyncio.sleep(0.05)
            if left:
                raise _fail(check, f"processes left alive after stopping: {sorted(left)}", run)
        if elapsed > cancel_within:
            raise _fail(check, f"stopping took {elapsed:.1f} s", run)
    finally:
        if not task.done():
            await kit.stop(task)
        else:
            kit.kill_leftovers()


async def _check_cancel_at_start(kit: _Kit, run: _Run) -> None:
    check = "cancel-at-start"
    # One normal start tells how long a start takes on this builder and machine.
    started = time.monotonic()
    task = kit.start_long_build(run)
    try:
        await _wait_for(task, run, lambda: _ticks(run) >= 1, kit.start_timeout, check, "first tick")
    finally:
        await kit.stop(task)
    start_time = time.monotonic() - started
    moments: list[tuple[str, float]] = [("steps", n) for n in _START_STEPS]
    moments += [("seconds", f * start_time) for f in _START_FRACTIONS]
    for number, (kind, amount) in enumerate(moments):
        attempt = _Run(kit.tmp_path, f"{check}-{number}")
        task = kit.start_long_build(attempt)
        if kind == "steps":
            for _ in range(int(amount)):
                await asyncio.sleep(0)
        else:
            await asyncio.sleep(amount)
        where = f"{amount:.0f} loop steps" if kind == "steps" else f"{amount:.3f} s"
        if task.done():
            raise _fail(check, f"the long build ended by itself after {where}", attempt)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=kit.cancel_within)
        if not done:
            await kit.stop(task)
            raise _fail(check, f"cancelled {where} into its start, still running", attempt)
        if not task.cancelled():
            raise _fail(check, f"cancelled {where} into its start: {_outcome(task)}", attempt)
    if kit.process_check:
        # Whatever escaped would have reached its looping process by now.
        await asyncio.sleep(start_time + 1.0)
        if left := marker_pids(kit.marker):
            _kill(left)
            raise _fail(check, f"processes alive after cancels during the start: {sorted(left)}")


def _outcome(task: asyncio.Task[Any]) -> str:
    if task.cancelled():
        return "CancelledError"
    exc = task.exception()
    return repr(exc) if exc is not None else f"a result {task.result()!r}"
