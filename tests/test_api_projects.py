"""Projects through the API: list, detail, create, modify, chroots, delete, search."""

from __future__ import annotations

import asyncio
import io

import pytest

from copr_lite.keys import DB
from copr_lite.testing import basic_auth

CHROOTS = {"fedora-41-x86_64": "y", "epel-9-x86_64": "y"}


async def create(client, token, name="proj", owner="alice", **fields):
    data = {"name": name, **CHROOTS, **fields}
    return await client.post(f"/api/coprs/{owner}/new/", data=data, headers=basic_auth(token))


@pytest.fixture
async def alice(make_user):
    return await make_user("alice")


async def test_create_then_list_and_detail(client, alice):
    _, token = alice
    resp = await create(
        client,
        token,
        description="Desc",
        instructions="dnf copr enable",
        repos="http://a.example/repo https://b.example/r",
    )
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"output": "ok", "message": "New project was successfully created."}
    body = await (await client.get("/api/coprs/alice/")).json()
    assert body["output"] == "ok"
    [entry] = body["repos"]
    assert entry["name"] == "proj"
    assert entry["description"] == "Desc"
    assert entry["additional_repos"] == "http://a.example/repo https://b.example/r"
    assert entry["yum_repos"] == {
        "epel-9-x86_64": "http://127.0.0.1:8080/results/alice/proj/epel-9-x86_64/",
        "fedora-41-x86_64": "http://127.0.0.1:8080/results/alice/proj/fedora-41-x86_64/",
    }
    assert (await (await client.get("/api/coprs/?username=alice")).json()) == body

    detail = await (await client.get("/api/coprs/alice/proj/detail/")).json()
    assert detail["output"] == "ok"
    assert detail["detail"]["name"] == "proj"
    assert detail["detail"]["last_modified"] is None
    assert detail["detail"]["auto_createrepo"] is True
    assert detail["repos"] == [detail["detail"]]


async def test_unknown_user_lists_nothing_and_missing_username_is_400(client):
    assert await (await client.get("/api/coprs/nobody/")).json() == {"output": "ok", "repos": []}
    resp = await client.get("/api/coprs/")
    assert resp.status == 400
    assert "username" in (await resp.json())["error"]


async def test_urls_answer_without_slash_and_with_double_slash(client, alice):
    _, token = alice
    assert (await create(client, token)).status == 200
    for path in ("/api/coprs/alice/proj/detail", "/api//coprs/alice/proj/detail/"):
        resp = await client.get(path)
        assert resp.status == 200, path
    resp = await client.post(
        "/api/coprs/alice/new", data={"name": "p2", **CHROOTS}, headers=basic_auth(token)
    )
    assert resp.status == 200


@pytest.mark.parametrize(
    ("fields", "status", "text"),
    [
        ({"name": ""}, 400, "- name: This field is required."),
        ({"name": "123"}, 400, "can not be just number"),
        ({"name": "../x"}, 400, "- name: Name must contain only"),
        ({"name": ".hidden"}, 400, "- name:"),
        ({"name": "x" * 101}, 400, "- name:"),
        ({"name": "ok", "repos": "ftp://x/"}, 400, "- repos: A list of http[s] URLs"),
        ({"name": "ok", "bogus": "1"}, 400, "Unknown arguments passed: bogus"),
        ({"name": "ok", "fedora-1-x86_64": "y"}, 400, "Unknown arguments passed: fedora-1"),
        ({"name": "ok", "description": "x" * 70000}, 413, "description"),
        ({"name": "ok", "initial_pkgs": "http://x.example/a.tar.gz"}, 400, "initial_pkgs"),
    ],
)
async def test_create_validation_names_the_field(client, alice, fields, status, text):
    _, token = alice
    resp = await create(client, token, **fields)
    assert resp.status == status
    body = await resp.json()
    assert body["output"] == "notok"
    assert text in body["error"]


async def test_create_needs_a_chroot_and_credentials(client, alice):
    _, token = alice
    resp = await client.post("/api/coprs/alice/new/", data={"name": "p"}, headers=basic_auth(token))
    assert resp.status == 400
    assert "chroots: At least one chroot" in (await resp.json())["error"]
    resp = await client.post("/api/coprs/alice/new/", data={"name": "p", **CHROOTS})
    assert resp.status == 401


