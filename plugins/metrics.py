"""Built-in plugin: `/metrics` in the Prometheus text format (prometheus-client).

Counters and histograms follow the build lifecycle's event hooks and a request middleware;
gauges that the database knows better (chroots by state, the queue, disk usage) are read
from it when /metrics is scraped, one query each. Block it with
`[plugins] blocklist = metrics` to serve no /metrics and measure nothing.

Every app loads its own copy of this module (plugins are loaded per app), so the registry
below belongs to one server.
"""

from __future__ import annotations

import asyncio
import bisect
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractResource
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import generate_latest

from copr_lite import hookimpl, store
from copr_lite.errors import CoprLiteError
from copr_lite.keys import BUILDERS, CONFIG, DB
from copr_lite.states import State

if TYPE_CHECKING:
    from copr_lite.builders import ChrootResult
    from copr_lite.models import Build

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Builds last seconds to hours; requests milliseconds; createrepo_c runs seconds.
BUILD_BUCKETS = (10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 18000, float("inf"))
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, float("inf"))
PUBLISH_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, float("inf"))


class Metrics:
    """The metrics of one server, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.chroots = Gauge(
            "copr_lite_build_chroots", "Build chroots by state.", ["state"], registry=r
        )
        self.queue = Gauge(
            "copr_lite_queue_length",
            "Pending build chroots waiting for a slot, by the builder that serves them.",
            ["builder"],
            registry=r,
        )
        self.finished = Counter(
            "copr_lite_chroots_finished",
            "Build chroots that ended since the server started, by state and builder.",
            ["state", "builder"],
            registry=r,
        )
        self.duration = Histogram(
            "copr_lite_build_duration_seconds",
            "Time a chroot took from its start to its end, by builder.",
            ["builder"],
            buckets=BUILD_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "copr_lite_queue_wait_seconds",
            "Time from a build's submission to a builder taking one of its chroots.",
            ["builder"],
            buckets=BUILD_BUCKETS,
            registry=r,
        )
        self.workers = Gauge(
            "copr_lite_workers_connected",
            "Remote build workers asking for work or holding a job now.",
            registry=r,
        )
        self.http = RequestStats()
        r.register(self.http)
        self.publish = Histogram(
            "copr_lite_publish_duration_seconds",
            "Time of one createrepo_c run (and its signature) on a chroot repository.",
            buckets=PUBLISH_BUCKETS,
            registry=r,
        )
        self.disk_used = Gauge(
            "copr_lite_disk_used_bytes", "Bytes of build results and imports.", registry=r
        )
        self.disk_free = Gauge(
            "copr_lite_disk_free_bytes",
            "Free bytes on the data directory's file system.",
            registry=r,
        )
        self.chroot_builders: dict[str, str] = {}

    def builder(self, chroot: str) -> str:
        return self.chroot_builders.get(chroot, "unknown")

    async def refresh(self, app: web.Application) -> None:
        """Read the gauges the database and the builders know."""
        states, pending = await app[DB].read(store.chroot_counts)
        for state in State:
            self.chroots.labels(state.value).set(states.get(state, 0))
        queued: dict[str, int] = dict.fromkeys(set(self.chroot_builders.values()), 0)
        for chroot, count in pending.items():
            queued[self.builder(chroot)] = queued.get(self.builder(chroot), 0) + count
        for builder, count in queued.items():
            self.queue.labels(builder).set(count)
        connected = 0
        for name in app[BUILDERS].names():
            counter = getattr(app[BUILDERS].get(name), "connected_workers", None)
            if callable(counter):
                connected += int(counter())
        self.workers.set(connected)
        total, _ = await app[DB].read(store.disk_usage)
        self.disk_used.set(total)
        usage = await asyncio.to_thread(shutil.disk_usage, app[CONFIG].data_dir)
        self.disk_free.set(usage.free)


class RequestStats:
    """HTTP request counts and latencies in one plain dict, turned into metric families when
    scraped. Every request passes here, and prometheus-client's labelled metrics take a
    lock and check the labels on each update, which cost reads several points of their
    throughput (bench/api.py); the event loop is one thread, so no lock is needed."""

    def __init__(self) -> None:
        # (route resource or None, method, status) -> requests per bucket of HTTP_BUCKETS,
        # then the sum of their seconds. Keyed by the resource object: its name is looked
        # up only when scraped.
        self.stats: dict[tuple[AbstractResource | None, str, int], list[float]] = {}

    def record(
        self, resource: AbstractResource | None, method: str, status: int, seconds: float
    ) -> None:
        key = (resource, method, status)
        histogram = self.stats.get(key)
        if histogram is None:
            histogram = self.stats[key] = [0.0] * (len(HTTP_BUCKETS) + 1)
        histogram[bisect.bisect_left(HTTP_BUCKETS, seconds)] += 1
        histogram[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "copr_lite_http_requests",
            "HTTP requests by route, method and status.",
            labels=["route", "method", "status"],
        )
        by_route: dict[str, list[float]] = {}
        for (resource, method, status), histogram in list(self.stats.items()):
            route = resource.canonical if resource is not None else "unmatched"
            requests.add_metric([route, method, str(status)], sum(histogram[:-1]))
            total = by_route.setdefault(route, [0.0] * len(histogram))
            for index, value in enumerate(histogram):
                total[index] += value
        yield requests
        latency = HistogramMetricFamily(
            "copr_lite_http_request_duration_seconds",
            "Time to answer an HTTP request (until the handler returns), by route.",
            labels=["route"],
        )
        for route, histogram in by_route.items():
            cumulative: float = 0
            buckets = []
            for bound, observed in zip(HTTP_BUCKETS, histogram, strict=False):
                cumulative += observed
                buckets.append(("+Inf" if bound == float("inf") else str(float(bound)), cumulative))
            latency.add_metric([route], buckets, sum_value=histogram[-1])
        yield latency


_metrics = Metrics()


_clock = time.perf_counter


@web.middleware
async def _measure(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = _clock()
    try:
        response = await handler(request)
    except (web.HTTPException, CoprLiteError) as exc:
        _record(request, exc.status, started)
        raise
    except BaseException:
        _record(request, 500, started)
        raise
    _record(request, response.status, started)
    return response


def _record(request: web.Request, status: int, started: float) -> None:
    _metrics.http.record(
        request.match_info.route.resource, request.method, status, _clock() - started
    )


async def _scrape(request: web.Request) -> web.Response:
    await _metrics.refresh(request.app)
    # On the loop: the request statistics are plain dicts that only the loop changes.
    body = generate_latest(_metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@hookimpl
def register_routes(app: web.Application) -> None:
    _metrics.chroot_builders = dict(app[CONFIG].chroots)
    app.middlewares.append(_measure)
    app.router.add_get("/metrics", _scrape)


@hookimpl
def chroot_started(build: Build, chroot: str) -> None:
    started = next((c.started_on for c in build.chroots if c.chroot == chroot), None)
    if started is not None:
        wait = max(0, started - build.submitted_on)
        _metrics.queue_wait.labels(_metrics.builder(chroot)).observe(wait)


@hookimpl
def chroot_finished(build: Build, chroot: str, result: ChrootResult | None, state: State) -> None:
    builder = _metrics.builder(chroot)
    _metrics.finished.labels(state.value, builder).inc()
    found = next((c for c in build.chroots if c.chroot == chroot), None)
    if found is not None and found.started_on is not None and found.ended_on is not None:
        _metrics.duration.labels(builder).observe(max(0, found.ended_on - found.started_on))


@hookimpl
def repository_published(owner: str, project: str, chroot: str, seconds: float) -> None:
    _metrics.publish.observe(seconds)
