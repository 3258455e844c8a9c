"""HTML pages: sign-in, sign-out, the API docs page with the user's token."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

import aiohttp_jinja2
from aiohttp import web

from .. import auth, forms, signin, store
from ..errors import TooManyRequests, Unauthorized
from ..keys import CONFIG, CURRENT_USER, DB, NEW_CSRF, TOKEN_CACHE
from ..models import User
from ..responses import json_response


async def current_user(request: web.Request) -> User | None:
    """The signed-in web user (looked up once per request)."""
    if CURRENT_USER not in request:
        user = await auth.session_user(request.app[DB], request)
        if user is not None:
            request[CURRENT_USER] = user
        return user
    return request[CURRENT_USER]


FLASH_COOKIE = "flash"
FLASH_MAX = 300  # characters of a flash message


def set_flash(response: web.StreamResponse, message: str) -> None:
    """The next page rendered for this browser shows `message` once."""
    response.set_cookie(
        FLASH_COOKIE, quote(message[:FLASH_MAX]), httponly=True, samesite="Lax", path="/"
    )


def flash_redirect(location: str, message: str) -> web.HTTPSeeOther:
    """A 303 to `location` whose page then shows `message`."""
    response = web.HTTPSeeOther(location)
    set_flash(response, message)
    return response


def read_flash(request: web.Request) -> str | None:
    raw = request.cookies.get(FLASH_COOKIE)
    return unquote(raw)[:FLASH_MAX] if raw else None


async def render_page(
    request: web.Request, template: str, context: dict[str, Any], status: int = 200
) -> web.Response:
    """Render a page with what layout.html needs, setting the CSRF cookie when new and
    showing (then clearing) a flash message."""
    config = request.app[CONFIG]
    flash = read_flash(request)
    full = {
        "current_user": await current_user(request),
        "csrf_token": auth.csrf_token(request),
        "base_url": config.public_base_url,
        "current_path": request.path,
        "flash": flash,
        **context,
    }
    response = aiohttp_jinja2.render_template(template, request, full, status=status)
    if flash is not None:
        response.del_cookie(FLASH_COOKIE, path="/")
    if NEW_CSRF in request:
        response.set_cookie(
            auth.CSRF_COOKIE,
            request[NEW_CSRF],
            httponly=True,
            samesite="Strict",
            secure=config.public_base_url.startswith("https"),
            path="/",
        )
    response.headers["Cache-Control"] = "no-store"
    return response


def _safe_next(value: str | None) -> str:
    """Only local absolute paths are followed after sign-in (no open redirect)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/api/"


async def _form(request: web.Request) -> dict[str, str]:
    form = (await forms.read_form(request)).fields
    auth.check_csrf(request, form.get(auth.CSRF_FIELD))
    return form


async def login_form(request: web.Request) -> web.StreamResponse:
    return await render_page(
        request,
        "login.html",
        {"error": None, "next": _safe_next(request.query.get("next")), "username": ""},
    )


async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    db, config = request.app[DB], request.app[CONFIG]
    name, password = form.get("username", "").strip(), form.get("password", "")
    try:
        user = await signin.check_password(request, name, password)
    except (Unauthorized, TooManyRequests) as exc:
        # The form again, saying what went wrong (and, on 429, when to try again).
        response = await render_page(
            request,
            "login.html",
            {"error": exc.message, "next": _safe_next(form.get("next")), "username": name},
            status=exc.status,
        )
        if isinstance(exc, TooManyRequests):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    response = web.HTTPFound(_safe_next(form.get("next")))
    set_flash(response, f"Signed in as {user.name}.")
    await auth.start_session(
        db, response, user, config.session_days, secure=config.public_base_url.startswith("https")
    )
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    await _form(request)
    response = web.HTTPFound("/")
    set_flash(response, "Signed out.")
    await auth.end_session(request.app[DB], request, response)
    raise response


async def api_docs(request: web.Request, new_token: auth.NewToken | None = None) -> web.Response:
    """GET /api/: the API documentation and, for a signed-in user, their ~/.config/copr."""
    config = request.app[CONFIG]
    user = await current_user(request)
    login = expiration = None
    if new_token is not None:
        login, expiration = new_token.login, new_token.expiration_date
    elif user is not None:
        existing = await request.app[DB].read(store.get_api_login, user.id)
        if existing is not None:
            login, expiration = existing[0], auth.expiration_date(existing[1])
    return await render_page(
        request,
        "api.html",
        {
            "token_days": config.token_expiration_days,
            "api_login": login,
            "api_token": new_token.token if new_token else None,
            "api_token_expiration": expiration,
            "error": None,
        },
    )


async def api_new_token(request: web.Request) -> web.StreamResponse:
    """POST /api/new/: regenerate the signed-in user's API token and show it once."""
    user = await current_user(request)
    if user is None:
        raise web.HTTPFound("/login/?next=" + quote("/api/"))
    await _form(request)
    config = request.app[CONFIG]
    new = await auth.issue_token(
        request.app[DB], request.app[TOKEN_CACHE], user, config.token_expiration_days
    )
    return await api_docs(request, new_token=new)


async def api_new_token_get(request: web.Request) -> web.StreamResponse:
    # Regenerating changes state, so it needs the POST form (and its CSRF token) on /api/.
    raise web.HTTPFound("/api/")


async def auth_check(request: web.Request) -> web.StreamResponse:
    """/api/auth_check/: 200 for valid API credentials (copr-cli asks before a build)."""
    await signin.api_user(request)
    return json_response({"output": "ok"})
