"""Live build pages: what open build pages cost the server, and how late a state arrives.

Run as `.venv/bin/python bench/live.py [--pages N] [--seconds S] [--changes K]`. The server
is pinned to CPU 0 and the clients (aiohttp, in this process) to CPU 1, as in perf-notes.md.
N builds of four chroots each are stored as running, each chroot with a 2,000-line log, and
every figure is compared with a baseline measured in the same run:

1. Idle server: its CPU share over S seconds with nothing open (the baseline).
2. Per-chroot streams, as build pages opened them before: each page holds one
   `/builds/<id>/<chroot>/live-log` stream per chroot and polls `/builds/<id>/state` every
   2 s. Server CPU share over S seconds, and connections held.
3. One stream per page: each page holds `/builds/<id>/events`. Same figures.
4. State lag: K times, one chroot's state is changed in the database and the time until a
   page sees it is measured: through the 2 s poll, and through the events stream.

Targets: one connection per page; the events streams cost at most the per-chroot streams'
CPU; the state lag's p50 under 0.5 s (the poll's is about 1 s).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from copr_lite import store, testing
from copr_lite.builders import PackageInfo
from copr_lite.liveserver import HOST, free_port, running, wait_ready
from copr_lite.publisher import build_dir_name
from copr_lite.states import State

CHROOTS = ("epel-9-x86_64", "fedora-40-x86_64", "fedora-41-x86_64", "fedora-rawhide-x86_64")
LOG_LINES = 2000
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / _TICK


def connect(db_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db_path, isolation_level=None, timeout=30)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def store_builds(db_path: Path, results: Path, pages: int) -> list[int]:
    """A user, a project and `pages` builds whose four chroots are running, with logs."""
    conn = connect(db_path)
    conn.execute("BEGIN IMMEDIATE")
    user_id = store.create_user(conn, "bench", None, False).id
    fields: dict[str, object] = {
        "name": "live",
        "description": "",
        "instructions": "",
        "repos": "",
        "homepage": "",
        "contact": "",
        "auto_createrepo": True,
        "build_enable_net": False,
        "unlisted_on_hp": False,
        "persistent": False,
        "auto_prune": True,
        "use_bootstrap_container": False,
    }
    project_id = store.create_project(conn, user_id, fields, list(CHROOTS))
    sources = ["https://example.org/hello-1.0-1.src.rpm"] * pages
    ids = testing.store_builds(conn, project_id, user_id, sources, CHROOTS)
    log = "".join(
        f"line {n} of a long build log, as builders write them\n" for n in range(LOG_LINES)
    )
    for build_id in ids:
        store.set_build_package(conn, build_id, PackageInfo("hello", None, "1.0", "1", "src"))
        for chroot in CHROOTS:
            for state in (State.PENDING, State.STARTING, State.RUNNING):
                store.set_chroot_state(conn, build_id, chroot, state)
            directory = results / "bench" / "live" / chroot / build_dir_name(build_id, "hello")
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "builder-live.log").write_text(log)
    conn.execute("COMMIT")
    conn.close()
    return ids


async def hold_stream(session: aiohttp.ClientSession, url: str, stop: asyncio.Event) -> None:
    async with session.get(url) as resp:
        assert resp.status == 200, url
        while not stop.is_set():
            try:
                await asyncio.wait_for(resp.content.readany(), 0.5)
            except TimeoutError:
                continue


async def poll_state(session: aiohttp.ClientSession, url: str, stop: asyncio.Event) -> None:
    while not stop.is_set():
        async with session.get(url) as resp:
            await resp.read()
        await asyncio.sleep(2.0)


async def cost(port: int, pid: int, ids: list[int], mode: str, seconds: float) -> dict[str, float]:
    """Server CPU share while every build's page is open in `mode` ("old", "new", "none")."""
    stop = asyncio.Event()
    base = f"http://{HOST}:{port}"
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout()) as s:
        tasks = []
        for build_id in ids:
            if mode == "old":
                for chroot in CHROOTS:
                    url = f"{base}/builds/{build_id}/{chroot}/live-log"
                    tasks.append(asyncio.create_task(hold_stream(s, url, stop)))
                url = f"{base}/builds/{build_id}/state"
                tasks.append(asyncio.create_task(poll_state(s, url, stop)))
            elif mode == "new":
                url = f"{base}/builds/{build_id}/events"
                tasks.append(asyncio.create_task(hold_stream(s, url, stop)))
        await asyncio.sleep(3.0)  # every stream has sent its backlog
        start_cpu, start = cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(seconds)
        share = (cpu_seconds(pid) - start_cpu) / (time.monotonic() - start)
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    streams = len(ids) * len(CHROOTS) if mode == "old" else len(ids) if mode == "new" else 0
    return {"cpu": share, "connections_per_page": streams / len(ids)}


