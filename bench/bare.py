"""The baseline for bench/api.py: a bare aiohttp app with one small fixed JSON answer.

Run as `python bench/bare.py PORT`; it serves every GET path on 127.0.0.1:PORT, without an
access log, on the same Python and aiohttp as copr_lite.
"""

from __future__ import annotations

import sys

from aiohttp import web

BODY = {"output": "ok", "status": "succeeded"}


async def handler(request: web.Request) -> web.Response:
    return web.json_response(BODY)


def main() -> None:
    port = int(sys.argv[1])
    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