async def test_chroots_field_json_and_multipart_bodies(client, alice):
    _, token = alice
    resp = await client.post(
        "/api/coprs/alice/new/",
        headers=basic_auth(token),
        json={"name": "j", "chroots": "fedora-41-x86_64", "build_enable_net": False},
    )
    assert resp.status == 200, await resp.text()
    detail = (await (await client.get("/api/coprs/alice/j/detail/")).json())["detail"]
    assert list(detail["yum_repos"]) == ["fedora-41-x86_64"]
    assert detail["build_enable_net"] is False
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("name", "m")
    form.add_field("epel-9-x86_64", "y")
    form.add_field("description", "")
    form._is_multipart = True
    resp = await client.post("/api/coprs/alice/new/", data=form, headers=basic_auth(token))
    assert resp.status == 200, await resp.text()
    resp = await client.post(
        "/api/coprs/alice/new/",
        headers=basic_auth(token),
        json={"name": "n", "chroots": ["nested"]},
    )
    assert resp.status == 400
    resp = await client.post(
        "/api/coprs/alice/new/",
        headers={**basic_auth(token), "Content-Type": "application/json"},
        data=b"{not json",
    )
    assert resp.status == 400


async def test_duplicate_names_conflict_even_concurrently(client, alice):
    _, token = alice
    results = await asyncio.gather(*(create(client, token, name="same") for _ in range(20)))
    statuses = sorted(r.status for r in results)
    assert statuses == [200] + [409] * 19
    body = await results[[r.status for r in results].index(409)].json()
    assert "already have a project named 'same'" in body["error"]


async def test_admin_may_create_for_another_user_others_create_for_themselves(client, make_user):
    _, alice_token = await make_user("alice")
    _, root_token = await make_user("root", admin=True)
    await make_user("bob")
    assert (await create(client, alice_token, name="a1", owner="bob")).status == 200
    assert [p["name"] for p in (await (await client.get("/api/coprs/alice/")).json())["repos"]] == [
        "a1"
    ]
    assert (await create(client, root_token, name="r1", owner="bob")).status == 200
    assert [p["name"] for p in (await (await client.get("/api/coprs/bob/")).json())["repos"]] == [
        "r1"
    ]


async def test_modify_changes_only_present_fields(client, alice):
    _, token = alice
    await create(client, token, description="d0", instructions="i0")
    resp = await client.post(
        "/api/coprs/alice/proj/modify/",
        headers=basic_auth(token),
        data=[
            ("description", "d1"),
            ("repos", "http://a.example/"),
            ("repos", "http://b.example/"),
        ],
    )
    assert resp.status == 200
    assert await resp.json() == {
        "output": "ok",
        "description": "d1",
        "instructions": "i0",
        "repos": "http://a.example/ http://b.example/",
    }
    resp = await client.post(
        "/api/coprs/alice/proj/modify/",
        headers=basic_auth(token),
        data={"disable_createrepo": "true", "unlisted_on_hp": "y"},
    )
    detail = (await (await client.get("/api/coprs/alice/proj/detail/")).json())["detail"]
    assert detail["auto_createrepo"] is False
    assert detail["unlisted_on_hp"] is True
    assert detail["description"] == "d1"


async def test_modify_permissions_and_order_of_checks(client, make_user):
    _, alice_token = await make_user("alice")
    bob, bob_token = await make_user("bob")
    await create(client, alice_token)
    url = "/api/coprs/alice/proj/modify/"
    assert (await client.post(url, data={"description": "x"})).status == 401
    resp = await client.post(
        "/api/coprs/alice/nope/modify/", data={"bogus": "1"}, headers=basic_auth(bob_token)
    )
    assert resp.status == 404
    resp = await client.post(url, data={"bogus": "1"}, headers=basic_auth(bob_token))
    assert resp.status == 403
    assert (await resp.json())["error"] == "Only owners and admins may update their projects."
    resp = await client.post(url, data={"bogus": "1"}, headers=basic_auth(alice_token))
    assert resp.status == 400
    # A project admin grant allows it.
    from copr_lite import store

    db = client.server.app[DB]
    project = await db.read(store.get_project, "alice", "proj")
    await db.write(store.grant, project.id, bob.id, "admin")
    resp = await client.post(url, data={"description": "by bob"}, headers=basic_auth(bob_token))
    assert resp.status == 200


