"""pytest plugin (entry point `pytest11`): fixtures that build a real app on a real SQLite file.

    async def test_something(client, make_user):
        user, token = await make_user("alice")
        resp = await client.get("/api/auth_check/", headers=basic_auth(token))

`make_config(**settings)` gives a Config whose data dir is the test's tmp_path; `make_app`
builds an app from it; `client` is an aiohttp test client on a default app. It needs
pytest-aiohttp with `asyncio_mode = "auto"`; README.md ("Testing a plugin") has a complete
plugin test.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import hashlib
import sqlite3
import struct
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from . import auth, hookimpl, store
from .app import create_app
from .builders import (
    RPM_MAGIC,
    BuildContext,
    BuilderRegistry,
    BuildJob,
    ChrootResult,
    Outcome,
    PackageInfo,
)
from .config import Config, load_config
from .conformance import build_conformance_srpms, check_builder, job_factory
from .keys import CONFIG, DB, HASHER, TOKEN_CACHE
from .models import User
from .rpmheader import (
    HEADER_MAGIC,
    TAG_ARCH,
    TAG_EPOCH,
    TAG_NAME,
    TAG_RELEASE,
    TAG_SOURCERPM,
    TAG_VERSION,
)

__all__ = [
    "BuilderPlugin",
    "FakeBuilder",
    "Script",
    "add_user",
    "basic_auth",
    "build_conformance_srpms",
    "check_builder",
    "insert_imported_builds",
    "job_factory",
    "store_builds",
    "wait_until",
    "write_fake_rpm",
]

TEST_CHROOTS = {
    "fedora-rawhide-x86_64": "rpmbuild",
    "fedora-41-x86_64": "rpmbuild",
    "fedora-40-x86_64": "rpmbuild",
    "epel-9-x86_64": "rpmbuild",
}


def basic_auth(token: auth.NewToken | tuple[str, str]) -> dict[str, str]:
    """The Authorization header for an API credential."""
    login, secret = (token.login, token.token) if isinstance(token, auth.NewToken) else token
    value = base64.b64encode(f"{login}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {value}"}


async def upload_srpm(client: Any, token: auth.NewToken, project: str, srpm: Path) -> int:
    """Submit `srpm` to `project` ("owner/name") as new_build_upload does with a test client;
    the new build's id."""
    form = aiohttp.FormData()
    form.add_field("pkgs", await asyncio.to_thread(srpm.read_bytes), filename=srpm.name)
    resp = await client.post(
        f"/api/coprs/{project}/new_build_upload/", data=form, headers=basic_auth(token)
    )
    assert resp.status == 200, await resp.text()
    return int((await resp.json())["id"])


async def add_user(
    app: web.Application, name: str, *, admin: bool = False, password: str = "password123"
) -> tuple[User, auth.NewToken]:
    """Create a user with a password and an API token in a running app (one served by
    `aiohttp_client`, so its database is open); returns the User and its NewToken, whose
    `basic_auth(token)` header authenticates API calls. A plain coroutine function, not a
    fixture: `make_user` is the fixture doing the same for the `client` app."""
    db = app[DB]
    user = await db.write(store.create_user, name, await app[HASHER].hash(password), admin)
    token = await auth.issue_token(db, app[TOKEN_CACHE], user, app[CONFIG].token_expiration_days)
    return user, token


# The package of a build stored by insert_imported_builds unless told otherwise.
HELLO_SRPM = PackageInfo("hello", None, "1.0", "1", "src")


