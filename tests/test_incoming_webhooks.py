"""Incoming forge webhooks over real HTTP against a running app: each forge's documented
payload signed as the forge signs it, Copr's URL form, replays, refusals (recorded, building
nothing), the secret through API v3 and the web UI's Integrations tab."""

from __future__ import annotations

import io
import json
import re

import pytest
from conftest import new_project
from test_forges import SECRET, payload, signed
from test_web import csrf_in, sign_in

from copr_lite import services, store
from copr_lite.keys import DB, SERVICES
from copr_lite.liveserver import commit_files, git_http_server
from copr_lite.testing import add_user, basic_auth, wait_until

F41 = "fedora-41-x86_64"
GITHUB_REPO = "https://github.com/Codertocat/Hello-World.git"
GITLAB_REPO = "http://example.com/mike/diaspora.git"
GITEA_REPO = "https://gitea.example.com/gitea/webhooks.git"
FORGEJO_REPO = "https://codeberg.example.org/forgejo/hello.git"


@pytest.fixture
async def app_client(aiohttp_client, make_app):
    """A client on an app whose dispatcher is not started: builds stay as submitted."""
    return await aiohttp_client(make_app(start_dispatcher=False))


@pytest.fixture
async def alice(app_client):
    """alice's project alice/hello (fedora-41) with the webhook secret SECRET; her token."""
    app = app_client.server.app
    _, token = await add_user(app, "alice")
    await new_project(app_client, token, "hello", [F41])
    project = await app[DB].read(store.get_project, "alice", "hello")
    await app[DB].write(store.set_webhook_secret, project.id, SECRET)
    return token


async def add_package(
    client,
    token,
    name: str,
    clone_url: str,
    *,
    committish: str = "",
    subdirectory: str = "",
    webhook_rebuild: bool = True,
) -> None:
    """Define alice/hello's package `name` built from git (API v3 package/add, as copr-cli
    add-package-scm)."""
    resp = await client.post(
        f"/api_3/package/add/alice/hello/{name}/scm",
        headers=basic_auth(token),
        json={
            "clone_url": clone_url,
            "committish": committish,
            "subdirectory": subdirectory,
            "webhook_rebuild": webhook_rebuild,
        },
    )
    assert resp.status == 200, await resp.text()


async def project_id(client) -> int:
    project = await client.server.app[DB].read(store.get_project, "alice", "hello")
    return project.id


async def deliver(client, forge, fixture, event, *, path=None, secret=SECRET, headers=None):
    """POST a fixture payload to alice/hello's webhook URL of `forge`, signed with `secret`."""
    body = payload(fixture) if fixture else b""
    sent = {**signed(forge, body, event, secret), **(headers or {})}
    sent["Content-Type"] = "application/json"
    url = path or f"/webhooks/{forge}/alice/hello/"
    return await client.post(url, data=body, headers=sent)


async def deliveries(client) -> list[store.Delivery]:
    return await client.server.app[DB].read(store.recent_deliveries, await project_id(client), 50)


async def builds_of(client) -> list[dict]:
    """alice/hello's builds through API v3."""
    resp = await client.get("/api_3/build/list?ownername=alice&projectname=hello")
    assert resp.status == 200
    return (await resp.json())["items"]


# ---------------------------------------------------------------- refusals


async def test_a_bad_signature_is_refused_recorded_and_builds_nothing(app_client, alice):
    await add_package(app_client, alice, "hello", GITHUB_REPO)
    resp = await deliver(app_client, "github", "github-push", "push", secret="wrong")
    assert resp.status == 403
    body = await resp.json()
    assert body["output"] == "notok" and "Bad signature" in body["error"]
    assert await builds_of(app_client) == []
    [recorded] = await deliveries(app_client)
    assert (recorded.status, recorded.forge, recorded.build_ids) == (403, "github", ())
    # the id of a refused delivery is not taken: the forge's redelivery still counts
    assert recorded.delivery_id is None