async def test_chroot_modify_and_detail(client, make_user):
    _, token = await make_user("alice")
    _, bob_token = await make_user("bob")
    await create(client, token)
    detail = await client.get("/api/coprs/alice/proj/detail/fedora-41-x86_64/")
    assert await detail.json() == {"output": "ok", "buildroot_pkgs": None}
    url = "/api/coprs/alice/proj/modify/fedora-41-x86_64/"
    resp = await client.post(
        url, data={"buildroot_pkgs": "gcc  make >= 4.0 python3-devel"}, headers=basic_auth(token)
    )
    assert await resp.json() == {"output": "ok", "buildroot_pkgs": "gcc make >= 4.0 python3-devel"}
    detail = await client.get("/api/coprs/alice/proj/detail/fedora-41-x86_64/")
    assert (await detail.json())["buildroot_pkgs"] == "gcc make >= 4.0 python3-devel"
    bad = await client.post(
        url, data={"buildroot_pkgs": "gcc; rm -rf /"}, headers=basic_auth(token)
    )
    assert bad.status == 400
    assert "buildroot_pkgs" in (await bad.json())["error"]
    assert (
        await client.post(url, data={"buildroot_pkgs": "x"}, headers=basic_auth(bob_token))
    ).status == 403
    for path in (
        "/api/coprs/alice/proj/detail/fedora-40-x86_64/",
        "/api/coprs/alice/proj/detail/not-a-chroot/",
    ):
        assert (await client.get(path)).status == 404
    resp = await client.post(
        "/api/coprs/alice/proj/modify/fedora-40-x86_64/",
        data={"buildroot_pkgs": "x"},
        headers=basic_auth(token),
    )
    assert resp.status == 404


async def test_delete_needs_verify_and_ownership_and_frees_the_name(client, make_user):
    _, token = await make_user("alice")
    _, bob_token = await make_user("bob")
    await create(client, token)
    url = "/api/coprs/alice/proj/delete/"
    assert (
        await client.post(url, data={"verify": "yes"}, headers=basic_auth(bob_token))
    ).status == 403
    resp = await client.post(url, data={"verify": "no"}, headers=basic_auth(token))
    assert resp.status == 400
    assert "verify" in (await resp.json())["error"]
    resp = await client.post(url, data={"verify": "yes"}, headers=basic_auth(token))
    assert await resp.json() == {"output": "ok", "message": "Project proj has been deleted."}
    assert (await client.get("/api/coprs/alice/proj/detail/")).status == 404
    assert (await client.post(url, data={"verify": "yes"}, headers=basic_auth(token))).status == 404
    assert (await create(client, token)).status == 200


async def test_search_forms_and_ordering(client, make_user):
    _, token = await make_user("alice")
    _, bob_token = await make_user("bob")
    await create(client, token, name="python-tools", description="Handy Python tools")
    await create(client, token, name="other", description="nothing here")
    await create(client, bob_token, name="py", owner="bob", instructions="use PYTHON")
    body = await (await client.get("/api/coprs/search/python/")).json()
    names = [(r["username"], r["coprname"]) for r in body["repos"]]
    assert names[0] == ("alice", "python-tools")
    assert set(names) == {("alice", "python-tools"), ("bob", "py")}
    assert set(body["repos"][0]) == {"username", "coprname", "description"}
    for url in ("/api/coprs/search/?project=python", "/api/coprs/?search=python"):
        assert (await (await client.get(url)).json()) == body
    body = await (await client.get("/api/coprs/search/?project=ali/tool")).json()
    assert [r["coprname"] for r in body["repos"]] == ["python-tools"]
    body = await (await client.get("/api/coprs/search/handy%20tools/")).json()
    assert [r["coprname"] for r in body["repos"]] == ["python-tools"]
    body = await (await client.get("/api/coprs/search/100%25/")).json()
    assert body["repos"] == []
    assert (await client.get("/api/coprs/search/?project=**")).status == 400
    assert (await client.get("/api/coprs/search/x/?limit=5000")).status == 400


async def test_chroots_endpoint_lists_configured_chroots(client):
    body = await (await client.get("/api/chroots/")).json()
    assert body["output"] == "ok"
    assert body["chroots"]["fedora-41-x86_64"] == "rpmbuild"


async def test_body_limits(client, alice):
    _, token = alice
    body = io.BytesIO(b"name=big&description=" + b"x" * (2 * 1024 * 1024))
    resp = await client.post(
        "/api/coprs/alice/new/",
        data=body,
        headers={**basic_auth(token), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert resp.status == 413
    assert (await resp.json())["output"] == "notok"
    resp = await client.post(
        "/api/coprs/alice/new/",
        headers={**basic_auth(token), "Content-Type": "text/plain"},
        data=b"name=x",
    )
    assert resp.status == 400
