from __future__ import annotations

import re
from pathlib import Path

from copr_lite.auth import CSRF_COOKIE, SESSION_COOKIE
from copr_lite.testing import basic_auth

SEED = Path(__file__).resolve().parent.parent.parent / "shared" / "spec" / "api-docs-seed.txt"
SEED_HEADINGS = [
    "List someone's projects",
    "Detail of project",
    "Create new project",
    "Delete an entire project",
    "Builds success summary (project monitor)",
    "Add new build",
    "Query build status",
    "Query build detail",
    "Cancel build",
    "Copr Modification",
    "Chroot Modification",
    "Chroot details",
    "Search for project",
]


async def csrf_of(client, path="/login/") -> str:
    resp = await client.get(path)
    assert resp.status == 200
    html = await resp.text()
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "form without csrf_token"
    return match.group(1)


async def sign_in(client, name="alice", password="password123"):
    csrf = await csrf_of(client)
    return await client.post(
        "/login/",
        data={"username": name, "password": password, "csrf_token": csrf, "next": "/api/"},
        allow_redirects=False,
    )


async def test_api_page_has_every_seed_section_for_anonymous(client):
    resp = await client.get("/api/")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    html = await resp.text()
    for heading in SEED_HEADINGS:
        assert heading in html, heading
    assert "You need to be logged in to see your API token." in html
    assert "[copr-cli]" not in html
    # The parameter lists the seed lost are back.
    assert "URL parameters" in html and "verify" in html and "initial_pkgs" in html
    assert "copr.fedoraproject.org" not in html
    assert str(client.make_url("")).rstrip("/") in html or "http://127.0.0.1" in html


async def test_seed_headings_list_matches_the_seed():
    if SEED.exists():
        text = SEED.read_text()
        for heading in SEED_HEADINGS:
            assert heading in text


async def test_sign_in_shows_config_block_and_sign_out_ends_it(client, make_user):
    await make_user("alice")
    resp = await sign_in(client)
    assert resp.status == 302
    assert resp.headers["Location"] == "/api/"
    cookie = resp.headers.getall("Set-Cookie")
    session = next(c for c in cookie if c.startswith(SESSION_COOKIE))
    assert "HttpOnly" in session and "SameSite=Lax" in session

    html = await (await client.get("/api/")).text()
    assert "username = alice" in html
    assert "copr_url = http://127.0.0.1:8080\nencrypted = False\n" in html  # copr-cli 2.x
    assert re.search(r"login = [a-z]{20}", html)
    assert re.search(r"# expiration date: \d{4}-\d{2}-\d{2}", html)
    # The stored token is only a hash: it is not shown again.
    assert not re.search(r"token = [a-z]{30}\n", html)

    csrf = await csrf_of(client, "/api/")
    resp = await client.post("/logout/", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 302
    html = await (await client.get("/api/")).text()
    assert "You need to be logged in" in html


async def test_base_url_from_config_is_used(aiohttp_client, make_app):
    from copr_lite.testing import add_user

    app = make_app(base_url="http://copr.example.org:8000")
    client = await aiohttp_client(app)
    await add_user(app, "alice")
    await sign_in(client)
    html = await (await client.get("/api/")).text()
    assert "copr_url = http://copr.example.org:8000\n" in html


def test_config_block_says_encrypted_false_only_for_http():
    from copr_lite.auth import NewToken, copr_config_block

    new = NewToken.generate(1)
    plain = copr_config_block("alice", new, "http://copr.example.org")
    assert "copr_url = http://copr.example.org\nencrypted = False\n# expiration" in plain
    secure = copr_config_block("alice", new, "https://copr.example.org")
    assert "copr_url = https://copr.example.org\n# expiration" in secure


async def test_wrong_password_is_refused(client, make_user):
    await make_user("alice")
    resp = await sign_in(client, password="nope-nope")
    assert resp.status == 401
    assert "Wrong user name or password." in await resp.text()
    resp = await sign_in(client, name="ghost")
    assert resp.status == 401


async def test_post_forms_without_csrf_are_refused(client, make_user):
    await make_user("alice")
    await client.get("/login/")  # gets the CSRF cookie
    resp = await client.post(
        "/login/", data={"username": "alice", "password": "password123"}, allow_redirects=False
    )
    assert resp.status == 403
    resp = await client.post(
        "/login/",
        data={"username": "alice", "password": "password123", "csrf_token": "forged"},
        allow_redirects=False,
    )
    assert resp.status == 403
    assert (await sign_in(client)).status == 302
    resp = await client.post("/api/new/", data={}, allow_redirects=False)
    assert resp.status == 403
    assert (await resp.json())["output"] == "notok"
    resp = await client.post("/logout/", data={}, allow_redirects=False)
    assert resp.status == 403


async def test_csrf_cookie_is_httponly_and_strict(client):
    resp = await client.get("/login/")
    cookie = next(c for c in resp.headers.getall("Set-Cookie") if c.startswith(CSRF_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie


async def test_regenerating_the_token_shows_it_once_and_kills_the_old_one(client, make_user):
    _, old = await make_user("alice")
    await sign_in(client)
    csrf = await csrf_of(client, "/api/")
    resp = await client.post("/api/new/", data={"csrf_token": csrf})
    assert resp.status == 200
    html = await resp.text()
    login = re.search(r"login = ([a-z]{20})", html).group(1)
    token = re.search(r"token = ([a-z]{30})", html).group(1)
    assert token != old.token
    ok = await client.post("/api/auth_check/", headers=basic_auth((login, token)))
    assert ok.status == 200
    gone = await client.post("/api/auth_check/", headers=basic_auth(old))
    assert gone.status == 401


async def test_token_regeneration_needs_a_session(client):
    resp = await client.post("/api/new/", data={}, allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"].startswith("/login/?next=")


async def test_next_is_never_an_open_redirect(client, make_user):
    await make_user("alice")
    csrf = await csrf_of(client)
    resp = await client.post(
        "/login/",
        data={
            "username": "alice",
            "password": "password123",
            "csrf_token": csrf,
            "next": "//evil.example.org/",
        },
        allow_redirects=False,
    )
    assert resp.headers["Location"] == "/api/"