def insert_imported_builds(
    conn: sqlite3.Connection,
    project_id: int,
    user_id: int,
    chroots: Iterable[str],
    *,
    package: PackageInfo = HELLO_SRPM,
    count: int = 1,
    sha: str | None = None,
    timeout: int = 60,
    background: bool = False,
    url: str | None = None,
    srpm: str = "/nonexistent/x.src.rpm",
) -> list[int]:
    """Store `count` builds as their SRPM import leaves them: their chroots pending, for the
    engine to take. A write function: `await db.write(insert_imported_builds, ...)`. Each
    build has a checksum of its own unless `sha` is given (builds of one SRPM: the engine
    skips a chroot where an earlier one succeeded); `url` defaults to one named after
    the package, `srpm` to a path that does not exist (FakeBuilder never reads it)."""
    urls = [url or f"http://x.example/{package.name}-1-1.src.rpm"] * count
    ids = store_builds(
        conn, project_id, user_id, urls, chroots, timeout=timeout, background=background
    )
    for build_id in ids:
        store.import_succeeded(conn, build_id, srpm, sha or f"s{build_id}", package)
    return ids


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Config]:
    """`make_config(**settings)`: a Config from the built-in defaults, with `data_dir` in the
    test's tmp_path, the four TEST_CHROOTS served by `rpmbuild` and SRPM URLs on 127.0.0.0/8
    allowed. Keyword arguments override settings by their Config field name."""

    def factory(**settings: Any) -> Config:
        settings.setdefault("data_dir", tmp_path / "data")
        settings.setdefault("chroots", dict(TEST_CHROOTS))
        settings.setdefault("srpm_allowed_networks", ("127.0.0.0/8",))
        # Hand-made RPM files (write_fake_rpm) cannot be signed: signing is on only in the
        # tests that ask for it (sign=True), with keys that are quicker to make.
        settings.setdefault("sign", False)
        settings.setdefault("key_length", 2048)
        # Failed sign-ins answer at once: tests need not wait out the anti-guessing delay.
        settings.setdefault("failure_delay_ms", 0)
        return load_config(None, **settings)

    return factory


@pytest.fixture
def make_app(make_config: Callable[..., Config]) -> Callable[..., web.Application]:
    """`make_app(plugins=[...], start_dispatcher=True, **settings)`: an app built from
    `make_config(**settings)` with the given plugin objects or modules registered beside the
    built-in ones. Entry-point plugins are not loaded, so what is installed on the machine
    cannot interfere. Serve it with `await aiohttp_client(app)`, which opens its database;
    `start_dispatcher=False` leaves builds in the state they were stored in."""

    def factory(
        *,
        plugins: tuple[object, ...] | list[object] = (),
        start_dispatcher: bool = True,
        **settings: Any,
    ) -> web.Application:
        return create_app(
            make_config(**settings),
            plugins=plugins,
            load_entrypoints=False,
            start_dispatcher=start_dispatcher,
        )

    return factory


@pytest.fixture
async def client(aiohttp_client: Any, make_app: Callable[..., web.Application]) -> Any:
    """A test client on a default app (its database in the test's tmp_path)."""
    return await aiohttp_client(make_app())


@pytest.fixture
def make_user(client: Any) -> Callable[..., Awaitable[tuple[User, auth.NewToken]]]:
    """`await make_user("alice", admin=False)` -> (User, NewToken) in the `client` app."""

    async def factory(name: str, **kwargs: Any) -> tuple[User, auth.NewToken]:
        return await add_user(client.server.app, name, **kwargs)

    return factory


# ---------------------------------------------------------------- builders for tests


@dataclass
class Script:
    """What FakeBuilder does for one job: log `lines`, wait `seconds`, then end."""

    outcome: Outcome = Outcome.SUCCEEDED
    seconds: float = 0.0
    lines: tuple[str, ...] = ("fake build step",)
    fail_reason: str = "fake failure"


class FakeBuilder:
    """A Builder that records every job and follows a Script per package name.

    It writes a header-only RPM per "built" package into the result directory
    (`write_fake_rpm`), so the server's checks pass and publishing has something to lay
    out; `started`/`finished`/`canceled` record what happened.
    """

    def __init__(
        self,
        name: str = "fake",
        scripts: dict[str, Script] | None = None,
        concurrency: int | None = None,
    ) -> None:
        self.name = name
        self.scripts = scripts or {}
        self.concurrency = concurrency
        self.started: list[tuple[int, str]] = []
        self.finished: list[tuple[int, str]] = []
        self.canceled: list[tuple[int, str]] = []
        self.jobs: list[BuildJob] = []

    async def build(self, job: BuildJob, ctx: BuildContext) -> ChrootResult:
        key = (job.build_id, job.chroot.name)
        self.started.append(key)
        self.jobs.append(job)
        script = self.scripts.get(job.package.name if job.package else "", Script())
        try:
            for line in script.lines:
                await ctx.log(line)
            if script.seconds:
                await asyncio.sleep(script.seconds)
        except asyncio.CancelledError:
            self.canceled.append(key)
            raise
        self.finished.append(key)
        if script.outcome is Outcome.FAILED:
            return ChrootResult.failed(script.fail_reason)
        assert job.package is not None
        package = PackageInfo(
            job.package.name,
            None,
            job.package.version,
            f"{job.package.release}{job.chroot.dist}",
            "noarch",
        )
        path = ctx.result_dir / f"{package.nevra}.rpm"
        write_fake_rpm(path, package)
        return ChrootResult(Outcome.SUCCEEDED, (package,), (path,))


