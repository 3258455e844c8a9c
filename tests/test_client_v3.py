"""Today's real, unmodified Copr clients against a live copr_lite server: API v3.

`copr-cli==2.6` and `copr==2.7` (python-copr) are installed by pip from PyPI into their own
virtual environment, `.test-venvs/copr-clients-v3` (built once per machine, reused while its
stamp matches the pinned versions), as tests/test_client_compat.py does for the v1 clients.
One server per module runs as a subprocess (`python -m copr_lite serve`); the `~/.config/copr`
files are the blocks it and `user token` print, written unchanged. dnf4's copr plugin is the
system's (`dnf copr`).

Every client run is checked for a Python traceback and for "not in JSON format": a clean
error is the client's own message and a non-zero exit.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from client_venv import Clients, assert_no_traceback, client_venv, client_versions, unique

from copr_lite.liveserver import (
    cli,
    commit_files,
    free_port,
    git_http_server,
    http_server,
    serving,
)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
DRIVER = ROOT / "tests" / "compat" / "v3_driver.py"
CLIENT_REQUIREMENTS = ("copr==2.7", "copr-cli==2.6", "setuptools<70")
CALL_TIMEOUT = 120
CHROOTS = ("fedora-41-x86_64", "epel-9-x86_64")


@pytest.fixture(scope="session")
def v3_clients(tmp_path_factory: pytest.TempPathFactory) -> Clients:
    """copr==2.7 and copr-cli==2.6 in their own venv, built once per machine."""
    home = tmp_path_factory.mktemp("client-v3-home")
    imports = "copr.v3, copr_cli.main"
    return client_venv("copr-clients-v3", CLIENT_REQUIREMENTS, imports, home, COLUMNS="200")


def assert_clean(proc: subprocess.CompletedProcess[str], what: str) -> None:
    assert_no_traceback(proc, what)
    for stream in (proc.stdout, proc.stderr):
        assert "not in JSON format" not in stream, f"{what}:\n{proc.stdout}\n{proc.stderr}"


# ---------------------------------------------------------------- SRPMs and where to get them


@pytest.fixture(scope="module")
def srpm(fixture_srpm) -> Path:
    """hello-copr-lite-1.0-1.src.rpm, built from tests/fixtures with `rpmbuild -bs`."""
    return fixture_srpm("hello-copr-lite")


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the SRPM directory; paths under /stall/ are held until the module ends."""

    release: threading.Event

    def do_GET(self) -> None:
        if self.path.startswith("/stall/"):
            self.release.wait(timeout=600)
            self.send_error(404)
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def srpm_server(srpm: Path) -> Iterator[str]:
    """http://127.0.0.1:<port>/: the SRPM (by its file name), and /stall/ URLs that never
    answer, so a build from one stays importing until it is canceled."""
    release = threading.Event()
    handler = type("Handler", (_Handler,), {"release": release})
    with http_server(partial(handler, directory=str(srpm.parent))) as url:
        try:
            yield url
        finally:
            release.set()  # before the server stops: the stalled requests end


# ---------------------------------------------------------------- the live server


@dataclass
class Live:
    url: str
    workdir: Path
    config_path: Path
    configs: dict[str, Path]


def printed_block(text: str) -> str:
    """The `[copr-cli]` block as printed, up to its expiration line, unchanged."""
    block = text[text.index("[copr-cli]") :]
    end = block.index("# expiration date:")
    return block[: block.index("\n", end) + 1]


def server_config(workdir: Path, port: int, extra: str = "") -> Path:
    path = workdir / "copr-lite.ini"
    path.write_text(
        f"[server]\nport = {port}\ndata_dir = {workdir / 'data'}\n{extra}"
        "\n[builds]\nsrpm_allowed_networks = 127.0.0.0/8\n"
        "\n[signing]\nsign = no\n"
        "\n[chroots]\n" + "".join(f"{name} = rpmbuild\n" for name in CHROOTS)
    )
    return path


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """`python -m copr_lite serve` on a free port with users admin, alice and bob, each with
    the config block the server printed for them."""
    workdir = tmp_path_factory.mktemp("copr-lite-v3")
    port = free_port()
    config_path = server_config(workdir, port)
    with serving(config_path, workdir, workdir / "server.log") as served:
        configs = {"admin": workdir / "admin.copr"}
        configs["admin"].write_text(printed_block("".join(served.startup)))
        for name in ("alice", "bob"):
            cli(config_path, "user", "add", name, "--password-stdin", stdin="pw-123456789")
            issued = cli(config_path, "user", "token", name).stdout
            configs[name] = workdir / f"{name}.copr"
            configs[name].write_text(printed_block(issued))
        text = configs["alice"].read_text()
        token = next(line for line in text.splitlines() if line.startswith("token = "))
        configs["wrong_token"] = workdir / "wrong.copr"
        configs["wrong_token"].write_text(text.replace(token, "token = " + "x" * 30))
        yield Live(f"http://127.0.0.1:{port}", workdir, config_path, configs)


