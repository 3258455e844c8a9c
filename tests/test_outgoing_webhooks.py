"""Outgoing webhooks (plugins/webhooks/): configured through API v3 and the web page, builds
run by FakeBuilder, events POSTed over real HTTP to a receiver on loopback that checks each
signature as README's "Outgoing webhooks" tells receivers to."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from test_dispatcher import CHROOTS, add_pending, add_project, start, wait_state
from test_plugin_docs import readme_block
from test_web import sign_in

from copr_lite.keys import CONFIG
from copr_lite.liveserver import HOST, free_port
from copr_lite.testing import BuilderPlugin, FakeBuilder, Script, add_user, basic_auth, wait_until

# Short waits: a failed delivery is retried 0.2 s later, then 0.6 s, 1.8 s ...
FAST = {"retry_base_seconds": "0.2", "timeout_seconds": "3"}
API = "/api_3/webhook/outgoing/alice/proj"


def readme_verify() -> Any:
    """`verify_signature` as README's "Outgoing webhooks" gives it to receivers."""
    namespace: dict[str, Any] = {}
    exec(readme_block("### Headers and the signature", "python"), namespace)
    return namespace["verify_signature"]


verify = readme_verify()


@dataclass
class Receiver:
    """An HTTP server on loopback receiving the webhook POSTs. `answers` are the statuses
    of the next requests (then 200); every request is kept, and its signature checked."""

    secret: str = ""
    answers: list[int] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    runner: web.AppRunner | None = None
    redirected: int = 0  # requests that followed a redirect (there must be none)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/hook"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        app.router.add_route("*", "/moved", self.moved)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, HOST, self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(
            {
                "body": json.loads(body),
                "event": request.headers["X-Copr-Lite-Event"],
                "delivery": request.headers["X-Copr-Lite-Delivery"],
                "signature": request.headers["X-Copr-Lite-Signature"],
                "raw": body,
                "signed": verify(self.secret, request.headers["X-Copr-Lite-Signature"], body),
                "content_type": request.content_type,
            }
        )
        status = self.answers.pop(0) if self.answers else 200
        return web.Response(status=status, headers={"Location": "/moved"} if status < 400 else {})

    async def moved(self, request: web.Request) -> web.Response:
        self.redirected += 1
        return web.Response(status=200)

    def accepted(self) -> list[dict[str, Any]]:
        """The requests answered 2xx, in order (the last of each delivery's attempts)."""
        seen: dict[str, dict[str, Any]] = {}
        for item in self.requests:
            seen[item["delivery"]] = item
        return list(seen.values())


async def setup(aiohttp_client, make_app, receiver: Receiver | None = None, **settings):
    """An app building with FakeBuilder, alice's project `proj` (both chroots), its owner's
    API headers, and (with `receiver`) its webhook pointing there."""
    settings.setdefault("plugin_sections", {"webhooks": dict(FAST)})
    builder = FakeBuilder(scripts={"hello": Script(seconds=0.1)})
    app, client = await start(aiohttp_client, make_app, builder, **settings)
    _, token = await add_user(app, "alice")
    user, project_id = await add_project(app)
    headers = basic_auth(token)
    if receiver is not None:
        resp = await client.put(API, json={"url": receiver.url}, headers=headers)
        assert resp.status == 201, await resp.text()
        receiver.secret = (await resp.json())["secret"]
    return app, client, user, project_id, headers


async def deliveries(client, headers) -> list[dict[str, Any]]:
    resp = await client.get(API + "/deliveries", headers=headers)
    assert resp.status == 200, await resp.text()
    return (await resp.json())["deliveries"]


# ---------------------------------------------------------------- configuration


