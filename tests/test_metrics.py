"""/metrics, read with Prometheus's own text parser, after real builds and requests; and
/healthz with each of its reasons."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from test_dispatcher import CHROOTS, add_pending, add_project, start, states, wait_state

from copr_lite import store
from copr_lite.builders import Outcome
from copr_lite.keys import DB, DISPATCHER
from copr_lite.testing import FakeBuilder, Script, wait_until


async def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(await resp.text()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_follow_builds_requests_and_disk(aiohttp_client, make_app):
    builder = FakeBuilder(scripts={"broken": Script(outcome=Outcome.FAILED)})
    app, client = await start(aiohttp_client, make_app, builder)
    alice, project_id = await add_project(app)
    good = await add_pending(app, project_id, alice.id)
    await wait_state(app, good, "succeeded")
    bad = await add_pending(app, project_id, alice.id, pkg="broken")
    await wait_state(app, bad, "failed")
    assert (await client.get(f"/api/coprs/build/{good}/")).status == 200
    assert (await client.get(f"/api/coprs/build/{good}/")).status == 200
    assert (await client.get("/api/coprs/build/999999/")).status == 404

    async def sealed():  # the disk usage is recorded after each chroot's end
        total, _ = await app[DB].read(store.disk_usage)
        samples = await scrape(client)
        return total > 0 and value(samples, "copr_lite_disk_used_bytes") == total

    await wait_until(sealed)
    samples = await scrape(client)
    n = len(CHROOTS)
    assert value(samples, "copr_lite_build_chroots", state="succeeded") == n
    assert value(samples, "copr_lite_build_chroots", state="failed") == n
    assert value(samples, "copr_lite_build_chroots", state="running") == 0
    assert value(samples, "copr_lite_queue_length", builder="fake") == 0
    assert (
        value(samples, "copr_lite_chroots_finished_total", state="succeeded", builder="fake") == n
    )
    assert value(samples, "copr_lite_chroots_finished_total", state="failed", builder="fake") == n
    assert value(samples, "copr_lite_build_duration_seconds_count", builder="fake") == 2 * n
    assert value(samples, "copr_lite_queue_wait_seconds_count", builder="fake") == 2 * n
    # Only the good build published: one createrepo_c run per chroot (at least).
    assert value(samples, "copr_lite_publish_duration_seconds_count") >= n
    route = "/api/coprs/build/{build_id}/"
    assert (
        value(samples, "copr_lite_http_requests_total", route=route, method="GET", status="200")
        == 2
    )
    assert (
        value(samples, "copr_lite_http_requests_total", route=route, method="GET", status="404")
        == 1
    )
    assert value(samples, "copr_lite_http_request_duration_seconds_count", route=route) == 3
    assert value(samples, "copr_lite_workers_connected") == 0
    assert value(samples, "copr_lite_disk_free_bytes") > 0


async def test_queue_length_counts_pending_chroots_by_builder(aiohttp_client, make_app):
    app, client = await start(
        aiohttp_client, make_app, FakeBuilder(scripts={"slow": Script(seconds=60)}), concurrency=1
    )
    alice, project_id = await add_project(app)
    first = await add_pending(app, project_id, alice.id, pkg="slow")
    await add_pending(app, project_id, alice.id, pkg="slow", count=2)

    async def one_running():
        return sorted((await states(app, first)()).values()) == ["pending", "running"]

    await wait_until(one_running)
    samples = await scrape(client)
    # One chroot runs; the other chroot of the first build and both of the others wait.
    assert value(samples, "copr_lite_queue_length", builder="fake") == 5
    assert value(samples, "copr_lite_build_chroots", state="running") == 1


async def test_blocked_metrics_plugin_serves_nothing(aiohttp_client, make_app):
    client = await aiohttp_client(make_app(blocklist=("metrics",)))
    assert (await client.get("/metrics")).status == 404


async def test_healthz_answers_200_or_503_with_the_reason(aiohttp_client, make_app, tmp_path):
    app, client = await start(aiohttp_client, make_app, FakeBuilder())
    resp = await client.get("/healthz")
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["status"] == "ok" and body["reasons"] == []
    assert body["database"] == "writable" and body["dispatcher"] == "alive"

    await app[DISPATCHER].stop()
    resp = await client.get("/healthz")
    assert resp.status == 503
    assert (await resp.json())["reasons"] == ["the build dispatcher is not running"]

    full = await aiohttp_client(make_app(min_free_disk_mb=10_000_000, data_dir=tmp_path / "full"))
    resp = await full.get("/healthz")
    assert resp.status == 503
    (reason,) = (await resp.json())["reasons"]
    assert "below the floor of 10000000 MiB ([server] min_free_disk_mb)" in reason
