"""pytest plugin (entry point `pytest11`): fixtures that build a real app on a real SQLite file.

    async def test_something(client, make_user):
        user, token = await make_user("alice")
        resp = await client.get("/api/auth_check/", headers=basic_auth(token))

`make_config(**settings)` gives a Config whose data dir is the test's tmp_path; `make_app`
builds an app from it; `client` is an aiohttp test client on a default app.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from . import auth, store
from .app import create_app
from .config import Config, load_config
from .keys import CONFIG, DB, TOKEN_CACHE
from .models import User

TEST_CHROOTS = {
    "fedora-rawhide-x86_64": "rpmbuild",
    "fedora-41-x86_64": "rpmbuild",
    "fedora-40-x86_64": "rpmbuild",
    "epel-9-x86_64": "rpmbuild",
}


def basic_auth(token: auth.NewToken | tuple[str, str]) -> dict[str, str]:
    """The Authorization header for an API credential."""
    login, secret = (token.login, token.token) if isinstance(token, auth.NewToken) else token
    value = base64.b64encode(f"{login}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {value}"}


async def add_user(
    app: web.Application, name: str, *, admin: bool = False, password: str = "password123"
) -> tuple[User, auth.NewToken]:
    """Create a user with a password and an API token in a running app."""
    db = app[DB]
    user = await db.write(store.create_user, name, auth.hash_password(password), admin)
    token = await auth.issue_token(db, app[TOKEN_CACHE], user, app[CONFIG].token_expiration_days)
    return user, token


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Config]:
    def factory(**settings: Any) -> Config:
        settings.setdefault("data_dir", tmp_path / "data")
        settings.setdefault("chroots", dict(TEST_CHROOTS))
        settings.setdefault("srpm_allowed_networks", ("127.0.0.0/8",))
        return load_config(None, **settings)

    return factory


@pytest.fixture
def make_app(make_config: Callable[..., Config]) -> Callable[..., web.Application]:
    def factory(**settings: Any) -> web.Application:
        return create_app(make_config(**settings))

    return factory


@pytest.fixture
async def client(aiohttp_client: Any, make_app: Callable[..., web.Application]) -> Any:
    """A test client on a default app (its database in the test's tmp_path)."""
    return await aiohttp_client(make_app())


@pytest.fixture
def make_user(client: Any) -> Callable[..., Awaitable[tuple[User, auth.NewToken]]]:
    """`await make_user("alice", admin=False)` -> (User, NewToken) in the `client` app."""

    async def factory(name: str, **kwargs: Any) -> tuple[User, auth.NewToken]:
        return await add_user(client.server.app, name, **kwargs)

    return factory
