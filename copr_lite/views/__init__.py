"""The route table: every URL the server answers."""

from __future__ import annotations

from aiohttp import web

from . import pages


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/", pages.index)
    app.router.add_get("/login/", pages.login_form)
    app.router.add_post("/login/", pages.login_submit)
    app.router.add_post("/logout/", pages.logout)
    app.router.add_get("/api/", pages.api_docs)
    app.router.add_get("/api/new/", pages.api_new_token_get)
    app.router.add_post("/api/new/", pages.api_new_token)
    app.router.add_get("/api/auth_check/", pages.auth_check)
    app.router.add_post("/api/auth_check/", pages.auth_check)
