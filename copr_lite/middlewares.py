"""The error middleware (one error shape) and the path-normalising fallback."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Awaitable, Callable

import aiohttp_jinja2
from aiohttp import HttpVersion11, hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from . import auth, forms
from .errors import CoprLiteError, TooManyRequests, error_body
from .keys import CONFIG, CURRENT_USER, DB
from .responses import json_response

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RouteAdder = Callable[..., web.AbstractRoute]
_SLASHES = re.compile(r"//+")


# Path prefixes whose errors are JSON: the APIs, and what plugins add (json_errors_under).
API_PREFIXES = ("/api", "/api_3")
JSON_PREFIXES: web.AppKey[tuple[str, ...]] = web.AppKey("json_prefixes")


def json_errors_under(app: web.Application, prefix: str) -> None:
    """Answer errors under `prefix` (e.g. a plugin's "/worker") with the JSON error body."""
    app[JSON_PREFIXES] = (*app.get(JSON_PREFIXES, ()), prefix.rstrip("/"))


def is_api_path(request: web.Request) -> bool:
    """True for the JSON surfaces: the APIs (`/api/`, `/api_3/`) and the prefixes plugins
    added with json_errors_under."""
    path = _SLASHES.sub("/", request.path)
    prefixes = (*API_PREFIXES, *request.app.get(JSON_PREFIXES, ()))
    return path in prefixes or path.startswith(tuple(f"{prefix}/" for prefix in prefixes))


def error_response(request: web.Request, status: int, message: str, errcode: str) -> web.Response:
    """JSON envelope for the API, an HTML page for everything else (showing who is signed
    in when `find_user` has looked)."""
    if is_api_path(request):
        return json_response(error_body(message, errcode), status=status)
    try:
        response = aiohttp_jinja2.render_template(
            "error.html",
            request,
            {
                "status": status,
                "message": message,
                "current_user": request.get(CURRENT_USER),
                "csrf_token": request.cookies.get(auth.CSRF_COOKIE, ""),
                "base_url": "",
                "current_path": request.path,
            },
            status=status,
        )
    except Exception:  # a broken template must not hide the original error
        log.exception("error page could not be rendered")
        response = web.Response(text=f"{status}: {message}", status=status)
    return response


# What the access log shows for a request whose client hung up before the answer (nginx's
# "client closed request"): there is nobody left to send a status to.
CLIENT_CLOSED = 499

_HTTP_TEXT = {
    404: ("Not found: no such URL.", "not_found"),
    405: ("Method not allowed.", "method_not_allowed"),
    413: ("Request body too large.", "too_large"),
}


async def find_user(request: web.Request) -> None:
    """Look up the signed-in user of a web page's request for its error page; a database
    that cannot answer leaves the page anonymous."""
    if is_api_path(request) or CURRENT_USER in request or DB not in request.app:
        return
    try:
        user = await auth.session_user(request.app[DB], request)
    except Exception:
        log.warning("no session lookup for the error page of %s", request.path)
        return
    if user is not None:
        request[CURRENT_USER] = user


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except CoprLiteError as exc:
        await find_user(request)
        response = error_response(request, exc.status, exc.message, exc.errcode)
        if exc.status == 413:
            # The body may be unread: end the connection after this answer, not reuse it.
            response.force_close()
        if isinstance(exc, TooManyRequests):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            # The web UI's redirects set its cookies (flash message, session): Secure when
            # the site is served over HTTPS.
            if exc.cookies and request.app[CONFIG].public_base_url.startswith("https"):
                for morsel in exc.cookies.values():
                    morsel["secure"] = True
            raise
        await find_user(request)
        message, errcode = _HTTP_TEXT.get(exc.status, (exc.reason, f"http_{exc.status}"))
        if exc.status == 405 and isinstance(exc, web.HTTPMethodNotAllowed):
            allowed = ", ".join(sorted(exc.allowed_methods))
            message = f"Method {exc.method} not allowed here; use {allowed}."
        response = error_response(request, exc.status, message, errcode)
        if exc.status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except asyncio.CancelledError:
        raise
    except ConnectionResetError:
        # The client hung up (mid-body, or during a streamed answer): one access log line.
        return web.Response(status=CLIENT_CLOSED)
    except (HttpProcessingError, RequestPayloadError) as exc:
        # aiohttp's parser found the body malformed while a handler read it (a bad chunk,
        # a body shorter than its Content-Length, a bad multipart header).
        log.info("unreadable request body on %s %s: %s", request.method, request.path, exc)
        await find_user(request)
        return error_response(request, 400, "The request body could not be read.", "bad_request")
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        await find_user(request)
        return error_response(request, 500, "Internal server error.", "server_error")


@web.middleware
async def normalize_path_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Serve `//api/x` and `/api/x` as `/api/x/` (old clients), and `/api_3/x/` as
    `/api_3/x` (API v3 routes have no trailing slash), without a redirect.

    Only requests that matched no route pay for this.
    """
    if request.match_info.http_exception is None:
        return await handler(request)
    raw = request.rel_url.raw_path
    path = _SLASHES.sub("/", raw)
    candidates = [path if path.endswith("/") else path + "/"]
    if path.endswith("/") and len(path) > 1:
        candidates.append(path.rstrip("/"))
    for candidate in candidates:
        if candidate == raw:
            continue
        query = request.rel_url.raw_query_string
        alt = request.clone(rel_url=candidate + (f"?{query}" if query else ""))
        match = await request.app.router.resolve(alt)
        if match.http_exception is None:
            # aiohttp's own normalize_path_middleware attaches the match the same way.
            alt._match_info = match
            match.add_app(request.app)
            return await match.handler(alt)
    return await handler(request)


def form_routes(router: web.UrlDispatcher) -> tuple[RouteAdder, RouteAdder]:
    """`get` and `post`: router.add_get and router.add_post with expect_form as the route's
    Expect handler (aiohttp has no application-wide one)."""
    return (
        functools.partial(router.add_get, expect_handler=expect_form),
        functools.partial(router.add_post, expect_handler=expect_form),
    )


async def expect_form(request: web.Request) -> web.StreamResponse | None:
    """`Expect: 100-continue` for a route that takes at most a form (every built-in route
    but the uploads): refuse a body declared too large before the client sends it, instead
    of inviting it with "100 Continue", and answer another expectation in the error shape."""
    return await _expect(request, forms.declared_limit())


async def expect_upload(request: web.Request) -> web.StreamResponse | None:
    """As expect_form, for a route that also takes an SRPM file."""
    return await _expect(request, forms.declared_limit(request.app[CONFIG].upload_size_limit))


async def _expect(request: web.Request, limit: int) -> web.StreamResponse | None:
    # aiohttp calls this on route match, before the middlewares: hence the explicit error
    # responses. An HTTP/1.0 request's Expect is ignored (RFC 9110, 10.1.1).
    if request.version != HttpVersion11:
        return None
    if request.headers.get(hdrs.EXPECT, "").strip().lower() != "100-continue":
        return error_response(
            request, 417, "Only 'Expect: 100-continue' is understood.", "expectation_failed"
        )
    if request.content_length is not None and request.content_length > limit:
        response = error_response(
            request, 413, f"Request body too large: at most {limit} bytes.", "too_large"
        )
        response.force_close()
        return response
    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    request.writer.output_size = 0  # the answer's own size is counted from here, as in aiohttp
    return None
