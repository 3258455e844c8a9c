"""Builds from git, end to end: a real server process (`python -m copr_lite serve`, the
rpmbuild builder), git repositories served over HTTP on loopback, forge-signed webhook
deliveries, and dnf reading the published repository.

A GitHub-style push builds every package of the pushed repository; a tag
`<package>-<version>` builds that package only; a bad signature builds nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_e2e import Dnf

from copr_lite.liveserver import cli, commit_files, free_port, git_http_server, serving

CHROOT = "fedora-41-x86_64"
TOOLS = ("rpmbuild", "createrepo_c", "dnf", "bwrap", "git")
pytestmark = pytest.mark.skipif(
    any(subprocess.run(["which", t], capture_output=True).returncode for t in TOOLS),
    reason="needs " + ", ".join(TOOLS),
)


def spec(name: str, version: str) -> str:
    return f"""Name: {name}
Version: {version}
Release: 1
Summary: Built from git on a push
License: MIT
Source0: {name}.txt
BuildArch: noarch

%description
A package whose spec lives in git.

%install
install -D -m 0644 %{{SOURCE0}} %{{buildroot}}/usr/share/{name}/{name}.txt

%files
/usr/share/{name}/{name}.txt
"""


@dataclass
class Server:
    url: str
    headers: dict[str, str]

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {**self.headers, "Content-Type": "application/json"}
        request = urllib.request.Request(self.url + path, data, headers, method=method)
        with urllib.request.urlopen(request, timeout=30) as resp:
            return json.loads(resp.read())

    def deliver(
        self, path: str, payload: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, Any]:
        body = json.dumps(payload).encode()
        request = urllib.request.Request(
            self.url + path, body, {"Content-Type": "application/json", **headers}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def builds(self, project: str) -> list[dict[str, Any]]:
        found = self.call("GET", f"/api_3/build/list?ownername=alice&projectname={project}")
        return list(found["items"])

    def wait_finished(self, build_id: int, timeout: float = 180) -> str:
        deadline = time.monotonic() + timeout
        while True:
            state = str(self.call("GET", f"/api_3/build/{build_id}")["state"])
            if state in ("succeeded", "failed", "canceled", "skipped"):
                return state
            assert time.monotonic() < deadline, f"build {build_id} still {state}"
            time.sleep(0.5)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("git-builds")
    port = free_port()
    config = workdir / "copr-lite.ini"
    config.write_text(
        f"[server]\nport = {port}\ndata_dir = {workdir / 'data'}\n"
        "\n[builds]\nsrpm_allowed_networks = 127.0.0.0/8\n"
        f"\n[signing]\nsign = no\n\n[chroots]\n{CHROOT} = rpmbuild\n"
    )
    with serving(config, workdir, workdir / "server.log"):
        cli(config, "user", "add", "alice", "--password-stdin", stdin="pw-123456789")
        issued = cli(config, "user", "token", "alice").stdout
        lines = dict(line.split(" = ", 1) for line in issued.splitlines() if " = " in line)
        basic = b64encode(f"{lines['login']}:{lines['token']}".encode()).decode()
        yield Server(f"http://127.0.0.1:{port}", {"Authorization": f"Basic {basic}"})


@pytest.fixture(scope="module")
def git(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    repos = tmp_path_factory.mktemp("repos")
    with git_http_server(repos) as base:
        yield repos, base


def github_push(
    clone_url: str, ref: str, after: str, touched: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A push event as GitHub documents it, cut to the fields a receiver reads; its one
    commit changed the files `touched`."""
    return {
        "ref": ref,
        "before": "0" * 40,
        "after": after,
        "created": False,
        "deleted": False,
        "forced": False,
        "repository": {
            "id": 1296269,
            "name": "hello",
            "full_name": "alice/hello",
            "clone_url": clone_url,
            "git_url": clone_url.replace("http://", "git://"),
            "html_url": clone_url.removesuffix(".git"),
            "default_branch": "main",
        },
        "pusher": {"name": "alice", "email": "alice@example.org"},
        "head_commit": {"id": after, "message": "update", "added": [], "modified": []},
        "commits": [{"id": after, "added": [], "removed": [], "modified": list(touched)}],
    }


def signed(secret: str, payload: dict[str, Any], delivery: str) -> dict[str, str]:
    body = json.dumps(payload).encode()
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": f"sha256={digest}",
    }


def test_signed_pushes_build_from_git_to_a_dnf_repository(
    server: Server, git: tuple[Path, str], tmp_path: Path
) -> None:
    repos, base = git
    project = "gitpush"
    server.call(
        "POST",
        "/api_3/project/add/alice",
        {"name": project, "chroots": [CHROOT], "description": "built on push"},
    )
    head = commit_files(
        repos / "hello",
        {
            "a/a.spec": spec("push-a", "1.0"),
            "a/push-a.txt": "a\n",
            "b/b.spec": spec("push-b", "1.0"),
            "b/push-b.txt": "b\n",
        },
    )
    clone_url = f"{base}/hello"
    for name, sub in (("push-a", "a"), ("push-b", "b")):
        server.call(
            "POST",
            f"/api_3/package/add/alice/{project}/{name}/scm",
            {"package_name": name, "clone_url": clone_url, "subdirectory": sub,
             "webhook_rebuild": True},
        )  # fmt: skip
    secret = server.call("POST", f"/api_3/webhook/generate/alice/{project}")["webhook_secret"]
    hook = f"/webhooks/github/alice/{project}/"

    # A bad signature: 403, and nothing is built.
    payload = github_push(clone_url + ".git", "refs/heads/main", head, ("a/a.spec", "b/b.spec"))
    status, answer = server.deliver(hook, payload, signed("wrong" + secret, payload, "d-0"))
    assert status == 403 and answer["output"] == "notok"
    assert server.builds(project) == []

    # A signed push builds both packages of the repository, to a repository dnf reads.
    status, answer = server.deliver(hook, payload, signed(secret, payload, "d-1"))
    assert status == 200, answer
    assert len(answer["builds"]) == 2
    for build_id in answer["builds"]:
        assert server.wait_finished(build_id) == "succeeded"
    # The same delivery again builds nothing twice.
    status, again = server.deliver(hook, payload, signed(secret, payload, "d-1"))
    assert status == 200 and not again.get("builds")
    assert len(server.builds(project)) == 2

    dnf = Dnf(tmp_path / "dnf")
    repo = f"{server.url}/results/alice/{project}/{CHROOT}/"
    listed = dnf(f"--repofrompath=cl,{repo}", "--repo=cl", "repoquery", "--available")
    assert "push-a-0:1.0-1.noarch" in listed and "push-b-0:1.0-1.noarch" in listed, listed

    # A tag <package>-<version> builds that package only, from the tag.
    tagged = commit_files(
        repos / "hello",
        {"a/a.spec": spec("push-a", "1.1")},
        tag="push-a-1.1",
    )
    payload = github_push(clone_url, "refs/tags/push-a-1.1", tagged, ("a/a.spec",))
    status, answer = server.deliver(hook, payload, signed(secret, payload, "d-2"))
    assert status == 200, answer
    [build_id] = answer["builds"]
    assert server.wait_finished(build_id) == "succeeded"
    build = server.call("GET", f"/api_3/build/{build_id}")
    assert build["source_package"]["name"] == "push-a"
    assert build["source_package"]["version"] == "1.1-1"