def flip(db_path: Path, build_id: int, chroot: str, state: State) -> None:
    conn = connect(db_path)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        "UPDATE build_chroots SET status = ? WHERE build_id = ? AND chroot = ?",
        (state.code, build_id, chroot),
    )
    conn.execute("COMMIT")
    conn.close()


async def lag_poll(port: int, db_path: Path, build_id: int, changes: int) -> list[float]:
    """As the old page: /state every 2 s. Each change lands at another point of the poll's
    cycle (as in life); its lag runs to the first poll that shows it."""
    lags = []
    url = f"http://{HOST}:{port}/builds/{build_id}/state"
    async with aiohttp.ClientSession() as session:
        for n in range(changes):
            state = State.STARTING if n % 2 == 0 else State.RUNNING
            async with session.get(url) as resp:  # a poll
                await resp.read()
            polled = time.monotonic()
            await asyncio.sleep(2.0 * ((n * 0.37 + 0.1) % 1))
            flip(db_path, build_id, CHROOTS[0], state)
            changed = time.monotonic()
            await asyncio.sleep(max(0.0, polled + 2.0 - time.monotonic()))
            async with session.get(url) as resp:  # the next poll
                view = await resp.json()
            assert view["chroots"][0]["state"] == state.value
            lags.append(time.monotonic() - changed)
    return lags


async def lag_events(port: int, db_path: Path, build_id: int, changes: int) -> list[float]:
    lags = []
    url = f"http://{HOST}:{port}/builds/{build_id}/events"
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout()) as session,
        session.get(url) as resp,
    ):
        buffer = b""

        async def next_state() -> str:
            nonlocal buffer
            while True:
                while b"\n\n" not in buffer:
                    buffer += await resp.content.readany()
                event, buffer = buffer.split(b"\n\n", 1)
                if b"event: state" in event:
                    return event.decode()

        await next_state()
        for n in range(changes):
            state = State.STARTING if n % 2 == 0 else State.RUNNING
            await asyncio.sleep(0.25 * ((n * 0.37) % 1))
            flip(db_path, build_id, CHROOTS[0], state)
            changed = time.monotonic()
            while f'"state":"{state.value}"' not in (await next_state()).split('"chroots"')[1][:80]:
                pass
            lags.append(time.monotonic() - changed)
    return lags


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=20, help="build pages open at once")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds each cost is measured")
    parser.add_argument("--changes", type=int, default=10, help="state changes timed per way")
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory(prefix="copr-lite-bench-live-") as tmp:
        work = Path(tmp)
        port = free_port()
        config = work / "copr-lite.ini"
        config.write_text(
            f"[server]\nhost = {HOST}\nport = {port}\ndata_dir = {work / 'data'}\n"
            "access_log = no\n[signing]\nsign = no\n[chroots]\n"
            + "".join(f"{c} = rpmbuild\n" for c in CHROOTS)
        )
        log_path = work / "server.log"
        cmd = [
            "taskset",
            "-c",
            "0",
            sys.executable,
            "-m",
            "copr_lite",
            "serve",
            "--config",
            str(config),
        ]
        with running(cmd, log_path, work) as proc:
            wait_ready(proc, port, log_path)
            # Stored after the start, so the start-up recovery leaves them running.
            ids = store_builds(
                work / "data" / "copr-lite.sqlite3", work / "data" / "results", args.pages
            )
            db_path = work / "data" / "copr-lite.sqlite3"
            results = {}
            for mode in ("none", "old", "new"):
                results[mode] = asyncio.run(cost(port, proc.pid, ids, mode, args.seconds))
            poll = asyncio.run(lag_poll(port, db_path, ids[0], args.changes))
            events = asyncio.run(lag_events(port, db_path, ids[1], args.changes))
    idle = results["none"]["cpu"]
    print(
        f"{args.pages} build pages of {len(CHROOTS)} chroots, {LOG_LINES}-line logs, "
        f"{args.seconds:.0f} s each; server on CPU 0, clients on CPU 1"
    )
    print(f"{'pages open as':<34}{'conns/page':>11}{'server CPU':>12}{'vs idle':>10}")
    labels = {
        "none": "nothing open (baseline)",
        "old": "per-chroot streams + 2 s poll",
        "new": "one events stream",
    }
    for mode, label in labels.items():
        r = results[mode]
        print(
            f"{label:<34}{r['connections_per_page']:>11.0f}{r['cpu'] * 100:>11.1f}%"
            f"{(r['cpu'] - idle) * 100:>+9.1f}%"
        )
    ratio = (results["new"]["cpu"] - idle) / max(results["old"]["cpu"] - idle, 1e-9)
    print(f"events streams' CPU above idle / per-chroot streams': {ratio:.2f} (target <= 1)")
    for label, lags in (("2 s poll", poll), ("events stream", events)):
        print(f"state lag, {label:<14} p50 {statistics.median(lags):.3f} s, max {max(lags):.3f} s")
    met = statistics.median(events) < 0.5
    print(f"state lag target: events p50 < 0.5 s -> {'met' if met else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