async def test_our_url_requires_a_signature(app_client, alice):
    body = payload("github-push")
    resp = await app_client.post(
        "/webhooks/github/alice/hello/", data=body, headers={"X-GitHub-Event": "push"}
    )
    assert resp.status == 403
    assert "Missing signature" in (await resp.json())["error"]


async def test_no_secret_yet(app_client):
    _, token = await add_user(app_client.server.app, "bob")
    await new_project(app_client, token, "fresh", [F41], owner="bob")
    resp = await deliver(
        app_client, "github", "github-push", "push", path="/webhooks/github/bob/fresh/"
    )
    assert resp.status == 403
    assert "no webhook secret yet" in (await resp.json())["error"]


async def test_unknown_project_and_forge(app_client, alice):
    resp = await deliver(
        app_client, "github", "github-push", "push", path="/webhooks/github/alice/nope/"
    )
    assert resp.status == 404
    assert (await resp.json())["output"] == "notok"
    resp = await deliver(
        app_client, "github", "github-push", "push", path="/webhooks/svn/alice/hello/"
    )
    assert resp.status == 404 and "Unknown forge" in (await resp.json())["error"]


async def test_an_oversized_or_compressed_delivery_is_refused(app_client, alice):
    big = b"x" * (3 * 1024 * 1024)
    resp = await app_client.post("/webhooks/github/alice/hello/", data=io.BytesIO(big))
    assert resp.status == 413
    assert (await resp.json())["errcode"] == "too_large"
    resp = await app_client.post(
        "/webhooks/github/alice/hello/", data=b"{}", headers={"Content-Encoding": "gzip"}
    )
    assert resp.status == 400


async def test_old_deliveries_are_pruned(app_client, alice):
    pid = await project_id(app_client)

    def record_many(conn):
        for number in range(store.KEEP_DELIVERIES + 5):
            store.record_delivery(conn, pid, "github", f"d{number}", "push", 1, 200, "x")

    await app_client.server.app[DB].write(record_many)
    kept = await app_client.server.app[DB].read(store.recent_deliveries, pid, 10_000)
    assert len(kept) == store.KEEP_DELIVERIES
    assert kept[0].delivery_id == f"d{store.KEEP_DELIVERIES + 4}"
    assert kept[-1].delivery_id == "d5"


# ---------------------------------------------------------------- the service, up to the build


async def test_the_service_builds_what_the_push_names(app_client, alice):
    """services.receive_webhook with the build step given: which packages, as whom, with
    which commit, and that a replay builds nothing."""
    await add_package(app_client, alice, "hello", GITHUB_REPO, committish="main")
    await add_package(app_client, alice, "other", "https://github.com/o/other.git")
    await add_package(app_client, alice, "off", GITHUB_REPO, webhook_rebuild=False)
    calls = []

    async def build(ctx, user, owner, name, package, values, *, committish=None):
        calls.append((user.name, owner, name, package, committish))
        return None, 1000 + len(calls)

    body = payload("github-push")
    incoming = services.Incoming(
        "github", signed("github", body, "push"), body, owner="alice", name="hello"
    )
    ctx = app_client.server.app[SERVICES]
    result = await services.receive_webhook(ctx, incoming, build)
    commit = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
    assert calls == [("alice", "alice", "hello", "hello", commit)]
    assert result.build_ids == (1001,) and result.status == 200
    again = await services.receive_webhook(ctx, incoming, build)
    assert again.build_ids == () and "already received" in again.outcome
    assert len(calls) == 1
    [recorded] = await deliveries(app_client)
    assert recorded.build_ids == (1001,) and recorded.outcome == "builds 1001 started"


# ---------------------------------------------------------------- builds started


