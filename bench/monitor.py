"""What an uncached monitor answer costs, in-process, on bench/api.py's data set.

Run as `.venv/bin/python bench/monitor.py [--repeats N]` (pin it to a CPU for steadier
figures: `taskset -c 0 ...`). For the projects of 100, 10,000 and 100,000 builds it times,
in CPU milliseconds per answer (this process and the database thread together):

- "whole": the answer computed from scratch, as every miss did before answers were kept as
  rows per package (read every package's newest builds, encode them all);
- "one package": the answer after a new build of one package arrived (a write between two
  answers, not timed): what a miss costs now while the project's builds change;
- "nothing": the answer when nothing changed since the rows were kept (the package names
  are read, the rows joined): a miss caused by a change elsewhere in the project.

It checks that the kept rows give exactly the bytes of the whole answer.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import orjson
from api import API_USER, MONITOR_SIZES, fill_database

from copr_lite import store
from copr_lite.builders import PackageInfo
from copr_lite.cache import AnswerCache
from copr_lite.config import Config
from copr_lite.db import Database
from copr_lite.models import Project
from copr_lite.monitor import MonitorRows, build_entry, package_entries
from copr_lite.testing import store_builds
from copr_lite.views.common import results_base


async def whole(db: Database, project: Project, chroots: tuple[str, ...], base: str) -> bytes:
    """The answer from scratch (what the monitor computed on every miss before)."""
    latest, builds = await db.read(store.monitor, project.id, None)
    packages = package_entries(latest, chroots)
    return orjson.dumps(
        {
            "output": "ok",
            "chroots": list(chroots),
            "builds": [build_entry(build, base) for build in builds],
            "packages": [packages[name] for name in sorted(packages)],
        }
    )


def new_build(
    conn: sqlite3.Connection, project_id: int, submitter: int, name: str, chroots: list[str]
) -> None:
    """A new build of package `name` (its import done): the package's monitor row changes."""
    url = f"https://src.example.org/{name}-9-1.src.rpm"
    [build_id] = store_builds(conn, project_id, submitter, [url], chroots)
    store.set_build_package(conn, build_id, PackageInfo(name, None, "9", "1", "src"))


async def cpu_ms(
    fn: Callable[[], Awaitable[object]], before: Callable[[], Awaitable[None]]
) -> float:
    await before()
    started = time.process_time()
    await fn()
    return 1000 * (time.process_time() - started)


async def measure_project(
    db: Database, cache: AnswerCache, config: Config, size: int, repeats: int
) -> str:
    name = f"monitor-{size}"
    found = await db.read(store.get_project_with_roles, API_USER, name, None)
    assert found is not None
    project, _, chroots = found
    base = results_base(config, project.owner_name, project.name)
    rows = MonitorRows(cache)
    latest, _ = await db.read(store.monitor, project.id, None)
    packages = sorted({row.pkg_name for row in latest})
    changed = iter(packages * repeats)

    async def nothing() -> None:
        pass

    async def kept() -> bytes:
        fresh = await rows.answer(db, cache.version, project, chroots, base)
        return fresh.body

    async def whole_answer() -> bytes:
        return await whole(db, project, chroots, base)

    async def one_package() -> None:
        await db.write(new_build, project.id, project.owner_id, next(changed), list(chroots))

    await kept()  # the rows are kept from here on
    times: dict[str, list[float]] = {"whole": [], "one": [], "nothing": []}
    for _ in range(repeats):
        times["whole"].append(await cpu_ms(whole_answer, nothing))
        times["one"].append(await cpu_ms(kept, one_package))
        times["nothing"].append(await cpu_ms(kept, nothing))
    body = await kept()
    if body != await whole_answer():
        raise SystemExit(f"{name}: the kept rows differ from the whole answer")
    return (
        f"{name + f' ({len(packages)} pkgs)':<24} "
        f"{statistics.median(times['whole']):>9.2f} "
        f"{statistics.median(times['one']):>12.2f} "
        f"{statistics.median(times['nothing']):>9.2f} {len(body):>9,}"
    )


async def measure(db_path: Path, repeats: int) -> list[str]:
    db = await Database.open(db_path)
    cache = AnswerCache(db)
    lines = [
        f"{'project':<24} {'whole':>9} {'one package':>12} {'nothing':>9} {'bytes':>9}"
        "   (median CPU ms per answer)"
    ]
    try:
        for size in MONITOR_SIZES:
            lines.append(await measure_project(db, cache, Config(), size, repeats))
    finally:
        await db.close()
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20, help="answers timed per figure")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="copr-lite-monitor-"))
    try:
        print(f"filling the database in {work} ...", flush=True)
        data = fill_database(work / "copr-lite.sqlite3")
        for line in asyncio.run(measure(data.db_path, args.repeats)):
            print(line, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
