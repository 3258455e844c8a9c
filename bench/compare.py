"""Two versions of the server code side by side: random build_status, quiet and under writes.

Run as `python bench/compare.py BASE_TREE [--rounds N] [--duration S]`, where BASE_TREE is
another checkout of this repository (e.g. `git worktree add --detach /tmp/base HEAD~1`).
Both servers run at once, each on its own copy of bench/api.py's database, pinned to CPU 0
like every server of bench/api.py; wrk and bench/writer.py run on CPU 1. In each round, for
each load (quiet, then 20 new_builds a second to another project), the two versions are
measured one after the other (their order alternating between rounds), each between two runs
of the bare handler, so a drift of the machine's speed meets both alike. It prints each row
and, at the end, the mean ratio to bare of each version under each load.

On a machine whose speed moves between runs, this tells two versions apart where two runs of
bench/api.py, one after the other, cannot.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import api
from runner import scratch_dir

LOADS = ("quiet", "other20")


def wrk(target: api.Target, env: dict[str, str], seconds: int) -> float:
    """Requests per second of `target` (16 connections, one thread on the load CPU)."""
    cmd = ["taskset", "-c", api.WRK_CPU, "wrk", "-t1", f"-c{api.CONNS}", f"-d{seconds}s"]
    if target.script is not None:
        cmd += ["-s", str(target.script)]
    out = subprocess.run(
        [*cmd, target.url], env={**env, **dict(target.env)}, capture_output=True, text=True
    ).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None:
        raise SystemExit(f"wrk printed no rate:\n{out}")
    return float(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", type=Path, help="the other checkout (the baseline)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8, help="seconds per measured run")
    args = parser.parse_args()
    trees = {"base": args.base.resolve(), "this": Path(__file__).resolve().parent.parent}
    if not (trees["base"] / "copr_lite").is_dir():
        raise SystemExit(f"{args.base} is not a checkout of this repository")
    options = api.parse_args(["--duration", str(args.duration)])
    with scratch_dir("copr-lite-compare-", False) as work:
        benches: dict[str, api.Bench] = {}
        for name in trees:
            (work / name / "data").mkdir(parents=True)
        print(f"filling the database in {work} ...", flush=True)
        data = api.fill_database(work / "base" / "data" / "copr-lite.sqlite3")
        copy = work / "this" / "data" / "copr-lite.sqlite3"
        shutil.copy(data.db_path, copy)
        benches["base"] = api.Bench(options, work / "base", data)
        benches["this"] = api.Bench(options, work / "this", dataclasses.replace(data, db_path=copy))
        env = dict(os.environ, BENCH_AUTH=data.auth_header)
        ratios: dict[tuple[str, str], list[float]] = {}
        with contextlib.ExitStack() as stack:
            bare_port, _ = stack.enter_context(benches["base"].bare_server())
            bare = api.Target(f"http://{api.HOST}:{bare_port}/api/x/")
            servers: dict[str, tuple[int, int]] = {}
            for name, tree in trees.items():
                os.environ["PYTHONPATH"] = str(tree)  # the server imports copr_lite from it
                servers[name] = stack.enter_context(
                    benches[name].copr_server(access_log=False, label=name, builds=True)
                )
            targets = {
                name: benches[name].mixed_targets(port)["build_status random"]
                for name, (port, _) in servers.items()
            }
            for target in targets.values():
                wrk(target, env, 3)  # warm-up
            for round_ in range(args.rounds):
                for load in LOADS:
                    order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
                    for name in order:
                        port, pid = servers[name]
                        before = wrk(bare, env, args.duration)
                        writer: contextlib.AbstractContextManager[object] = (
                            api.submitting(
                                port, f"{api.API_USER}/{api.NEW_BUILD_PROJECT}", 20,
                                data.auth_header, [],
                            )
                            if load == "other20"
                            else contextlib.nullcontext()
                        )  # fmt: skip
                        with writer:
                            time.sleep(1)
                            cpu, started = api._process_cpu(pid), time.monotonic()
                            rate = wrk(targets[name], env, args.duration)
                            cpu = (api._process_cpu(pid) - cpu) / (time.monotonic() - started)
                        after = wrk(bare, env, args.duration)
                        ratio = 100 * rate / ((before + after) / 2)
                        ratios.setdefault((load, name), []).append(ratio)
                        print(
                            f"{load:8} {name:5} bare {before:7,.0f} / {after:7,.0f}  "
                            f"build_status {rate:7,.0f} req/s  {ratio:5.1f} % of bare  "
                            f"{1e6 * cpu / rate:4.0f} us/req",
                            flush=True,
                        )
        for (load, name), values in sorted(ratios.items()):
            shown = ", ".join(f"{v:.1f}" for v in values)
            print(f"{load:8} {name:5} mean {sum(values) / len(values):5.1f} % ({shown})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
