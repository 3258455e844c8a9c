"""The web UI, server side: every page and form, permissions, CSRF, validation, 404s.

Most tests run without the dispatcher (builds stay where the test puts them); the last ones
run a FakeBuilder through the UI end to end.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from copr_lite import store
from copr_lite.builders import Outcome, PackageInfo
from copr_lite.keys import DB
from copr_lite.states import State
from copr_lite.testing import (
    BuilderPlugin,
    FakeBuilder,
    Script,
    add_user,
    basic_auth,
    store_builds,
    wait_until,
)

F41, F40, EL9 = "fedora-41-x86_64", "fedora-40-x86_64", "epel-9-x86_64"


@pytest.fixture
async def app_client(aiohttp_client, make_app):
    """A client on an app whose dispatcher is not started (builds stay as stored)."""
    return await aiohttp_client(make_app(start_dispatcher=False))


def csrf_in(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "form without csrf_token"
    return match.group(1)


async def sign_in(client, name: str) -> str:
    """Sign `name` in; returns a CSRF token valid for the client's cookie."""
    html = await (await client.get("/login/")).text()
    csrf = csrf_in(html)
    resp = await client.post(
        "/login/",
        data={"username": name, "password": "password123", "csrf_token": csrf, "next": "/"},
        allow_redirects=False,
    )
    assert resp.status == 302
    return csrf


async def post(client, path: str, data: dict[str, Any], csrf: str | None) -> aiohttp.ClientResponse:
    body = dict(data)
    if csrf is not None:
        body["csrf_token"] = csrf
    return await client.post(path, data=body, allow_redirects=False)


async def create(client, csrf: str, name: str = "hello", **extra: str) -> aiohttp.ClientResponse:
    data = {"name": name, "description": "A hello project", F41: "y", F40: "y", **extra}
    return await post(client, "/coprs/new/", data, csrf)


async def setup_alice(client, project: str = "hello") -> tuple[Any, str]:
    app = client.server.app
    alice, _ = await add_user(app, "alice")
    csrf = await sign_in(client, "alice")
    resp = await create(client, csrf, project)
    assert resp.status == 303, await resp.text()
    return alice, csrf


async def store_build(client, project: str = "hello", owner: str = "alice", **state: Any) -> int:
    """A build stored like new_build does (importing), optionally moved on."""
    db = client.server.app[DB]
    proj = await db.read(store.get_project, owner, project)
    user = await db.read(store.get_user, owner)
    chroots = state.pop("chroots", [F40, F41])
    url = "https://example.org/hello-1.0-1.src.rpm"
    [build_id] = await db.write(store_builds, proj.id, user.id, [url], chroots)
    if state.get("package"):
        await db.write(
            store.set_build_package, build_id, PackageInfo("hello", None, "1.0", "1", "src")
        )
    for chroot, target in state.get("moves", {}).items():
        path = {
            State.PENDING: [State.PENDING],
            State.RUNNING: [State.PENDING, State.STARTING, State.RUNNING],
            State.SUCCEEDED: [State.PENDING, State.STARTING, State.RUNNING, State.SUCCEEDED],
            State.FAILED: [State.PENDING, State.STARTING, State.RUNNING, State.FAILED],
        }[target]
        for step in path:
            await db.write(store.set_chroot_state, build_id, chroot, step)
    return build_id


# ---------------------------------------------------------------- read-only pages


async def test_home_shows_queue_running_and_recent_builds(app_client):
    await setup_alice(app_client)
    queued = await store_build(app_client)
    running = await store_build(app_client, package=True, moves={F40: State.RUNNING})
    html = await (await app_client.get("/")).text()
    assert 'id="queue-length">3<' in html  # 2 importing + 1 pending (F41 of the running one)
    assert 'id="running-count">1<' in html
    assert f'href="/builds/{queued}/"' in html and f'href="/builds/{running}/"' in html
    assert "Running builds" in html and "Recent builds" in html
    # Navigation: sign-out, the API page, search.
    assert 'action="/logout/"' in html and 'href="/api/"' in html and 'action="/search/"' in html