def _rpm_header(entries: list[tuple[int, int, str | int]]) -> bytes:
    """One RPM header structure: magic, index of (tag, type, offset, count), data store."""
    index, data = b"", b""
    for tag, kind, value in sorted(entries):
        if isinstance(value, int):  # RPM_INT32_TYPE, 4-byte aligned
            data += b"\0" * (-len(data) % 4)
            index += struct.pack(">IIII", tag, 4, len(data), 1)
            data += struct.pack(">I", value)
        else:  # RPM_STRING_TYPE
            index += struct.pack(">IIII", tag, kind, len(data), 1)
            data += value.encode() + b"\0"
    return HEADER_MAGIC + b"\0" * 4 + struct.pack(">II", len(entries), len(data)) + index + data


def write_fake_rpm(path: Path, package: PackageInfo) -> None:
    """Write a header-only binary RPM of `package`: no payload, but a header that the
    server's checks and `rpm -qp` read (name, epoch, version, release, arch)."""
    p = package
    tags: list[tuple[int, int, str | int]] = [
        (TAG_NAME, 6, p.name),
        (TAG_VERSION, 6, p.version),
        (TAG_RELEASE, 6, p.release),
        (TAG_ARCH, 6, p.arch),
        (1021, 6, "linux"),  # RPMTAG_OS
        (TAG_SOURCERPM, 6, f"{p.name}-{p.version}-{p.release}.src.rpm"),
    ]
    if p.epoch:
        tags.append((TAG_EPOCH, 4, p.epoch))
    main = _rpm_header(tags)
    # Signature header: the main header's size (1000) and sha256 (273), padded to 8 bytes.
    signature = _rpm_header([(1000, 4, len(main)), (273, 6, hashlib.sha256(main).hexdigest())])
    signature += b"\0" * (-len(signature) % 8)
    title = f"{p.name}-{p.version}-{p.release}".encode()[:65].ljust(66, b"\0")
    # Lead: magic, version 3.0, binary type, arch 1, name, os 1, header-style signature.
    lead = RPM_MAGIC + b"\x03\x00" + struct.pack(">HH", 0, 1) + title
    lead += struct.pack(">HH", 1, 5) + b"\0" * 16
    path.write_bytes(lead + signature + main)


class BuilderPlugin:
    """A plugin object registering the given builders (pass to make_app(plugins=[...]))."""

    def __init__(self, *builders: object) -> None:
        self.builders = builders

    @hookimpl
    def register_builders(self, registry: BuilderRegistry, config: Config) -> None:
        for builder in self.builders:
            registry.add(builder)  # type: ignore[arg-type]


class LogLines:
    """A LogWriter (`builders.LogWriter`) that keeps the lines it is given."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    async def __call__(self, line: str) -> None:
        self.lines.append(line)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def read_log(build_dir: Path) -> str:
    """A chroot's build log, whether it is still builder-live.log or already compressed
    to builder-live.log.gz (as it is once the chroot ended)."""
    for _ in range(2):  # the plain file may go between the two looks; then the .gz is there
        compressed = build_dir / "builder-live.log.gz"
        if compressed.is_file():
            return gzip.decompress(compressed.read_bytes()).decode("utf-8", "replace")
        with contextlib.suppress(FileNotFoundError):
            return (build_dir / "builder-live.log").read_text(errors="replace")
    raise FileNotFoundError(build_dir / "builder-live.log")


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], within: float = 15.0, interval: float = 0.05
) -> None:
    """Poll an async predicate until it holds; fail the test after `within` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(interval)


def store_builds(
    conn: sqlite3.Connection,
    project_id: int,
    user_id: int,
    urls: Sequence[str],
    chroots: Iterable[str],
    *,
    timeout: int = 3600,
    repos: str = "",
    background: bool = False,
) -> list[int]:
    """Store one build per SRPM URL straight into the database (in a `db.write` function),
    with new_build's default options; its chroots wait for the import (see
    store.import_succeeded)."""
    return store.insert_builds(
        conn,
        project_id,
        user_id,
        [store.NewBuild(url) for url in urls],
        list(chroots),
        memory_reqs=2048,
        timeout=timeout,
        enable_net=False,
        repos=repos,
        background=background,
    )
