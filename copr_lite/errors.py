"""Domain errors: each carries its HTTP status and default text; one function shapes the body."""

from __future__ import annotations

from typing import Any, ClassVar


class CoprLiteError(Exception):
    """Base of every error the API reports to a client. A subclass declares its HTTP
    status, its `errcode` and its default text in its class line."""

    status: ClassVar[int] = 500
    errcode: ClassVar[str] = "server_error"
    default: ClassVar[str] = "Internal server error."

    def __init_subclass__(
        cls, *, status: int = 0, errcode: str = "", default: str = "", **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        # A subclass that declares nothing keeps its parent's.
        cls.status = status or cls.status
        cls.errcode = errcode or cls.errcode
        cls.default = default or cls.default

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default
        super().__init__(self.message)


class BadRequest(CoprLiteError, status=400, errcode="bad_request", default="Invalid request."):
    """The request cannot be read, or a value in it is wrong."""


class Unauthorized(
    CoprLiteError, status=401, errcode="unauthorized", default="Login invalid/expired."
):
    """No credentials, or credentials that are not valid (any more)."""


class Forbidden(
    CoprLiteError, status=403, errcode="forbidden", default="You are not allowed to do this."
):
    """The caller is known but may not do this."""


class NotFound(CoprLiteError, status=404, errcode="not_found", default="Not found."):
    """The addressed user, project, build or chroot does not exist."""


class MethodNotAllowed(
    CoprLiteError, status=405, errcode="method_not_allowed", default="Method not allowed."
):
    """The URL exists but does not answer this method."""


class Conflict(CoprLiteError, status=409, errcode="conflict", default="Conflict."):
    """The request does not fit the current state (a name taken, a build not finished)."""


class PayloadTooLarge(
    CoprLiteError, status=413, errcode="too_large", default="Request body too large."
):
    """The body, or a file in it, is larger than the server takes."""


class TooManyRequests(
    CoprLiteError,
    status=429,
    errcode="too_many_requests",
    default="Too many requests: try again later.",
):
    """Refused for now; the client may retry after `retry_after` seconds (the Retry-After
    header says so)."""

    def __init__(self, message: str | None = None, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


def error_body(message: str, errcode: str) -> dict[str, Any]:
    """The one error shape of the API (spec A2)."""
    return {"output": "notok", "error": message, "errcode": errcode}
