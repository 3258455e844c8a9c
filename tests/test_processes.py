"""copr_lite.processes: a process started for a task ends with it, from its first moment on."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import sys

import pytest

from copr_lite import processes
from copr_lite.builders import run_logged
from copr_lite.conformance import marker_pids

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")


def sandbox(marker: str) -> list[str]:
    """A bwrap sandbox like the rpmbuild builder's (own pid namespace, dies with its
    parent) running a 30 s loop whose command line holds `marker`."""
    return [
        "bwrap", "--unshare-all", "--die-with-parent",
        "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin",
        "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
        "--proc", "/proc", "--dev", "/dev",
        "sh", "-c", "i=0; while [ $i -lt 300 ]; do i=$((i+1)); sleep 0.1; done", marker,
    ]  # fmt: skip


async def gone(marker: str, within: float = 2.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while marker_pids(marker):
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def log(line: str) -> None:
    pass


@needs_bwrap
async def test_a_sandbox_cancelled_at_any_moment_of_its_start_leaves_no_process() -> None:
    """bwrap stopped in its first milliseconds leaves its sandbox running unless the whole
    session is killed; the task is cancelled at 0 to 30 ms and at each of its first loop
    iterations."""
    marker = f"procs_{os.getpid()}_{secrets.token_hex(3)}"
    survivors = []
    points = [("iterations", n) for n in range(4)] + [
        ("ms", ms) for ms in (0.5, 1, 2, 3, 5, 8, 12, 20, 30)
    ]
    for kind, amount in points * 2:
        task = asyncio.create_task(run_logged(sandbox(marker), log))
        if kind == "iterations":
            for _ in range(amount):
                await asyncio.sleep(0)
        else:
            await asyncio.sleep(amount / 1000)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        if not await gone(marker):
            survivors.append((kind, amount, sorted(marker_pids(marker))))
            for pid in marker_pids(marker):
                os.kill(pid, 9)
    assert not survivors, f"processes outlived their cancelled task: {survivors}"


async def test_a_child_that_left_the_process_group_is_stopped_with_its_session() -> None:
    marker = f"procs_{os.getpid()}_{secrets.token_hex(3)}"
    script = (
        "import os, subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', "
        "'import os, time; os.setpgid(0, 0); time.sleep(30)', sys.argv[1]])\n"
        "print('started', flush=True)\n"
        "time.sleep(30)\n"
    )
    started = asyncio.Event()

    async def record(line: str) -> None:
        if line == "started":
            started.set()

    task = asyncio.create_task(run_logged([sys.executable, "-c", script, marker], record))
    await asyncio.wait_for(started.wait(), 10)
    assert len(marker_pids(marker)) == 2
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await gone(marker, within=0.5)


async def test_a_command_that_ends_takes_its_leftovers_with_it() -> None:
    """A background process the command left in its session does not outlive it."""
    marker = f"procs_{os.getpid()}_{secrets.token_hex(3)}"
    # The background sleep keeps no pipe open, so the command's end is seen at once.
    argv = ["sh", "-c", f"sh -c 'sleep 30' {marker} >/dev/null 2>&1 & echo done"]
    lines: list[str] = []

    async def record(line: str) -> None:
        lines.append(line)

    assert await run_logged(argv, record) == 0
    assert lines == ["done"]
    assert await gone(marker, within=0.5)


async def test_run_captured_stops_a_command_over_its_time_limit() -> None:
    marker = f"procs_{os.getpid()}_{secrets.token_hex(3)}"
    with pytest.raises(TimeoutError):
        await processes.run_captured(["sh", "-c", "sleep 30", marker], time_limit=0.2)
    assert await gone(marker, within=0.5)
    code, out, err = await processes.run_captured(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (code, out, err) == (3, b"out\n", b"err\n")


async def test_complete_finishes_clean_up_through_repeated_cancels() -> None:
    finished = asyncio.Event()

    async def clean_up() -> None:
        await asyncio.sleep(0.1)
        finished.set()

    async def owner() -> None:
        await processes.complete(clean_up())

    task = asyncio.create_task(owner())
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert finished.is_set()
