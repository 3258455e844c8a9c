"""What the metrics plugin's request middleware costs per request, in CPU time.

Run as `.venv/bin/python bench/metrics_cost.py [--requests N]`. On a shared machine
bench/api.py's req/s move by tens of percent between runs, which hides a cost of a few
microseconds; this measures it directly: the same mocked request through a trivial handler,
bare and through the middleware (a labelled route, a 200 and a 404), by process CPU time,
alternating five times. It prints microseconds per request and, against the server's CPU
per read measured by bench/api.py (about 100 us), the points of the read's ratio to bare
this would cost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import time
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

ROOT = Path(__file__).resolve().parent.parent
READ_CPU_US = 100.0  # bench/api.py: the server's CPU per build_status or detail read


def load_plugin() -> object:
    spec = importlib.util.spec_from_file_location("metrics_bench", ROOT / "plugins" / "metrics.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def run(requests: int) -> None:
    metrics = load_plugin()
    measure = metrics._measure  # type: ignore[attr-defined]
    app = web.Application()

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def missing(request: web.Request) -> web.Response:
        raise web.HTTPNotFound()

    app.router.add_get("/api/coprs/build/{build_id}/", handler)
    request = make_mocked_request("GET", "/api/coprs/build/1/", app=app)
    match = await app.router.resolve(request)
    request._match_info = match  # what the router sets before the middlewares run

    async def bare() -> None:
        for _ in range(requests):
            await handler(request)

    async def measured() -> None:
        for _ in range(requests):
            await measure(request, handler)

    async def measured_404() -> None:
        for _ in range(requests):
            with contextlib.suppress(web.HTTPNotFound):
                await measure(request, missing)

    async def bare_404() -> None:
        for _ in range(requests):
            with contextlib.suppress(web.HTTPNotFound):
                await missing(request)

    totals = {"bare": 0.0, "metrics": 0.0, "bare 404": 0.0, "metrics 404": 0.0}
    for _ in range(5):
        for name, fn in (
            ("bare", bare),
            ("metrics", measured),
            ("bare 404", bare_404),
            ("metrics 404", measured_404),
        ):
            start = time.process_time()
            await fn()
            totals[name] += time.process_time() - start
    per = {name: 1e6 * total / (5 * requests) for name, total in totals.items()}
    for kind in ("", " 404"):
        cost = per[f"metrics{kind}"] - per[f"bare{kind}"]
        points = 100 * (1 - READ_CPU_US / (READ_CPU_US + cost))
        print(
            f"handler{kind or ' 200'}: bare {per['bare' + kind]:.2f} us, through the metrics "
            f"middleware {per['metrics' + kind]:.2f} us: +{cost:.2f} us/request, about "
            f"{points:.1f} % of a {READ_CPU_US:.0f} us read (at most that many points of "
            "its ratio to bare)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200_000)
    asyncio.run(run(parser.parse_args().requests))


if __name__ == "__main__":
    main()
