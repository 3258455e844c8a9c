"""Logging: key=value lines on stderr, and a cheap access log.

The stdlib logging path (record, format, lock, write, flush) costs about as much as a whole
small request here, so the access log formats one f-string and appends it to a buffer that is
flushed a few times a second and at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import ClassVar, TextIO

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError


class KeyValueFormatter(logging.Formatter):
    """`<UTC time> level=INFO logger=name msg="..."` (+ traceback lines when there is one)."""

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))
        msg = record.getMessage().replace('"', '\\"')
        line = f'{ts} level={record.levelname} logger={record.name} msg="{msg}"'
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(level: str, stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's own access logger is replaced by AccessLogger below.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, RefusedRequestFilter) for f in server_log.filters):
        server_log.addFilter(RefusedRequestFilter())


class RefusedRequestFilter(logging.Filter):
    """aiohttp logs a request its parser refuses (a control character in a header, a bad
    chunk size) at ERROR with a traceback. That is the client's mistake, answered with a
    400: one INFO line says so instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            reason = ((exc.message or "").strip().splitlines() or [type(exc).__name__])[0]
            record.msg, record.args = f"refused a malformed request from {remote}: {reason}", ()
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info = record.exc_text = None
        return True


class AccessLogger(AbstractAccessLogger):
    """One line per request, buffered and flushed every FLUSH_SECONDS."""

    FLUSH_SECONDS: ClassVar[float] = 0.25
    stream: ClassVar[TextIO | None] = None  # None: whatever sys.stderr is at flush time
    _buffer: ClassVar[list[str]] = []
    _flush_scheduled: ClassVar[bool] = False
    _second: ClassVar[int] = 0
    _stamp: ClassVar[str] = ""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time_: float) -> None:
        now = int(time.time())
        cls = AccessLogger
        if now != cls._second:
            cls._second, cls._stamp = now, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        cls._buffer.append(
            f"{cls._stamp} level=INFO logger=access remote={request.remote} "
            f'method={request.method} path="{request.path_qs}" status={response.status} '
            f"bytes={response.body_length} ms={time_ * 1000:.2f}\n"
        )
        if not cls._flush_scheduled:
            cls._flush_scheduled = True
            asyncio.get_running_loop().call_later(cls.FLUSH_SECONDS, cls.flush)

    @classmethod
    def flush(cls) -> None:
        cls._flush_scheduled = False
        if cls._buffer:
            lines, cls._buffer = cls._buffer, []
            stream = cls.stream or sys.stderr
            stream.write("".join(lines))
            stream.flush()