@dataclass
class Env:
    clients: Clients
    live: Live
    srpm: Path
    srpm_url: str

    def __repr__(self) -> str:
        return f"Env({self.live.url})"

    def cli(self, *args: str, who: str = "alice", rc: int = 0) -> subprocess.CompletedProcess[str]:
        """`copr-cli --config <who's file> ARGS`; checks the exit status and cleanliness."""
        config = self.live.configs[who]
        proc = self.clients.run(
            self.clients.copr_cli,
            "--config",
            config,
            *args,
            timeout=CALL_TIMEOUT,
            cwd=self.live.workdir,
        )
        what = "copr-cli " + " ".join(args)
        assert_clean(proc, what)
        assert proc.returncode == rc, f"{what}: exit {proc.returncode}\n{proc.stdout}{proc.stderr}"
        return proc

    def cli_error(self, *args: str, who: str = "alice", rc: int = 1) -> str:
        """The message copr-cli prints for a failed request: exit 1, or 7 after its hint
        about authentication when the server said 403."""
        proc = self.cli(*args, who=who, rc=rc)
        assert "Something went wrong:" in proc.stderr or rc == 7, proc.stderr
        return proc.stderr.rsplit("Error:", 1)[1].strip()

    def forbidden(self, *args: str, who: str = "bob") -> str:
        return self.cli_error(*args, who=who, rc=7)

    def call(self, proxy: str, method: str, who: str = "alice", **kwargs: Any) -> Any:
        """One python-copr proxy call that must succeed; what it returned."""
        out = self._driver(proxy, method, who, kwargs)
        assert out["ok"], f"{proxy}.{method}({kwargs}): {out['exception']}: {out['message']}"
        return out["result"]

    def call_fails(self, proxy: str, method: str, who: str = "alice", **kwargs: Any) -> Any:
        """One call that must raise a CoprException; (exception name, message)."""
        out = self._driver(proxy, method, who, kwargs)
        assert not out["ok"], f"{proxy}.{method}({kwargs}) succeeded: {out['result']}"
        return out["exception"], out["message"]

    def _driver(self, proxy: str, method: str, who: str, kwargs: dict[str, Any]) -> Any:
        config = str(self.live.configs[who])
        arguments = (DRIVER, config, proxy, method, json.dumps(kwargs))
        proc = self.clients.run(self.clients.python, *arguments, timeout=CALL_TIMEOUT)
        assert_clean(proc, f"{proxy}.{method}")
        assert proc.returncode in (0, 3), f"{proxy}.{method}: {proc.stdout}\n{proc.stderr}"
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def new_project(self, who: str = "alice", *chroots: str) -> str:
        name = unique("proj")
        args = [f"--chroot={c}" for c in chroots or CHROOTS]
        self.cli("create", name, *args, "--description", f"about {name}", who=who)
        return name

    def wait_finished(self, build_id: int, timeout: float = 240) -> str:
        deadline = time.monotonic() + timeout
        while True:
            state = self.call("build_proxy", "get", build_id=build_id)["state"]
            if state in ("succeeded", "failed", "canceled", "skipped"):
                return str(state)
            assert time.monotonic() < deadline, f"build {build_id} still {state}"
            time.sleep(0.5)


@pytest.fixture(scope="module")
def env(v3_clients: Clients, live: Live, srpm: Path, srpm_server: str) -> Env:
    return Env(v3_clients, live, srpm, f"{srpm_server}/{srpm.name}")


# ---------------------------------------------------------------- the config block