async def test_github_push_starts_a_build_of_the_matching_package(app_client, alice):
    await add_package(app_client, alice, "hello", GITHUB_REPO)
    await add_package(app_client, alice, "elsewhere", "https://github.com/o/other.git")
    resp = await deliver(app_client, "github", "github-push", "push")
    assert resp.status == 200, await resp.text()
    answer = await resp.json()
    [build_id] = answer["builds"]
    [build] = await builds_of(app_client)
    assert build["id"] == build_id
    assert build["state"] in ("importing", "pending")
    stored = await app_client.server.app[DB].read(store.get_build, build_id)
    assert stored.source_type == "scm"
    # the build checks out the pushed commit, as Copr's do
    assert stored.source_dict["committish"] == "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
    assert stored.source_dict["clone_url"] == GITHUB_REPO
    [recorded] = await deliveries(app_client)
    assert recorded.build_ids == (build_id,) and recorded.event == "push"


async def test_a_replayed_delivery_builds_nothing_twice(app_client, alice):
    await add_package(app_client, alice, "hello", GITHUB_REPO)
    first = await deliver(app_client, "github", "github-push", "push")
    assert len((await first.json())["builds"]) == 1
    again = await deliver(app_client, "github", "github-push", "push")
    assert again.status == 200
    answer = await again.json()
    assert answer["builds"] == [] and "already received" in answer["message"]
    assert len(await builds_of(app_client)) == 1


async def test_a_push_to_another_branch_builds_nothing(app_client, alice):
    await add_package(app_client, alice, "hello", GITHUB_REPO, committish="stable")
    resp = await deliver(app_client, "github", "github-push", "push")
    assert resp.status == 200
    answer = await resp.json()
    assert answer["builds"] == []
    assert answer["message"] == (
        "no package matches https://github.com/Codertocat/Hello-World branch main"
    )
    assert await builds_of(app_client) == []


async def test_a_tag_builds_only_the_package_it_names(app_client, alice):
    # Their subdirectories tell their builds apart before the import reads the SRPM.
    await add_package(app_client, alice, "hello", GITHUB_REPO, subdirectory="hello")
    await add_package(app_client, alice, "world", GITHUB_REPO, subdirectory="world")
    resp = await deliver(app_client, "github", "github-tag-push", "push")
    answer = await resp.json()
    [build_id] = answer["builds"]
    assert [b["id"] for b in await builds_of(app_client)] == [build_id]
    stored = await app_client.server.app[DB].read(store.get_build, build_id)
    assert stored.source_dict["subdirectory"] == "hello"
    assert stored.source_dict["committish"] == "hello-2.1"
    [recorded] = await deliveries(app_client)
    assert recorded.event == "tag" and recorded.outcome.startswith("builds ")


@pytest.mark.parametrize(
    ("forge", "fixture", "event", "repo"),
    [
        ("gitlab", "gitlab-push-hook", "Push Hook", GITLAB_REPO),
        ("gitlab", "gitlab-tag-push-hook", "Tag Push Hook", GITLAB_REPO),
        ("gitea", "gitea-push", "push", GITEA_REPO),
        ("forgejo", "forgejo-push", "push", FORGEJO_REPO),
    ],
)
async def test_each_forge_push_starts_a_build(app_client, alice, forge, fixture, event, repo):
    await add_package(app_client, alice, "diaspora", repo)
    resp = await deliver(app_client, forge, fixture, event)
    assert resp.status == 200, await resp.text()
    assert len((await resp.json())["builds"]) == 1
    assert len(await builds_of(app_client)) == 1


async def test_ping_builds_nothing(app_client, alice):
    await add_package(app_client, alice, "hello", GITHUB_REPO)
    body = b'{"zen": "Design for failure."}'
    headers = signed("github", body, "ping")
    resp = await app_client.post("/webhooks/github/alice/hello/", data=body, headers=headers)
    assert resp.status == 200
    assert (await resp.json())["message"] == "ping"
    assert await builds_of(app_client) == []


