"""The route table: every URL the server answers."""

from __future__ import annotations

from aiohttp import web

from ..middlewares import expect_upload, form_routes, json_errors_under
from . import api_v1, health, pages
from .api_v3 import add_api_v3_routes
from .results import add_results_routes
from .web import add_web_routes
from .web_packages import add_package_routes
from .webhooks import PREFIX as WEBHOOKS_PREFIX
from .webhooks import add_webhook_routes


def setup_routes(app: web.Application) -> None:
    # Each route answers Expect itself: an oversized body or an unknown expectation is
    # refused in the error shape before anything is read (middlewares.form_routes).
    get, post = form_routes(app.router)
    get("/login/", pages.login_form)
    post("/login/", pages.login_submit)
    post("/logout/", pages.logout)
    get("/api/", pages.api_docs)
    get("/api/new/", pages.api_new_token_get)
    post("/api/new/", pages.api_new_token)
    get("/api/auth_check/", pages.auth_check)
    get("/healthz", health.healthz)
    post("/api/auth_check/", pages.auth_check)
    add_api_v1_routes(app.router)
    add_api_v3_routes(app.router)
    add_results_routes(app.router)
    add_package_routes(app.router)
    add_web_routes(app.router)
    add_webhook_routes(app.router)
    json_errors_under(app, WEBHOOKS_PREFIX)


def add_api_v1_routes(router: web.UrlDispatcher) -> None:
    """API v1. Fixed paths first: their first segment is never a user name (see RESERVED)."""
    get, post = form_routes(router)
    get("/api/openapi.json", api_v1.openapi)
    get("/api/chroots/", api_v1.chroots)
    get("/api/disk_usage/", api_v1.disk_usage)
    get("/api/coprs/", api_v1.list_projects)
    get("/api/coprs/search/", api_v1.search)
    get("/api/coprs/search/{query}/", api_v1.search)
    get("/api/coprs/build_status/{build_id}/", api_v1.build_status)
    get("/api/coprs/build_detail/{build_id}/", api_v1.build_detail)
    get("/api/coprs/build/{build_id}/", api_v1.build_detail)
    post("/api/coprs/cancel_build/{build_id}/", api_v1.cancel_build)
    get("/api/coprs/{username}/", api_v1.list_projects)
    post("/api/coprs/{username}/new/", api_v1.create_project)
    prefix = "/api/coprs/{username}/{project}"
    get(prefix + "/detail/", api_v1.project_detail)
    post(prefix + "/delete/", api_v1.delete_project)
    get(prefix + "/monitor/", api_v1.monitor)
    post(prefix + "/new_build/", api_v1.new_build)
    router.add_post(
        prefix + "/new_build_upload/", api_v1.new_build_upload, expect_handler=expect_upload
    )
    post(prefix + "/modify/", api_v1.modify_project)
    post(prefix + "/modify/{chroot}/", api_v1.modify_chroot)
    get(prefix + "/detail/{chroot}/", api_v1.chroot_detail)