def test_client_venv_has_the_pinned_clients(v3_clients: Clients) -> None:
    proc = client_versions(v3_clients)
    assert proc.stdout.split() == ["2.7", "2.6"], proc.stderr


def test_printed_blocks_work_unchanged(env: Env) -> None:
    for who in ("admin", "alice", "bob"):
        assert env.cli("whoami", who=who).stdout.strip() == who
    assert env.call("base", "auth_check")["name"] == "alice"
    assert env.call("base", "home")["version"] == "3"
    # Without the block's `encrypted = False` the client refuses an http:// server.
    text = env.live.configs["alice"].read_text().replace("encrypted = False\n", "")
    env.live.configs["no_encrypted"] = env.live.workdir / "no-encrypted.copr"
    env.live.configs["no_encrypted"].write_text(text)
    proc = env.cli("list", who="no_encrypted", rc=6)  # copr-cli's exit status for it
    assert "should not be http" in proc.stderr


# ---------------------------------------------------------------- projects


def test_project_create_list_get_modify_delete(env: Env) -> None:
    name = env.new_project()
    listed = env.cli("list").stdout
    assert f"Name: {name}\n  Description: about {name}\n" in listed
    for chroot in CHROOTS:
        assert f"    {chroot}: {env.live.url}/results/alice/{name}/{chroot}/" in listed
    env.cli("modify", name, "--description", "changed", "--repo", "https://example.org/r/")
    shown = env.cli("get", name).stdout
    assert "Description: changed" in shown and "Additional repo: https://example.org/r/" in shown
    project = env.call("project_proxy", "get", ownername="alice", projectname=name)
    assert project["full_name"] == f"alice/{name}" and project["additional_repos"] == [
        "https://example.org/r/"
    ]
    everyone = env.call("project_proxy", "get_list")
    assert f"alice/{name}" in {p["full_name"] for p in everyone}
    found = env.call("project_proxy", "search", query=name)
    assert [p["full_name"] for p in found] == [f"alice/{name}"]
    assert env.cli("delete", name).stdout.strip() == f"Project {name} has been deleted."
    assert "does not exist" in env.cli_error("get", name)


def test_create_errors_read_right(env: Env) -> None:
    name = env.new_project()
    assert "already have a project" in env.cli_error("create", name, "--chroot", CHROOTS[0])
    message = env.cli_error("create", unique("p"), "--chroot", "fedora-1-x86_64")
    assert "fedora-1-x86_64" in message and "not available" in message
    # copr-cli 2.6 has no --persistent option: python-copr asks.
    exc, message = env.call_fails(
        "project_proxy",
        "add",
        ownername="alice",
        projectname=unique("p"),
        chroots=[CHROOTS[0]],
        persistent=True,
    )
    assert exc == "CoprAuthException" and "Only admins" in message
    exc, message = env.call_fails(
        "project_proxy", "add", ownername="bob", projectname=unique("p"), chroots=[CHROOTS[0]]
    )
    assert exc == "CoprAuthException" and "Only admins" in message


def test_chroots_edit_get_and_mock_config(env: Env) -> None:
    name = env.new_project()
    listed = env.cli("list-chroots").stdout
    assert all(chroot in listed for chroot in CHROOTS)
    chroot = f"{name}/{CHROOTS[0]}"
    env.cli("edit-chroot", chroot, "--packages", "gcc make", "--repos", "https://example.org/x/")
    got = json.loads(env.cli("get-chroot", chroot).stdout)
    assert got["additional_packages"] == ["gcc", "make"]
    assert got["additional_repos"] == ["https://example.org/x/"]
    mock = env.cli("mock-config", name, CHROOTS[0]).stdout
    assert f"include('/etc/mock/{CHROOTS[0]}.cfg')" in mock
    assert "config_opts['chroot_additional_packages'] = 'gcc make'" in mock
    assert f"baseurl={env.live.url}/results/alice/{name}/{CHROOTS[0]}/" in mock
    assert "baseurl=https://example.org/x/" in mock
    message = env.cli_error("edit-chroot", chroot, "--packages", "gcc >=")
    assert "needs a version" in message
    assert "does not exist in this project" in env.cli_error("get-chroot", f"{name}/nope-1-x")
    config = env.call(
        "project_chroot_proxy",
        "get_build_config",
        ownername="alice",
        projectname=name,
        chrootname=CHROOTS[0],
    )
    assert config["additional_packages"] == ["gcc", "make"]


