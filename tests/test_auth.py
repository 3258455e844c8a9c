from __future__ import annotations

import sqlite3
import time

from copr_lite import auth, store
from copr_lite.keys import DB, TOKEN_CACHE
from copr_lite.testing import basic_auth


async def test_good_token_passes(client, make_user):
    _, token = await make_user("alice")
    resp = await client.post("/api/auth_check/", headers=basic_auth(token))
    assert resp.status == 200
    assert await resp.json() == {"output": "ok"}


async def test_missing_wrong_and_malformed_credentials_are_401(client, make_user):
    _, token = await make_user("alice")
    for headers in (
        {},
        basic_auth((token.login, "wrong" + token.token)),
        basic_auth(("nobody", token.token)),
        basic_auth(("None", "None")),
        {"Authorization": "Basic !!!notbase64"},
        {"Authorization": "Bearer " + token.token},
    ):
        resp = await client.post("/api/auth_check/", headers=headers)
        assert resp.status == 401, headers
        body = await resp.json()
        assert body["output"] == "notok"
        assert body["error"].startswith("Login invalid/expired. Please visit http://")
        assert "/api/ to get or renew your API token." in body["error"]


async def test_expired_token_is_401(client, make_user):
    user, token = await make_user("alice")
    db = client.server.app[DB]
    await db.write(
        store.set_api_token,
        user.id,
        token.login,
        auth.hash_token(token.token),
        int(time.time()) - 1,
    )
    resp = await client.post("/api/auth_check/", headers=basic_auth(token))
    assert resp.status == 401


async def test_database_holds_no_plain_token(client, make_user):
    _, token = await make_user("alice", password="s3cret-password")
    dump = "\n".join(sqlite3.connect(client.server.app[DB].path).iterdump())
    assert token.token not in dump
    assert auth.hash_token(token.token) in dump
    assert "s3cret-password" not in dump


async def test_new_token_replaces_old_at_once_even_when_cached(client, make_user):
    user, old = await make_user("alice")
    assert (await client.post("/api/auth_check/", headers=basic_auth(old))).status == 200
    app = client.server.app
    new = await auth.issue_token(app[DB], app[TOKEN_CACHE], user, 180)
    assert (await client.post("/api/auth_check/", headers=basic_auth(old))).status == 401
    assert (await client.post("/api/auth_check/", headers=basic_auth(new))).status == 200


def test_password_hashes_are_salted_scrypt():
    first, second = auth.hash_password("hunter22"), auth.hash_password("hunter22")
    assert first != second
    assert first.startswith("scrypt$")
    assert auth.verify_password("hunter22", first)
    assert not auth.verify_password("hunter23", first)
    assert not auth.verify_password("hunter22", None)
    assert not auth.verify_password("hunter22", "garbage")


async def test_permission_helper(client, make_user):
    from copr_lite.auth import Action, check_permission
    from copr_lite.errors import Forbidden

    app = client.server.app
    db = app[DB]
    owner, _ = await make_user("owner")
    builder, _ = await make_user("builder")
    padmin, _ = await make_user("padmin")
    sysadmin, _ = await make_user("root", admin=True)
    stranger, _ = await make_user("stranger")
    project_id = await db.write(
        lambda conn: (
            conn.execute(
                "INSERT INTO projects (owner_id, name, created_on) VALUES (?, 'p', 0)", (owner.id,)
            ).lastrowid
        )
    )
    await db.write(store.grant, project_id, builder.id, "builder")
    await db.write(store.grant, project_id, padmin.id, "admin")
    project = await db.read(store.get_project, "owner", "p")
    allowed = {
        Action.BUILD: {"owner", "builder", "padmin", "root"},
        Action.MODIFY: {"owner", "padmin", "root"},
        Action.DELETE: {"owner", "root"},
    }
    for action, names in allowed.items():
        for user in (owner, builder, padmin, sysadmin, stranger):
            try:
                roles = await db.read(store.project_roles, project.id, user.id)
                check_permission(user, project, roles, action)
                ok = True
            except Forbidden:
                ok = False
            assert ok == (user.name in names), (action, user.name)
