"""Real processes on real ports for the tests and the benchmarks: a free port, the command
line run once (`cli`), a process for the length of a block (`running`), `python -m copr_lite
serve` until it says it is serving (`serving`), polling until something holds (`wait_for`,
`wait_ready`), a directory served over HTTP (`serving_directory`), and git repositories:
made and committed to with `commit_files`, served for cloning over HTTP by
`git_http_server` (git's own `git http-backend` behind a small CGI bridge) or over git's
own protocol by `git_daemon`.

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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote

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
def http_server(
    handler: Callable[..., http.server.BaseHTTPRequestHandler], host: str = HOST
) -> Iterator[str]:
    """An HTTP server on a free port of `host`, answering with `handler` from threads of this
    process for the length of the block; its base URL (no trailing slash)."""
    server = http.server.ThreadingHTTPServer((host, 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="http-server", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def serving_directory(directory: Path, host: str = HOST) -> contextlib.AbstractContextManager[str]:
    """`directory`'s files over HTTP on `host` for the length of the block; the base URL."""
    return http_server(functools.partial(QuietFiles, directory=str(directory)), host)


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


# ---------------------------------------------------------------- git repositories

# No user or system configuration: the same commits on every machine.
_GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}
_GIT_CONFIG = (
    "-c", "user.name=copr-lite", "-c", "user.email=copr-lite@example.invalid",
    "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false",
)  # fmt: skip


def git(repo: Path, *args: str) -> str:
    """Run `git ARGS` in `repo` without user or system configuration; its stdout.
    AssertionError with git's output when it fails."""
    proc = subprocess.run(
        ["git", *_GIT_CONFIG, *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, **_GIT_ENV},
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {proc.stdout}{proc.stderr}")
    return proc.stdout


def commit_files(
    repo: Path,
    files: Mapping[str, str | bytes],
    message: str = "update",
    *,
    branch: str | None = None,
    tag: str | None = None,
) -> str:
    """Write `files` (paths relative to `repo`) into the git repository `repo`, creating it
    (non-bare, default branch main) when missing, and commit them: on `branch` when given
    (created from the current commit if new, and left checked out), tagged `tag` when given.
    Returns the commit id."""
    if not (repo / ".git").exists():
        repo.mkdir(parents=True, exist_ok=True)
        git(repo, "init", "--quiet")
    if branch is not None:
        exists = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
            cwd=repo, env={**os.environ, **_GIT_ENV}, capture_output=True, check=False,
        ).returncode == 0  # fmt: skip
        git(repo, "checkout", "--quiet", *([] if exists else ["-b"]), branch)
    for name, content in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--allow-empty", "-m", message)
    if tag is not None:
        git(repo, "tag", tag)
    return git(repo, "rev-parse", "HEAD").strip()


class GitBackend(http.server.BaseHTTPRequestHandler):
    """git's smart HTTP protocol for the repositories under `root`: each request is handed
    to `git http-backend` as a CGI request. One request per connection (HTTP/1.0)."""

    def __init__(self, *args: Any, root: Path, **kwargs: Any) -> None:
        self.root = root
        super().__init__(*args, **kwargs)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._cgi(b"")

    def do_POST(self) -> None:
        self._cgi(self._body())

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = bytearray()
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            body += self.rfile.read(size)
            self.rfile.readline()
        self.rfile.readline()  # the empty line after the last chunk
        return bytes(body)

    def _cgi(self, body: bytes) -> None:
        path, _, query = self.path.partition("?")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            **_GIT_ENV,
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": unquote(path),
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
        }
        if protocol := self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = protocol
        if encoding := self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = encoding
        proc = subprocess.run(
            ["git", "http-backend"], input=body, capture_output=True, env=env, timeout=60
        )
        separator = b"\r\n\r\n" if b"\r\n\r\n" in proc.stdout else b"\n\n"
        head, _, payload = proc.stdout.partition(separator)
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        if proc.returncode != 0 and not head:
            status = 500
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def git_http_server(repos_dir: Path) -> contextlib.AbstractContextManager[str]:
    """The git repositories under `repos_dir` (bare or not, e.g. made by `commit_files`),
    clonable over HTTP for the length of the block: the repository `repos_dir/NAME` clones
    from `<base URL>/NAME`. Yields the base URL (http://127.0.0.1:PORT, no trailing slash).

        with git_http_server(tmp_path / "repos") as base:
            clone_url = f"{base}/hello"
    """
    return http_server(functools.partial(GitBackend, root=repos_dir))


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((HOST, port)) == 0


@contextlib.contextmanager
def git_daemon(repos_dir: Path) -> Iterator[str]:
    """`git daemon` serving the repositories under `repos_dir` on a free port of HOST over
    git's own protocol for the length of the block; yields the base URL
    (git://127.0.0.1:PORT): `repos_dir/NAME` clones from `<base URL>/NAME`."""
    port = free_port()
    cmd = [
        "git", "daemon", "--export-all", "--reuseaddr", "--informative-errors",
        f"--base-path={repos_dir}", f"--listen={HOST}", f"--port={port}",
    ]  # fmt: skip
    env = {**os.environ, **_GIT_ENV}
    with subprocess.Popen(cmd, stdin=subprocess.DEVNULL, env=env, text=True) as proc:
        try:
            wait_for(lambda: _listening(port), 10, "git daemon listening")
            yield f"git://{HOST}:{port}"
        finally:
            stop(proc, within=5)