def test_permissions_request_approve_and_build(env: Env) -> None:
    name = env.new_project()
    assert "not allowed to build" in env.forbidden("build", f"alice/{name}", env.srpm_url)
    requested = env.cli("request-permissions", f"alice/{name}", "--builder", who="bob")
    assert requested.stdout.strip() == "success"
    # The request is visible to the owner only, and grants nothing yet.
    assert "Only owners and admins" in env.forbidden("list-permissions", f"alice/{name}")
    assert env.cli("list-permissions", name).stdout == "bob:\n  builder: request\n"
    assert "not allowed to build" in env.forbidden("build", f"alice/{name}", env.srpm_url)
    assert (
        env.cli("edit-permissions", name, "--builder", "bob=approved").stdout.strip() == "success"
    )
    assert env.cli("list-permissions", name).stdout == "bob:\n  builder: approved\n"
    submitted = env.cli("build", f"alice/{name}", env.srpm_url, "--nowait", who="bob").stdout
    assert "Created builds:" in submitted
    env.cli("edit-permissions", name, "--builder", "bob=nothing")
    assert env.cli("list-permissions", name).stdout == ""
    assert "not allowed to build" in env.forbidden("build", f"alice/{name}", env.srpm_url)


# ---------------------------------------------------------------- builds


def build_ids(stdout: str) -> list[int]:
    line = next(line for line in stdout.splitlines() if line.startswith("Created builds: "))
    return [int(word) for word in line.split()[2:]]


def test_build_from_file_and_url_then_read_and_delete(env: Env, tmp_path: Path) -> None:
    name = env.new_project()
    uploaded = env.cli("build", name, str(env.srpm), "--nowait").stdout
    assert f"Uploading package {env.srpm}" in uploaded
    assert f"{env.live.url}/coprs/build/" in uploaded
    (upload_id,) = build_ids(uploaded)
    (url_id,) = build_ids(env.cli("build", name, env.srpm_url, "--nowait").stdout)
    assert env.wait_finished(upload_id) == "succeeded"
    # The same SRPM again: already built in this project, so skipped.
    assert env.wait_finished(url_id) == "skipped"
    assert env.cli("status", str(upload_id)).stdout.strip() == "succeeded"
    watched = env.cli("watch-build", str(upload_id), str(url_id)).stdout
    assert f"Build {upload_id}: succeeded" in watched and f"Build {url_id}: skipped" in watched

    rows = env.cli("list-builds", name, "--output-format", "json").stdout
    assert [(b["id"], b["state"]) for b in json.loads(rows)] == [
        (url_id, "skipped"),
        (upload_id, "succeeded"),
    ]
    monitor = json.loads(env.cli("monitor", name, "--output-format", "json").stdout)
    assert {(m["chroot"], m["build_id"], m["state"], m["pkg_version"]) for m in monitor} == {
        (chroot, url_id, "skipped", "1.0-1") for chroot in CHROOTS
    }
    packages = json.loads(env.cli("list-packages", name, "--with-latest-build").stdout)
    assert [(p["name"], p["latest_build"]["id"]) for p in packages] == [("hello-copr-lite", url_id)]
    package = json.loads(
        env.cli("get-package", name, "--name", "hello-copr-lite", "--with-latest-build").stdout
    )
    assert package["latest_build"]["id"] == url_id and package["source_type"] == "unset"

    dest = tmp_path / "download"
    env.cli("download-build", str(upload_id), "--dest", str(dest))
    for chroot in CHROOTS:
        assert list((dest / chroot).glob("hello-copr-lite-1.0-1.*.noarch.rpm")), chroot
    built = env.call("build_proxy", "get_built_packages", build_id=upload_id)
    assert {p["name"] for p in built[CHROOTS[0]]["packages"]} >= {"hello-copr-lite"}

    deleted = env.cli("delete-build", str(upload_id)).stdout.strip()
    assert deleted == f"Build(s) {upload_id} were deleted."
    assert "does not exist" in env.cli_error("status", str(upload_id))
    repo = f"{env.live.url}/results/alice/{name}/{CHROOTS[0]}/"
    with urllib.request.urlopen(repo) as answer:  # the republished repository still serves
        assert answer.status == 200
    assert f"{upload_id:08d}-hello-copr-lite" not in urllib.request.urlopen(repo).read().decode()