async def test_home_for_anonymous_and_empty(app_client):
    resp = await app_client.get("/")
    assert resp.status == 200
    html = await resp.text()
    assert 'id="no-running"' in html and "No builds yet." in html
    assert 'href="/login/?next=/"' in html


async def test_unlisted_projects_stay_off_the_home_page(app_client):
    _, csrf = await setup_alice(app_client)
    await create(app_client, csrf, "secret", unlisted_on_hp="y")
    build = await store_build(app_client, "secret")
    html = await (await app_client.get("/")).text()
    assert f'href="/builds/{build}/"' not in html
    html = await (await app_client.get("/coprs/alice/secret/")).text()
    assert f'href="/builds/{build}/"' in html


async def test_project_lists_are_paged(app_client):
    alice, _ = await setup_alice(app_client)
    db = app_client.server.app[DB]
    for i in range(55):
        await db.write(store.create_project, alice.id, {"name": f"p{i:02d}"}, [F40])
    html = await (await app_client.get("/coprs/")).text()
    assert "56 projects" in html and "Page 1 of 2" in html
    assert "alice/p54" in html and "alice/p04" not in html
    html = await (await app_client.get("/coprs/?page=2")).text()
    assert "alice/p04" in html and "alice/hello" in html
    html = await (await app_client.get("/coprs/alice/?page=2")).text()
    assert "alice/p04" in html and "Page 2 of 2" in html
    assert (await app_client.get("/coprs/?page=nonsense")).status == 200


async def test_user_projects_page_and_unknown_user(app_client):
    await setup_alice(app_client)
    html = await (await app_client.get("/coprs/alice/")).text()
    assert "Projects of alice" in html and "alice/hello" in html
    assert (await app_client.get("/coprs/nobody/")).status == 404
    assert (await app_client.get("/coprs/..bad/")).status == 404


async def test_project_page_shows_everything(app_client):
    await setup_alice(app_client)
    db = app_client.server.app[DB]
    proj = await db.read(store.get_project, "alice", "hello")
    await db.write(store.set_chroot_packages, proj.id, F40, "gcc make")
    await db.write(store.update_project, proj.id, {"instructions": "Install hello."})
    done = await store_build(app_client, package=True, moves={F40: State.SUCCEEDED})
    html = await (await app_client.get("/coprs/alice/hello/")).text()
    assert "A hello project" in html and "Install hello." in html
    assert "dnf copr enable --hub http://127.0.0.1:8080 alice/hello" in html
    assert f"/coprs/alice/hello/repo/{F40}/alice-hello-{F40}.repo" in html
    assert "gcc make" in html
    # The monitor: the package in F40 links to the build with its state.
    assert re.search(rf'href="/builds/{done}/"[^>]*>\s*<span class="state state-succeeded"', html)
    assert f'href="/coprs/alice/hello/chroot/{F40}/edit/"' in html
    assert "/coprs/alice/hello/new_build/" in html


async def test_project_page_for_strangers_has_no_actions(app_client):
    await setup_alice(app_client)
    await app_client.post("/logout/", data={"csrf_token": await _csrf(app_client)})
    html = await (await app_client.get("/coprs/alice/hello/")).text()
    assert "/new_build/" not in html and "/edit/" not in html and "/delete/" not in html


async def _csrf(client, path: str = "/") -> str:
    return csrf_in(await (await client.get(path)).text())


async def test_project_builds_are_paged_newest_first(app_client):
    await setup_alice(app_client)
    ids = [await store_build(app_client) for _ in range(30)]
    html = await (await app_client.get("/coprs/alice/hello/builds/")).text()
    assert "30 builds" in html and "Page 1 of 2" in html
    assert html.index(f'href="/builds/{ids[-1]}/"') < html.index(f'href="/builds/{ids[-2]}/"')
    assert f'href="/builds/{ids[0]}/"' not in html
    html = await (await app_client.get("/coprs/alice/hello/builds/?page=2")).text()
    assert f'href="/builds/{ids[0]}/"' in html
    html = await (await app_client.get("/coprs/alice/hello/?page=2")).text()
    assert f'href="/builds/{ids[0]}/"' in html


