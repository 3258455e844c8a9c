"""The real, unmodified Copr clients against a live copr_lite server.

`copr==1.109` (python client, API v1) and `copr-cli==1.65` are installed by pip from PyPI into
their own virtual environment, `.test-venvs/copr-clients` (built once per machine, reused while
its stamp matches the pinned versions). One copr_lite server per module runs as a subprocess on
a free port; users and their `~/.config/copr` files come from `python -m copr_lite user ...`.

The python client is driven through `tests/compat/client_driver.py` (one call per process,
printing what the client read as JSON); copr-cli runs as `copr-cli --config FILE ...`. Every
client run is checked for a Python traceback: a clean error is a message and a non-zero exit.
"""

from __future__ import annotations

import configparser
import http.server
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from client_venv import Clients, assert_no_traceback, client_venv, client_versions, unique

from copr_lite.liveserver import cli, free_port, serving

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
DRIVER = ROOT / "tests" / "compat" / "client_driver.py"
CLIENT_REQUIREMENTS = ("copr==1.109", "copr-cli==1.65", "setuptools<70")
CALL_TIMEOUT = 60
CHROOTS = ("fedora-rawhide-x86_64", "fedora-41-x86_64", "epel-9-x86_64")
# Every state name a build can show (spec §3.3), except `unknown`, which no build with chroots has.
BUILD_STATES = {
    "failed",
    "succeeded",
    "canceled",
    "running",
    "pending",
    "skipped",
    "starting",
    "importing",
    "forked",
}
# Keys of build detail the clients read (spec §9) plus the rest of §4.8.
BUILD_DETAIL_KEYS = {
    "output",
    "status",
    "project",
    "owner",
    "results",
    "results_by_chroot",
    "submitted_on",
    "started_on",
    "ended_on",
    "built_pkgs",
    "src_pkg",
    "src_version",
    "chroots",
    "submitted_by",
}
PASSWORD = "compat-password-1"


@pytest.fixture(scope="session")
def copr_clients(tmp_path_factory: pytest.TempPathFactory) -> Clients:
    """copr==1.109 and copr-cli==1.65 in their own venv, built once per machine."""
    home = tmp_path_factory.mktemp("client-home")
    return client_venv("copr-clients", CLIENT_REQUIREMENTS, "copr.client, copr_cli.main", home)


# ---------------------------------------------------------------- running the clients