def test_build_waits_until_finished_without_nowait(env: Env) -> None:
    name = env.new_project("alice", CHROOTS[0])
    out = env.cli("build", name, env.srpm_url).stdout
    (build_id,) = build_ids(out)
    assert "Watching build(s)" in out and f"Build {build_id}: succeeded" in out


def test_cancel_and_failed_states(env: Env) -> None:
    name = env.new_project()
    stalled = f"{env.srpm_url.rsplit('/', 1)[0]}/stall/{unique('x')}-1-1.src.rpm"
    (build_id,) = build_ids(env.cli("build", name, stalled, "--nowait").stdout)
    assert "not allowed to build" in env.forbidden("cancel", str(build_id))
    assert env.cli("cancel", str(build_id)).stdout.strip() == "canceled"
    assert "Cannot cancel" in env.cli_error("cancel", str(build_id))
    proc = env.cli("watch-build", str(build_id), rc=4)  # copr-cli: a build failed or ended canceled
    assert f"Build(s) {build_id} canceled." in proc.stderr
    canceled = env.call(
        "build_proxy", "get_list", ownername="alice", projectname=name, status="canceled"
    )
    assert [b["id"] for b in canceled] == [build_id]
    assert (
        env.call("build_proxy", "get_list", ownername="alice", projectname=name, status="failed")
        == []
    )
    # python-copr's single delete (copr-cli deletes through the list call).
    exc, message = env.call_fails("build_proxy", "delete", who="bob", build_id=build_id)
    assert exc == "CoprAuthException" and "not allowed to delete" in message
    assert env.call("build_proxy", "delete", build_id=build_id)["id"] == build_id
    exc, _ = env.call_fails("build_proxy", "get", build_id=build_id)
    assert exc == "CoprNoResultException"


def test_python_copr_project_edit_and_can_build_in(env: Env) -> None:
    name = env.new_project("alice", CHROOTS[0])
    edited = env.call(
        "project_proxy",
        "edit",
        ownername="alice",
        projectname=name,
        chroots=list(CHROOTS),
        enable_net=False,
        unlisted_on_hp=True,
    )
    assert set(edited["chroot_repos"]) == set(CHROOTS)
    assert edited["enable_net"] is False and edited["unlisted_on_hp"] is True

    def can(who: str) -> Any:
        # `who` is the proxy's own argument here, so the driver is called directly.
        kwargs = {"who": who, "ownername": "alice", "projectname": name}
        out = env._driver("project_proxy", "can_build_in", "alice", kwargs)
        assert out["ok"], out
        return out["result"]

    assert can(who="alice") is True and can(who="bob") is False
    env.call(
        "project_proxy",
        "request_permissions",
        who="bob",
        ownername="alice",
        projectname=name,
        permissions={"builder": True},
    )
    assert can(who="bob") is False  # requested, not approved
    env.call(
        "project_proxy",
        "set_permissions",
        ownername="alice",
        projectname=name,
        permissions={"bob": {"builder": "approved"}},
    )
    assert can(who="bob") is True
    exc, message = env.call_fails(
        "project_proxy",
        "request_permissions",
        ownername="alice",
        projectname=name,
        permissions={"admin": True},
    )
    assert exc == "CoprRequestException" and "You own this project" in message


def test_unsupported_sources_and_features_say_so(env: Env) -> None:
    name = env.new_project()
    message = env.cli_error("add-package-pypi", name, "--name", "x", "--packagename", "x")
    assert "'pypi'" in message and "not supported" in message
    message = env.cli_error("buildpypi", name, "--packagename", "six", "--nowait")
    assert "'pypi'" in message and "not supported" in message
    assert "not supported" in env.cli_error("fork", f"alice/{name}", unique("fork"))


def test_new_webhook_secret(env: Env) -> None:
    """What `copr-cli new-webhook-secret` calls after its y/n question: the owner gets a new
    UUID secret each time, another user a 403 (copr-cli's exit 7)."""
    name = env.new_project()
    first = env.call("webhook_proxy", "generate", ownername="alice", projectname=name)
    assert first["full_name"] == f"alice/{name}" and len(first["webhook_secret"]) == 36
    second = env.call("webhook_proxy", "generate", ownername="alice", projectname=name)
    assert second["webhook_secret"] != first["webhook_secret"]
    kind, message = env.call_fails(
        "webhook_proxy", "generate", who="bob", ownername="alice", projectname=name
    )
    assert kind == "CoprAuthException" and "Only owners and admins" in message, (kind, message)