async def test_configure_through_the_api(aiohttp_client, make_app):
    app, client, _, _, alice = await setup(aiohttp_client, make_app)
    _, bob_token = await add_user(app, "bob")
    bob = basic_auth(bob_token)

    assert (await client.get(API, headers=alice)).status == 404  # none yet
    resp = await client.put(API, json={"url": "http://127.0.0.1:9/hook"}, headers=alice)
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert created["url"] == "http://127.0.0.1:9/hook" and created["enabled"] is True
    assert len(created["secret"]) >= 32 and created["created"] is True
    # The owner reads it back, secret included; a change keeps what is not given.
    got = await (await client.get(API, headers=alice)).json()
    assert got["secret"] == created["secret"]
    resp = await client.put(API, json={"enabled": False}, headers=alice)
    assert resp.status == 200
    changed = await resp.json()
    assert changed["enabled"] is False and changed["secret"] == created["secret"]
    resp = await client.put(API, json={"secret": "s" * 20, "enabled": True}, headers=alice)
    assert (await resp.json())["secret"] == "s" * 20

    # Nobody else may read or change it (403), nor anonymously (401).
    for method, body in (("GET", None), ("PUT", {"url": "http://127.0.0.1:9/x"}), ("DELETE", None)):
        resp = await client.request(method, API, json=body, headers=bob)
        assert resp.status == 403, method
        error = await resp.json()
        assert error["output"] == "notok" and "owner" in error["error"]
    assert (await client.get(API + "/deliveries", headers=bob)).status == 403
    assert (await client.get(API)).status == 401
    assert (await client.get(API.replace("proj", "nope"), headers=alice)).status == 404

    # Bad input is a 400 naming the field.
    for body, words in (
        ({"url": "ftp://127.0.0.1/hook"}, "only http and https"),
        ({"url": "not a url"}, "http"),
        ({"url": ""}, "url"),
        ({"secret": "short"}, "secret"),
        ({"enabled": "maybe"}, "enabled"),
        ({"url": "http://no-such-host.invalid/"}, "cannot resolve"),
    ):
        resp = await client.put(API, json=body, headers=alice)
        assert resp.status == 400, body
        error = await resp.json()
        assert error["output"] == "notok" and words in error["error"], (body, error)
    assert (await client.put(API, data=b"[1]", headers=alice)).status == 400

    # Removed: gone, and a second removal is 404.
    assert (await client.delete(API, headers=alice)).status == 200
    assert (await client.get(API, headers=alice)).status == 404
    assert (await client.delete(API, headers=alice)).status == 404

    # The paths are in API v3's description.
    paths = (await (await client.get("/api_3/openapi.json")).json())["paths"]
    assert {"put", "get", "delete"} <= set(
        paths["/api_3/webhook/outgoing/{ownername}/{projectname}"]
    )


async def test_internal_addresses_are_refused_unless_allowed(aiohttp_client, make_app, tmp_path):
    _, client, _, _, alice = await setup(
        aiohttp_client, make_app, srpm_allowed_networks=(), data_dir=tmp_path / "strict"
    )
    for url in ("http://127.0.0.1:8080/hook", "http://localhost/hook", "http://[::1]/"):
        resp = await client.put(API, json={"url": url}, headers=alice)
        assert resp.status == 400, url
        assert "refused" in (await resp.json())["error"], url


# ---------------------------------------------------------------- delivery