async def test_unknown_project_and_build_are_404_pages(app_client):
    for path in (
        "/coprs/alice/nope/",
        "/coprs/alice/nope/builds/",
        "/builds/12345/",
        "/builds/abc/",
        "/builds/12345/state",
        "/builds/99999999999999999999/",
    ):
        resp = await app_client.get(path)
        assert resp.status == 404, path
        assert resp.content_type == "text/html" or path.endswith("state")


async def test_build_page_and_state(app_client):
    await setup_alice(app_client)
    build = await store_build(
        app_client, package=True, moves={F40: State.SUCCEEDED, F41: State.RUNNING}
    )
    db = app_client.server.app[DB]
    await db.write(
        store.finish_chroot, build, F40, State.SUCCEEDED, None, []
    )  # no-op: already terminal
    html = await (await app_client.get(f"/builds/{build}/")).text()
    assert 'id="build-state">running<' in html
    assert f'id="chroot-{F40}"' in html and f'id="chroot-{F41}"' in html
    assert f'id="log-{F41}" data-log="{F41}"' in html
    assert 'new EventSource("/builds/" + buildId + "/events")' in html
    assert f'href="/builds/{build}/{F40}/log"' in html
    assert "hello-1.0-1.src.rpm" in html and "import log" in html
    assert 'id="cancel-form"' in html
    state = await (await app_client.get(f"/builds/{build}/state")).json()
    assert state["state"] == "running" and state["finished"] is False
    chroots = {c["name"]: c for c in state["chroots"]}
    assert chroots[F40]["state"] == "succeeded" and chroots[F40]["finished"]
    assert chroots[F41]["state"] == "running" and chroots[F41]["results"]


async def test_build_page_hides_cancel_from_others_and_when_finished(app_client):
    await setup_alice(app_client)
    running = await store_build(app_client)
    done = await store_build(app_client, package=True, moves={F40: State.SUCCEEDED})
    await app_client.server.app[DB].write(store.cancel_build, done)
    html = await (await app_client.get(f"/builds/{done}/")).text()
    assert 'id="cancel-form"' not in html
    await add_user(app_client.server.app, "bob")
    await sign_in(app_client, "bob")
    html = await (await app_client.get(f"/builds/{running}/")).text()
    assert 'id="cancel-form"' not in html


async def test_search(app_client):
    _, csrf = await setup_alice(app_client)
    await create(app_client, csrf, "tools", description="Useful tools")
    html = await (await app_client.get("/search/?q=useful")).text()
    assert 'href="/coprs/alice/tools/"' in html and 'href="/coprs/alice/hello/"' not in html
    html = await (await app_client.get("/search/?q=alice/hel")).text()
    assert 'href="/coprs/alice/hello/"' in html
    html = await (await app_client.get("/search/?q=zzz")).text()
    assert 'id="no-results"' in html
    resp = await app_client.get("/search/?q=**")
    assert resp.status == 400
    html = await resp.text()
    assert 'id="q-error"' in html and "at least 1 character" in html and 'value="**"' in html
    assert (await app_client.get("/search/")).status == 200


async def test_api_page_keeps_working_in_the_new_layout(app_client):
    resp = await app_client.get("/api/")
    assert resp.status == 200
    html = await resp.text()
    assert "API for the Copr Build System" in html and 'href="/coprs/"' in html