# ---------------------------------------------------------------- packages from git


def git_spec(name: str) -> str:
    return f"""Name: {name}
Version: 1.0
Release: 1
Summary: Built from git by copr-cli
License: MIT
Source0: {name}.sh
BuildArch: noarch

%description
A package whose spec and source live in a git repository.

%install
install -D -m 0755 %{{SOURCE0}} %{{buildroot}}/usr/bin/{name}

%files
/usr/bin/{name}
"""


# Copr's spec= is the spec given, or else the subdirectory: this Makefile finds its spec.
MAKEFILE = """srpm:
\trpmbuild -bs --define "_sourcedir $(CURDIR)" --define "_srcrpmdir $(outdir)" *.spec
"""


@pytest.fixture(scope="module")
def git_repos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """(directory, base URL) of git repositories served over HTTP on loopback."""
    repos = tmp_path_factory.mktemp("git-repos")
    with git_http_server(repos) as base:
        yield repos, base


def test_packages_from_git_with_copr_cli(env: Env, git_repos: tuple[Path, str]) -> None:
    repos, base = git_repos
    name, pkg = env.new_project("alice", CHROOTS[0]), unique("gitpkg")
    commit_files(
        repos / pkg,
        {f"pkg/{pkg}.spec": git_spec(pkg), f"pkg/{pkg}.sh": "#!/bin/sh\necho hi\n"},
        branch="release",
    )
    url = f"{base}/{pkg}"
    add = ("add-package-scm", name, "--name", pkg, "--clone-url", url, "--commit", "main")
    assert "successful" in env.cli(*add, "--webhook-rebuild", "on").stdout
    edit = ("edit-package-scm", name, "--name", pkg, "--clone-url", url, "--commit", "release")
    env.cli(*edit, "--subdir", "pkg")
    listed = json.loads(env.cli("get-package", name, "--name", pkg).stdout)
    assert listed["source_type"] == "scm" and listed["auto_rebuild"] is True
    assert listed["source_dict"]["clone_url"] == url
    assert listed["source_dict"]["committish"] == "release"
    assert listed["source_dict"]["subdirectory"] == "pkg"

    built = env.cli("build-package", name, "--name", pkg)  # waits until it ends
    [build_id] = build_ids(built.stdout)
    assert env.wait_finished(build_id) == "succeeded", built.stdout
    packages = env.call("build_proxy", "get_built_packages", build_id=build_id)
    assert {p["name"] for p in packages[CHROOTS[0]]["packages"]} == {pkg}

    # Straight from a repository, the SRPM made by .copr/Makefile.
    other = unique("mkpkg")
    commit_files(
        repos / other,
        {
            f"{other}.spec": git_spec(other),
            f"{other}.sh": "#!/bin/sh\necho made\n",
            ".copr/Makefile": MAKEFILE,
        },
    )
    scm = ("buildscm", name, "--clone-url", f"{base}/{other}", "--method", "make_srpm")
    [build_id] = build_ids(env.cli(*scm, "--nowait").stdout)
    assert env.wait_finished(build_id) == "succeeded"

    # A custom script, as a package and as a one-off build. Each makes its own package:
    # the same script run twice within a second makes the same SRPM, which is skipped.
    def custom_script(made: str) -> tuple[str, ...]:
        script = env.live.workdir / f"{made}-script.sh"
        script.write_text(
            "#!/bin/sh\nset -e\nmkdir out\n"
            f"cat > out/{made}.spec <<'EOF'\n{git_spec(made)}EOF\n"
            f"printf '#!/bin/sh\\necho custom\\n' > out/{made}.sh\n"
        )
        return ("--script", str(script), "--script-resultdir", "out")

    env.cli("add-package-custom", name, "--name", f"{pkg}-custom", *custom_script(f"{pkg}-custom"))
    [build_id] = build_ids(
        env.cli("build-package", name, "--name", f"{pkg}-custom", "--nowait").stdout
    )
    assert env.wait_finished(build_id) == "succeeded"
    oneoff = custom_script(f"{pkg}-oneoff")
    [build_id] = build_ids(env.cli("buildcustom", name, *oneoff, "--nowait").stdout)
    assert env.wait_finished(build_id) == "succeeded"

    # A package without a source, and someone else's project, say so.
    message = env.cli_error("build-package", name, "--name", "nothing-here")
    assert "nothing-here" in message
    assert env.forbidden("add-package-scm", f"alice/{name}", "--name", "x", "--clone-url", url)