async def test_custom_webhook_with_a_token(app_client, alice):
    await add_package(app_client, alice, "hello", GITHUB_REPO, webhook_rebuild=False)
    path = "/webhooks/custom/alice/hello/hello/"
    resp = await app_client.post(path, headers={"Authorization": "Bearer wrong"})
    assert resp.status == 403
    resp = await app_client.post(path, headers={"Authorization": f"Bearer {SECRET}"})
    assert resp.status == 200, await resp.text()
    assert len((await resp.json())["builds"]) == 1
    resp = await app_client.post(
        "/webhooks/custom/alice/hello/missing/", headers={"X-Copr-Token": SECRET}
    )
    assert resp.status == 404
    resp = await app_client.post("/webhooks/custom/alice/hello/", headers={"X-Copr-Token": SECRET})
    assert resp.status == 400 and "must end with a package name" in (await resp.json())["error"]
    assert len(await builds_of(app_client)) == 1
    assert [d.status for d in await deliveries(app_client)] == [400, 404, 200, 403]


# ---------------------------------------------------------------- Copr's URL form


async def test_copr_url_form(app_client, alice):
    await add_package(app_client, alice, "hello", GITHUB_REPO)
    pid = await project_id(app_client)
    body = payload("github-push")
    plain = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "copr-1"}
    wrong = "00000000-0000-4000-8000-000000000000"
    resp = await app_client.post(f"/webhooks/github/{pid}/{wrong}/", data=body, headers=plain)
    assert resp.status == 403
    # the secret in the URL is enough ...
    resp = await app_client.post(f"/webhooks/github/{pid}/{SECRET}/", data=body, headers=plain)
    assert resp.status == 200, await resp.text()
    assert len((await resp.json())["builds"]) == 1
    # ... but a signature that is sent must be right
    bad = {**signed("github", body, "push", "wrong"), "X-GitHub-Delivery": "copr-2"}
    resp = await app_client.post(f"/webhooks/github/{pid}/{SECRET}/", data=body, headers=bad)
    assert resp.status == 403
    resp = await app_client.post(f"/webhooks/bitbucket/{pid}/{SECRET}/", data=body)
    assert resp.status == 404
    assert "Bitbucket webhooks are not supported" in (await resp.json())["error"]
    resp = await app_client.post(f"/webhooks/github/999999/{SECRET}/", data=body, headers=plain)
    assert resp.status == 404
    assert len(await builds_of(app_client)) == 1


# ---------------------------------------------------------------- the secret


async def test_webhook_generate_through_api_v3(app_client, alice):
    resp = await app_client.post("/api_3/webhook/generate/alice/hello", headers=basic_auth(alice))
    assert resp.status == 200, await resp.text()
    answer = await resp.json()
    assert answer["ownername"] == "alice" and answer["full_name"] == "alice/hello"
    assert re.fullmatch(r"[0-9a-f-]{36}", answer["webhook_secret"])
    assert answer["webhook_secret"] != SECRET
    stored = await app_client.server.app[DB].read(store.webhook_secret, answer["id"])
    assert stored == answer["webhook_secret"]

    _, mallory = await add_user(app_client.server.app, "mallory")
    resp = await app_client.post("/api_3/webhook/generate/alice/hello", headers=basic_auth(mallory))
    assert resp.status == 403
    assert (await resp.json())["output"] == "notok"
    assert await app_client.server.app[DB].read(store.webhook_secret, answer["id"]) == stored
    resp = await app_client.post("/api_3/webhook/generate/alice/hello")
    assert resp.status == 401


