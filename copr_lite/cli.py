"""Command line: serve | user (add, password, token, grant, list) | key (show, rotate) | config
check | builder-image | db (migrate, check) | prune | build delete | backup | restore, and the
commands plugins add (the built-in remote plugin: worker, worker-token).

The commands are a table (`COMMANDS`, made of `commands.Command`); the helpers plugin
commands use too are public: `config_of`, `read_with`, `database` with `write`,
`plugins_of` and `fail`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Concatenate, NoReturn, ParamSpec, TypeVar

import pluggy
from aiohttp import web

from . import auth, backup, builder_image, control, migrations, retention, services, store
from .commands import Command, CommandRegistry, add_parsers, arg
from .config import (
    Config,
    ConfigError,
    load_config,
    render_config,
    tls_context,
)
from .db import Database, DatabaseError, connect_sync, run_in_transaction
from .errors import CoprLiteError
from .forms import NAME_RE, RESERVED_USER_NAMES
from .logs import AccessLogger, setup_logging
from .models import User
from .plugins import (
    PluginError,
    Plugins,
    call_each,
    collect_migrations,
    load_plugins,
    make_plugin_manager,
)
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


def config_of(args: argparse.Namespace, **overrides: Any) -> Config:
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
def database(config: Config) -> Iterator[sqlite3.Connection]:
    """A migrated synchronous connection for the CLI commands (the plugins' steps too).

    Commands reach it through `write` (and `read_with`) with the store's functions, as the
    server does through `Database.read` and `Database.write`."""
    plugin_steps = collect_migrations(_plugin_manager(config))
    _prepare_data_dir(config)
    try:
        conn = connect_sync(config.db_path)
        migrations.migrate(conn)
        migrations.migrate_plugins(conn, plugin_steps)
    except migrations.SchemaTooNew as exc:
        fail(str(exc))
    except sqlite3.Error as exc:
        fail(f"cannot use database {config.db_path}: {exc}")
    try:
        yield conn
    finally:
        conn.close()


def read_with(args: argparse.Namespace, fn: Callable[[sqlite3.Connection], T]) -> tuple[Config, T]:
    """The settings `args` name, and what `fn` reads from their (migrated) database."""
    config = config_of(args)
    with database(config) as conn:
        return config, fn(conn)


def write(
    conn: sqlite3.Connection,
    fn: Callable[Concatenate[sqlite3.Connection, P], T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """`fn(conn, *args, **kwargs)` in one transaction."""
    return run_in_transaction(conn, fn, *args, **kwargs)


def _new_token(conn: sqlite3.Connection, user_id: int, days: int) -> auth.NewToken:
    new = auth.NewToken.generate(days)
    write(conn, store.set_api_token, user_id, new.login, auth.hash_token(new.token), new.expires_on)
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


def plugins_of(config: Config) -> Plugins:
    """Load and check the plugins and their settings, or fail with one line."""
    return _or_fail(load_plugins, config)


def _plugin_manager(config: Config) -> pluggy.PluginManager:
    return _or_fail(make_plugin_manager, config)


def _or_fail(load: Callable[[Config], T], config: Config) -> T:
    try:
        return load(config)
    except ConfigError as exc:
        fail(f"configuration error: {exc}")
    except PluginError as exc:
        fail(f"plugin error: {exc}")


def cmd_serve(args: argparse.Namespace) -> int:
    from .app import create_app

    config = config_of(args, host=args.host, port=args.port)
    setup_logging(config.log_level)
    # Everything the settings and plugins can get wrong fails here, before the data
    # directory, the database or the first admin's password exist.
    app = _or_fail(create_app, config)
    with database(config) as conn:
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
    user = write(conn, store.create_user, "admin", auth.hash_password(password), True)
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
    config = config_of(args)
    if not NAME_RE.match(args.name) or args.name in RESERVED_USER_NAMES:
        fail(
            f"invalid user name {args.name!r}: use letters, digits, '_', '.', '-' "
            "(not only digits, not starting with '.')"
        )
    password = _read_password(args)
    with database(config) as conn:
        try:
            user = write(
                conn, store.create_user, args.name, auth.hash_password(password), args.admin
            )
        except sqlite3.IntegrityError:
            fail(f"user {args.name} already exists")
    print(f"created user {user.name}{' (admin)' if user.is_admin else ''}")
    return 0


def _user(conn: sqlite3.Connection, name: str) -> User:
    user = store.get_user(conn, name)
    if user is None:
        fail(f"no user named {name}")
    return user


def _change_password(conn: sqlite3.Connection, user_id: int, password_hash: str) -> int:
    store.set_password_hash(conn, user_id, password_hash)
    return store.delete_user_sessions(conn, user_id)


def cmd_user_password(args: argparse.Namespace) -> int:
    config = config_of(args)
    with database(config) as conn:
        user = _user(conn, args.name)
        password = _read_password(args)
        # The same scrypt parameters and function as the server's hashing threads.
        ended = write(conn, _change_password, user.id, auth.hash_password(password))
    print(f"changed the password of {user.name}; ended {ended} web session(s)")
    return 0


def cmd_user_token(args: argparse.Namespace) -> int:
    config = config_of(args)
    with database(config) as conn:
        user = _user(conn, args.name)
        new = _new_token(conn, user.id, config.token_expiration_days)
    print("# Paste into ~/.config/copr (the previous token of this user no longer works):")
    print(auth.copr_config_block(user.name, new, config.public_base_url), end="")
    return 0


def cmd_user_grant(args: argparse.Namespace) -> int:
    config = config_of(args)
    owner, sep, project_name = args.project.partition("/")
    if not sep or not owner or not project_name:
        fail("the project must be written OWNER/PROJECT")
    with database(config) as conn:
        user = _user(conn, args.name)
        project = store.get_project(conn, owner, project_name)
        if project is None:
            fail(f"no project {args.project}")
        write(conn, store.grant, project.id, user.id, args.role)
    print(f"granted {args.role} on {args.project} to {user.name}")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    _, users = read_with(args, store.list_users)
    print(f"{'NAME':<24} {'ADMIN':<6} TOKEN EXPIRES")
    for user, expires_on in users:
        expires = auth.expiration_date(expires_on) if expires_on else "-"
        print(f"{user.name:<24} {'yes' if user.is_admin else 'no':<6} {expires}")
    return 0


# ---------------------------------------------------------------- config, db


# ---------------------------------------------------------------- key


def _signed_project(args: argparse.Namespace) -> tuple[Config, str, str]:
    config = config_of(args)
    if not config.sign:
        fail("signing is off in this configuration ([signing] sign = no)")
    owner, _, project = args.project.partition("/")
    with database(config) as conn:
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
    config = config_of(args)
    plugins = plugins_of(config)
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
    config, version = read_with(args, migrations.current_version)
    print(f"database {config.db_path} is at schema version {version}")
    return 0


def cmd_db_check(args: argparse.Namespace) -> int:
    config = config_of(args)
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
    config = config_of(args)
    query = {"dry_run": "1" if args.dry_run else "0"}

    async def here(db: Database, publisher: Publisher) -> retention.Plan:
        return await retention.prune(
            db, publisher, upload_dir=config.upload_dir, dry_run=args.dry_run
        )

    answer, plan = _by_server_or_here(config, "prune", query, here)
    if answer is not None:
        lines = [str(line) for line in answer["lines"]]
    else:
        assert plan is not None
        lines = plan.lines(args.dry_run)
    print("\n".join(lines))
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    config = config_of(args)
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
    config = config_of(args)
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


PASSWORD_STDIN = arg(
    "--password-stdin",
    action="store_true",
    help="read the password from the first line of standard input",
)
PROJECT = arg("project", metavar="OWNER/PROJECT")

COMMANDS: tuple[Command, ...] = (
    Command(
        "serve",
        "run the HTTP server",
        "Run the server. On an empty database an `admin` account is created and its password "
        "and API token are printed once.",
        cmd_serve,
        (
            arg("--host", help="listen address (overrides [server] host)"),
            arg("--port", type=int, help="listen port (overrides [server] port)"),
        ),
    ),
    Command(
        "user",
        "manage accounts",
        "Create accounts, issue API tokens, grant permissions.",
        actions=(
            Command(
                "add",
                "create an account",
                "Create an account; the password is asked for.",
                cmd_user_add,
                (
                    arg("name", help="user name (letters, digits, '_', '.', '-')"),
                    arg("--admin", action="store_true", help="make the user a system admin"),
                    PASSWORD_STDIN,
                ),
            ),
            Command(
                "password",
                "set a new password",
                "Set a new password for an account (asked twice, or read from stdin); its web "
                "sessions end, its API token stays.",
                cmd_user_password,
                (arg("name", help="user name"), PASSWORD_STDIN),
            ),
            Command(
                "token",
                "issue a new API token",
                "Issue a new API token (the old one stops working) and print the "
                "~/.config/copr block for the copr client and copr-cli.",
                cmd_user_token,
                (arg("name", help="user name"),),
            ),
            Command(
                "grant",
                "grant a role on a project",
                "Let a user build in (builder) or also administer (admin) a project they do "
                "not own.",
                cmd_user_grant,
                (
                    arg("name", help="user name"),
                    arg("project", help="OWNER/PROJECT"),
                    arg("role", choices=("builder", "admin"), help="the role to grant"),
                ),
            ),
            Command(
                "list", "list accounts", "List accounts with their token expiry.", cmd_user_list
            ),
        ),
    ),
    Command(
        "key",
        "project signing keys",
        "Show or rotate the key a project's packages and repositories are signed with.",
        actions=(
            Command(
                "show",
                "show a project's key",
                "Print the fingerprint, size, creation date and public key URL of a project's "
                "key, and its earlier keys. Keys do not expire.",
                cmd_key_show,
                (PROJECT,),
            ),
            Command(
                "rotate",
                "give a project a new key",
                "Make a new key for the project, re-sign every published package and "
                "repository with it and publish it as pubkey.gpg; the old public key stays at "
                "pubkey-<old key id>.gpg. Clients re-import the key from the .repo file's "
                "gpgkey.",
                cmd_key_rotate,
                (PROJECT,),
            ),
        ),
    ),
    Command(
        "config",
        "inspect settings",
        "Validate and show settings.",
        actions=(
            Command(
                "check",
                "validate a settings file and print the effective ones",
                "Validate a settings file with the plugins it loads (unknown sections, keys "
                "and blocklist names, bad values, chroots without a builder and plugins that "
                "fail to load are errors) and print every effective setting with its help, the "
                "plugins' declared settings included.",
                cmd_config_check,
            ),
        ),
    ),
    Command(
        "builder-image",
        "make the container builder's default image offline (Debian hosts)",
        f"Make {builder_image.IMAGE}, the container builder's default image, from Debian "
        "packages (debootstrap: rpm, dnf, gcc, make), unless podman already has it, and print "
        "its name. The first time takes a minute or two.",
        cmd_builder_image,
        (
            arg("--podman", default="podman", help="the podman executable"),
            arg("--quiet", action="store_true", help="print only the image name"),
        ),
        settings=False,
    ),
    Command(
        "db",
        "database maintenance",
        "Migrate or check the SQLite database.",
        actions=(
            Command(
                "migrate",
                "apply schema migrations",
                "Apply pending schema migrations and print the schema version.",
                cmd_db_migrate,
            ),
            Command(
                "check",
                "check database integrity",
                "Run SQLite's integrity and foreign key checks.",
                cmd_db_check,
            ),
        ),
    ),
    Command(
        "prune",
        "remove old builds by the retention rules now",
        "Apply the retention rules now (README 'Retention'): print each build chroot removed "
        "and the bytes freed. A running server does the work (asked over "
        "<data_dir>/control.sock); with none running, this command does it itself.",
        cmd_prune,
        (
            arg(
                "--dry-run",
                action="store_true",
                help="print what would be removed; remove nothing",
            ),
        ),
    ),
    Command(
        "build",
        "build maintenance",
        "Delete finished builds.",
        actions=(
            Command(
                "delete",
                "delete finished builds with their results and logs",
                "Delete finished builds (all or none): rows, results, logs and SRPMs; their "
                "repositories are republished. A running server does it (asked over "
                "<data_dir>/control.sock); with none running, this command does it itself.",
                cmd_build_delete,
                (arg("ids", metavar="ID", type=int, nargs="+", help="build ids"),),
            ),
        ),
    ),
    Command(
        "backup",
        "copy the data directory consistently, also while the server runs",
        "Copy the database (SQLite's online backup), the finished build results, the signing "
        "keys and pending uploads to DEST (new or empty), consistent as of the moment the "
        "database was copied; progress is shown on a terminal.",
        cmd_backup,
        (arg("dest", metavar="DEST", help="directory to create (or an empty one)"),),
    ),
    Command(
        "restore",
        "bring a backup back as ./data",
        "Run in an empty directory: copy the backup at SRC to ./data, point the stored SRPM "
        "paths there and rebuild (and sign) every repository. Then run `serve` in that "
        "directory.",
        cmd_restore,
        (arg("source", metavar="SRC", help="a directory made by `backup`"),),
        settings=False,
    ),
)


def build_parser(commands: Sequence[Command] = COMMANDS) -> argparse.ArgumentParser:
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
    add_parsers(sub, list(commands), common)
    return parser


def all_commands(argv: Sequence[str]) -> list[Command]:
    """The core's commands, then the plugins' (`register_commands`).

    The plugins are those of the settings file `argv` names (`--config`, else the default
    one); when they cannot be loaded, the built-in ones, so that the command run can say
    what is wrong in its own words."""
    try:
        pm = make_plugin_manager(load_config(_config_path(argv)))
    except (ConfigError, PluginError):
        pm = make_plugin_manager(load_config(None), load_entrypoints=False)
    registry = CommandRegistry(list(COMMANDS))
    call_each(pm, "register_commands", registry=registry)
    return registry.commands


def _config_path(argv: Sequence[str]) -> Path | None:
    for index, word in enumerate(argv):
        if word == "--config" and index + 1 < len(argv):
            return Path(argv[index + 1])
        if word.startswith("--config="):
            return Path(word.partition("=")[2])
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser(all_commands(argv)).parse_args(argv)
        return int(args.func(args))
    except PluginError as exc:
        print(f"copr_lite: plugin error: {exc}", file=sys.stderr)
        return 1
    except Fatal as exc:
        print(f"copr_lite: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
