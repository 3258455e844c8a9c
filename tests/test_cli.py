"""The command line, run as a user would run it: real processes, real ports, real files."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from copr_lite import auth, migrations
from copr_lite.liveserver import free_port


def run(*args: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "copr_lite", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_one_line_failure(result: subprocess.CompletedProcess[str], text: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert text in lines[0]


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["user"],
        ["user", "add"],
        ["user", "token"],
        ["user", "password"],
        ["user", "grant"],
        ["user", "list"],
        ["config"],
        ["config", "check"],
        ["db"],
        ["db", "migrate"],
        ["db", "check"],
        ["worker"],
        ["worker-token"],
        ["worker-token", "create"],
        ["worker-token", "list"],
        ["worker-token", "revoke"],
    ],
)
def test_every_command_has_help(tmp_path, command):
    result = run(*command, "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "usage:" in result.stdout
    assert len(result.stdout.splitlines()) >= 4


def test_config_check_prints_effective_settings(tmp_path):
    (tmp_path / "x.ini").write_text("[server]\nport = 9123\n")
    result = run("config", "check", "--config", "x.ini", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "port = 9123" in result.stdout
    assert "token_expiration_days = 180" in result.stdout
    assert "fedora-rawhide-x86_64 = " in result.stdout


def test_config_check_names_a_bad_key(tmp_path):
    (tmp_path / "x.ini").write_text("[auth]\ntoken_days = 3\n")
    assert_one_line_failure(
        run("config", "check", "--config", "x.ini", cwd=tmp_path), "unknown key [auth] token_days"
    )


def test_serve_refuses_a_bad_config_value(tmp_path):
    (tmp_path / "x.ini").write_text("[server]\nport = -1\n")
    assert_one_line_failure(run("serve", "--config", "x.ini", cwd=tmp_path), "[server] port = -1")


PLUGIN_FILES = {
    "fails_to_import.py": "import no_such_module_anywhere\n",
    "hook_typo.py": (
        "from copr_lite import hookimpl\n\n@hookimpl\ndef chroot_startd(build, chroot):\n    pass\n"
    ),
    "fails_to_register.py": (
        "from copr_lite import hookimpl\n\n@hookimpl\ndef register_builders(registry, config):\n"
        "    raise RuntimeError('no licence key')\n"
    ),
}


@pytest.mark.parametrize(
    ("ini", "plugin", "message"),
    [
        (
            "[chroots]\nfedora-40-x86_64 = nosuch\n",
            None,
            "configuration error: [chroots] names builders no plugin provides: nosuch",
        ),
        (
            "[plugin:container]\nimgae = x\n",
            None,
            "configuration error: unknown key [plugin:container] imgae (known: podman, ",
        ),
        ("[plugin:mock]\ncomand = x\n", None, "unknown key [plugin:mock] comand (known: command)"),
        ("[plugin:ecoh]\nx = 1\n", None, "unknown section [plugin:ecoh]: no plugin declares it"),
        ("[plugins]\nblocklist = mokc\n", None, "[plugins] blocklist: 'mokc' matches no plugin"),
        (
            "[plugin:remote]\nheartbeat_timeout = 0\n",
            None,
            "[plugin:remote] heartbeat_timeout = 0: must be between 0.5 and 3600",
        ),
        (
            "",
            "fails_to_import.py",
            "plugin error: plugin {dir}/fails_to_import.py failed to load: "
            "No module named 'no_such_module_anywhere'",
        ),
        (
            "",
            "hook_typo.py",
            "plugin error: plugin hook_typo implements an unknown hook chroot_startd; "
            "did you mean chroot_started?",
        ),
        (
            "",
            "fails_to_register.py",
            "plugin error: plugin fails_to_register failed in register_builders: "
            "RuntimeError: no licence key",
        ),
    ],
)
def test_bad_config_and_plugins_stop_every_command_with_one_line(tmp_path, ini, plugin, message):
    """serve, worker and config check each fail with one line on stderr and status 1,
    before anything is printed or created (no data dir, no first admin password)."""
    data = tmp_path / "data"
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    if plugin:
        (plugins / plugin).write_text(PLUGIN_FILES[plugin])
        ini = f"[plugins]\nplugins_dir = {plugins}\n" + ini
    (tmp_path / "bad.ini").write_text(f"[server]\ndata_dir = {data}\n" + ini)
    commands = [
        ["serve", "--port", str(free_port())],
        ["worker", "--server", "http://127.0.0.1:9", "--token", "cw_x"],
        ["config", "check"],
    ]
    # Started together: three interpreter starts in the time of about one.
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "copr_lite", *command, "--config", "bad.ini"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    expected = message.format(dir=plugins)
    for command, proc in zip(commands, procs, strict=True):
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, (command, err)
        assert out == "", (command, out)
        assert err == f"copr_lite: {err.removeprefix('copr_lite: ').strip()}\n", (command, err)
        assert expected in err, (command, err)
    assert not data.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.ini", "plugins"]


def test_serve_refuses_an_unusable_data_dir(tmp_path):
    (tmp_path / "file").write_text("")
    (tmp_path / "x.ini").write_text(f"[server]\ndata_dir = {tmp_path / 'file' / 'data'}\n")
    assert_one_line_failure(run("serve", "--config", "x.ini", cwd=tmp_path), "is not writable")


def test_serve_refuses_a_port_in_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("serve", "--port", str(port), cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_serve_refuses_a_newer_database(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    with contextlib.closing(sqlite3.connect(data / "copr-lite.sqlite3")) as conn:
        migrations.migrate(conn)
        conn.execute("UPDATE schema_version SET version = ?", (migrations.LATEST_VERSION + 5,))
        conn.commit()
    result = run("serve", "--port", str(free_port()), cwd=tmp_path)
    assert_one_line_failure(result, "upgrade copr_lite or use another data directory")


def http(url: str, headers: dict[str, str] | None = None, method: str = "GET"):
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def serve(cwd: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "copr_lite", "serve", "--port", str(port)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_until_serving(proc: subprocess.Popen[str]) -> str:
    output = ""
    while "serving on" not in output:
        line = proc.stdout.readline()
        if not line:
            break
        output += line
    return output


def test_serve_on_defaults_first_admin_auth_and_clean_shutdown(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serve(tmp_path, port) as proc:
        try:
            output = read_until_serving(proc)
            assert "serving on" in output
            assert (tmp_path / "data" / "copr-lite.sqlite3").exists()
            login = re.search(r"^login = (\S+)$", output, re.M).group(1)
            token = re.search(r"^token = (\S+)$", output, re.M).group(1)
            assert f"copr_url = {base}" in output

            status, html = http(base + "/api/")
            assert status == 200 and "API Token" in html
            good = base64.b64encode(f"{login}:{token}".encode()).decode()
            status, body = http(
                base + "/api/auth_check/", {"Authorization": f"Basic {good}"}, "POST"
            )
            assert status == 200 and json.loads(body) == {"output": "ok"}
            bad = base64.b64encode(f"{login}:wrong".encode()).decode()
            status, body = http(
                base + "/api/auth_check/", {"Authorization": f"Basic {bad}"}, "POST"
            )
            assert status == 401 and json.loads(body)["output"] == "notok"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
        finally:
            proc.kill()
        stderr = proc.stderr.read()
    assert "Traceback" not in stderr
    assert 'path="/api/auth_check/" status=401' in stderr

    # A second start prints no new credentials; SIGINT stops it cleanly too.
    with serve(tmp_path, port) as proc:
        try:
            output = read_until_serving(proc)
            assert "serving on" in output and "token =" not in output
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=10) == 0
        finally:
            proc.kill()


def test_user_commands(tmp_path):
    result = run("user", "add", "alice", "--password-stdin", cwd=tmp_path, stdin="longpassword\n")
    assert result.returncode == 0, result.stderr
    for name, password, message in (
        ("alice", "longpassword", "already exists"),
        ("bob", "short", "at least 8 characters"),
        ("../x", "longpassword", "invalid user name"),
    ):
        added = run("user", "add", name, "--password-stdin", cwd=tmp_path, stdin=password + "\n")
        assert_one_line_failure(added, message)
    result = run(
        "user", "add", "root", "--admin", "--password-stdin", cwd=tmp_path, stdin="longpassword\n"
    )
    assert "(admin)" in result.stdout

    result = run("user", "token", "alice", cwd=tmp_path)
    assert result.returncode == 0
    assert "[copr-cli]" in result.stdout and "username = alice" in result.stdout
    assert re.search(r"^token = [a-z]{30}$", result.stdout, re.M)

    listing = run("user", "list", cwd=tmp_path).stdout
    assert re.search(r"^alice\s+no\s+\d{4}-\d{2}-\d{2}$", listing, re.M)
    assert re.search(r"^root\s+yes\s+-$", listing, re.M)

    with contextlib.closing(sqlite3.connect(tmp_path / "data" / "copr-lite.sqlite3")) as conn:
        conn.execute(
            "INSERT INTO projects (owner_id, name, created_on)"
            " SELECT id, 'proj', 0 FROM users WHERE name = 'alice'"
        )
        conn.commit()
        result = run("user", "grant", "root", "alice/proj", "builder", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert conn.execute("SELECT role FROM permissions").fetchall() == [("builder",)]
    assert_one_line_failure(
        run("user", "grant", "root", "alice/none", "builder", cwd=tmp_path), "no project"
    )
    assert_one_line_failure(run("user", "token", "ghost", cwd=tmp_path), "no user named ghost")


def test_user_password_changes_the_hash_and_ends_sessions(tmp_path):
    db = tmp_path / "data" / "copr-lite.sqlite3"
    run("user", "add", "alice", "--password-stdin", cwd=tmp_path, stdin="old-password\n")
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute(
            "INSERT INTO sessions (id_hash, user_id, created_on, expires_on)"
            " SELECT 'x', id, 0, 9999999999 FROM users WHERE name = 'alice'"
        )
        conn.commit()
    result = run("user", "password", "alice", "--password-stdin", cwd=tmp_path, stdin="new-pass\n")
    assert result.returncode == 0, result.stderr
    assert "ended 1 web session(s)" in result.stdout
    with contextlib.closing(sqlite3.connect(db)) as conn:
        (stored,) = conn.execute("SELECT password_hash FROM users WHERE name = 'alice'").fetchone()
        assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
    assert auth.verify_password("new-pass", stored)
    assert not auth.verify_password("old-password", stored)
    for name, password, message in (
        ("alice", "short", "at least 8 characters"),
        ("ghost", "long-pass", "no user named ghost"),
    ):
        changed = run(
            "user", "password", name, "--password-stdin", cwd=tmp_path, stdin=password + "\n"
        )
        assert_one_line_failure(changed, message)
