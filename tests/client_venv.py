"""The real Copr clients for the client tests (test_client_compat.py: copr 1.x and copr-cli
1.x; test_client_v3.py: copr 2.x and copr-cli 2.x): each set in its own venv under
.test-venvs/, built once per machine (pip, so PyPI access the first time), and the clean
environment they run in."""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / ".test-venvs"
STAMP_NAME = "copr-lite-stamp.json"
PIP_TIMEOUT = 900
CHECK_TIMEOUT = 120
_names = itertools.count(1)


def unique(prefix: str) -> str:
    """A name no other call of this test run (nor a parallel run) gives."""
    return f"{prefix}-{os.getpid()}-{next(_names)}"


@dataclass(frozen=True)
class Clients:
    python: Path
    copr_cli: Path
    env: dict[str, str]

    def run(
        self, *argv: str | Path, timeout: float, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """A client command (the venv's python or copr-cli first) in the clients' environment,
        its output captured; the caller checks the exit status."""
        return subprocess.run(
            [str(arg) for arg in argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            check=False,
        )


def clean_env(home: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment without this venv's Python settings, UTF-8 output, HOME = `home`
    (where the clients keep their config), and `extra` variables."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONWARNINGS"}
    }
    env["PYTHONIOENCODING"] = "utf-8"
    env.setdefault("LC_ALL", "C.UTF-8")
    env.update(extra)
    if home is not None:
        env["HOME"] = str(home)
    return env


def client_venv(
    name: str, requirements: tuple[str, ...], imports: str, home: Path, **extra_env: str
) -> Clients:
    """The clients of `requirements` in .test-venvs/NAME, (re)built unless it was built from
    the same requirements and Python and `import IMPORTS` works in it; one builder at a time
    (parallel test runs). They run with HOME = `home` and `extra_env`."""
    venv = VENVS / name
    VENVS.mkdir(parents=True, exist_ok=True)
    with (VENVS / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not _venv_usable(venv, requirements, imports):
                _build_venv(venv, requirements, imports)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return Clients(venv / "bin" / "python", venv / "bin" / "copr-cli", clean_env(home, **extra_env))


def client_versions(clients: Clients) -> subprocess.CompletedProcess[str]:
    """The installed versions of copr and copr-cli, printed on one line."""
    versions = "import importlib.metadata as m; print(m.version('copr'), m.version('copr-cli'))"
    return clients.run(clients.python, "-c", versions, timeout=CHECK_TIMEOUT)


def assert_no_traceback(proc: subprocess.CompletedProcess[str], what: str) -> None:
    for stream in (proc.stdout, proc.stderr):
        assert "Traceback (most recent call last)" not in stream, (
            f"{what} crashed:\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )


def _stamp(requirements: tuple[str, ...]) -> dict[str, object]:
    return {
        "requirements": list(requirements),
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
    }


def _venv_usable(venv: Path, requirements: tuple[str, ...], imports: str) -> bool:
    try:
        if json.loads((venv / STAMP_NAME).read_text()) != _stamp(requirements):
            return False
    except (OSError, ValueError):
        return False
    check = subprocess.run(
        [str(venv / "bin" / "python"), "-c", f"import {imports}"],
        capture_output=True,
        timeout=CHECK_TIMEOUT,
        env=clean_env(),
        check=False,
    )
    return check.returncode == 0 and (venv / "bin" / "copr-cli").is_file()


def _pip_failure(
    venv: Path, requirements: tuple[str, ...], step: str, proc: subprocess.CompletedProcess[str]
) -> str:
    lines = [
        line
        for line in (proc.stdout + proc.stderr).splitlines()
        if "is ignored: it is neither a file nor a directory" not in line
    ]
    tail = "\n".join(lines[-40:])
    return (
        f"cannot build the copr client venv at {venv} ({step} exited {proc.returncode}); "
        f"it needs PyPI access for {' '.join(requirements)}:\n{tail}"
    )


def _build_venv(venv: Path, requirements: tuple[str, ...], imports: str) -> None:
    if venv.exists():
        shutil.rmtree(venv)
    env = clean_env()
    made = subprocess.run(
        [sys.executable, "-m", "venv", str(venv)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    if made.returncode != 0:
        pytest.fail(_pip_failure(venv, requirements, "python -m venv", made), pytrace=False)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    pip += ["--disable-pip-version-check", "--no-input", "--timeout", "60", *requirements]
    try:
        installed = subprocess.run(
            pip, capture_output=True, text=True, timeout=PIP_TIMEOUT, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(
            f"pip install {' '.join(requirements)} into {venv} took over {PIP_TIMEOUT}s",
            pytrace=False,
        )
    if installed.returncode != 0:
        pytest.fail(_pip_failure(venv, requirements, "pip install", installed), pytrace=False)
    (venv / STAMP_NAME).write_text(json.dumps(_stamp(requirements)))
    if not _venv_usable(venv, requirements, imports):
        pytest.fail(
            f"the copr client venv at {venv} was installed but `import {imports}` fails in it",
            pytrace=False,
        )
