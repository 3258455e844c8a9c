"""Package definitions with a source (scm, custom) through API v3 and the web UI: define,
change, read, reset, build; permissions and validation. The dispatcher is not started, so a
build stays `importing` where the test looks at it (tests/test_git_builds.py makes SRPMs from
real git and builds them to the end)."""

from __future__ import annotations

from typing import Any

import pytest
from test_web import F40, F41, csrf_in, post, setup_alice

from copr_lite import auth, store
from copr_lite.keys import DB, TOKEN_CACHE
from copr_lite.testing import add_user, basic_auth

SCM = {
    "clone_url": "https://git.example.org/alice/hello.git",
    "committish": "main",
    "subdirectory": "",
    "spec": "hello.spec",
    "scm_type": "git",
    "source_build_method": "rpkg",
}


@pytest.fixture
async def app_client(aiohttp_client, make_app):
    return await aiohttp_client(make_app(start_dispatcher=False))


@pytest.fixture
async def alice(app_client) -> dict[str, str]:
    """alice's API headers; she owns alice/hello (fedora-40 and 41)."""
    user, _ = await setup_alice(app_client)
    app = app_client.server.app
    token = await auth.issue_token(app[DB], app[TOKEN_CACHE], user, 30)
    return basic_auth(token)


async def api_headers(client: Any, name: str) -> dict[str, str]:
    """API credentials of a new user `name`."""
    _, token = await add_user(client.server.app, name)
    return basic_auth(token)


async def call(
    client: Any, method: str, path: str, headers: dict[str, str], **body: Any
) -> tuple[int, Any]:
    resp = await client.request(method, path, json=body, headers=headers)
    return resp.status, await resp.json()


async def in_hello(
    client: Any, method: str, path: str, headers: dict[str, str], **body: Any
) -> tuple[int, Any]:
    """A call whose body addresses alice/hello."""
    return await call(client, method, path, headers, ownername="alice", projectname="hello", **body)


async def add_scm(client: Any, headers: dict[str, str], name: str = "hello", **extra: Any):
    return await call(
        client,
        "POST",
        f"/api_3/package/add/alice/hello/{name}/scm",
        headers,
        package_name=name,
        **{**SCM, **extra},
    )


async def get_package(client: Any, name: str = "hello") -> tuple[int, Any]:
    resp = await client.get(
        "/api_3/package",
        params={"ownername": "alice", "projectname": "hello", "packagename": name},
    )
    return resp.status, await resp.json()


async def test_add_get_list_edit_reset_scm_package(app_client, alice):
    status, added = await add_scm(app_client, alice, webhook_rebuild=True, timeout=7200)
    assert status == 200, added
    assert added["source_type"] == "scm" and added["auto_rebuild"] is True
    assert added["source_dict"]["clone_url"] == SCM["clone_url"]
    assert added["source_dict"]["committish"] == "main"
    status, found = await get_package(app_client)
    assert status == 200 and found["source_dict"] == added["source_dict"]
    assert found["timeout"] == 7200
    listed = await (
        await app_client.get("/api_3/package/list?ownername=alice&projectname=hello")
    ).json()
    assert [p["name"] for p in listed["items"]] == ["hello"]

    # An edit changes what it is given and keeps the rest.
    status, edited = await call(
        app_client,
        "POST",
        "/api_3/package/edit/alice/hello/hello/scm",
        alice,
        package_name="hello",
        committish="v2",
        clone_url=None,
    )
    assert status == 200, edited
    assert edited["source_dict"]["committish"] == "v2"
    assert edited["source_dict"]["clone_url"] == SCM["clone_url"]
    assert edited["auto_rebuild"] is True

    status, reset = await in_hello(
        app_client,
        "PUT",
        "/api_3/package/reset",
        alice,
        package_name="hello",
    )
    assert status == 200, reset
    assert reset["source_type"] == "unset" and reset["source_dict"] == {}
    assert reset["auto_rebuild"] is False


async def test_custom_package_takes_copr_cli_spellings(app_client, alice):
    status, added = await call(
        app_client,
        "POST",
        "/api_3/package/add/alice/hello/tool/custom",
        alice,
        package_name="tool",
        script="#!/bin/sh\necho hi\n",
        script_resultdir="out",
        script_builddeps="make",
        script_chroot="fedora-latest-x86_64",
        max_builds=3,
    )
    assert status == 200, added
    assert added["source_type"] == "custom"
    assert added["source_dict"]["script"] == "#!/bin/sh\necho hi\n"
    assert added["source_dict"]["resultdir"] == "out"
    settings = await app_client.server.app[DB].read(store.package_settings, 1)
    assert settings["tool"]["keep_last"] == 3


