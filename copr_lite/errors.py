"""Domain errors: each carries its HTTP status and default text; one function shapes the body."""

from __future__ import annotations

from typing import Any, ClassVar


class CoprLiteError(Exception):
    """Base of every error the API reports to a client."""

    status: ClassVar[int] = 500
    errcode: ClassVar[str] = "server_error"
    default: ClassVar[str] = "Internal server error."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default
        super().__init__(self.message)


class BadRequest(CoprLiteError):
    status, errcode, default = 400, "bad_request", "Invalid request."


class Unauthorized(CoprLiteError):
    status, errcode, default = 401, "unauthorized", "Login invalid/expired."


class Forbidden(CoprLiteError):
    status, errcode, default = 403, "forbidden", "You are not allowed to do this."


class NotFound(CoprLiteError):
    status, errcode, default = 404, "not_found", "Not found."


class MethodNotAllowed(CoprLiteError):
    status, errcode, default = 405, "method_not_allowed", "Method not allowed."


class Conflict(CoprLiteError):
    status, errcode, default = 409, "conflict", "Conflict."


class PayloadTooLarge(CoprLiteError):
    status, errcode, default = 413, "too_large", "Request body too large."


class TooManyRequests(CoprLiteError):
    """Refused for now; the client may retry after `retry_after` seconds (the Retry-After
    header says so)."""

    status, errcode, default = 429, "too_many_requests", "Too many requests: try again later."

    def __init__(self, message: str | None = None, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


def error_body(message: str, errcode: str) -> dict[str, Any]:
    """The one error shape of the API (spec A2)."""
    return {"output": "notok", "error": message, "errcode": errcode}
