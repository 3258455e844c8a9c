"""Command line: serve | worker | worker-token (create, list, revoke) | user (add, token, grant,
list) | key (show, rotate) | config check | db (migrate, check) | prune | backup | restore."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import os
import platform
import re
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Concatenate, NoReturn, ParamSpec, TypeVar

from aiohttp import web

from . import auth, backup, builder_image, control, migrations, retention, services, store
from .config import (
    Config,
    ConfigError,
    default_builder,
    load_config,
    render_config,
    tls_context,
)
from .db import Database, DatabaseError, connect_sync, run_in_transaction
from .errors import CoprLiteError
from .forms import NAME_RE, RESERVED_USER_NAMES
from .logs import AccessLogger, setup_logging
from .plugins import PluginError, Plugins, load_plugins
from .publisher import Publisher, PublishError
from .signing import Signer, SigningError

log = logging.getLogger("copr_lite")
T = TypeVar("T")
P = ParamSpec("P")
DEFAULT_CONFIG = Path("copr-lite.ini")


class Fatal(Exception):
    """Stops a command with one line for the operator and exit status 1."""


def fail(message: str) -> NoReturn:
    raise Fatal(message)


# ---------------------------------------------------------------- shared helpers


def _config(args: argparse.Namespace, **overrides: Any) -> Config:
    path = args.config
    if path is None and DEFAULT_CONFIG.is_file():
        path = DEFAULT_CONFIG
    try:
        return load_config(path, **overrides)
    except ConfigError as exc:
        fail(f"configuration error: {exc}")


def _prepare_data_dir(config: Config) -> None:
    try:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        probe = config.data_dir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        fail(f"data directory {config.data_dir} is not writable: {exc.strerror or exc}")


@contextlib.contextmanager
def _database(config: Config) -> Iterator[sqlite3.Connection]:
    """A migrated synchronous connection for the CLI commands."""
    _prepare_data_dir(config)
    try:
        conn = connect_sync(config.db_path)
        migrations.migrate(conn)
    except migrations.SchemaTooNew as exc:
        fail(str(exc))
    except sqlite3.Error as exc:
        fail(f"cannot use database {config.db_path}: {exc}")
    try:
        yield conn
    finally:
        conn.close()


def _write(
    conn: sqlite3.Connection,
    fn: Callable[Concatenate[sqlite3.Connection, P], T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    return run_in_transaction(conn, fn, *args, **kwargs)


def _new_token(conn: sqlite3.Connection, user_id: int, days: int) -> auth.NewToken:
    new = auth.NewToken.generate(days)
    _write(
        conn, store.set_api_token, user_id, new.login, auth.hash_token(new.token), new.expires_on
    )
    return new


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        if not sys.stdin.isatty():
            fail("no terminal to ask for a password: use --password-stdin")
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            fail("the passwords differ")
    if len(password) < 8:
        fail("the password must have at least 8 characters")
    return password


# ---------------------------------------------------------------- serve


def _plugins(config: Config) -> Plugins:
    """Load and check the plugins and their settings, or fail with one line."""
    try:
        return load_plugins(config)
    except ConfigError as exc:
        fail(f"configuration error: {exc}")
    except PluginError as exc:
        fail(f"plugin error: {exc}")


def cmd_serve(args: argparse.Namespace) -> int:
    from .app import create_app

    config = _config(args, host=args.host, port=args.port)
    setup_logging(config.log_level)
    # Everything the settings and plugins can get wrong fails here, before the data
    # directory, the database or the first admin's password exist.
    try:
        app = create_app(config)
    except ConfigError as exc:
        fail(f"configuration error: {exc}")
    except PluginError as exc:
        fail(f"plugin error: {exc}")
    with _database(config) as conn:
        if store.count_users(conn) == 0:
            _create_first_admin(conn, config)
    try:
        asyncio.run(_serve(config, app))
    except (DatabaseError, control.DataDirBusy) as exc:
        fail(str(exc))
    return 0


def _create_first_admin(conn: sqlite3.Connection, config: Config) -> None:
    """An empty database gets an `admin` account; its credentials are printed this once."""
    password = secrets.token_urlsafe(12)
    user = _write(conn, store.create_user, "admin", auth.hash_password(password), True)
    new = _new_token(conn, user.id, config.token_expiration_days)
    print(
        "\nThe database had no users, so an administrator was created. Keep these now:\n"
        f"  sign in at {config.public_base_url}/login/ as: admin / {password}\n"
        "  ~/.config/copr for the copr client and copr-cli:\n\n"
        + auth.copr_config_block(user.name, new, config.public_base_url),
        flush=True,
    )


async def _serve(config: Config, app: web.Application) -> None:
    runner = web.AppRunner(
        app,
        access_log_class=AccessLogger,
        access_log=logging.getLogger("access") if config.access_log else None,
        handle_signals=False,
    )
    await runner.setup()
    site = web.TCPSite(
        runner, config.host, config.port, backlog=1024, ssl_context=tls_context(config)
    )
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        fail(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("serving url=%s data_dir=%s", config.public_base_url, config.data_dir)
    scheme = "https" if config.tls_cert else "http"
    print(
        f"copr_lite serving on {scheme}://{config.host}:{config.port}/ (Ctrl+C stops)",
        flush=True,
    )
    await stop.wait()
    log.info("shutting down")
    await runner.cleanup()
    AccessLogger.flush()


# ---------------------------------------------------------------- user


def cmd_user_add(args: argparse.Namespace) -> int:
    config = _config(args)
    if not NAME_RE.match(args.name) or args.name in RESERVED_USER_NAMES:
        fail(
            f"invalid user name {args.name!r}: use letters, digits, '_', '.', '-' "
            "(not only digits, not starting with '.')"
        )
    password = _read_password(args)
    with _database(config) as conn:
        try:
            user = _write(
                conn, store.create_user, args.name, auth.hash_password(password), args.admin
            )
        except sqlite3.IntegrityError:
            fail(f"user {args.name} already exists")
    print(f"created user {user.name}{' (admin)' if user.is_admin else ''}")
    return 0


def _change_password(conn: sqlite3.Connection, user_id: int, password_hash: str) -> int:
    store.set_password_hash(conn, user_id, password_hash)
    return store.delete_user_sessions(conn, user_id)


def cmd_user_password(args: argparse.Namespace) -> int:
    config = _config(args)
    with _database(config) as conn:
        user = store.get_user(conn, args.name)
        if user is None:
            fail(f"no user named {args.name}")
        password = _read_password(args)
        # The same scrypt parameters and function as the server's hashing threads.
        ended = _write(conn, _change_password, user.id, auth.hash_password(password))
    print(f"changed the password of {user.name}; ended {ended} web session(s)")
    return 0


def cmd_user_token(args: argparse.Namespace) -> int:
    config = _config(args)
    with _database(config) as conn:
        user = store.get_user(conn, args.name)
        if user is None:
            fail(f"no user named {args.name}")
        new = _new_token(conn, user.id, config.token_expiration_days)
    print("# Paste into ~/.config/copr (the previous token of this user no longer works):")
    print(auth.copr_config_block(user.name, new, config.public_base_url), end="")
    return 0


def cmd_user_grant(args: argparse.Namespace) -> int:
    config = _config(args)
    owner, sep, project_name = args.project.partition("/")
    if not sep or not owner or not project_name:
        fail("the project must be written OWNER/PROJECT")
    with _database(config) as conn:
        user = store.get_user(conn, args.name)
        if user is None:
            fail(f"no user named {args.name}")
        project = store.get_project(conn, owner, project_name)
        if project is None:
            fail(f"no project {args.project}")
        _write(conn, store.grant, project.id, user.id, args.role)
    print(f"granted {args.role} on {args.project} to {user.name}")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    config = _config(args)
    with _database(config) as conn:
        users = store.list_users(conn)
    print(f"{'NAME':<24} {'ADMIN':<6} TOKEN EXPIRES")
    for user, expires_on in users:
        expires = auth.expiration_date(expires_on) if expires_on else "-"
        print(f"{user.name:<24} {'yes' if user.is_admin else 'no':<6} {expires}")
    return 0


# ---------------------------------------------------------------- remote workers

WORKER_TOKEN_ENV = "COPR_LITE_WORKER_TOKEN"
_WORKER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_CHROOT_PATTERN = re.compile(r"^[A-Za-z0-9_.*?\[\]!-]{1,100}$")


def _when(stamp: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(stamp)) if stamp else "-"


def cmd_worker_token_create(args: argparse.Namespace) -> int:
    config = _config(args)
    if not _WORKER_NAME.match(args.name):
        fail(f"invalid worker name {args.name!r}: use letters, digits, '_', '.', '-' (max 64)")
    token = "cw_" + secrets.token_urlsafe(30)
    with _database(config) as conn:
        try:
            _write(conn, store.create_worker, args.name, auth.hash_token(token))
        except store.WorkerExists:
            fail(f"worker {args.name} already has a token: revoke it first")
    print(f"worker: {args.name}")
    print(f"token: {token}")
    print("# Shown only now (the server keeps a hash). On the build machine run:")
    print(
        f"# {WORKER_TOKEN_ENV}={token} python -m copr_lite worker --server {config.public_base_url}"
    )
    return 0


def cmd_worker_token_list(args: argparse.Namespace) -> int:
    config = _config(args)
    with _database(config) as conn:
        workers = store.list_workers(conn)
    print(f"{'NAME':<20} {'STATE':<8} {'CREATED':<17} {'LAST SEEN':<17} SERVES")
    for worker in workers:
        state = "revoked" if worker.revoked_on else "active"
        print(
            f"{worker.name:<20} {state:<8} {_when(worker.created_on):<17} "
            f"{_when(worker.last_seen):<17} {worker.serves or '-'}"
        )
    return 0


def cmd_worker_token_revoke(args: argparse.Namespace) -> int:
    config = _config(args)
    with _database(config) as conn:
        if not _write(conn, store.revoke_worker, args.name):
            fail(f"no worker named {args.name} with a live token")
    print(f"revoked the token of worker {args.name}: its next request is refused")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from .worker import RemoteWorker, WorkerRefused

    config = _config(args)
    setup_logging(config.log_level)
    token = args.token or os.environ.get(WORKER_TOKEN_ENV, "")
    if not token:
        fail(
            f"no worker token: pass --token or set {WORKER_TOKEN_ENV} "
            "(the server's operator runs `python -m copr_lite worker-token create NAME`)"
        )
    if not re.match(r"^https?://[^/\s]+(/\S*)?$", args.server):
        fail(f"--server {args.server!r}: expected the server's http(s) URL")
    chroots = [c.strip() for c in (args.chroots or "").split(",") if c.strip()]
    chroots = chroots or [f"*-{platform.machine()}"]
    for pattern in chroots:
        if not _CHROOT_PATTERN.match(pattern):
            fail(f"--chroots: {pattern!r} is not a chroot name or pattern")
    registry = _plugins(config).builders
    name = args.builder or default_builder()
    builder = registry.get(name)
    local = [n for n in registry.names() if n != "remote"]
    if builder is None or name == "remote":
        fail(f"--builder {name}: not a local builder here (available: {', '.join(local)})")
    worker = RemoteWorker(
        args.server,
        token,
        builder,
        chroots,
        concurrency=args.concurrency,
        work_dir=args.work_dir,
        grace=args.grace,
        poll_wait=args.poll_wait,
    )
    try:
        asyncio.run(_work(worker))
    except WorkerRefused as exc:
        fail(f"the server refused the worker token: {exc}")
    return 0


async def _work(worker: Any) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, worker.stop)
    await worker.run()


# ---------------------------------------------------------------- config, db


# ---------------------------------------------------------------- key


def _signed_project(args: argparse.Namespace) -> tuple[Config, str, str]:
    config = _config(args)
    if not config.sign:
        fail("signing is off in this configuration ([signing] sign = no)")
    owner, _, project = args.project.partition("/")
    with _database(config) as conn:
        if not owner or store.get_project(conn, owner, project) is None:
            fail(f"no project {args.project} (write OWNER/PROJECT)")
    return config, owner, project


def cmd_key_show(args: argparse.Namespace) -> int:
    config, owner, project = _signed_project(args)
    signer = Signer(config.gnupg_home, key_length=config.key_length)
    key = signer.current(owner, project)
    if key is None:
        fail(f"{owner}/{project} has no key yet: the server makes it in the background")

    async def describe() -> str:
        try:
            return await signer.describe(key.fingerprint)
        finally:
            await signer.close()

    try:
        details = asyncio.run(describe())
    except SigningError as exc:
        fail(str(exc))
    base = f"{config.public_results_url}/{owner}/{project}"
    print(f"project:     {owner}/{project}")
    print(f"fingerprint: {key.fingerprint}")
    print(f"key id:      {key.key_id}")
    print(details)
    print("expires:     never")
    print(f"public key:  {base}/pubkey.gpg")
    for fpr in key.previous:
        print(f"previous:    {fpr} ({base}/pubkey-{fpr[-16:].lower()}.gpg)")
    if not key.adopted:
        print("note:        its published packages are still being signed")
    return 0


def cmd_key_rotate(args: argparse.Namespace) -> int:
    config, owner, project = _signed_project(args)
    signer = Signer(config.gnupg_home, key_length=config.key_length)
    publisher = Publisher(config.data_dir / "results", signer)

    async def rotate() -> tuple[str, str | None, int]:
        try:
            new, old = await signer.rotate(owner, project)
            await publisher.publish_keys(owner, project, new)
            count = await publisher.sign_project(owner, project, new)
            await signer.mark_adopted(owner, project, new)
            return new.key_id, old.key_id if old else None, count
        finally:
            await signer.close()

    try:
        new_id, old_id, count = asyncio.run(rotate())
    except (SigningError, OSError) as exc:
        fail(f"rotation failed: {exc}")
    base = f"{config.public_results_url}/{owner}/{project}"
    print(f"{owner}/{project}: new key {new_id}; {count} published package(s) re-signed")
    print(f"public key: {base}/pubkey.gpg")
    if old_id:
        print(f"old public key kept at {base}/pubkey-{old_id}.gpg")
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    config = _config(args)
    plugins = _plugins(config)
    source = args.config or (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
    print(f"# {source or 'no config file'}: valid. Effective settings:\n")
    print(render_config(config, plugins.settings), end="")
    return 0


def cmd_builder_image(args: argparse.Namespace) -> int:
    if not args.quiet:
        print(
            f"making {builder_image.IMAGE} unless podman has it (debootstrap, a minute or two)",
            file=sys.stderr,
        )
    try:
        image, seconds = builder_image.ensure_image(args.podman)
    except (builder_image.ImageError, OSError, subprocess.SubprocessError) as exc:
        fail(str(exc))
    if seconds is not None and not args.quiet:
        print(f"built {image} in {seconds:.0f} s", file=sys.stderr)
    print(image)
    return 0


def cmd_db_migrate(args: argparse.Namespace) -> int:
    config = _config(args)
    with _database(config) as conn:
        version = migrations.current_version(conn)
    print(f"database {config.db_path} is at schema version {version}")
    return 0


def cmd_db_check(args: argparse.Namespace) -> int:
    config = _config(args)
    if not config.db_path.exists():
        fail(f"no database at {config.db_path}")
    conn = connect_sync(config.db_path)
    try:
        version = migrations.current_version(conn)
        result = conn.execute("PRAGMA integrity_check").fetchone()[0]
        problems = conn.execute("PRAGMA foreign_key_check").fetchall()
    finally:
        conn.close()
    print(f"schema version {version} (code knows {migrations.LATEST_VERSION})")
    print(f"integrity: {result}; foreign key problems: {len(problems)}")
    return 0 if result == "ok" and not problems and version <= migrations.LATEST_VERSION else 1


def cmd_prune(args: argparse.Namespace) -> int:
    config = _config(args)
    query = {"dry_run": "1" if args.dry_run else "0"}

    async def here(db: Database, publisher: Publisher) -> retention.Plan:
        return await retention.prune(db, publisher, dry_run=args.dry_run)

    answer, plan = _by_server_or_here(config, "prune", query, here)
    if answer is not None:
        lines = [str(line) for line in answer["lines"]]
    else:
        assert plan is not None
        lines = plan.lines(args.dry_run)
    print("\n".join(lines))
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    config = _config(args)
    try:
        manifest = backup.backup(config, Path(args.dest), backup.Progress())
    except (backup.BackupError, sqlite3.Error, OSError) as exc:
        fail(f"backup failed: {exc}")
    vanished = manifest["vanished"]
    print(
        f"backed up {config.data_dir} to {args.dest}: schema {manifest['schema_version']}, "
        f"{manifest['files']} files, {manifest['bytes']} bytes"
    )
    if isinstance(vanished, list) and vanished:
        print(
            f"{len(vanished)} build directories were deleted during the backup: "
            + ", ".join(vanished)
        )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    data_dir = Path("data")
    lock = control.DataDirLock(data_dir / ".lock")
    if data_dir.exists() and any(p.name != ".lock" for p in data_dir.iterdir()):
        fail(f"{data_dir.resolve()} is not empty: run restore in an empty directory")
    try:
        lock.acquire()
    except control.DataDirBusy as exc:
        fail(str(exc))
    try:
        manifest = backup.restore(Path(args.source), data_dir, backup.Progress())
    except (backup.BackupError, sqlite3.Error, OSError, PublishError) as exc:
        fail(f"restore failed: {exc}")
    finally:
        lock.release()
    print(
        f"restored the backup of {manifest['data_dir']} into {data_dir.resolve()}: "
        "start the server here (python -m copr_lite serve)"
    )
    return 0


def cmd_build_delete(args: argparse.Namespace) -> int:
    config = _config(args)
    query = {"ids": ",".join(str(i) for i in args.ids)}

    async def here(db: Database, publisher: Publisher) -> list[int]:
        return await services.remove_builds(db, publisher, control.OPERATOR, list(args.ids))

    answer, deleted = _by_server_or_here(config, "delete-builds", query, here)
    if answer is not None:
        deleted = [int(i) for i in answer["deleted"]]
    print(f"deleted build(s) {', '.join(map(str, deleted or ()))}")
    return 0


def _by_server_or_here(
    config: Config,
    command: str,
    query: dict[str, str],
    here: Callable[[Database, Publisher], Awaitable[T]],
) -> tuple[dict[str, Any] | None, T | None]:
    """Ask the running server to do `command` (its answer, None); with no server running,
    hold the data directory's lock and do it in this process (None, what `here` returns).
    Only the process that runs createrepo_c may remove published files."""
    try:
        answer = asyncio.run(control.ask_server(config, command, **query))
    except control.ControlError as exc:
        fail(str(exc))
    if answer is not None:
        return answer, None
    lock = control.DataDirLock(config.lock_path)
    try:
        lock.acquire()
    except control.DataDirBusy as exc:
        fail(f"{exc}, and its control socket {config.control_socket} does not answer")
    try:
        return None, asyncio.run(_with_store(config, here))
    except (CoprLiteError, DatabaseError) as exc:
        fail(exc.message if isinstance(exc, CoprLiteError) else str(exc))
    finally:
        lock.release()


async def _with_store(config: Config, work: Callable[[Database, Publisher], Awaitable[T]]) -> T:
    """`work(db, publisher)` on the data directory, as the server would do it."""
    db = await Database.open(config.db_path)
    signer = Signer(config.gnupg_home, key_length=config.key_length) if config.sign else None
    try:
        return await work(db, Publisher(config.data_dir / "results", signer))
    finally:
        await db.close()
        if signer is not None:
            await signer.close()


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help=f"settings file (default: ./{DEFAULT_CONFIG} if present, else built-in defaults)",
    )
    parser = argparse.ArgumentParser(
        prog="python -m copr_lite",
        description="copr_lite: a self-hosted package build service speaking the Copr API v1.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        parents=[common],
        help="run the HTTP server",
        description="Run the server. On an empty database an `admin` account is created and "
        "its password and API token are printed once.",
    )
    serve.add_argument("--host", help="listen address (overrides [server] host)")
    serve.add_argument("--port", type=int, help="listen port (overrides [server] port)")
    serve.set_defaults(func=cmd_serve)

    user = sub.add_parser(
        "user",
        help="manage accounts",
        description="Create accounts, issue API tokens, grant permissions.",
    )
    user_sub = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = user_sub.add_parser(
        "add",
        parents=[common],
        help="create an account",
        description="Create an account; the password is asked for.",
    )
    add.add_argument("name", help="user name (letters, digits, '_', '.', '-')")
    add.add_argument("--admin", action="store_true", help="make the user a system admin")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )
    add.set_defaults(func=cmd_user_add)
    passwd = user_sub.add_parser(
        "password",
        parents=[common],
        help="set a new password",
        description="Set a new password for an account (asked twice, or read from stdin); "
        "its web sessions end, its API token stays.",
    )
    passwd.add_argument("name", help="user name")
    passwd.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )
    passwd.set_defaults(func=cmd_user_password)
    token = user_sub.add_parser(
        "token",
        parents=[common],
        help="issue a new API token",
        description="Issue a new API token (the old one stops working) and print the "
        "~/.config/copr block for the copr client and copr-cli.",
    )
    token.add_argument("name", help="user name")
    token.set_defaults(func=cmd_user_token)
    grant = user_sub.add_parser(
        "grant",
        parents=[common],
        help="grant a role on a project",
        description="Let a user build in (builder) or also administer (admin) a project "
        "they do not own.",
    )
    grant.add_argument("name", help="user name")
    grant.add_argument("project", help="OWNER/PROJECT")
    grant.add_argument("role", choices=("builder", "admin"), help="the role to grant")
    grant.set_defaults(func=cmd_user_grant)
    listing = user_sub.add_parser(
        "list",
        parents=[common],
        help="list accounts",
        description="List accounts with their token expiry.",
    )
    listing.set_defaults(func=cmd_user_list)

    worker = sub.add_parser(
        "worker",
        parents=[common],
        help="run a build worker for a remote server",
        description="Take build jobs from a copr_lite server and build them here with a "
        "local builder: long-poll for a job of a chroot this machine serves, download its "
        "SRPM, build, stream the log back, heartbeat (a canceled build stops), and upload the "
        "RPMs with their sha256. SIGTERM lets a running build finish within --grace seconds, "
        "else hands it back to the server; then the worker exits 0. --config names a local "
        "settings file for the builders ([plugin:NAME] sections, [plugins] plugins_dir).",
    )
    worker.add_argument(
        "--server", required=True, metavar="URL", help="the server's URL, e.g. http://copr:8080"
    )
    worker.add_argument(
        "--token",
        help=f"the worker token from `worker-token create` (default: ${WORKER_TOKEN_ENV}, "
        "which keeps it out of the process list)",
    )
    worker.add_argument(
        "--builder",
        metavar="NAME",
        help="local builder: rpmbuild, mock, container or one from a plugin "
        "(default: mock where installed, else rpmbuild)",
    )
    worker.add_argument(
        "--chroots",
        metavar="A,B",
        help="comma-separated chroots this machine serves; shell patterns allowed, e.g. "
        "'epel-9-x86_64,fedora-*-x86_64' (default: every chroot of this machine's arch, "
        f"*-{platform.machine()})",
    )
    worker.add_argument(
        "--concurrency", type=int, default=1, metavar="N", help="builds at a time (default 1)"
    )
    worker.add_argument(
        "--grace",
        type=float,
        default=60.0,
        metavar="S",
        help="on SIGTERM, seconds a running build may take to finish before it is handed "
        "back (default 60)",
    )
    worker.add_argument(
        "--work-dir",
        type=Path,
        metavar="DIR",
        help="scratch directory for SRPMs and builds (default: a new temporary directory)",
    )
    worker.add_argument(
        "--poll-wait",
        type=float,
        default=20.0,
        metavar="S",
        help="longest wait of one job request (the server may cap it; default 20)",
    )
    worker.set_defaults(func=cmd_worker)

    wtoken = sub.add_parser(
        "worker-token",
        help="manage worker credentials",
        description="Credentials of build workers, separate from user API tokens: create one "
        "per machine, list them, revoke one (refused from its next request).",
    )
    wtoken_sub = wtoken.add_subparsers(dest="worker_token_command", required=True, metavar="ACTION")
    wcreate = wtoken_sub.add_parser(
        "create",
        parents=[common],
        help="create a worker token",
        description="Create a token for a worker machine and print it once (only its hash "
        "is stored). A revoked worker's name may be given a new token.",
    )
    wcreate.add_argument("name", help="worker name (letters, digits, '_', '.', '-')")
    wcreate.set_defaults(func=cmd_worker_token_create)
    wlist = wtoken_sub.add_parser(
        "list",
        parents=[common],
        help="list workers",
        description="List workers: state, creation, last request, and the chroots each "
        "serves. GET /api/workers/ on a running server also shows their current jobs.",
    )
    wlist.set_defaults(func=cmd_worker_token_list)
    wrevoke = wtoken_sub.add_parser(
        "revoke",
        parents=[common],
        help="revoke a worker token",
        description="Revoke a worker's token: the server refuses its next request (401), and "
        "a job it was building goes back to the queue once its heartbeats stop.",
    )
    wrevoke.add_argument("name", help="worker name")
    wrevoke.set_defaults(func=cmd_worker_token_revoke)

    key = sub.add_parser(
        "key",
        help="project signing keys",
        description="Show or rotate the key a project's packages and repositories are signed with.",
    )
    key_sub = key.add_subparsers(dest="key_command", required=True, metavar="ACTION")
    kshow = key_sub.add_parser(
        "show",
        parents=[common],
        help="show a project's key",
        description="Print the fingerprint, size, creation date and public key URL of a "
        "project's key, and its earlier keys. Keys do not expire.",
    )
    kshow.add_argument("project", metavar="OWNER/PROJECT")
    kshow.set_defaults(func=cmd_key_show)
    krotate = key_sub.add_parser(
        "rotate",
        parents=[common],
        help="give a project a new key",
        description="Make a new key for the project, re-sign every published package and "
        "repository with it and publish it as pubkey.gpg; the old public key stays at "
        "pubkey-<old key id>.gpg. Clients re-import the key from the .repo file's gpgkey.",
    )
    krotate.add_argument("project", metavar="OWNER/PROJECT")
    krotate.set_defaults(func=cmd_key_rotate)

    cfg = sub.add_parser(
        "config", help="inspect settings", description="Validate and show settings."
    )
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = cfg_sub.add_parser(
        "check",
        parents=[common],
        help="validate a settings file and print the effective ones",
        description="Validate a settings file with the plugins it loads (unknown sections, "
        "keys and blocklist names, bad values, chroots without a builder and plugins that "
        "fail to load are errors) and print every effective setting with its help, the "
        "plugins' declared settings included.",
    )
    check.set_defaults(func=cmd_config_check)

    image = sub.add_parser(
        "builder-image",
        help="make the container builder's default image offline (Debian hosts)",
        description=f"Make {builder_image.IMAGE}, the container builder's default image, "
        "from Debian packages (debootstrap: rpm, dnf, gcc, make), unless podman already has "
        "it, and print its name. The first time takes a minute or two.",
    )
    image.add_argument("--podman", default="podman", help="the podman executable")
    image.add_argument("--quiet", action="store_true", help="print only the image name")
    image.set_defaults(func=cmd_builder_image)

    db = sub.add_parser(
        "db", help="database maintenance", description="Migrate or check the SQLite database."
    )
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    migrate = db_sub.add_parser(
        "migrate",
        parents=[common],
        help="apply schema migrations",
        description="Apply pending schema migrations and print the schema version.",
    )
    migrate.set_defaults(func=cmd_db_migrate)
    dbcheck = db_sub.add_parser(
        "check",
        parents=[common],
        help="check database integrity",
        description="Run SQLite's integrity and foreign key checks.",
    )
    dbcheck.set_defaults(func=cmd_db_check)

    prune = sub.add_parser(
        "prune",
        parents=[common],
        help="remove old builds by the retention rules now",
        description="Apply the retention rules now (README 'Retention'): print each build "
        "chroot removed and the bytes freed. A running server does the work (asked over "
        "<data_dir>/control.sock); with none running, this command does it itself.",
    )
    prune.add_argument(
        "--dry-run", action="store_true", help="print what would be removed; remove nothing"
    )
    prune.set_defaults(func=cmd_prune)

    build = sub.add_parser("build", help="build maintenance", description="Delete finished builds.")
    build_sub = build.add_subparsers(dest="build_command", required=True, metavar="ACTION")
    bdelete = build_sub.add_parser(
        "delete",
        parents=[common],
        help="delete finished builds with their results and logs",
        description="Delete finished builds (all or none): rows, results, logs and SRPMs; "
        "their repositories are republished. A running server does it (asked over "
        "<data_dir>/control.sock); with none running, this command does it itself.",
    )
    bdelete.add_argument("ids", metavar="ID", type=int, nargs="+", help="build ids")
    bdelete.set_defaults(func=cmd_build_delete)

    back = sub.add_parser(
        "backup",
        parents=[common],
        help="copy the data directory consistently, also while the server runs",
        description="Copy the database (SQLite's online backup), the finished build results, "
        "the signing keys and pending uploads to DEST (new or empty), consistent as of the "
        "moment the database was copied; progress is shown on a terminal.",
    )
    back.add_argument("dest", metavar="DEST", help="directory to create (or an empty one)")
    back.set_defaults(func=cmd_backup)
    rest = sub.add_parser(
        "restore",
        help="bring a backup back as ./data",
        description="Run in an empty directory: copy the backup at SRC to ./data, point the "
        "stored SRPM paths there and rebuild (and sign) every repository. Then run "
        "`serve` in that directory.",
    )
    rest.add_argument("source", metavar="SRC", help="a directory made by `backup`")
    rest.set_defaults(func=cmd_restore)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except Fatal as exc:
        print(f"copr_lite: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
