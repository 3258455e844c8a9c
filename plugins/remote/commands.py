"""The remote plugin's commands: `worker-token` (create, list, revoke) on the server's
machine and `worker` on build machines."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import secrets
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

from copr_lite import auth, cli
from copr_lite.commands import Command, arg
from copr_lite.config import default_builder
from copr_lite.logs import setup_logging

from . import accounts
from .protocol import CHROOT_PATTERN

if TYPE_CHECKING:
    from .worker import RemoteWorker

WORKER_TOKEN_ENV = "COPR_LITE_WORKER_TOKEN"


def _when(stamp: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(stamp)) if stamp else "-"


def cmd_worker_token_create(args: argparse.Namespace) -> int:
    config = cli.config_of(args)
    if not accounts.WORKER_NAME.match(args.name):
        cli.fail(f"invalid worker name {args.name!r}: use letters, digits, '_', '.', '-' (max 64)")
    token = "cw_" + secrets.token_urlsafe(30)
    with cli.database(config) as conn:
        try:
            cli.write(conn, accounts.create_worker, args.name, auth.hash_token(token))
        except accounts.WorkerExists:
            cli.fail(f"worker {args.name} already has a token: revoke it first")
    print(f"worker: {args.name}")
    print(f"token: {token}")
    print("# Shown only now (the server keeps a hash). On the build machine run:")
    print(
        f"# {WORKER_TOKEN_ENV}={token} python -m copr_lite worker --server {config.public_base_url}"
    )
    return 0


def cmd_worker_token_list(args: argparse.Namespace) -> int:
    _, workers = cli.read_with(args, accounts.list_workers)
    print(f"{'NAME':<20} {'STATE':<8} {'CREATED':<17} {'LAST SEEN':<17} SERVES")
    for worker in workers:
        state = "revoked" if worker.revoked_on else "active"
        print(
            f"{worker.name:<20} {state:<8} {_when(worker.created_on):<17} "
            f"{_when(worker.last_seen):<17} {worker.serves or '-'}"
        )
    return 0


def cmd_worker_token_revoke(args: argparse.Namespace) -> int:
    config = cli.config_of(args)
    with cli.database(config) as conn:
        if not cli.write(conn, accounts.revoke_worker, args.name):
            cli.fail(f"no worker named {args.name} with a live token")
    print(f"revoked the token of worker {args.name}: its next request is refused")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from .worker import RemoteWorker, WorkerOptions, WorkerRefused

    config = cli.config_of(args)
    setup_logging(config.log_level)
    token = args.token or os.environ.get(WORKER_TOKEN_ENV, "")
    if not token:
        cli.fail(
            f"no worker token: pass --token or set {WORKER_TOKEN_ENV} "
            "(the server's operator runs `python -m copr_lite worker-token create NAME`)"
        )
    if not re.match(r"^https?://[^/\s]+(/\S*)?$", args.server):
        cli.fail(f"--server {args.server!r}: expected the server's http(s) URL")
    chroots = [c.strip() for c in (args.chroots or "").split(",") if c.strip()]
    chroots = chroots or [f"*-{platform.machine()}"]
    for pattern in chroots:
        if not CHROOT_PATTERN.match(pattern):
            cli.fail(f"--chroots: {pattern!r} is not a chroot name or pattern")
    registry = cli.plugins_of(config).builders
    name = args.builder or default_builder()
    builder = registry.get(name)
    local = [n for n in registry.names() if n != "remote"]
    if builder is None or name == "remote":
        cli.fail(f"--builder {name}: not a local builder here (available: {', '.join(local)})")
    worker = RemoteWorker(
        WorkerOptions(
            args.server,
            token,
            chroots,
            concurrency=args.concurrency,
            work_dir=args.work_dir,
            grace=args.grace,
            poll_wait=args.poll_wait,
        ),
        builder,
    )
    try:
        asyncio.run(_work(worker))
    except WorkerRefused as exc:
        cli.fail(f"the server refused the worker token: {exc}")
    return 0


async def _work(worker: RemoteWorker) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, worker.stop)
    await worker.run()


WORKER = Command(
    "worker",
    "run a build worker for a remote server",
    "Take build jobs from a copr_lite server and build them here with a local builder: "
    "long-poll for a job of a chroot this machine serves, download its SRPM, build, stream "
    "the log back, heartbeat (a canceled build stops), and upload the RPMs with their sha256. "
    "SIGTERM lets a running build finish within --grace seconds, else hands it back to the "
    "server; then the worker exits 0. --config names a local settings file for the builders "
    "([plugin:NAME] sections, [plugins] plugins_dir).",
    cmd_worker,
    (
        arg(
            "--server", required=True, metavar="URL", help="the server's URL, e.g. http://copr:8080"
        ),
        arg(
            "--token",
            help=f"the worker token from `worker-token create` (default: ${WORKER_TOKEN_ENV}, "
            "which keeps it out of the process list)",
        ),
        arg(
            "--builder",
            metavar="NAME",
            help="local builder: rpmbuild, mock, container or one from a plugin "
            "(default: mock where installed, else rpmbuild)",
        ),
        arg(
            "--chroots",
            metavar="A,B",
            help="comma-separated chroots this machine serves; shell patterns allowed, e.g. "
            "'epel-9-x86_64,fedora-*-x86_64' (default: every chroot of this machine's arch, "
            f"*-{platform.machine()})",
        ),
        arg("--concurrency", type=int, default=1, metavar="N", help="builds at a time (default 1)"),
        arg(
            "--grace",
            type=float,
            default=60.0,
            metavar="S",
            help="on SIGTERM, seconds a running build may take to finish before it is handed "
            "back (default 60)",
        ),
        arg(
            "--work-dir",
            type=Path,
            metavar="DIR",
            help="scratch directory for SRPMs and builds (default: a new temporary directory)",
        ),
        arg(
            "--poll-wait",
            type=float,
            default=20.0,
            metavar="S",
            help="longest wait of one job request (the server may cap it; default 20)",
        ),
    ),
)

WORKER_TOKEN = Command(
    "worker-token",
    "manage worker credentials",
    "Credentials of build workers, separate from user API tokens: create one per machine, "
    "list them, revoke one (refused from its next request).",
    actions=(
        Command(
            "create",
            "create a worker token",
            "Create a token for a worker machine and print it once (only its hash is stored). "
            "A revoked worker's name may be given a new token.",
            cmd_worker_token_create,
            (arg("name", help="worker name (letters, digits, '_', '.', '-')"),),
        ),
        Command(
            "list",
            "list workers",
            "List workers: state, creation, last request, and the chroots each serves. "
            "GET /api/workers/ on a running server also shows their current jobs.",
            cmd_worker_token_list,
        ),
        Command(
            "revoke",
            "revoke a worker token",
            "Revoke a worker's token: the server refuses its next request (401), and a job it "
            "was building goes back to the queue once its heartbeats stop.",
            cmd_worker_token_revoke,
            (arg("name", help="worker name"),),
        ),
    ),
)
