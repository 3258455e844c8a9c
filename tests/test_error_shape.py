"""Every error path answers in the one shape: JSON envelope under /api/, an HTML page elsewhere."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web

API_ERROR_KEYS = {"output", "error", "errcode"}


async def assert_api_error(resp, status: int) -> dict:
    assert resp.status == status
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert set(body) == API_ERROR_KEYS
    assert body["output"] == "notok"
    assert body["error"] and "Traceback" not in body["error"]
    return body


@pytest.mark.parametrize(
    "path", ["/api/nothing/", "/api/coprs/a/b/c/d/e/f/", "/api//nothing", "/api/nothing"]
)
async def test_unknown_api_url_is_json_404(client, path):
    await assert_api_error(await client.get(path), 404)


async def test_wrong_method_is_json_405_with_allow(client):
    resp = await client.delete("/api/auth_check/")
    body = await assert_api_error(resp, 405)
    assert "DELETE" in body["error"]
    assert "POST" in resp.headers["Allow"]


async def test_missing_credentials_are_json_401(client):
    body = await assert_api_error(await client.post("/api/auth_check/"), 401)
    assert body["errcode"] == "unauthorized"


async def test_throttled_credentials_are_json_429_with_retry_after(aiohttp_client, make_app):
    from copr_lite.testing import basic_auth

    client = await aiohttp_client(make_app(api_failures_per_address=1, lockout=90))
    resp = await client.post("/api/auth_check/", headers=basic_auth(("nobody", "x" * 30)))
    body = await assert_api_error(resp, 429)
    assert body["errcode"] == "too_many_requests"
    assert resp.headers["Retry-After"] == "90"


async def test_unexpected_fault_is_generic_500_and_logged(aiohttp_client, make_app, caplog):
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals")

    app = make_app()
    app.router.add_get("/api/boom/", boom)
    app.router.add_get("/boom/", boom)
    client = await aiohttp_client(app)
    with caplog.at_level(logging.ERROR):
        body = await assert_api_error(await client.get("/api/boom/"), 500)
        assert body["error"] == "Internal server error."
        assert "secret" not in body["error"]
        resp = await client.get("/boom/")
    assert resp.status == 500
    assert resp.content_type == "text/html"
    assert "secret internals" not in await resp.text()
    assert "RuntimeError: secret internals" in caplog.text


async def test_html_error_page_outside_the_api(client):
    resp = await client.get("/no/such/page/")
    assert resp.status == 404
    assert resp.content_type == "text/html"
    assert "404" in await resp.text()


async def test_bad_form_body_is_a_clean_error(client):
    resp = await client.post(
        "/login/", data=b"\xff\xfe", headers={"Content-Type": "multipart/form-data"}
    )
    assert resp.status in (400, 403)
    assert resp.content_type == "text/html"