async def test_a_builds_events_arrive_signed_in_order(aiohttp_client, make_app):
    receiver = Receiver()
    await receiver.start()
    try:
        app, client, user, project_id, alice = await setup(aiohttp_client, make_app, receiver)
        build_id = await add_pending(app, project_id, user.id, "hello")
        await wait_state(app, build_id, "succeeded")

        async def four_arrived() -> bool:
            return len(receiver.requests) >= 4

        await wait_until(four_arrived, within=10)
    finally:
        await receiver.stop()

    events = [r["event"] for r in receiver.requests]
    assert events[0] == "build.started" and events[-1] == "build.ended"
    assert sorted(events[1:3]) == ["chroot.ended", "chroot.ended"]
    assert len(events) == 4  # build.started once, though both chroots started together
    assert all(r["signed"] and r["content_type"] == "application/json" for r in receiver.requests)
    assert len({r["delivery"] for r in receiver.requests}) == 4
    # The check fails for another body, another secret or an old signature.
    first = receiver.requests[0]
    assert not verify(receiver.secret, first["signature"], first["raw"] + b" ")
    assert not verify("another secret!!", first["signature"], first["raw"])
    assert not verify(receiver.secret, first["signature"], first["raw"], tolerance=-1)
    config = app[CONFIG]
    for r in receiver.requests:
        body = r["body"]
        assert body["event"] == r["event"] and body["id"] == r["delivery"]
        assert body["build_id"] == build_id
        assert (body["owner"], body["project"], body["package"]) == ("alice", "proj", "hello")
        assert body["version"] == "1.0-1"
        assert body["build_url"] == f"{config.public_base_url}/builds/{build_id}/"
        assert body["results_url"] == f"{config.public_results_url}/alice/proj/"
        assert (
            time.time() - time.mktime(time.strptime(body["timestamp"], "%Y-%m-%dT%H:%M:%SZ"))
            < 3600 * 24
        )
    ended = [r["body"] for r in receiver.requests if r["event"] == "chroot.ended"]
    assert {e["chroot"] for e in ended} == set(CHROOTS)
    for e in ended:
        assert e["chroot_state"] == "succeeded"
        assert e["chroot_results_url"] == (
            f"{config.public_results_url}/alice/proj/{e['chroot']}/{build_id:08d}-hello/"
        )
    final = receiver.requests[-1]["body"]
    assert final["state"] == "succeeded"
    assert final["chroots"] == dict.fromkeys(CHROOTS, "succeeded")

    listed = await deliveries(client, alice)
    assert [d["event"] for d in reversed(listed)] == events
    assert all(
        d["delivered"] and d["attempts"] == 1 and d["last_status_code"] == 200 for d in listed
    )
    # The web page lists them with their last answer.
    await sign_in(client, "alice")
    html = await (await client.get("/coprs/alice/proj/webhooks/outgoing/")).text()
    assert html.count("data-delivery=") == 4 and html.count("HTTP 200") == 4


async def test_a_failing_receiver_is_retried_until_it_accepts(aiohttp_client, make_app):
    receiver = Receiver(answers=[503, 302])  # a redirect is a failure, not followed
    await receiver.start()
    try:
        app, client, user, project_id, alice = await setup(aiohttp_client, make_app, receiver)
        build_id = await add_pending(app, project_id, user.id, "hello", chroots=["epel-9-x86_64"])

        async def all_delivered() -> bool:
            found = await deliveries(client, alice)
            return len(found) == 3 and all(d["delivered"] for d in found)

        await wait_until(all_delivered, within=10)
    finally:
        await receiver.stop()
    # The first event was tried three times under one delivery id; order is kept.
    assert [r["delivery"] for r in receiver.requests[:3]] == [receiver.requests[0]["delivery"]] * 3
    assert [r["event"] for r in receiver.accepted()] == [
        "build.started",
        "chroot.ended",
        "build.ended",
    ]
    assert all(r["signed"] for r in receiver.requests)
    assert receiver.redirected == 0
    first = (await deliveries(client, alice))[-1]
    assert first["event"] == "build.started" and first["attempts"] == 3
    assert first["last_status_code"] == 200 and first["build_id"] == build_id


async def test_deliveries_pending_at_shutdown_go_out_after_a_restart(aiohttp_client, make_app):
    receiver = Receiver()  # not listening yet: every attempt is refused
    app, client, user, project_id, alice = await setup(aiohttp_client, make_app, receiver)
    build_id = await add_pending(app, project_id, user.id, "hello", chroots=["epel-9-x86_64"])
    await wait_state(app, build_id, "succeeded")

    async def tried_and_pending() -> bool:
        found = await deliveries(client, alice)
        return len(found) == 3 and found[-1]["attempts"] >= 1

    await wait_until(tried_and_pending, within=10)
    found = await deliveries(client, alice)
    assert not any(d["delivered"] for d in found)
    assert found[-1]["last_error"] and found[-1]["next_attempt_on"]
    await client.close()  # the server stops with its deliveries pending

    await receiver.start()
    try:
        again = await aiohttp_client(
            make_app(
                plugins=[BuilderPlugin(FakeBuilder())],
                chroots=CHROOTS,
                plugin_sections={"webhooks": dict(FAST)},
            )
        )

        async def arrived() -> bool:
            return len(receiver.accepted()) == 3

        await wait_until(arrived, within=10)
        assert [r["event"] for r in receiver.accepted()] == [
            "build.started",
            "chroot.ended",
            "build.ended",
        ]
        assert all(r["signed"] and r["body"]["build_id"] == build_id for r in receiver.requests)
        assert all(d["delivered"] for d in await deliveries(again, alice))
    finally:
        await receiver.stop()


