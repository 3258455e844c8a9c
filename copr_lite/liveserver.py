"""Real processes on real ports for the tests and the benchmarks: a free port, the command
line run once (`cli`), a process for the length of a block (`running`), `python -m copr_lite
serve` until it says it is serving (`serving`), polling until something holds (`wait_for`,
`wait_ready`), and a directory served over HTTP (`serving_directory`).

It lives in the package, not in tests/, so that tests (`pytest`) and benchmarks (`python
bench/x.py`) import the same module without touching sys.path, and so that a plugin's own
tests can start a server the same way. It needs nothing beyond the standard library.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import http.server
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

HOST = "127.0.0.1"
# How long a process has to end after SIGTERM before it is killed.
STOP_WITHIN = 30.0


def free_port() -> int:
    """A TCP port on HOST that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def tail(path: Path, chars: int = 4000) -> str:
    """The end of a log file, for a failure message."""
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def wait_for(
    predicate: Callable[[], object],
    within: float,
    what: str,
    details: Callable[[], str] | None = None,
    *,
    interval: float = 0.05,
) -> None:
    """Call `predicate` every `interval` seconds until it is true; after `within` seconds
    raise AssertionError "no WHAT within N s", followed by `details()` when given."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {within} s\n{details() if details else ''}")
        time.sleep(interval)


def cli(
    config: Path, *args: str, stdin: str = "", timeout: float = 60, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`python -m copr_lite ARGS --config CONFIG` in the config's directory. With `check`,
    a non-zero exit raises AssertionError with the command's output."""
    proc = subprocess.run(
        [sys.executable, "-m", "copr_lite", *args, "--config", str(config)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=config.parent,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"copr_lite {' '.join(args)}: {proc.stdout}\n{proc.stderr}")
    return proc


def stop(proc: subprocess.Popen[str], within: float = STOP_WITHIN) -> bool:
    """SIGTERM a running process and wait for it (kill it after `within` seconds); False if
    it had already ended."""
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=within)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return True


@contextlib.contextmanager
def running(
    cmd: Sequence[str],
    log_path: Path,
    cwd: Path,
    *,
    env: dict[str, str] | None = None,
    capture_stdout: bool = False,
) -> Iterator[subprocess.Popen[str]]:
    """Run `cmd` for the length of the block, its output appended to `log_path` (only its
    stderr with `capture_stdout`: stdout is then a pipe), unbuffered, with `env` added to
    the environment; SIGTERM (then kill) on the way out unless it already ended."""
    with (
        log_path.open("a") as log,
        subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture_stdout else log,
            stderr=log if capture_stdout else subprocess.STDOUT,
            text=True,
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        ) as proc,
    ):
        try:
            yield proc
        finally:
            stop(proc)


@dataclass
class Served:
    """A `serve` process (see `serving`): its stdout up to and including "serving on" (the
    first admin's credentials come before), and whether `serving` had to stop it."""

    proc: subprocess.Popen[str]
    startup: list[str]
    log_path: Path
    stopped: bool = False


@contextlib.contextmanager
def serving(config: Path, workdir: Path, log_path: Path, within: float = 60) -> Iterator[Served]:
    """`python -m copr_lite serve --config CONFIG` in `workdir` (stderr in `log_path`) until
    the block ends; it is ready (listening) once it printed "serving on", at most `within`
    seconds. SIGTERM stops it at the end unless the block ended it itself. Its stdout is a
    pipe that the builds it starts inherit: where they must write to the log file instead,
    start it with `running` and wait for "serving on" in the log."""
    cmd = [sys.executable, "-m", "copr_lite", "serve", "--config", str(config)]
    with running(cmd, log_path, workdir, capture_stdout=True) as proc:
        lines: queue.Queue[str | None] = queue.Queue()
        reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
        reader.start()
        served = Served(proc, [], log_path)
        try:
            served.startup = _read_until_serving(proc, lines, log_path, within)
            yield served
        finally:
            served.stopped = stop(proc)
            reader.join(timeout=10)


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    """Move a process's stdout lines into `lines` until it closes (then a None)."""
    try:
        for line in stream:
            lines.put(line)
    except (OSError, ValueError):
        pass
    finally:
        lines.put(None)


def _read_until_serving(
    proc: subprocess.Popen[str], lines: queue.Queue[str | None], log_path: Path, within: float
) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        if line is None:
            break
        seen.append(line)
        if "serving on" in line:
            return seen
    raise AssertionError(
        f"copr_lite serve did not start (exit {proc.poll()}); stdout:\n{''.join(seen)}\n"
        f"server log:\n{tail(log_path)}"
    )


class QuietFiles(http.server.SimpleHTTPRequestHandler):
    """Files of a directory over HTTP, without a log line per request."""

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def http_server(handler: Callable[..., http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """An HTTP server on a free port of HOST, answering with `handler` from threads of this
    process for the length of the block; its base URL (no trailing slash)."""
    server = http.server.ThreadingHTTPServer((HOST, 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="http-server", daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def serving_directory(directory: Path) -> contextlib.AbstractContextManager[str]:
    """`directory`'s files over HTTP for the length of the block; the base URL."""
    return http_server(functools.partial(QuietFiles, directory=str(directory)))


def request(
    port: int, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> tuple[int, bytes]:
    """One HTTP request to HOST:port; (status, body)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_ready(
    proc: subprocess.Popen[str], port: int, log_path: Path, path: str = "/api/auth_check/"
) -> None:
    """Until a server that prints nothing when ready (bench/bare.py, or one started with
    `running`) answers `path` on `port`; SystemExit if it ends or is silent for 60 s."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited ({proc.returncode}):\n{tail(log_path)}")
        try:
            request(port, "GET", path)
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"the server did not answer within 60 s:\n{tail(log_path)}")
