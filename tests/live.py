"""A real `python -m copr_lite serve` for the tests that need one listening on a port."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving(
    config: Path, workdir: Path, log_path: Path
) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """Run the server with `config` (stderr in `log_path`); yield it and the stdout lines up
    to and including "serving on" (the first admin's credentials come before). SIGTERM stops
    it at the end (kill after 30 s)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump(stream: Any) -> None:
        try:
            for line in stream:
                lines.put(line)
        except (OSError, ValueError):
            pass
        finally:
            lines.put(None)

    with (
        log_path.open("w") as log,
        subprocess.Popen(
            [sys.executable, "-m", "copr_lite", "serve", "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=workdir,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        ) as proc,
    ):
        reader = threading.Thread(target=pump, args=(proc.stdout,), daemon=True)
        reader.start()
        try:
            yield proc, _read_until_serving(proc, lines, log_path)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            reader.join(timeout=10)


def _read_until_serving(
    proc: subprocess.Popen[str], lines: queue.Queue[str | None], log_path: Path
) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + 60
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
        f"server log:\n{log_path.read_text()[-4000:]}"
    )