async def test_integrations_tab(app_client, alice):
    await add_package(app_client, alice, "hello", GITHUB_REPO)
    await deliver(app_client, "github", "github-push", "push", secret="wrong")
    csrf = await sign_in(app_client, "alice")
    page = await (await app_client.get("/coprs/alice/hello/integrations/")).text()
    assert SECRET in page
    assert "/webhooks/gitlab/alice/hello/" in page
    assert "Bad signature" in page
    # the built-in webhooks plugin's page (named route "outgoing-webhooks") is linked
    assert 'href="/coprs/alice/hello/webhooks/outgoing/"' in page
    resp = await app_client.post(
        "/coprs/alice/hello/integrations/", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert resp.status == 303
    new_secret = await app_client.server.app[DB].read(
        store.webhook_secret, await project_id(app_client)
    )
    assert new_secret != SECRET
    page = await (await app_client.get("/coprs/alice/hello/integrations/")).text()
    assert new_secret in page and csrf_in(page)


async def test_integrations_tab_hides_the_secret_from_others(app_client, alice):
    await add_user(app_client.server.app, "mallory")
    page = await (await app_client.get("/coprs/alice/hello/integrations/")).text()
    assert SECRET not in page
    csrf = await sign_in(app_client, "mallory")
    page = await (await app_client.get("/coprs/alice/hello/integrations/")).text()
    assert SECRET not in page and "Only the owner and admins" in page
    resp = await app_client.post(
        "/coprs/alice/hello/integrations/", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert resp.status == 403
    stored = await app_client.server.app[DB].read(
        store.webhook_secret, await project_id(app_client)
    )
    assert stored == SECRET


# ---------------------------------------------------------------- to the end, with real git

HELLO_SPEC = """Name: hookpkg
Version: {version}
Release: 1
Summary: Built from a git push
License: MIT
BuildArch: noarch

%description
Built from the commit a webhook named.

%install
mkdir -p %{{buildroot}}/usr/share/hookpkg
echo {version} > %{{buildroot}}/usr/share/hookpkg/version

%files
/usr/share/hookpkg/version
"""


async def test_a_push_builds_the_pushed_commit_from_git(aiohttp_client, make_app, tmp_path):
    """A real git repository over HTTP with two commits on main: a delivery naming the
    first one builds that commit (version 1.0), not the branch's newest (2.0)."""
    client = await aiohttp_client(make_app())
    app = client.server.app
    _, token = await add_user(app, "alice")
    await new_project(client, token, "hello", [F41])
    project = await app[DB].read(store.get_project, "alice", "hello")
    await app[DB].write(store.set_webhook_secret, project.id, SECRET)
    repo = tmp_path / "repos" / "hookpkg"
    first = commit_files(repo, {"hookpkg.spec": HELLO_SPEC.format(version="1.0")})
    commit_files(repo, {"hookpkg.spec": HELLO_SPEC.format(version="2.0")})
    with git_http_server(tmp_path / "repos") as base:
        # The package's URL has no ".git", the payload's has: they match all the same.
        await add_package(client, token, "hookpkg", f"{base}/hookpkg", committish="main")
        body = json.loads(payload("github-push"))
        body["after"] = first
        body["commits"][0]["modified"] = ["hookpkg.spec"]
        body["repository"]["clone_url"] = f"{base}/hookpkg.git"
        data = json.dumps(body).encode()
        resp = await client.post(
            "/webhooks/github/alice/hello/", data=data, headers=signed("github", data, "push")
        )
        assert resp.status == 200, await resp.text()
        [build_id] = (await resp.json())["builds"]

        async def ended() -> bool:
            build = await (await client.get(f"/api_3/build/{build_id}")).json()
            return build["state"] in ("succeeded", "failed", "canceled", "skipped")

        await wait_until(ended, within=180, interval=0.5)
    build = await (await client.get(f"/api_3/build/{build_id}")).json()
    log = await client.get(f"/results/alice/hello/srpm-builds/{build_id:08d}/builder-live.log")
    assert build["state"] == "succeeded", await log.text()
    assert build["source_package"]["name"] == "hookpkg"
    assert build["source_package"]["version"] == "1.0-1"


def test_fixture_payloads_are_the_forges_shapes():
    """The fixtures keep the field names the forges document."""
    github = json.loads(payload("github-push"))
    assert {"ref", "before", "after", "commits", "repository", "pusher"} <= github.keys()
    gitlab = json.loads(payload("gitlab-tag-push-hook"))
    assert gitlab["object_kind"] == "tag_push" and "git_http_url" in gitlab["project"]