# ---------------------------------------------------------------- forms: sign-in needed


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/coprs/new/"),
        ("POST", "/coprs/new/"),
        ("GET", "/coprs/alice/hello/edit/"),
        ("POST", "/coprs/alice/hello/edit/"),
        ("GET", f"/coprs/alice/hello/chroot/{F40}/edit/"),
        ("GET", "/coprs/alice/hello/new_build/"),
        ("POST", "/coprs/alice/hello/new_build/"),
        ("GET", "/coprs/alice/hello/delete/"),
        ("POST", "/coprs/alice/hello/delete/"),
        ("POST", "/builds/1/cancel/"),
    ],
)
async def test_forms_send_anonymous_visitors_to_sign_in(app_client, method, path):
    resp = await app_client.request(method, path, allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"].startswith("/login/?next=")


# ---------------------------------------------------------------- create / edit project


async def test_create_project_form_and_result(app_client):
    await add_user(app_client.server.app, "alice")
    await sign_in(app_client, "alice")
    html = await (await app_client.get("/coprs/new/")).text()
    for chroot in (F41, F40, EL9):
        assert f'name="{chroot}" value="y" checked' in html
    assert 'name="persistent"' not in html  # admins only
    csrf = csrf_in(html)
    resp = await create(app_client, csrf, "hello", repos="https://example.org/repo/")
    assert resp.status == 303
    assert resp.headers["Location"] == "/coprs/alice/hello/"
    db = app_client.server.app[DB]
    project, _, chroots = await db.read(store.get_project_with_roles, "alice", "hello", None)
    assert chroots == (F40, F41)
    assert project.description == "A hello project"
    assert project.repos == "https://example.org/repo/"
    assert not project.build_enable_net  # checkbox not sent: off


async def test_create_project_errors_are_shown_beside_fields_with_input_kept(app_client):
    await add_user(app_client.server.app, "alice")
    csrf = await sign_in(app_client, "alice")
    resp = await post(
        app_client,
        "/coprs/new/",
        {"name": "bad name!", "description": "kept <text>", "repos": "ftp://nope"},
        csrf,
    )
    assert resp.status == 400
    html = await resp.text()
    assert 'id="name-error"' in html and "Name must contain only letters" in html
    assert 'id="chroots-error"' in html and "Select at least one chroot." in html
    assert 'id="repos-error"' in html and "ftp://nope" in html
    assert 'value="bad name!"' in html and "kept &lt;text&gt;</textarea>" in html
    assert 'aria-invalid="true" aria-describedby="name-error"' in html
    # Nothing was stored.
    assert await app_client.server.app[DB].read(store.list_projects, "alice") == []


async def test_create_project_name_taken_and_persistent_refused(app_client):
    _, csrf = await setup_alice(app_client)
    resp = await create(app_client, csrf, "hello")
    assert resp.status == 400
    assert "You already have a project named &#39;hello&#39;." in await resp.text()
    resp = await create(app_client, csrf, "keep", persistent="y")
    assert resp.status == 400
    assert 'id="persistent-error"' in await resp.text()


async def test_admin_may_create_persistent_project(app_client):
    await add_user(app_client.server.app, "root", admin=True)
    csrf = await sign_in(app_client, "root")
    assert 'name="persistent"' in await (await app_client.get("/coprs/new/")).text()
    assert (await create(app_client, csrf, "keep", persistent="y")).status == 303
    project = await app_client.server.app[DB].read(store.get_project, "root", "keep")
    assert project.persistent


async def test_edit_project(app_client):
    _, csrf = await setup_alice(app_client)
    html = await (await app_client.get("/coprs/alice/hello/edit/")).text()
    assert "A hello project</textarea>" in html
    assert f'name="{F40}" value="y" checked' in html
    assert f'name="{EL9}" value="y">' in html
    db = app_client.server.app[DB]
    proj = await db.read(store.get_project, "alice", "hello")
    await db.write(store.set_chroot_packages, proj.id, F40, "gcc")
    resp = await post(
        app_client,
        "/coprs/alice/hello/edit/",
        {"description": "New words", "instructions": "Do this", F40: "y", EL9: "y"},
        csrf,
    )
    assert resp.status == 303 and resp.headers["Location"] == "/coprs/alice/hello/"
    project, _, chroots = await db.read(store.get_project_with_roles, "alice", "hello", None)
    assert project.description == "New words" and project.instructions == "Do this"
    assert chroots == (EL9, F40)
    assert await db.read(store.get_chroot_packages, proj.id, F40) == (True, "gcc")


async def test_edit_project_errors_keep_input(app_client):
    _, csrf = await setup_alice(app_client)
    resp = await post(
        app_client, "/coprs/alice/hello/edit/", {"description": "typed", "repos": "nope"}, csrf
    )
    assert resp.status == 400
    html = await resp.text()
    assert 'id="repos-error"' in html and 'id="chroots-error"' in html
    assert "typed</textarea>" in html


async def test_edit_chroot_buildroot_packages(app_client):
    _, csrf = await setup_alice(app_client)
    path = f"/coprs/alice/hello/chroot/{F40}/edit/"
    assert (await app_client.get(path)).status == 200
    resp = await post(app_client, path, {"buildroot_pkgs": "gcc  make >= 4.3"}, csrf)
    assert resp.status == 303
    db = app_client.server.app[DB]
    proj = await db.read(store.get_project, "alice", "hello")
    assert await db.read(store.get_chroot_packages, proj.id, F40) == (True, "gcc make >= 4.3")
    resp = await post(app_client, path, {"buildroot_pkgs": "gcc >="}, csrf)
    assert resp.status == 400
    html = await resp.text()
    assert 'id="buildroot_pkgs-error"' in html and "needs a version" in html
    assert "gcc &gt;=</textarea>" in html
    assert (await app_client.get(f"/coprs/alice/hello/chroot/{EL9}/edit/")).status == 404


# ---------------------------------------------------------------- permissions and CSRF


async def test_other_users_are_refused(app_client):
    await setup_alice(app_client)
    build = await store_build(app_client)
    await add_user(app_client.server.app, "bob")
    csrf = await sign_in(app_client, "bob")
    for path in (
        "/coprs/alice/hello/edit/",
        f"/coprs/alice/hello/chroot/{F40}/edit/",
        "/coprs/alice/hello/new_build/",
        "/coprs/alice/hello/delete/",
    ):
        resp = await app_client.get(path)
        assert resp.status == 403, path
        resp = await post(app_client, path, {"description": "x", "verify": "yes"}, csrf)
        assert resp.status == 403, path
    resp = await post(app_client, f"/builds/{build}/cancel/", {}, csrf)
    assert resp.status == 403
    assert "You are not allowed to build in the project alice/hello." in await resp.text()
    db = app_client.server.app[DB]
    assert await db.read(store.get_project, "alice", "hello") is not None
    assert (await db.read(store.get_build, build)).canceled is False


async def test_builder_role_may_build_and_cancel_but_not_edit(app_client):
    await setup_alice(app_client)
    build = await store_build(app_client)
    app = app_client.server.app
    bob, _ = await add_user(app, "bob")
    proj = await app[DB].read(store.get_project, "alice", "hello")
    await app[DB].write(store.grant, proj.id, bob.id, "builder")
    csrf = await sign_in(app_client, "bob")
    assert (await app_client.get("/coprs/alice/hello/new_build/")).status == 200
    assert (await app_client.get("/coprs/alice/hello/edit/")).status == 403
    resp = await post(app_client, f"/builds/{build}/cancel/", {}, csrf)
    assert resp.status == 303


@pytest.mark.parametrize(
    "path",
    [
        "/coprs/new/",
        "/coprs/alice/hello/edit/",
        f"/coprs/alice/hello/chroot/{F40}/edit/",
        "/coprs/alice/hello/new_build/",
        "/coprs/alice/hello/delete/",
        "/builds/{build}/cancel/",
    ],
)
@pytest.mark.parametrize("token", [None, "forged"])
async def test_forms_without_the_csrf_token_are_refused(app_client, path, token):
    await setup_alice(app_client)
    build = await store_build(app_client)
    path = path.format(build=build)
    data = {"name": "other", F40: "y", "description": "x", "verify": "yes", "pkgs": ""}
    resp = await post(app_client, path, data, token)
    assert resp.status == 403
    assert "CSRF" in await resp.text()
    db = app_client.server.app[DB]
    assert await db.read(store.get_project, "alice", "other") is None
    assert await db.read(store.get_project, "alice", "hello") is not None
    assert (await db.read(store.get_build, build)).canceled is False


async def test_multipart_form_without_csrf_is_refused_and_upload_removed(app_client, tmp_path):
    await setup_alice(app_client)
    form = aiohttp.FormData()
    form.add_field("csrf_token", "forged")
    form.add_field("srpm", b"not really", filename="x-1-1.src.rpm")
    resp = await app_client.post("/coprs/alice/hello/new_build/", data=form)
    assert resp.status == 403
    uploads = tmp_path / "data" / "uploads"
    assert not uploads.exists() or not any(uploads.rglob("*.rpm"))


# ---------------------------------------------------------------- builds: submit, cancel


async def test_new_build_by_url(app_client):
    _, csrf = await setup_alice(app_client)
    html = await (await app_client.get("/coprs/alice/hello/new_build/")).text()
    assert f'name="{F40}" value="y" checked' in html and 'enctype="multipart/form-data"' in html
    form = aiohttp.FormData()
    for key, value in {
        "csrf_token": csrf,
        "pkgs": "https://example.org/hello-1.0-1.src.rpm",
        F41: "y",
        "timeout": "600",
    }.items():
        form.add_field(key, value)
    form.add_field("srpm", b"", filename="", content_type="application/octet-stream")
    resp = await app_client.post("/coprs/alice/hello/new_build/", data=form, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    build_id = int(resp.headers["Location"].split("/")[2])
    build = await app_client.server.app[DB].read(store.get_build, build_id)
    assert [c.chroot for c in build.chroots] == [F41]
    assert build.timeout == 600 and build.source_url.endswith("hello-1.0-1.src.rpm")
    assert not build.enable_net


async def test_new_build_by_upload(app_client, tmp_path):
    _, csrf = await setup_alice(app_client)
    form = aiohttp.FormData()
    form.add_field("csrf_token", csrf)
    form.add_field("pkgs", "")
    form.add_field(F40, "y")
    form.add_field("enable_net", "y")
    form.add_field("srpm", b"srpm bytes", filename="hello-1.0-1.src.rpm")
    resp = await app_client.post("/coprs/alice/hello/new_build/", data=form, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    build_id = int(resp.headers["Location"].split("/")[2])
    build = await app_client.server.app[DB].read(store.get_build, build_id)
    assert build.srpm_path and Path(build.srpm_path).read_bytes() == b"srpm bytes"
    assert build.source_url.endswith(f"/srpm-builds/{build_id:08d}/hello-1.0-1.src.rpm")
    assert build.enable_net


@pytest.mark.parametrize(
    ("fields", "upload", "errors"),
    [
        ({}, None, {"pkgs": "Give the URL of an SRPM"}),
        ({"pkgs": "https://example.org/x.tar.gz"}, None, {"pkgs": "URLs must end with .src.rpm"}),
        ({"pkgs": "http://127.0.0.1/x-1-1.src.rpm"}, None, {}),  # allowed in tests
        ({"pkgs": "http://169.254.1.1/x-1-1.src.rpm"}, None, {"pkgs": "link-local"}),
        (
            {"pkgs": "https://example.org/x-1-1.src.rpm"},
            ("x-1-1.src.rpm", b"x"),
            {"pkgs": "not both", "srpm": "Choose the file again"},
        ),
        ({}, ("notes.txt", b"x"), {"srpm": "You can upload only .src.rpm"}),
        (
            {"pkgs": "https://example.org/x-1-1.src.rpm", "timeout": "soon"},
            None,
            {"timeout": "Must be a whole number."},
        ),
        ({"pkgs": "https://example.org/x-1-1.src.rpm", "chroots": "-"}, None, {}),
    ],
)
async def test_new_build_errors_beside_fields(app_client, tmp_path, fields, upload, errors):
    _, csrf = await setup_alice(app_client)
    form = aiohttp.FormData()
    form.add_field("csrf_token", csrf)
    data = {F40: "y", **fields}
    if "chroots" in data:  # no chroot ticked
        data.pop("chroots")
        data.pop(F40)
        errors = {"chroots": "Select at least one chroot."}
    for key, value in data.items():
        form.add_field(key, value)
    if upload:
        form.add_field("srpm", upload[1], filename=upload[0])
    resp = await app_client.post("/coprs/alice/hello/new_build/", data=form, allow_redirects=False)
    if not errors:
        assert resp.status == 303
        return
    assert resp.status == 400
    html = await resp.text()
    for field, text in errors.items():
        match = re.search(rf'id="{field}-error" role="alert">([^<]*)<', html)
        assert match and text in match.group(1), (field, html[-3000:])
    if "pkgs" in data and "srpm" not in errors:
        assert data["pkgs"] in html  # what was typed is kept
    uploads = tmp_path / "data" / "uploads"
    assert not uploads.exists() or not any(p.is_file() for p in uploads.rglob("*"))


async def test_cancel_build(app_client):
    _, csrf = await setup_alice(app_client)
    build = await store_build(app_client)
    resp = await post(app_client, f"/builds/{build}/cancel/", {}, csrf)
    assert resp.status == 303 and resp.headers["Location"] == f"/builds/{build}/"
    detail = await app_client.server.app[DB].read(store.get_build, build)
    assert detail.canceled
    # Canceling again (nothing left) just shows the build.
    resp = await post(app_client, f"/builds/{build}/cancel/", {}, csrf)
    assert resp.status == 303
    assert (await post(app_client, "/builds/999/cancel/", {}, csrf)).status == 404


# ---------------------------------------------------------------- delete


async def test_delete_project_needs_confirmation(app_client):
    _, csrf = await setup_alice(app_client)
    build = await store_build(app_client)
    html = await (await app_client.get("/coprs/alice/hello/delete/")).text()
    assert 'name="verify" value="yes"' in html
    resp = await post(app_client, "/coprs/alice/hello/delete/", {}, csrf)
    assert resp.status == 400
    assert 'id="verify-error"' in await resp.text()
    db = app_client.server.app[DB]
    assert await db.read(store.get_project, "alice", "hello") is not None
    resp = await post(app_client, "/coprs/alice/hello/delete/", {"verify": "yes"}, csrf)
    assert resp.status == 303 and resp.headers["Location"] == "/coprs/alice/"
    assert await db.read(store.get_project, "alice", "hello") is None
    assert await db.read(store.get_build, build) is None
    assert (await app_client.get("/coprs/alice/hello/")).status == 404


async def test_persistent_project_cannot_be_deleted(app_client):
    await add_user(app_client.server.app, "root", admin=True)
    csrf = await sign_in(app_client, "root")
    await create(app_client, csrf, "keep", persistent="y")
    resp = await post(app_client, "/coprs/root/keep/delete/", {"verify": "yes"}, csrf)
    assert resp.status == 400
    assert "protected against deletion" in await resp.text()


# ---------------------------------------------------------------- the whole way, with a builder


async def test_ui_build_runs_through_the_dispatcher(aiohttp_client, make_app, tmp_path):
    builder = FakeBuilder(scripts={"hello-copr-lite": Script(seconds=0.2, lines=("one", "two"))})
    chroots = {F40: "fake"}
    app = make_app(plugins=[BuilderPlugin(builder)], chroots=chroots)
    client = await aiohttp_client(app)
    await add_user(app, "alice")
    csrf = await sign_in(client, "alice")
    assert (await post(client, "/coprs/new/", {"name": "hello", F40: "y"}, csrf)).status == 303
    from copr_lite.conformance import make_srpm

    root = Path(__file__).resolve().parent / "fixtures"
    srpm = make_srpm(root / "hello-copr-lite.spec", tmp_path / "srpms", sourcedir=root)
    form = aiohttp.FormData()
    form.add_field("csrf_token", csrf)
    form.add_field(F40, "y")
    form.add_field("srpm", srpm.read_bytes(), filename=srpm.name)
    resp = await client.post("/coprs/alice/hello/new_build/", data=form, allow_redirects=False)
    assert resp.status == 303
    path = resp.headers["Location"]

    async def done() -> bool:
        state = await (await client.get(path + "state")).json()
        return state["finished"]

    await wait_until(done, within=30)
    state = await (await client.get(path + "state")).json()
    assert state["state"] == "succeeded"
    assert state["chroots"][0]["built"]
    html = await (await client.get(path)).text()
    assert 'id="build-state">succeeded<' in html
    # The live log of a finished chroot is the whole log, then `end`.
    build_id = path.split("/")[2]
    text = await (await client.get(f"/builds/{build_id}/{F40}/live-log")).text()
    assert "data: one" in text and "event: end\ndata: succeeded" in text
    # The API sees the same build.
    _, token = await add_user(app, "viewer")
    detail = await (
        await client.get(f"/api/coprs/build_detail/{build_id}/", headers=basic_auth(token))
    ).json()
    assert detail["status"] == "succeeded"
    assert builder.finished == [(int(build_id), F40)]
    assert Outcome.SUCCEEDED  # the FakeBuilder script's default outcome