# ---------------------------------------------------------------- python-copr proxies


def test_python_copr_build_chroot_and_package_proxies(env: Env) -> None:
    name = env.new_project()
    build = env.call(
        "build_proxy",
        "create_from_url",
        ownername="alice",
        projectname=name,
        url=env.srpm_url,
        buildopts={"chroots": [CHROOTS[0]], "timeout": 3600},
    )
    assert build["chroots"] == [CHROOTS[0]] and build["state"] == "importing"
    assert env.wait_finished(build["id"]) == "succeeded"
    chroot = env.call("build_chroot_proxy", "get", build_id=build["id"], chrootname=CHROOTS[0])
    assert chroot["state"] == "succeeded"
    assert chroot["result_url"] == (
        f"{env.live.url}/results/alice/{name}/{CHROOTS[0]}/{build['id']:08d}-hello-copr-lite/"
    )
    listed = env.call("build_chroot_proxy", "get_list", build_id=build["id"])
    assert [c["name"] for c in listed] == [CHROOTS[0]]
    config = env.call(
        "build_chroot_proxy", "get_build_config", build_id=build["id"], chrootname=CHROOTS[0]
    )
    assert config["timeout"] == 3600
    packages = env.call(
        "build_chroot_proxy", "get_built_packages", build_id=build["id"], chrootname=CHROOTS[0]
    )
    assert [p["name"] for p in packages["packages"]] == ["hello-copr-lite"]
    source = env.call("build_proxy", "get_source_chroot", build_id=build["id"])
    assert source["state"] == "succeeded"
    mocks = env.call("mock_chroot_proxy", "get_list")
    assert set(CHROOTS) <= set(mocks)

    package = env.call(
        "package_proxy", "get", ownername="alice", projectname=name, packagename="hello-copr-lite"
    )
    assert package["name"] == "hello-copr-lite"
    env.call(
        "package_proxy", "reset", ownername="alice", projectname=name, packagename="hello-copr-lite"
    )
    exc, _ = env.call_fails(
        "package_proxy",
        "delete",
        who="bob",
        ownername="alice",
        projectname=name,
        packagename="hello-copr-lite",
    )
    assert exc == "CoprAuthException"
    env.call(
        "package_proxy",
        "delete",
        ownername="alice",
        projectname=name,
        packagename="hello-copr-lite",
    )
    assert env.call("package_proxy", "get_list", ownername="alice", projectname=name) == []
    assert env.call("build_proxy", "get_list", ownername="alice", projectname=name) == []
    exc, message = env.call_fails(
        "package_proxy", "get", ownername="alice", projectname=name, packagename="hello-copr-lite"
    )
    assert exc == "CoprNoResultException" and "does not exist" in message

    env.cli("regenerate-repos", name)
    with urllib.request.urlopen(
        f"{env.live.url}/results/alice/{name}/{CHROOTS[0]}/repodata/repomd.xml"
    ) as answer:
        assert answer.status == 200


def test_rpmrepo_for_dnf5(env: Env) -> None:
    name = env.new_project()
    with urllib.request.urlopen(f"{env.live.url}/api_3/rpmrepo/alice/{name}/fedora-41/") as answer:
        data = json.load(answer)
    assert data["results_url"] == f"{env.live.url}/results"
    assert data["repos"] == {
        "fedora-41": {"arch": {"x86_64": {"opts": {}}}},
        "epel-9": {"arch": {"x86_64": {"opts": {}}}},
    }


# ---------------------------------------------------------------- error paths


