"""The error middleware (one error shape) and the path-normalising fallback."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable

import aiohttp_jinja2
from aiohttp import web

from .errors import CoprLiteError, TooManyRequests, error_body
from .responses import json_response

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_SLASHES = re.compile(r"//+")


def is_api_path(path: str) -> bool:
    """True for the JSON surfaces: the API (`/api/`) and the worker API (`/worker/`)."""
    path = _SLASHES.sub("/", path)
    return path in ("/api", "/worker") or path.startswith(("/api/", "/worker/"))


def error_response(request: web.Request, status: int, message: str, errcode: str) -> web.Response:
    """JSON envelope for the API, an HTML page for everything else."""
    if is_api_path(request.path):
        return json_response(error_body(message, errcode), status=status)
    try:
        response = aiohttp_jinja2.render_template(
            "error.html",
            request,
            {
                "status": status,
                "message": message,
                "current_user": None,
                "csrf_token": "",
                "base_url": "",
            },
            status=status,
        )
    except Exception:  # a broken template must not hide the original error
        log.exception("error page could not be rendered")
        response = web.Response(text=f"{status}: {message}", status=status)
    return response


_HTTP_TEXT = {
    404: ("Not found: no such URL.", "not_found"),
    405: ("Method not allowed.", "method_not_allowed"),
    413: ("Request body too large.", "too_large"),
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except CoprLiteError as exc:
        response = error_response(request, exc.status, exc.message, exc.errcode)
        if isinstance(exc, TooManyRequests):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message, errcode = _HTTP_TEXT.get(exc.status, (exc.reason, f"http_{exc.status}"))
        if exc.status == 405 and isinstance(exc, web.HTTPMethodNotAllowed):
            allowed = ", ".join(sorted(exc.allowed_methods))
            message = f"Method {exc.method} not allowed here; use {allowed}."
        response = error_response(request, exc.status, message, errcode)
        if exc.status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(request, 500, "Internal server error.", "server_error")


@web.middleware
async def normalize_path_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Serve `//api/x` and `/api/x` as `/api/x/` (old clients), without a redirect.

    Only requests that matched no route pay for this.
    """
    if request.match_info.http_exception is None:
        return await handler(request)
    path = _SLASHES.sub("/", request.rel_url.raw_path)
    if not path.endswith("/"):
        path += "/"
    if path != request.rel_url.raw_path:
        query = request.rel_url.raw_query_string
        alt = request.clone(rel_url=path + (f"?{query}" if query else ""))
        match = await request.app.router.resolve(alt)
        if match.http_exception is None:
            # aiohttp's own normalize_path_middleware attaches the match the same way.
            alt._match_info = match  # type: ignore[attr-defined]
            match.add_app(request.app)
            return await match.handler(alt)
    return await handler(request)
