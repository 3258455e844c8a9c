"""The route table: every URL the server answers."""

from __future__ import annotations

from aiohttp import web

from ..middlewares import expect_form, expect_upload
from . import api_v1, pages
from .results import add_results_routes
from .web import add_web_routes


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/login/", pages.login_form, expect_handler=expect_form)
    app.router.add_post("/login/", pages.login_submit, expect_handler=expect_form)
    app.router.add_post("/logout/", pages.logout, expect_handler=expect_form)
    app.router.add_get("/api/", pages.api_docs, expect_handler=expect_form)
    app.router.add_get("/api/new/", pages.api_new_token_get, expect_handler=expect_form)
    app.router.add_post("/api/new/", pages.api_new_token, expect_handler=expect_form)
    app.router.add_get("/api/auth_check/", pages.auth_check, expect_handler=expect_form)
    app.router.add_post("/api/auth_check/", pages.auth_check, expect_handler=expect_form)
    add_api_v1_routes(app.router)
    add_results_routes(app.router)
    add_web_routes(app.router)


def add_api_v1_routes(router: web.UrlDispatcher) -> None:
    """API v1. Fixed paths first: their first segment is never a user name (see RESERVED)."""
    router.add_get("/api/openapi.json", api_v1.openapi, expect_handler=expect_form)
    router.add_get("/api/chroots/", api_v1.chroots, expect_handler=expect_form)
    router.add_get("/api/coprs/", api_v1.list_projects, expect_handler=expect_form)
    router.add_get("/api/coprs/search/", api_v1.search, expect_handler=expect_form)
    router.add_get("/api/coprs/search/{query}/", api_v1.search, expect_handler=expect_form)
    router.add_get(
        "/api/coprs/build_status/{build_id}/", api_v1.build_status, expect_handler=expect_form
    )
    router.add_get(
        "/api/coprs/build_detail/{build_id}/", api_v1.build_detail, expect_handler=expect_form
    )
    router.add_get("/api/coprs/build/{build_id}/", api_v1.build_detail, expect_handler=expect_form)
    router.add_post(
        "/api/coprs/cancel_build/{build_id}/", api_v1.cancel_build, expect_handler=expect_form
    )
    router.add_get("/api/coprs/{username}/", api_v1.list_projects, expect_handler=expect_form)
    router.add_post("/api/coprs/{username}/new/", api_v1.create_project, expect_handler=expect_form)
    prefix = "/api/coprs/{username}/{project}"
    router.add_get(prefix + "/detail/", api_v1.project_detail, expect_handler=expect_form)
    router.add_post(prefix + "/delete/", api_v1.delete_project, expect_handler=expect_form)
    router.add_get(prefix + "/monitor/", api_v1.monitor, expect_handler=expect_form)
    router.add_post(prefix + "/new_build/", api_v1.new_build, expect_handler=expect_form)
    router.add_post(
        prefix + "/new_build_upload/", api_v1.new_build_upload, expect_handler=expect_upload
    )
    router.add_post(prefix + "/modify/", api_v1.modify_project, expect_handler=expect_form)
    router.add_post(prefix + "/modify/{chroot}/", api_v1.modify_chroot, expect_handler=expect_form)
    router.add_get(prefix + "/detail/{chroot}/", api_v1.chroot_detail, expect_handler=expect_form)