def test_error_paths_end_in_clean_messages(env: Env) -> None:
    name = env.new_project()
    assert "Login invalid/expired" in env.cli_error(
        "create", unique("p"), "--chroot", CHROOTS[0], who="wrong_token"
    )
    assert "does not exist" in env.cli_error("get", "no-such-project")
    assert "does not exist" in env.cli_error("list-builds", "alice/no-such-project")
    assert "Build 987654 does not exist" in env.cli_error("status", "987654")
    assert "Build 987654 does not exist" in env.cli_error("delete-build", "987654")
    assert "Only owners and admins" in env.forbidden(
        "modify", f"alice/{name}", "--description", "x"
    )
    assert "Only owners may delete" in env.forbidden("delete", f"alice/{name}")
    assert "Only owners and admins" in env.forbidden(
        "edit-chroot", f"alice/{name}/{CHROOTS[0]}", "--packages", "gcc"
    )
    exc, message = env.call_fails("build_proxy", "get", build_id=987654)
    assert exc == "CoprNoResultException" and "987654" in message


# ---------------------------------------------------------------- dnf4's copr plugin


def dnf_copr(env: Env, *args: str) -> str:
    proc = subprocess.run(
        ["dnf", "copr", *args, "--hub", env.live.url, "--releasever", "41"],
        capture_output=True,
        text=True,
        timeout=CALL_TIMEOUT,
        env={**os.environ, "HOME": str(env.live.workdir)},
        check=False,
    )
    assert_clean(proc, "dnf copr " + " ".join(args))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_dnf_copr_list_and_search(env: Env) -> None:
    if shutil.which("dnf") is None:
        pytest.fail("dnf is missing: `apt-get install dnf dnf-plugins-core` (./dev installs it)")
    name = env.new_project()
    listed = dnf_copr(env, "list", "--available-by-user=alice")
    assert f"alice/{name} : about {name}" in listed
    found = dnf_copr(env, "search", name)
    assert f"alice/{name} : about {name}" in found


# ---------------------------------------------------------------- HTTPS


def test_https_with_a_test_ca(env: Env, tmp_path: Path) -> None:
    """`serve` with [server] tls_cert and tls_key, and copr-cli 2.6 trusting the test CA
    through REQUESTS_CA_BUNDLE: the printed block has an https:// copr_url and no
    `encrypted` line."""
    ca_key, ca_cert = tmp_path / "ca.key", tmp_path / "ca.pem"
    key, csr, cert = tmp_path / "server.key", tmp_path / "server.csr", tmp_path / "server.pem"
    ssl = partial(subprocess.run, check=True, capture_output=True, timeout=CALL_TIMEOUT)
    ssl(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(ca_key),
            "-out",
            str(ca_cert),
            "-days",
            "2",
            "-subj",
            "/CN=copr_lite test CA",
        ]
    )
    ssl(
        [
            "openssl",
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(csr),
            "-subj",
            "/CN=127.0.0.1",
        ]
    )
    (tmp_path / "ext").write_text("subjectAltName=IP:127.0.0.1\n")
    ssl(
        [
            "openssl",
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(ca_cert),
            "-CAkey",
            str(ca_key),
            "-CAcreateserial",
            "-out",
            str(cert),
            "-days",
            "2",
            "-extfile",
            str(tmp_path / "ext"),
        ]
    )
    port = free_port()
    config = server_config(tmp_path, port, f"tls_cert = {cert}\ntls_key = {key}\n")
    with serving(config, tmp_path, tmp_path / "server.log") as served:
        block = printed_block("".join(served.startup))
        assert f"copr_url = https://127.0.0.1:{port}\n" in block and "encrypted" not in block
        path = tmp_path / "admin.copr"
        path.write_text(block)
        clients = Clients(
            env.clients.python,
            env.clients.copr_cli,
            {**env.clients.env, "REQUESTS_CA_BUNDLE": str(ca_cert)},
        )
        https_env = Env(
            clients,
            Live(f"https://127.0.0.1:{port}", tmp_path, config, {"admin": path}),
            env.srpm,
            env.srpm_url,
        )
        assert https_env.cli("whoami", who="admin").stdout.strip() == "admin"
        https_env.cli("create", "secure", "--chroot", CHROOTS[0], who="admin")
        assert "Name: secure" in https_env.cli("list", who="admin").stdout
        # Without the CA the client refuses the server (its certificate is unknown).
        plain = Clients(clients.python, clients.copr_cli, env.clients.env)
        failing = Env(plain, https_env.live, env.srpm, env.srpm_url)
        proc = failing.cli("list", who="admin", rc=1)
        assert "Unable to connect to https://" in proc.stderr