async def test_package_errors(app_client, alice):
    assert (await add_scm(app_client, alice))[0] == 200
    status, body = await add_scm(app_client, alice)
    assert status == 409 and "already exists" in body["error"]
    status, body = await call(
        app_client,
        "POST",
        "/api_3/package/edit/alice/hello/nothere/scm",
        alice,
        package_name="nothere",
        committish="x",
    )
    assert status == 404 and "nothere" in body["error"]
    status, body = await add_scm(app_client, alice, "other", source_build_method="tito")
    assert status == 400 and body["output"] == "notok"
    status, body = await add_scm(app_client, alice, "other", clone_url="file:///etc")
    assert status == 400 and body["output"] == "notok"
    status, body = await call(
        app_client,
        "POST",
        "/api_3/package/add/alice/hello/py/pypi",
        alice,
        package_name="py",
        pypi_package_name="six",
    )
    assert status == 400 and "not supported" in body["error"]
    status, body = await add_scm(app_client, alice, "bad name!")
    assert status in (400, 404) and body["output"] == "notok"

    # Nobody acts on a project that is not theirs.
    bob = await api_headers(app_client, "bob")
    status, body = await add_scm(app_client, bob, "theirs")
    assert status == 403 and body["output"] == "notok"
    status, body = await in_hello(
        app_client,
        "POST",
        "/api_3/package/build",
        bob,
        package_name="hello",
    )
    assert status == 403
    assert (await get_package(app_client, "theirs"))[0] == 404


async def test_package_build_and_source_builds(app_client, alice):
    status, body = await in_hello(
        app_client,
        "POST",
        "/api_3/package/build",
        alice,
        package_name="nothing",
    )
    assert status == 404, body
    await add_scm(app_client, alice, chroot_denylist=["fedora-40-*"])
    status, build = await in_hello(
        app_client,
        "POST",
        "/api_3/package/build",
        alice,
        package_name="hello",
        timeout=4000,
    )
    assert status == 200, build
    assert build["state"] == "importing" and build["chroots"] == [F41]
    assert build["source_package"]["url"] == SCM["clone_url"]
    stored = await app_client.server.app[DB].read(store.get_build, build["id"])
    assert stored.source_type == "scm" and stored.timeout == 4000
    assert stored.source_dict["committish"] == "main"

    status, direct = await in_hello(
        app_client,
        "POST",
        "/api_3/build/create/scm",
        alice,
        clone_url="https://user:secret@git.example.org/x.git",
        committish="",
        subdirectory="",
        spec="",
        scm_type="git",
        source_build_method="make_srpm",
        chroots=[F40],
    )
    assert status == 200, direct
    assert direct["chroots"] == [F40] and "secret" not in direct["source_package"]["url"]
    stored = await app_client.server.app[DB].read(store.get_build, direct["id"])
    assert stored.source_type == "scm"
    assert stored.source_dict["source_build_method"] == "make_srpm"

    status, custom = await in_hello(
        app_client,
        "POST",
        "/api_3/build/create/custom",
        alice,
        script="#!/bin/sh\ntrue\n",
        chroot=None,
        builddeps=None,
        resultdir=None,
        repos=None,
    )
    assert status == 200, custom
    stored = await app_client.server.app[DB].read(store.get_build, custom["id"])
    assert stored.source_type == "custom" and stored.source_url == "custom script"

    status, body = await call(
        app_client, "POST", "/api_3/build/create/pypi", alice, ownername="alice"
    )
    assert status == 400 and "not supported" in body["error"]


async def test_web_packages_tab_defines_edits_and_builds(app_client):
    _, csrf = await setup_alice(app_client)
    page = await app_client.get("/coprs/alice/hello/packages/")
    assert 'id="new-package"' in await page.text()
    form = await app_client.get("/coprs/alice/hello/package/new/")
    assert form.status == 200
    data = {
        "name": "hello",
        "source_type": "scm",
        "clone_url": SCM["clone_url"],
        "committish": "",
        "subdirectory": "",
        "spec": "",
        "source_build_method": "rpkg",
        "webhook_rebuild": "y",
    }
    resp = await post(app_client, "/coprs/alice/hello/package/new/", data, csrf)
    assert resp.status == 303, await resp.text()
    tab = await (await app_client.get("/coprs/alice/hello/packages/")).text()
    assert 'id="source-hello"' in tab and SCM["clone_url"] in tab

    # A wrong field comes back beside its input, with what was typed kept.
    bad = {**data, "name": "other", "clone_url": "ssh://git.example.org/x"}
    resp = await post(app_client, "/coprs/alice/hello/package/new/", bad, csrf)
    text = await resp.text()
    assert resp.status == 400 and "ssh://git.example.org/x" in text

    edit = await app_client.get("/coprs/alice/hello/package/hello/edit/")
    assert SCM["clone_url"] in await edit.text()
    resp = await post(
        app_client, "/coprs/alice/hello/package/hello/edit/", {**data, "committish": "v1"}, csrf
    )
    assert resp.status == 303
    package = await app_client.server.app[DB].read(store.get_package, 1, "hello")
    assert package.source["committish"] == "v1" and package.webhook_rebuild

    resp = await post(app_client, "/coprs/alice/hello/package/hello/build/", {}, csrf)
    assert resp.status == 303 and resp.headers["Location"].startswith("/builds/")
    build_id = int(resp.headers["Location"].split("/")[2])
    build = await app_client.server.app[DB].read(store.get_build, build_id)
    assert build.source_type == "scm" and build.source_dict["committish"] == "v1"

    # Without CSRF nothing is built; strangers are refused.
    resp = await post(app_client, "/coprs/alice/hello/package/hello/build/", {}, None)
    assert resp.status == 403
    assert csrf_in(await (await app_client.get("/coprs/alice/hello/packages/")).text())
