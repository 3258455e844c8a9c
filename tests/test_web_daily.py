"""The web UI's daily work, server side: the one live stream per page, rebuilds, the builds
list's filters and paging, the packages and permissions tabs, flash messages, confirmation,
sign-in flow, install instructions, search by package, the results browser.

The dispatcher is not started: builds stay where a test puts them, and logs are written into
the results tree as the dispatcher writes them.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from test_web import (
    EL9,
    F40,
    F41,
    create,
    csrf_in,
    post,
    setup_alice,
    sign_in,
    store_build,
)

from copr_lite import auth, store
from copr_lite.builders import PackageInfo
from copr_lite.keys import CONFIG, DB, PUBLISHER
from copr_lite.states import State
from copr_lite.testing import add_user

# ---------------------------------------------------------------- helpers


@pytest.fixture
async def app_client(aiohttp_client, make_app):
    """A client on an app whose dispatcher is not started (builds stay as stored)."""
    return await aiohttp_client(make_app(start_dispatcher=False))


def log_path(client: Any, build_id: int, chroot: str, pkg: str = "hello") -> Path:
    path = client.server.app[PUBLISHER].build_dir("alice", "hello", chroot, build_id, pkg)
    path.mkdir(parents=True, exist_ok=True)
    return path / "builder-live.log"


def import_log_path(client: Any, build_id: int) -> Path:
    path = client.server.app[PUBLISHER].import_dir("alice", "hello", build_id)
    path.mkdir(parents=True, exist_ok=True)
    return path / "builder-live.log"


async def next_event(resp: Any, wait: float = 3.0) -> tuple[str, Any, str | None]:
    """(event, data, id) of the next server-sent event (comments skipped)."""
    while True:
        raw = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), wait)
        fields: dict[str, str] = {}
        for line in raw.decode().splitlines():
            if line and not line.startswith(":"):
                key, _, value = line.partition(": ")
                fields[key] = value
        if "event" in fields:
            return fields["event"], json.loads(fields["data"]), fields.get("id")


async def events_until(resp: Any, last: str, wait: float = 5.0) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []
    while True:
        event, data, _ = await next_event(resp, wait)
        seen.append((event, data))
        if event == last:
            return seen


def log_lines(events: list[tuple[str, Any]], log: str) -> list[str]:
    return [line for e, d in events if e == "log" and d["log"] == log for line in d["lines"]]


async def move(client: Any, build_id: int, chroot: str, *states: State, **kw: Any) -> None:
    for state in states:
        await client.server.app[DB].write(store.set_chroot_state, build_id, chroot, state, **kw)


# ---------------------------------------------------------------- one stream per build page


async def test_build_events_carry_every_log_and_state_in_one_stream(app_client):
    await setup_alice(app_client)
    build = await store_build(app_client, package=True, chroots=[F40, F41])
    import_log_path(app_client, build).write_text("Importing build\nImported hello-1.0-1\n")
    await move(app_client, build, F40, State.PENDING, State.STARTING, State.RUNNING)
    await move(app_client, build, F41, State.PENDING, State.STARTING, State.RUNNING)
    log_path(app_client, build, F40).write_text("f40 one\nf40 two\n")
    log_path(app_client, build, F41).write_text("f41 one\n")

    resp = await app_client.get(f"/builds/{build}/events")
    assert resp.status == 200 and resp.content_type == "text/event-stream"
    event, view, _ = await next_event(resp)
    assert event == "state" and view["state"] == "running"
    seen = []
    while len(log_lines(seen, F40)) < 2 or not log_lines(seen, F41) or not log_lines(seen, ""):
        event, data, _ = await next_event(resp)
        seen.append((event, data))
    assert log_lines(seen, "") == ["Importing build", "Imported hello-1.0-1"]
    assert log_lines(seen, F40) == ["f40 one", "f40 two"]
    first_f40 = next(d for e, d in seen if e == "log" and d["log"] == F40)
    assert first_f40["first"] == 1

    # The log grows; then a line announcing the end arrives before the database has it: it
    # is held until the state is stored, and the state comes first.
    with log_path(app_client, build, F40).open("a") as fh:
        fh.write("f40 three\nFinished: succeeded\n")
    event, data, _ = await next_event(resp)
    while event == "state":  # a running build's times
        event, data, _ = await next_event(resp)
    assert (event, data["lines"]) == ("log", ["f40 three"])
    await asyncio.sleep(0.8)  # three polls: the Finished line stays held
    await move(app_client, build, F40, State.SUCCEEDED)
    event, view, _ = await next_event(resp)
    while {c["name"]: c["state"] for c in view["chroots"]}[F40] != "succeeded":
        assert event == "state", (event, view)  # nothing of the log before the state
        event, view, _ = await next_event(resp)
    assert event == "state"
    event, data, _ = await next_event(resp)
    assert (event, data["log"], data["lines"], data["first"]) == (
        "log",
        F40,
        ["Finished: succeeded"],
        4,
    )

    # The build ends: a last line without its newline is sent, then `end`.
    with log_path(app_client, build, F41).open("a") as fh:
        fh.write("Finished: failed: boom")
    await move(app_client, build, F41, State.FAILED, fail_reason="boom")
    rest = await events_until(resp, "end")
    assert log_lines(rest, F41) == ["Finished: failed: boom"]
    assert rest[-1] == ("end", "failed")
    assert [e for e, _ in rest].index("state") < [e for e, _ in rest].index("log")


async def test_build_events_resume_from_last_event_id(app_client):
    await setup_alice(app_client)
    build = await store_build(app_client, package=True, chroots=[F40])
    await move(app_client, build, F40, State.PENDING, State.STARTING, State.RUNNING)
    log_path(app_client, build, F40).write_text("one\ntwo\n")
    resp = await app_client.get(f"/builds/{build}/events")
    event_id = None
    while True:
        event, _, event_id = await next_event(resp)
        if event == "log":
            break
    resp.close()
    with log_path(app_client, build, F40).open("a") as fh:
        fh.write("three\n")
    await move(app_client, build, F40, State.SUCCEEDED)
    resp = await app_client.get(f"/builds/{build}/events", headers={"Last-Event-ID": event_id})
    seen = await events_until(resp, "end")
    assert log_lines(seen, F40) == ["three"]
    assert next(d for e, d in seen if e == "log")["first"] == 3


async def test_build_events_send_only_the_end_of_a_long_log(app_client, monkeypatch):
    from copr_lite.views import events

    monkeypatch.setattr(events, "LOG_WINDOW", 1000)
    await setup_alice(app_client)
    build = await store_build(app_client, package=True, chroots=[F40], moves={F40: State.FAILED})
    log_path(app_client, build, F40).write_text("".join(f"line {n:04d}\n" for n in range(1, 501)))
    resp = await app_client.get(f"/builds/{build}/events")
    seen = await events_until(resp, "end")
    [data] = [d for e, d in seen if e == "log" and d["log"] == F40]
    # 5,000 bytes, the last 1,000 of them (100 lines of 10 bytes) are sent, numbered right.
    assert data["skipped"] == 400 and data["first"] == 401
    assert data["lines"][0] == "line 0401" and data["lines"][-1] == "line 0500"


async def test_build_events_of_unknown_or_deleted_builds(app_client):
    await setup_alice(app_client)
    for path in ("/builds/999/events", "/builds/x/events"):
        resp = await app_client.get(path)
        assert resp.status == 404
    build = await store_build(app_client)
    resp = await app_client.get(f"/builds/{build}/events")
    assert (await next_event(resp))[0] == "state"
    proj = await app_client.server.app[DB].read(store.get_project, "alice", "hello")
    await app_client.server.app[DB].write(store.delete_project, proj.id)
    assert (await events_until(resp, "end"))[-1] == ("end", "deleted")


async def test_list_events_follow_states_until_all_end(app_client):
    await setup_alice(app_client)
    one = await store_build(app_client, package=True, chroots=[F40])
    two = await store_build(app_client, package=True, chroots=[F40])
    resp = await app_client.get(f"/events/builds?ids={one},{two},424242")
    event, data, _ = await next_event(resp)
    assert event == "states" and set(data) == {str(one), str(two)}
    assert data[str(one)] == {"state": "importing", "chroots": {F40: "importing"}}
    await move(app_client, one, F40, State.PENDING, State.STARTING, State.RUNNING)
    event, data, _ = await next_event(resp)
    assert data == {str(one): {"state": "running", "chroots": {F40: "running"}}}
    await move(app_client, one, F40, State.SUCCEEDED)
    await app_client.server.app[DB].write(store.cancel_build, two)
    seen = await events_until(resp, "end")
    merged: dict[str, Any] = {}
    for event, data in seen:
        if event == "states":
            merged.update(data)
    assert merged[str(one)]["state"] == "succeeded" and merged[str(two)]["state"] == "canceled"
    for bad in ("", "1,x", ",".join(["1"] * 201), "1;2"):
        resp = await app_client.get(f"/events/builds?ids={bad}")
        assert resp.status == 400, bad


async def test_pages_name_their_live_builds(app_client):
    await setup_alice(app_client)
    running = await store_build(app_client, package=True, moves={F40: State.RUNNING})
    done = await store_build(app_client, package=True, moves={F40: State.SUCCEEDED})
    await app_client.server.app[DB].write(store.cancel_build, done)
    for path in ("/", "/coprs/alice/hello/", "/coprs/alice/hello/builds/"):
        html = await (await app_client.get(path)).text()
        live = re.search(r'data-live-builds="([0-9,]*)"', html)
        assert live and live.group(1) == str(running), path
        assert f'data-build="{running}"' in html


# ---------------------------------------------------------------- build page: triage


async def test_failed_import_shows_its_reason_where_the_logs_are(app_client):
    await setup_alice(app_client)
    build = await store_build(app_client, chroots=[F40, F41])
    await app_client.server.app[DB].write(store.import_failed, build, "import failed: 404")
    html = await (await app_client.get(f"/builds/{build}/")).text()
    failure = re.search(r'id="import-failure"([^>]*)>(.*?)</div>', html, re.S)
    assert failure and "hidden" not in failure.group(1)
    assert "import failed: 404" in failure.group(2)
    assert re.search(r'id="log-import" data-log="" open', html)
    assert "No build log: import failed: 404." in html
    assert not re.search(rf'id="log-{F40}"[^>]* open', html)
    state = await (await app_client.get(f"/builds/{build}/state")).json()
    assert state["import_failure"] == "import failed: 404"


async def test_failed_chroot_opens_on_its_log(app_client):
    await setup_alice(app_client)
    build = await store_build(
        app_client, package=True, moves={F40: State.FAILED, F41: State.SUCCEEDED}
    )
    html = await (await app_client.get(f"/builds/{build}/")).text()
    assert re.search(rf'id="log-{F40}" data-log="{F40}" open', html)
    assert re.search(rf'id="log-{F41}" data-log="{F41}">', html)
    assert 'id="rebuild-failed-form"' in html and 'id="rebuild-failed-form" hidden' not in html


# ---------------------------------------------------------------- rebuild


async def test_rebuild_resubmits_the_imported_srpm(app_client, fixture_srpm):
    _, csrf = await setup_alice(app_client)
    app = app_client.server.app
    build = await store_build(
        app_client, package=True, moves={F40: State.FAILED, F41: State.SUCCEEDED}
    )
    srpm = import_log_path(app_client, build).parent / "hello-1.0-1.src.rpm"
    srpm.write_bytes(fixture_srpm("hello-copr-lite").read_bytes())
    await app[DB].write(
        store.import_succeeded,
        build,
        str(srpm),
        "0" * 64,
        PackageInfo("hello", None, "1.0", "1", "src"),
    )

    resp = await post(app_client, f"/builds/{build}/rebuild/", {"failed": "y"}, csrf)
    assert resp.status == 303
    new = int(resp.headers["Location"].strip("/").rsplit("/", 1)[1])
    rebuilt = await app[DB].read(store.get_build, new)
    assert [c.chroot for c in rebuilt.chroots] == [F40]
    assert rebuilt.srpm_path != str(srpm)
    assert Path(rebuilt.srpm_path).read_bytes() == srpm.read_bytes()
    assert Path(rebuilt.srpm_path).is_relative_to(app[CONFIG].data_dir / "uploads")
    html = await (await app_client.get(resp.headers["Location"])).text()
    assert f"Build {new} submitted: a rebuild of {build}." in html

    resp = await post(
        app_client, f"/builds/{build}/rebuild/", {"choose": "y", F41: "y", F40: "y"}, csrf
    )
    again = await app[DB].read(
        store.get_build, int(resp.headers["Location"].strip("/").rsplit("/", 1)[1])
    )
    assert sorted(c.chroot for c in again.chroots) == [F40, F41]
    resp = await post(app_client, f"/builds/{build}/rebuild/", {}, csrf)  # its own chroots
    assert resp.status == 303

    # A chroot the project lacks, or no failed chroot: said on the build page.
    resp = await post(app_client, f"/builds/{build}/rebuild/", {"choose": "y", EL9: "y"}, csrf)
    assert resp.headers["Location"] == f"/builds/{build}/"
    html = await (await app_client.get(f"/builds/{build}/")).text()
    assert f"Chroot {EL9} is not enabled in alice/hello." in html
    resp = await post(app_client, f"/builds/{build}/rebuild/", {"choose": "y"}, csrf)
    html = await (await app_client.get(resp.headers["Location"])).text()
    assert "Select at least one chroot to rebuild." in html
    resp = await post(app_client, f"/builds/{build}/rebuild/", {"choose": "y", "x": "y"}, csrf)
    html = await (await app_client.get(resp.headers["Location"])).text()
    assert "Select at least one chroot to rebuild." in html  # an unknown name is no choice
    ok = await store_build(app_client, package=True, moves={F40: State.SUCCEEDED})
    resp = await post(app_client, f"/builds/{ok}/rebuild/", {"failed": "y"}, csrf)
    html = await (await app_client.get(resp.headers["Location"])).text()
    assert "No chroot of this build failed." in html


async def test_rebuild_needs_permission_and_csrf(app_client):
    _, csrf = await setup_alice(app_client)
    build = await store_build(app_client)
    resp = await post(app_client, f"/builds/{build}/rebuild/", {}, None)
    assert resp.status == 403
    await add_user(app_client.server.app, "bob")
    csrf = await sign_in(app_client, "bob")
    resp = await post(app_client, f"/builds/{build}/rebuild/", {}, csrf)
    assert resp.status == 403
    assert "Permissions" in await resp.text()
    count = await app_client.server.app[DB].read(
        lambda c: c.execute("SELECT count(*) FROM builds").fetchone()[0]
    )
    assert count == 1


# ---------------------------------------------------------------- builds list, packages


async def test_builds_list_filters_sorts_and_pages(app_client):
    await setup_alice(app_client)
    app = app_client.server.app
    bob, _ = await add_user(app, "bob")
    proj = await app[DB].read(store.get_project, "alice", "hello")
    await app[DB].write(store.grant, proj.id, bob.id, "builder")
    ok = await store_build(
        app_client, package=True, moves={F40: State.SUCCEEDED, F41: State.SUCCEEDED}
    )
    bad = await store_build(
        app_client, package=True, moves={F40: State.FAILED, F41: State.SUCCEEDED}
    )
    other = await store_build(app_client, chroots=[F41])
    await app[DB].write(store.set_build_package, other, PackageInfo("zlib", None, "2", "1", "src"))
    base = "/coprs/alice/hello/builds/"

    async def ids(query: str) -> list[int]:
        html = await (await app_client.get(base + query)).text()
        return [int(n) for n in re.findall(r'<tr data-build-id="(\d+)"', html)]

    assert await ids("") == [other, bad, ok]
    assert await ids("?state=failed") == [bad]
    assert await ids("?state=importing") == [other]
    assert await ids("?package=zlib") == [other]
    assert await ids(f"?chroot={F40}") == [bad, ok]
    assert await ids("?submitter=alice&sort=id") == [ok, bad, other]
    assert await ids("?sort=-package") == [other, bad, ok]
    assert await ids("?submitter=bob") == []
    assert await ids("?state=nonsense&sort=nope") == [other, bad, ok]  # ignored, not an error
    html = await (await app_client.get(base + "?state=failed&sort=id")).text()
    assert 'href="?state=failed&amp;sort=-package#builds"' in html  # sorting keeps filters
    assert "<option selected>failed</option>" in html

    # Paging keeps the filters and the position; past the end says so.
    for _ in range(26):
        await store_build(app_client, package=True, chroots=[F40], moves={F40: State.FAILED})
    html = await (await app_client.get(base + "?state=failed")).text()
    assert 'href="/coprs/alice/hello/builds/?page=2&amp;state=failed#builds"' in html
    html = await (await app_client.get(base + "?state=failed&page=9")).text()
    assert 'id="past-end"' in html and "Page 9 is past the end: there are 2 pages." in html
    assert "No builds yet" not in html
    html = await (await app_client.get("/coprs/alice/hello/?page=9")).text()
    assert 'id="past-end"' in html and "No builds yet" not in html


async def test_packages_tab(app_client):
    await setup_alice(app_client)
    await store_build(app_client, package=True, moves={F40: State.SUCCEEDED})
    newest = await store_build(app_client, package=True, moves={F40: State.FAILED})
    html = await (await app_client.get("/coprs/alice/hello/packages/")).text()
    row = re.search(r'<tr id="package-hello">(.*?)</tr>', html, re.S).group(1)
    assert 'href="/coprs/alice/hello/builds/?package=hello#builds"' in row
    assert f'href="/builds/{newest}/"' in row and "state-failed" in row
    assert "<td>2</td>" in row  # builds of the package
    assert 'aria-current="page">Packages<' in html


# ---------------------------------------------------------------- permissions


async def test_permissions_tab_grants_and_revokes(app_client):
    _, csrf = await setup_alice(app_client)
    app = app_client.server.app
    await add_user(app, "bob")
    url = "/coprs/alice/hello/permissions/"
    html = await (await app_client.get(url)).text()
    assert 'id="no-permissions"' in html and 'id="grant-form"' in html

    resp = await post(app_client, url, {"username": "bob", "builder": "y"}, csrf)
    assert resp.status == 303 and resp.headers["Location"] == url
    html = await (await app_client.get(url)).text()
    assert "bob now holds builder on alice/hello." in html
    row = r'<tr id="user-bob">\s*<th scope="row">bob</th>\s*<td>yes</td><td>no</td>'
    assert re.search(row, html)
    resp = await post(app_client, url, {"username": "bob", "builder": "y", "admin": "y"}, csrf)
    proj = await app[DB].read(store.get_project, "alice", "hello")
    bob = await app[DB].read(store.get_user, "bob")
    assert await app[DB].read(store.project_roles, proj.id, bob.id) == {"builder", "admin"}
    resp = await post(app_client, url, {"username": "bob"}, csrf)  # "Revoke all"
    assert await app[DB].read(store.project_roles, proj.id, bob.id) == frozenset()
    html = await (await app_client.get(url)).text()
    assert "bob holds no role on alice/hello now." in html

    resp = await post(app_client, url, {"username": "ghost", "builder": "y"}, csrf)
    text = await resp.text()
    assert resp.status == 400 and "ghost" in text and "does not exist" in text
    assert 'value="ghost"' in text
    resp = await post(app_client, url, {"username": "bob", "builder": "y"}, None)
    assert resp.status == 403


async def test_permissions_are_the_owners_to_change(app_client):
    await setup_alice(app_client)
    app = app_client.server.app
    await add_user(app, "bob")
    await add_user(app, "carol")
    csrf = await sign_in(app_client, "bob")
    url = "/coprs/alice/hello/permissions/"
    html = await (await app_client.get(url)).text()
    assert 'id="grant-form"' not in html and 'id="request-form"' in html
    resp = await post(app_client, url, {"username": "bob", "admin": "y"}, csrf)
    assert resp.status == 403
    text = await resp.text()
    assert "Signed in as <strong>bob</strong>" in text  # the error page knows who is signed in
    assert 'id="access-help"' in text and "Permissions" in text
    proj = await app[DB].read(store.get_project, "alice", "hello")
    bob = await app[DB].read(store.get_user, "bob")
    assert await app[DB].read(store.project_roles, proj.id, bob.id) == frozenset()


async def test_access_request_seen_and_approved_by_the_owner(app_client):
    _, alice_csrf = await setup_alice(app_client)
    app = app_client.server.app
    await add_user(app, "bob")
    url = "/coprs/alice/hello/permissions/"
    bob_csrf = await sign_in(app_client, "bob")
    resp = await post(app_client, url, {"action": "request", "builder": "y"}, bob_csrf)
    assert resp.status == 303
    html = await (await app_client.get(url)).text()
    assert "You asked for builder on alice/hello; alice sees the request" in html
    assert "<strong>requested</strong>, waiting for alice" in html
    build = await store_build(app_client)
    resp = await post(app_client, f"/builds/{build}/cancel/", {}, bob_csrf)
    assert resp.status == 403  # a request allows nothing yet

    await sign_in(app_client, "alice")
    html = await (await app_client.get(url)).text()
    row = re.search(r'<tr id="user-bob">(.*?)</tr>', html, re.S).group(1)
    assert '<strong class="requested">requested</strong>' in row and ">Approve</button>" in row
    resp = await post(app_client, url, {"username": "bob", "builder": "y"}, alice_csrf)
    assert resp.status == 303
    proj = await app[DB].read(store.get_project, "alice", "hello")
    bob = await app[DB].read(store.get_user, "bob")
    assert await app[DB].read(store.project_roles, proj.id, bob.id) == {"builder"}

    bob_csrf = await sign_in(app_client, "bob")
    resp = await post(app_client, f"/builds/{build}/cancel/", {}, bob_csrf)
    assert resp.status == 303  # approved: bob may now build and cancel
    # The owner has nothing to ask for.
    alice_csrf = await sign_in(app_client, "alice")
    resp = await post(app_client, url, {"action": "request", "builder": "y"}, alice_csrf)
    html = await (await app_client.get(resp.headers["Location"])).text()
    assert "You own this project" in html


# ---------------------------------------------------------------- feedback and flow


async def test_cookies_of_web_redirects_are_secure_over_https(aiohttp_client, make_app):
    """Behind HTTPS the flash message's cookie is Secure, like the session's."""
    client = await aiohttp_client(make_app(base_url="https://copr.example"))
    await add_user(client.server.app, "alice")
    html = await (await client.get("/login/")).text()
    csrf = csrf_in(html)
    resp = await client.post(
        "/login/",
        data={"username": "alice", "password": "password123", "csrf_token": csrf, "next": "/"},
        headers={"Cookie": f"{auth.CSRF_COOKIE}={csrf}"},
        allow_redirects=False,
    )
    assert resp.status == 302, await resp.text()
    cookies = {c.split("=", 1)[0]: c for c in resp.headers.getall("Set-Cookie")}
    assert "Signed%20in" in cookies["flash"] and "Secure" in cookies["flash"]
    assert "Secure" in cookies[auth.SESSION_COOKIE]


async def test_every_action_flashes_a_message_once(app_client):
    _, csrf = await setup_alice(app_client)
    html = await (await app_client.get("/coprs/alice/hello/")).text()
    assert 'id="flash">Project hello created.<' in html
    html = await (await app_client.get("/coprs/alice/hello/")).text()
    assert 'id="flash"' not in html  # once
    await post(app_client, "/coprs/alice/hello/edit/", {"description": "x", F40: "y"}, csrf)
    html = await (await app_client.get("/coprs/alice/hello/")).text()
    assert "Project settings saved." in html
    build = await store_build(app_client)
    html = await (await app_client.get(f"/builds/{build}/cancel/")).text()
    assert f"Cancel build {build}?" in html and 'id="confirm-cancel"' in html
    state = await app_client.server.app[DB].read(store.get_build, build)
    assert not state.canceled  # asking is not canceling
    resp = await post(app_client, f"/builds/{build}/cancel/", {}, csrf)
    html = await (await app_client.get(resp.headers["Location"])).text()
    assert f"Build {build} canceled." in html
    resp = await post(app_client, f"/builds/{build}/cancel/", {}, csrf)
    html = await (await app_client.get(resp.headers["Location"])).text()
    assert f"Build {build} had already ended." in html
    resp = await post(app_client, "/coprs/alice/hello/delete/", {"verify": "yes"}, csrf)
    html = await (await app_client.get(resp.headers["Location"])).text()
    assert "Project alice/hello deleted." in html


async def test_sign_in_returns_to_the_page_and_keeps_the_name(app_client):
    await add_user(app_client.server.app, "alice")
    html = await (await app_client.get("/search/?q=x")).text()
    assert 'href="/login/?next=/search/"' in html
    html = await (await app_client.get("/login/?next=/coprs/")).text()
    csrf = csrf_in(html)
    data = {"username": "alice", "password": "wrong-one", "csrf_token": csrf, "next": "/coprs/"}
    resp = await app_client.post("/login/", data=data, allow_redirects=False)
    assert resp.status == 401
    html = await resp.text()
    assert 'id="username" name="username" value="alice"' in html
    assert re.search(r'id="password"[^>]*autofocus', html)
    assert 'name="next" value="/coprs/"' in html
    data["password"] = "password123"
    resp = await app_client.post("/login/", data=data, allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/coprs/"
    html = await (await app_client.get("/coprs/")).text()
    assert 'href="/coprs/" aria-current="page"' in html
    assert "Signed in as alice." in html


async def test_error_pages_know_who_is_signed_in(app_client):
    await setup_alice(app_client)
    for path in ("/coprs/alice/nope/", "/no/such/page", "/builds/999/"):
        resp = await app_client.get(path)
        assert resp.status == 404
        assert "Signed in as <strong>alice</strong>" in await resp.text(), path


# ---------------------------------------------------------------- project page, search


async def test_project_page_links_markdown_and_install_chooser(app_client):
    _, csrf = await setup_alice(app_client)
    fields = {
        "description": "d",
        "instructions": "Run **hello**.\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1))",
        "homepage": "https://example.org/hello",
        "contact": "alice@example.org",
        F40: "y",
        F41: "y",
    }
    await post(app_client, "/coprs/alice/hello/edit/", fields, csrf)
    html = await (await app_client.get("/coprs/alice/hello/")).text()
    assert "<strong>hello</strong>" in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert 'href="javascript:' not in html
    assert '<a href="https://example.org/hello" rel="nofollow noopener">' in html
    assert '<a href="mailto:alice@example.org">' in html
    for chroot in (F40, F41):
        assert f'<option value="{chroot}">' in html
        assert f"alice/hello {chroot}</pre>" in html
        assert f"/repo/{chroot}/alice-hello-{chroot}.repo</pre>" in html
    await post(app_client, "/coprs/alice/hello/edit/", {**fields, "homepage": "javascript:x"}, csrf)
    html = await (await app_client.get("/coprs/alice/hello/")).text()
    assert 'href="javascript:x"' not in html and "javascript:x" in html


async def test_search_finds_package_names_with_their_state(app_client):
    _, csrf = await setup_alice(app_client)
    await create(app_client, csrf, "other")
    build = await store_build(app_client, package=True, chroots=[F40], moves={F40: State.FAILED})
    html = await (await app_client.get("/search/?q=hell")).text()
    table = re.search(r'id="package-results">(.*?)</table>', html, re.S).group(1)
    assert 'href="/coprs/alice/hello/builds/?package=hello#builds">hello</a>' in table
    assert f'href="/builds/{build}/"' in table and "state-failed" in table
    html = await (await app_client.get("/search/?q=nothing-like-it")).text()
    assert 'id="no-package-results"' in html


async def test_home_lists_a_running_build_once(app_client):
    await setup_alice(app_client)
    running = await store_build(app_client, package=True, moves={F40: State.RUNNING})
    html = await (await app_client.get("/")).text()
    assert html.count(f'<tr data-build-id="{running}"') == 1


async def test_results_browser_links_back_to_the_build(app_client):
    await setup_alice(app_client)
    build = await store_build(app_client, package=True, moves={F40: State.SUCCEEDED})
    log_path(app_client, build, F40).write_text("done\n")
    import_log_path(app_client, build).write_text("imported\n")
    html = await (await app_client.get(f"/results/alice/hello/{F40}/{build:08d}-hello/")).text()
    assert f'id="back-to-build" href="/builds/{build}/"' in html
    assert 'href="builder-live.log"' in html and 'class="site-nav"' in html
    html = await (await app_client.get("/results/alice/hello/srpm-builds/")).text()
    assert 'href="/coprs/alice/hello/"' in html and 'id="back-to-build"' not in html


async def test_favicon(app_client):
    resp = await app_client.get("/favicon.ico")
    assert resp.status == 200 and resp.content_type == "image/x-icon"
    body = await resp.read()
    assert body[:4] == b"\x00\x00\x01\x00" and b"PNG" in body[:40]