async def test_a_delivery_is_given_up_after_the_limit(aiohttp_client, make_app):
    receiver = Receiver(answers=[500] * 100)
    await receiver.start()
    sections = {"webhooks": {**FAST, "give_up_seconds": "1"}}
    try:
        app, client, user, project_id, alice = await setup(
            aiohttp_client, make_app, receiver, plugin_sections=sections
        )
        await add_pending(app, project_id, user.id, "hello", chroots=["epel-9-x86_64"])

        async def all_failed() -> bool:
            found = await deliveries(client, alice)
            return len(found) == 3 and all(d["state"] == "failed" for d in found)

        await wait_until(all_failed, within=10)
        count = len(receiver.requests)
        found = await deliveries(client, alice)
        first = found[-1]
        assert first["attempts"] >= 2 and first["last_status_code"] == 500
        assert first["last_error"] == "HTTP 500" and first["next_attempt_on"] is None
        assert not any(d["delivered"] for d in found)
        await asyncio.sleep(0.5)
        assert len(receiver.requests) == count  # nothing more is sent
    finally:
        await receiver.stop()


# ---------------------------------------------------------------- the web page


async def test_the_web_page_renders_and_saves(aiohttp_client, make_app):
    receiver = Receiver()
    app, client, _, _, alice = await setup(aiohttp_client, make_app)
    path = str(app.router["outgoing-webhooks"].url_for(username="alice", project="proj"))
    assert path == "/coprs/alice/proj/webhooks/outgoing/"

    assert (await client.get(path, allow_redirects=False)).status == 302  # sign in first
    csrf = await sign_in(client, "alice")
    html = await (await client.get(path)).text()
    assert 'id="webhook-form"' in html and "No events yet" not in html

    # Without the CSRF token nothing is saved.
    resp = await client.post(path, data={"url": receiver.url, "enabled": "y"})
    assert resp.status == 403
    assert (await client.get(API, headers=alice)).status == 404

    # A refused URL comes back beside its field, as typed.
    resp = await client.post(path, data={"url": "ftp://x/", "enabled": "y", "csrf_token": csrf})
    assert resp.status == 400
    html = await resp.text()
    assert "only http and https" in html and 'value="ftp://x/"' in html

    resp = await client.post(
        path, data={"url": receiver.url, "enabled": "y", "csrf_token": csrf}, allow_redirects=False
    )
    assert resp.status == 303, await resp.text()
    saved = await (await client.get(API, headers=alice)).json()
    assert saved["url"] == receiver.url and saved["enabled"] is True
    html = await (await client.get(path)).text()
    assert (
        saved["secret"] in html and "No events yet" in html and "Outgoing webhook created" in html
    )

    # Disabled through the form (an unchecked box is absent), the secret kept.
    resp = await client.post(path, data={"url": receiver.url, "csrf_token": csrf})
    assert (await client.get(API, headers=alice)).status == 200
    now = await (await client.get(API, headers=alice)).json()
    assert now["enabled"] is False and now["secret"] == saved["secret"]

    # Someone else's project: 403 on the page too.
    await add_user(app, "bob")
    client.session.cookie_jar.clear()
    await sign_in(client, "bob")
    resp = await client.get(path)
    assert resp.status == 403
    assert "owner" in await resp.text()