def run_cli(
    clients: Clients, config: Path, *args: str, rc: int = 0
) -> subprocess.CompletedProcess[str]:
    """`copr-cli --config CONFIG ARGS...`; asserts the exit status and that nothing crashed."""
    proc = clients.run(clients.copr_cli, "--config", config, *args, timeout=CALL_TIMEOUT)
    what = "copr-cli " + " ".join(args)
    assert_no_traceback(proc, what)
    assert proc.returncode == rc, (
        f"{what}: exit {proc.returncode}, expected {rc}\n"
        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    return proc


def _run_driver(clients: Clients, config: Path, method: str, kwargs: dict[str, Any]) -> Any:
    arguments = (DRIVER, config, method, json.dumps(kwargs))
    proc = clients.run(clients.python, *arguments, timeout=CALL_TIMEOUT)
    what = f"copr client {method}({kwargs})"
    assert_no_traceback(proc, what)
    assert proc.returncode in (0, 3), (
        f"{what}: exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def call(clients: Clients, config: Path, method: str, **kwargs: Any) -> dict[str, Any]:
    """One python-client call that must succeed: what the client read, plus `_raw` (the body)."""
    out = _run_driver(clients, config, method, kwargs)
    assert out["ok"], f"copr client {method}({kwargs}) raised {out['exception']}: {out['message']}"
    result = dict(out["result"])
    result["_raw"] = out["raw"]
    return result


def call_fails(clients: Clients, config: Path, method: str, **kwargs: Any) -> str:
    """One python-client call that must raise CoprRequestException; returns its message."""
    out = _run_driver(clients, config, method, kwargs)
    assert not out["ok"], f"copr client {method}({kwargs}) succeeded: {out['result']}"
    assert out["exception"] == "CoprRequestException", out
    assert out["message"].strip(), out
    return str(out["message"])


def cli_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The error text copr-cli printed for a CoprRequestException (exit 1)."""
    assert "Something went wrong:" in proc.stderr, proc.stderr
    message = proc.stderr.split("Error:", 1)[1].strip()
    assert message, proc.stderr
    return message


# ---------------------------------------------------------------- a local SRPM and URL


@pytest.fixture(scope="module")
def srpm(fixture_srpm) -> Path:
    """hello-copr-lite-1.0-1.src.rpm, built from tests/fixtures with `rpmbuild -bs`."""
    return fixture_srpm("hello-copr-lite")


class _StallingHandler(http.server.BaseHTTPRequestHandler):
    """Holds every request until the test module ends, then answers 404.

    A build whose SRPM URL points here stays `importing` for the whole module, whatever the
    server's importer does, so cancel always finds it unfinished.
    """

    release: threading.Event

    def _stall(self) -> None:
        try:
            self.release.wait(timeout=600)
            self.send_error(404)
        except OSError:
            pass

    do_GET = _stall
    do_HEAD = _stall

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class SrpmUrls:
    base: str

    def url(self, name: str = "hello-copr-lite-1.0-1") -> str:
        return f"{self.base}/stall/{unique(name)}.src.rpm"


@pytest.fixture(scope="module")
def srpm_urls() -> Iterator[SrpmUrls]:
    """http://127.0.0.1:<port>/... .src.rpm URLs served by a local server that never finishes."""
    release = threading.Event()
    handler = type("Handler", (_StallingHandler,), {"release": release})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="srpm-url-server", daemon=True)
    thread.start()
    try:
        yield SrpmUrls(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# ---------------------------------------------------------------- the live server


@dataclass
class LiveServer:
    url: str
    workdir: Path
    config_path: Path
    log_path: Path
    copr_configs: dict[str, Path]
    startup_stdout: list[str]


def _copr_block(text: str) -> configparser.SectionProxy:
    """The `[copr-cli]` block printed by `serve` (first start) or `user token`."""
    start = text.index("[copr-cli]")
    parser = configparser.ConfigParser()
    parser.read_string(text[start:])
    section = parser["copr-cli"]
    for key in ("login", "username", "token", "copr_url"):
        assert section.get(key), f"no {key} in the [copr-cli] block:\n{text}"
    return section


def _write_copr_config(path: Path, **values: str) -> Path:
    lines = ["[copr-cli]", *(f"{k} = {v}" for k, v in values.items()), ""]
    path.write_text("\n".join(lines))
    return path


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`python -m copr_lite serve` on a free port, with users alice and bob."""
    workdir = tmp_path_factory.mktemp("copr-lite-live")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config_path = workdir / "copr-lite.ini"
    config_path.write_text(
        "[server]\n"
        f"port = {port}\n"
        f"data_dir = {workdir / 'data'}\n"
        "\n[builds]\n"
        "srpm_allowed_networks = 127.0.0.0/8\n"
        "\n[chroots]\n" + "".join(f"{name} = rpmbuild\n" for name in CHROOTS)
    )
    log_path = workdir / "server.log"
    with serving(config_path, workdir, log_path) as served:
        configs: dict[str, Path] = {}
        admin = _copr_block("".join(served.startup[:-1]))  # the block printed before "serving on"
        configs["admin"] = _write_copr_config(workdir / "admin.copr", **dict(admin))
        for name in ("alice", "bob"):
            cli(config_path, "user", "add", name, "--password-stdin", stdin=PASSWORD)
            block = _copr_block(cli(config_path, "user", "token", name).stdout)
            assert block["username"] == name
            assert block["copr_url"] == url
            configs[name] = _write_copr_config(workdir / f"{name}.copr", **dict(block))
        alice = dict(_copr_block(configs["alice"].read_text()))
        configs["alice_bad_token"] = _write_copr_config(
            workdir / "alice-bad-token.copr", **{**alice, "token": "x" * 32}
        )
        configs["alice_slash"] = _write_copr_config(
            workdir / "alice-slash.copr", **{**alice, "copr_url": url + "/"}
        )
        yield LiveServer(url, workdir, config_path, log_path, configs, served.startup)
    # README: "Stops cleanly on SIGTERM".
    assert served.proc.returncode == 0, (
        f"serve exited {served.proc.returncode} on SIGTERM:\n{log_path.read_text()[-4000:]}"
    )


@pytest.fixture(scope="module")
def env(copr_clients: Clients, live_server: LiveServer) -> Env:
    return Env(copr_clients, live_server)


@dataclass
class Env:
    clients: Clients
    server: LiveServer

    def __repr__(self) -> str:  # keep tokens and startup output out of assertion messages
        return f"Env({self.server.url})"

    def cfg(self, who: str = "alice") -> Path:
        return self.server.copr_configs[who]

    def call(self, method: str, who: str = "alice", **kwargs: Any) -> dict[str, Any]:
        return call(self.clients, self.cfg(who), method, **kwargs)

    def call_fails(self, method: str, who: str = "alice", **kwargs: Any) -> str:
        return call_fails(self.clients, self.cfg(who), method, **kwargs)

    def cli(self, *args: str, who: str = "alice", rc: int = 0) -> subprocess.CompletedProcess[str]:
        return run_cli(self.clients, self.cfg(who), *args, rc=rc)

    def new_project(self, *chroots: str, who: str = "alice", **kwargs: Any) -> str:
        name = unique("proj")
        self.call(
            "create_project",
            who=who,
            username=None,
            projectname=name,
            chroots=list(chroots or CHROOTS[:2]),
            **kwargs,
        )
        return name


# ---------------------------------------------------------------- setup checks


def test_client_venv_has_the_pinned_clients(copr_clients: Clients) -> None:
    proc = client_versions(copr_clients)
    assert proc.stdout.split() == ["1.109", "1.65"], proc.stderr
    version = subprocess.run(
        [str(copr_clients.copr_cli), "--version"],
        capture_output=True,
        text=True,
        timeout=CALL_TIMEOUT,
        env=copr_clients.env,
        check=False,
    )
    assert_no_traceback(version, "copr-cli --version")
    assert "1.65" in version.stdout + version.stderr


def test_auth_check_accepts_the_issued_tokens(env: Env) -> None:
    for who in ("alice", "bob", "admin", "alice_slash"):
        assert env.call("authentication_check", who=who) == {"_raw": None}
    message = env.call_fails("authentication_check", who="alice_bad_token")
    assert "Login invalid/expired" in message


# ---------------------------------------------------------------- python client


def test_client_project_lifecycle(env: Env, srpm_urls: SrpmUrls) -> None:
    name = unique("lifecycle")
    repos = ["http://127.0.0.1/extra-a/", "http://127.0.0.1/extra-b/"]
    created = env.call(
        "create_project",
        username=None,
        projectname=name,
        chroots=list(CHROOTS[:2]),
        description=f"Compat {name} description",
        instructions="dnf copr enable alice/" + name,
        repos=repos,
    )
    assert created["output"] == "ok" and created["message"]

    listed = env.call("get_projects_list", username="alice")
    entry = {p["projectname"]: p for p in listed["projects"]}[name]
    assert entry["description"] == f"Compat {name} description"
    assert entry["additional_repos"].split() == repos
    assert set(entry["yum_repos"]) == set(CHROOTS[:2])
    for chroot, repo_url in entry["yum_repos"].items():
        assert repo_url.endswith(f"/alice/{name}/{chroot}/"), repo_url

    detail = env.call("get_project_details", projectname=name, username="alice")
    assert detail["name"] == name
    assert detail["description"] == f"Compat {name} description"
    assert detail["instructions"] == "dnf copr enable alice/" + name
    assert detail["last_modified"] is None
    assert set(detail["chroots"]) == set(CHROOTS[:2])
    raw = detail["_raw"]
    assert raw["output"] == "ok"
    assert raw["detail"]["additional_repos"].split() == repos
    assert raw["repos"] == [raw["detail"]]  # spec A6

    found = env.call("search_projects", query=name)
    hits = [p for p in found["projects"] if p["projectname"] == name]
    assert hits and hits[0]["username"] == "alice"
    assert hits[0]["description"] == f"Compat {name} description"

    modified = env.call(
        "modify_project",
        projectname=name,
        description="Changed description",
        instructions="Changed instructions",
        repos="http://127.0.0.1/changed-repo/",
    )
    assert modified["output"] == "ok"
    detail = env.call("get_project_details", projectname=name)
    assert detail["description"] == "Changed description"
    assert detail["instructions"] == "Changed instructions"
    assert detail["_raw"]["detail"]["additional_repos"].split() == [
        "http://127.0.0.1/changed-repo/"
    ]

    # Delete cancels the unfinished build first (spec A11) and frees the name.
    build = env.call("create_new_build", projectname=name, pkgs=[srpm_urls.url()])
    started = time.monotonic()
    deleted = env.call("delete_project", projectname=name)
    assert time.monotonic() - started < 20  # spec A22: within 15 s
    assert deleted["output"] == "ok" and deleted["message"]
    assert name in env.call_fails("get_project_details", projectname=name)
    assert name not in [
        p["projectname"] for p in env.call("get_projects_list", username="alice")["projects"]
    ]
    env.call_fails("get_build_details", build_id=build["build_ids"][0])
    env.call("create_project", username=None, projectname=name, chroots=[CHROOTS[0]])


def test_client_chroot_modify_and_detail(env: Env) -> None:
    name = env.new_project(*CHROOTS[:2])
    changed = env.call(
        "modify_project_chroot_details",
        projectname=name,
        chrootname="fedora-41-x86_64",
        pkgs=["gcc", "make"],
    )
    assert changed["output"] == "ok"
    assert changed["buildroot_pkgs"].split() == ["gcc", "make"]
    detail = env.call("get_project_chroot_details", projectname=name, chrootname="fedora-41-x86_64")
    assert detail["output"] == "ok"
    assert detail["buildroot_pkgs"].split() == ["gcc", "make"]
    other = env.call(
        "get_project_chroot_details", projectname=name, chrootname="fedora-rawhide-x86_64"
    )
    assert not other["buildroot_pkgs"]
    # epel-9 is configured on the server but not enabled in this project (spec A5: 404).
    env.call_fails("get_project_chroot_details", projectname=name, chrootname="epel-9-x86_64")
    env.call_fails(
        "modify_project_chroot_details", projectname=name, chrootname="epel-9-x86_64", pkgs=["x"]
    )


def _assert_build_detail(detail: dict[str, Any], owner: str, project: str) -> None:
    raw = detail["_raw"]
    missing = BUILD_DETAIL_KEYS - set(raw)
    assert not missing, f"build detail lacks {sorted(missing)}: {raw}"
    assert detail["output"] == "ok"
    assert detail["owner"] == owner and detail["project"] == project
    assert detail["status"] in BUILD_STATES
    assert isinstance(detail["submitted_on"], int)
    assert isinstance(detail["results_by_chroot"], dict)
    assert raw["submitted_by"] == owner


def test_client_build_from_url_detail_and_cancel(env: Env, srpm_urls: SrpmUrls) -> None:
    name = env.new_project(*CHROOTS[:2])
    url = srpm_urls.url()
    new = env.call("create_new_build", projectname=name, pkgs=[url])
    assert new["output"] == "ok" and new["message"]
    assert len(new["build_ids"]) == 1
    build_id = new["build_ids"][0]
    assert new["_raw"]["id"] == build_id and new["_raw"]["ids"] == [build_id]

    detail = env.call("get_build_details", build_id=build_id)
    _assert_build_detail(detail, "alice", name)
    assert detail["status"] == "importing"
    assert detail["src_pkg"] == url
    assert detail["_raw"]["chroots"] == {c: "importing" for c in CHROOTS[:2]}

    canceled = env.call("cancel_build", build_id=build_id)
    assert canceled["output"] == "ok" and canceled["status"]
    detail = env.call("get_build_details", build_id=build_id)
    assert detail["status"] == "canceled"
    assert detail["_raw"]["chroots"] == {c: "canceled" for c in CHROOTS[:2]}
    # Nothing left to cancel: 409 (spec A10).
    assert f"Cannot cancel build {build_id}" in env.call_fails("cancel_build", build_id=build_id)


def test_client_build_selected_chroots_and_several_urls(env: Env, srpm_urls: SrpmUrls) -> None:
    name = env.new_project(*CHROOTS)
    urls = [srpm_urls.url("one-1.0-1"), srpm_urls.url("two-2.0-1")]
    new = env.call(
        "create_new_build",
        projectname=name,
        pkgs=urls,
        chroots=["fedora-41-x86_64"],
        timeout="3600",  # strings, as copr-cli passes them (multipart takes no ints)
        memory="4096",
    )
    assert len(new["build_ids"]) == 2  # one build per URL (spec A8)
    for build_id, url in zip(new["build_ids"], urls, strict=True):
        detail = env.call("get_build_details", build_id=build_id)
        assert detail["src_pkg"] == url
        assert detail["_raw"]["chroots"] == {"fedora-41-x86_64": "importing"}
        env.call("cancel_build", build_id=build_id)


def test_client_build_from_local_srpm(env: Env, srpm: Path) -> None:
    name = env.new_project("fedora-rawhide-x86_64")
    new = env.call("create_new_build", projectname=name, pkgs=[str(srpm)])
    assert new["output"] == "ok"
    assert len(new["build_ids"]) == 1
    detail = env.call("get_build_details", build_id=new["build_ids"][0])
    _assert_build_detail(detail, "alice", name)
    assert set(detail["_raw"]["chroots"]) == {"fedora-rawhide-x86_64"}
    assert detail["src_pkg"].endswith(".src.rpm")


def test_client_trailing_slash_copr_url(env: Env, srpm_urls: SrpmUrls) -> None:
    """copr_url ending in `/` makes the client call `//api/...` (spec A3)."""
    name = env.new_project(who="alice_slash")
    listed = env.call("get_projects_list", who="alice_slash", username="alice")
    assert name in [p["projectname"] for p in listed["projects"]]
    assert env.call("get_project_details", who="alice_slash", projectname=name)["name"] == name
    # copr-cli build first POSTs //api/auth_check/, then //api/coprs/.../new_build/.
    built = env.cli("build", name, srpm_urls.url(), "--nowait", who="alice_slash")
    [build_id] = _created_build_ids(built.stdout)
    assert env.cli("status", str(build_id), who="alice_slash").stdout.strip() == "importing"
    env.cli("cancel", str(build_id), who="alice_slash")


# ---------------------------------------------------------------- copr-cli


def test_cli_create_list_modify_delete(env: Env) -> None:
    name = unique("cli")
    created = env.cli(
        "create",
        name,
        "--chroot",
        "fedora-rawhide-x86_64",
        "--chroot",
        "epel-9-x86_64",
        "--description",
        "CLI made this",
        "--instructions",
        "Just install it",
        "--repo",
        "http://127.0.0.1/cli-repo/",
    )
    assert created.stdout.strip()

    listing = env.cli("list").stdout
    block = listing.split(f"Name: {name}\n", 1)[1].split("\nName: ", 1)[0]
    assert "Description: CLI made this" in block
    assert "Yum repo(s):" in block
    for chroot in ("epel-9-x86_64", "fedora-rawhide-x86_64"):
        assert f"    {chroot}: " in block
    assert "Additional repo: http://127.0.0.1/cli-repo/" in block
    assert f"Name: {name}\n" in env.cli("list", "alice", who="bob").stdout

    env.cli(
        "modify",
        name,
        "--description",
        "CLI changed this",
        "--instructions",
        "Changed instructions",
        "--repo",
        "http://127.0.0.1/repo-a/",
        "--repo",
        "http://127.0.0.1/repo-b/",
    )
    detail = env.call("get_project_details", projectname=name)
    assert detail["description"] == "CLI changed this"
    assert detail["instructions"] == "Changed instructions"
    # Repeated `repos` keys are joined with spaces (spec A4).
    assert detail["_raw"]["detail"]["additional_repos"].split() == [
        "http://127.0.0.1/repo-a/",
        "http://127.0.0.1/repo-b/",
    ]

    deleted = env.cli("delete", name)
    assert deleted.stdout.strip()
    assert f"Name: {name}\n" not in env.cli("list").stdout


def test_cli_owner_slash_project_form(env: Env, srpm_urls: SrpmUrls) -> None:
    name = unique("cli-owner")
    env.cli("create", f"alice/{name}", "--chroot", "fedora-41-x86_64")
    env.cli("modify", f"alice/{name}", "--description", "owner form")
    assert env.call("get_project_details", projectname=name)["description"] == "owner form"
    built = env.cli("build", f"alice/{name}", srpm_urls.url(), "--nowait")
    build_id = _created_build_ids(built.stdout)[0]
    env.cli("cancel", str(build_id))
    env.cli("delete", f"alice/{name}")


def _created_build_ids(stdout: str) -> list[int]:
    lines = [line for line in stdout.splitlines() if line.startswith("Created builds:")]
    assert len(lines) == 1, stdout
    return [int(part) for part in lines[0].split(":", 1)[1].split()]


def test_cli_build_url_status_cancel(env: Env, srpm_urls: SrpmUrls) -> None:
    name = env.new_project(*CHROOTS[:2])
    url = srpm_urls.url()
    built = env.cli("build", name, url, "--nowait")
    [build_id] = _created_build_ids(built.stdout)
    assert built.stdout.splitlines()[0].strip()  # the server's message comes first
    assert env.cli("status", str(build_id)).stdout.strip() == "importing"
    detail = env.call("get_build_details", build_id=build_id)
    assert detail["src_pkg"] == url and detail["project"] == name

    canceled = env.cli("cancel", str(build_id))
    assert canceled.stdout.strip()
    assert env.cli("status", str(build_id)).stdout.strip() == "canceled"
    again = env.cli("cancel", str(build_id), rc=1)
    assert f"Cannot cancel build {build_id}" in cli_error(again)


def test_cli_build_selected_chroot(env: Env, srpm_urls: SrpmUrls) -> None:
    name = env.new_project(*CHROOTS)
    built = env.cli(
        "build", name, srpm_urls.url(), "--nowait", "-r", "epel-9-x86_64", "--timeout", "600"
    )
    [build_id] = _created_build_ids(built.stdout)
    detail = env.call("get_build_details", build_id=build_id)
    assert detail["_raw"]["chroots"] == {"epel-9-x86_64": "importing"}
    env.cli("cancel", str(build_id))


def test_cli_build_local_srpm(env: Env, srpm: Path) -> None:
    name = env.new_project("fedora-41-x86_64")
    built = env.cli("build", name, str(srpm), "--nowait")
    assert f"Uploading package {srpm}" in built.stdout
    [build_id] = _created_build_ids(built.stdout)
    assert env.cli("status", str(build_id)).stdout.strip() in BUILD_STATES
    detail = env.call("get_build_details", build_id=build_id)
    _assert_build_detail(detail, "alice", name)
    assert set(detail["_raw"]["chroots"]) == {"fedora-41-x86_64"}


# ---------------------------------------------------------------- error paths


def test_wrong_token_is_a_clean_error(env: Env, srpm_urls: SrpmUrls) -> None:
    bad = "alice_bad_token"
    name = env.new_project()
    created = env.cli("create", unique("bad"), "--chroot", CHROOTS[0], who=bad, rc=1)
    assert "Login invalid/expired" in cli_error(created)
    built = env.cli("build", name, srpm_urls.url(), "--nowait", who=bad, rc=1)
    assert "Login invalid/expired" in cli_error(built)
    modified = env.cli("modify", name, "--description", "x", who=bad, rc=1)
    assert "Login invalid/expired" in cli_error(modified)
    deleted = env.cli("delete", name, who=bad, rc=1)
    assert "Login invalid/expired" in cli_error(deleted)
    build_id = env.call("create_new_build", projectname=name, pkgs=[srpm_urls.url()])["build_ids"]
    canceled = env.cli("cancel", str(build_id[0]), who=bad, rc=1)
    assert "Login invalid/expired" in cli_error(canceled)
    assert "Login invalid/expired" in env.call_fails(
        "create_project", who=bad, username=None, projectname=unique("bad"), chroots=[CHROOTS[0]]
    )
    # Listing is public: the header of a bad token is ignored, as historically (spec A14).
    assert f"Name: {name}\n" in env.cli("list", who=bad).stdout
    env.cli("cancel", str(build_id[0]))


def test_unknown_project_is_a_clean_error(env: Env, srpm_urls: SrpmUrls) -> None:
    assert "nosuch" in cli_error(env.cli("modify", "nosuch", "--description", "x", rc=1))
    assert "nosuch" in cli_error(env.cli("build", "nosuch", srpm_urls.url(), "--nowait", rc=1))
    assert "nosuch" in cli_error(env.cli("delete", "nosuch", rc=1))
    assert "nosuch" in env.call_fails("get_project_details", projectname="nosuch")
    assert "nosuch" in env.call_fails("modify_project", projectname="nosuch", description="x")
    env.call_fails("get_project_chroot_details", projectname="nosuch", chrootname=CHROOTS[0])
    # Another user's projects, and an unknown user's (an empty list, spec A17).
    assert env.cli("list", "nosuchuser").stderr.startswith("No copr retrieved")
    assert env.call("get_projects_list", username="nosuchuser")["projects"] == []


def test_unknown_build_is_a_clean_error(env: Env) -> None:
    assert "999999" in cli_error(env.cli("status", "999999", rc=1))
    assert "999999" in cli_error(env.cli("cancel", "999999", rc=1))
    assert "999999" in env.call_fails("get_build_details", build_id=999999)
    assert "999999" in env.call_fails("cancel_build", build_id=999999)


def test_other_users_project_is_refused_cleanly(env: Env, srpm_urls: SrpmUrls) -> None:
    name = env.new_project()
    build_id = env.call("create_new_build", projectname=name, pkgs=[srpm_urls.url()])["build_ids"][
        0
    ]
    cli_error(env.cli("modify", f"alice/{name}", "--description", "bob was here", who="bob", rc=1))
    cli_error(env.cli("build", f"alice/{name}", srpm_urls.url(), "--nowait", who="bob", rc=1))
    cli_error(env.cli("cancel", str(build_id), who="bob", rc=1))
    cli_error(env.cli("delete", f"alice/{name}", who="bob", rc=1))
    env.call_fails(
        "modify_project_chroot_details",
        who="bob",
        projectname=name,
        username="alice",
        chrootname=CHROOTS[0],
        pkgs=["evil"],
    )
    assert env.call("get_project_details", projectname=name)["description"] != "bob was here"
    assert env.cli("status", str(build_id)).stdout.strip() == "importing"
    # A system admin may (README: "system admins on every project").
    env.cli("cancel", str(build_id), who="admin")
    assert env.cli("status", str(build_id)).stdout.strip() == "canceled"


def test_bad_input_is_a_clean_error(env: Env, srpm: Path) -> None:
    name = env.new_project("fedora-41-x86_64")
    taken = env.cli("create", name, "--chroot", "fedora-41-x86_64", rc=1)
    assert name in cli_error(taken) or "already" in cli_error(taken)
    cli_error(env.cli("create", unique("bad-chroot"), "--chroot", "fedora-99-x86_64", rc=1))
    cli_error(env.cli("create", "bad name!", "--chroot", "fedora-41-x86_64", rc=1))
    # Not a .src.rpm URL, and a chroot the project does not have.
    cli_error(env.cli("build", name, "http://127.0.0.1:9/x.tar.gz", "--nowait", rc=1))
    cli_error(env.cli("build", name, str(srpm), "--nowait", "-r", "epel-9-x86_64", rc=1))


def test_server_logged_no_traceback(env: Env) -> None:
    """Runs last: no request of this module made the server fault (spec A2)."""
    log = env.server.log_path.read_text()
    assert "Traceback (most recent call last)" not in log, log[-6000:]
    assert " status=500 " not in log, [line for line in log.splitlines() if "status=500" in line]
