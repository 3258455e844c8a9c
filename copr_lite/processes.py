"""Child processes that never outlive the task that started them.

Every process starts in a session of its own, and the session is what gets stopped: the
process group first (SIGTERM, then SIGKILL after a grace period), then every process still
in the session. A process group alone is not enough: a sandbox's pid-namespace init (bwrap)
ignores SIGTERM from outside its namespace, and bwrap stopped during its first milliseconds
leaves its sandbox running before `--die-with-parent` is armed. The session id survives
such orphans (they are re-parented, not re-sessioned), so /proc still finds them.

Starting is tracked too: a task cancelled while `create_subprocess_exec` is still setting
up its pipes gets the process stopped whole before CancelledError goes on, instead of
asyncio's own clean-up, which kills the leader alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

TERMINATE_GRACE = 3.0
# Once the leader is gone, how long the rest of its session gets before SIGKILL.
AFTER_LEADER_GRACE = 0.3
_POLL = 0.02


async def start(
    argv: Sequence[str],
    *,
    stdout: int | None = asyncio.subprocess.PIPE,
    stderr: int | None = asyncio.subprocess.STDOUT,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> asyncio.subprocess.Process:
    """Start `argv` in a new session (stdin /dev/null). Cancelled during the start, the
    process is stopped whole before CancelledError propagates. OSError if it cannot run."""
    creating = asyncio.ensure_future(
        asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    )
    try:
        return await asyncio.shield(creating)
    except asyncio.CancelledError:
        await complete(_stop_when_started(creating))
        raise


async def _stop_when_started(creating: asyncio.Future[asyncio.subprocess.Process]) -> None:
    try:
        proc = await creating
    except (OSError, asyncio.CancelledError):
        return
    await stop(proc)


async def stop(proc: asyncio.subprocess.Process, grace: float = TERMINATE_GRACE) -> None:
    """Stop `proc` and everything in its session: SIGTERM to the group, SIGKILL to what is
    left after `grace` seconds (or shortly after the leader exits), until /proc shows no
    member of the session."""
    sid = proc.pid
    loop = asyncio.get_running_loop()
    if proc.returncode is None:
        _signal_group(sid, signal.SIGTERM)
        deadline = loop.time() + grace
        # Polled: proc.wait() also waits for the pipes, which orphans may hold open.
        while proc.returncode is None and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(_POLL)
        deadline = min(deadline, loop.time() + AFTER_LEADER_GRACE)
        while session_members(sid) and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(_POLL)
    # A process in uninterruptible sleep dies when it wakes; do not wait for it forever.
    deadline = loop.time() + 10.0
    kill_session(sid)
    while (proc.returncode is None or session_members(sid)) and loop.time() < deadline:
        kill_session(sid)
        await asyncio.sleep(_POLL)
    # Every writer of its pipes is dead now, so this returns at once, unless something
    # that left the session (a daemon that called setsid) holds them open.
    try:
        await asyncio.wait_for(proc.wait(), 5.0)
    except TimeoutError:
        log.warning("pid=%d exited, but a process outside its session holds its output", sid)


def kill_session(sid: int) -> None:
    """SIGKILL the process group `sid` and every process of the session `sid`."""
    _signal_group(sid, signal.SIGKILL)
    for pid in session_members(sid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def session_members(sid: int) -> list[int]:
    """Live (not zombie) processes whose session id is `sid`, read from /proc."""
    members = []
    for pid, stat in proc_files("stat"):
        # pid (comm) state ppid pgrp session ...: comm may hold spaces and parentheses.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 3 and fields[0] != b"Z" and int(fields[3]) == sid:
            members.append(pid)
    return members


def proc_files(name: str) -> Iterator[tuple[int, bytes]]:
    """(pid, content of /proc/<pid>/<name>) for every process that still exists."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/{name}", "rb") as f:
                yield int(entry.name), f.read()
        except OSError:
            continue  # it ended meanwhile


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def complete(aw: Awaitable[T]) -> T:
    """Await `aw` to its end even if the caller is cancelled meanwhile (clean-up that must
    not be cut short); a cancellation that arrived is raised afterwards."""
    task: asyncio.Future[T] = asyncio.ensure_future(aw)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return result


async def run_captured(
    argv: Sequence[str], *, time_limit: float | None = None, **kwargs: Any
) -> tuple[int, bytes, bytes]:
    """Run a short command to its end: (exit status, stdout, stderr). Cancelled or over
    `time_limit` seconds (TimeoutError), its session is stopped first."""
    pipe = asyncio.subprocess.PIPE
    proc = await start(argv, stdout=pipe, stderr=pipe, **kwargs)
    try:
        async with asyncio.timeout(time_limit):
            out, err = await proc.communicate()
    except BaseException:
        await complete(stop(proc, grace=0))
        raise
    return proc.returncode or 0, out, err
