"""The plugin system: manager factory, every hook, built-in and third-party plugins."""

from __future__ import annotations

import ast
import asyncio
import inspect
import logging
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest
from conftest import pip_install_into

from copr_lite import cli, hookimpl, hookspecs, plugin_setting, store
from copr_lite.app import create_app
from copr_lite.commands import Command, CommandRegistry
from copr_lite.config import ConfigError
from copr_lite.db import Database
from copr_lite.keys import BUILDERS, CONFIG, DB, PLUGINS
from copr_lite.migrations import Migration
from copr_lite.plugins import (
    PluginError,
    collect_migrations,
    fire,
    load_plugins,
    make_plugin_manager,
)
from copr_lite.resources import resource_dir
from copr_lite.testing import BuilderPlugin, FakeBuilder, add_user, basic_auth, wait_until

ROOT = Path(__file__).resolve().parent.parent
HOOKS = sorted(
    name
    for name, value in vars(hookspecs).items()
    if callable(value) and hasattr(value, "copr_lite_spec")
)
CHROOTS = {"fedora-40-x86_64": "fake", "epel-9-x86_64": "fake"}


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    @hookimpl
    def startup(self, app):
        self.calls.append(("startup", app[CONFIG].port))

    @hookimpl
    def build_submitted(self, build):
        self.calls.append(("build_submitted", build.id, build.project_name))

    @hookimpl
    def chroot_started(self, build, chroot):
        self.calls.append(("chroot_started", build.id, chroot))

    @hookimpl
    def chroot_finished(self, build, chroot, result, state):
        self.calls.append(("chroot_finished", build.id, chroot, state, result.status.value))

    @hookimpl
    def build_finished(self, build):
        self.calls.append(("build_finished", build.id))

    @hookimpl
    def repository_published(self, owner, project, chroot, seconds):
        assert 0 < seconds < 60
        self.calls.append(("repository_published", owner, project, chroot))


async def build_hello(app, client, srpm, chroot_fields: dict[str, str]) -> int:
    """As a new user alice: project p with `chroot_fields`, then the hello SRPM uploaded to
    it; the build's id."""
    _, token = await add_user(app, "alice")
    resp = await client.post(
        "/api/coprs/alice/new/", headers=basic_auth(token), data={"name": "p", **chroot_fields}
    )
    assert resp.status == 200
    form = aiohttp.FormData()
    form.add_field(
        "pkgs",
        srpm.read_bytes(),
        filename="hello-copr-lite-1.0-1.src.rpm",
        content_type="application/x-rpm",
    )
    resp = await client.post(
        "/api/coprs/alice/p/new_build_upload/", data=form, headers=basic_auth(token)
    )
    return int((await resp.json())["id"])


@pytest.fixture
async def recorded(aiohttp_client, make_app, fixture_srpm):
    """A server with a Recorder plugin, after one real build submitted through the API."""
    recorder = Recorder()
    app = make_app(plugins=[BuilderPlugin(FakeBuilder()), recorder], chroots=CHROOTS)
    client = await aiohttp_client(app)
    fields = {"chroots": " ".join(CHROOTS)}
    build_id = await build_hello(app, client, fixture_srpm("hello-copr-lite"), fields)

    async def finished():
        return ("build_finished", build_id) in recorder.calls

    await wait_until(finished)
    return recorder, build_id


async def test_hook_startup(recorded):
    recorder, _ = recorded
    assert recorder.calls[0] == ("startup", 8080)


async def test_hook_build_submitted(recorded):
    recorder, build_id = recorded
    assert ("build_submitted", build_id, "p") in recorder.calls


async def test_hook_chroot_started(recorded):
    recorder, build_id = recorded
    started = [c for c in recorder.calls if c[0] == "chroot_started"]
    assert sorted(started) == [("chroot_started", build_id, c) for c in sorted(CHROOTS)]


async def test_hook_chroot_finished(recorded):
    recorder, build_id = recorded
    finished = [c for c in recorder.calls if c[0] == "chroot_finished"]
    assert sorted(finished) == [
        ("chroot_finished", build_id, c, "succeeded", "succeeded") for c in sorted(CHROOTS)
    ]
    # Events come in lifecycle order.
    kinds = [c[0] for c in recorder.calls]
    assert kinds.index("build_submitted") < kinds.index("chroot_started")
    assert kinds.index("chroot_finished") < kinds.index("build_finished")


async def test_hook_repository_published(recorded):
    recorder, _ = recorded
    published = [c for c in recorder.calls if c[0] == "repository_published"]
    # Each chroot's repository: empty at creation, then with the build in it (one run may
    # serve both when the second request arrives before the first run starts).
    assert set(published) == {("repository_published", "alice", "p", c) for c in CHROOTS}


async def test_hook_build_finished(recorded):
    recorder, build_id = recorded
    assert recorder.calls.count(("build_finished", build_id)) == 1


def test_hook_register_builders(make_config):
    class Named(FakeBuilder):
        pass

    pm = make_plugin_manager(make_config(), [BuilderPlugin(Named("extra"))], False)
    from copr_lite.builders import BuilderRegistry

    registry = BuilderRegistry()
    pm.hook.register_builders(registry=registry, config=make_config())
    assert {"rpmbuild", "mock", "extra"} <= set(registry.names())
    with pytest.raises(ValueError, match="already registered"):
        registry.add(FakeBuilder("extra"))
    with pytest.raises(TypeError, match="not a Builder"):
        registry.add(object())  # type: ignore[arg-type]


def test_hook_register_settings(make_config):
    @dataclass(frozen=True)
    class NotifySettings:
        url: str = plugin_setting("", "Where to send notifications.")
        retries: int = plugin_setting(3, "Attempts per notification.", min=1)

    seen = []

    class Notify:
        @hookimpl
        def register_settings(self, registry):
            registry.add("notify", NotifySettings)

        @hookimpl
        def register_builders(self, registry, config):
            seen.append(config.plugin_settings("notify", NotifySettings))

    sections = {"notify": {"url": "http://x", "retries": "5"}}
    loaded = load_plugins(make_config(plugin_sections=sections), [Notify()], False)
    assert seen == [NotifySettings("http://x", 5)]
    # The built-in plugins declare theirs the same way.
    assert loaded.settings.names() == [
        "container",
        "mock",
        "notify",
        "remote",
        "rpmbuild",
        "webhooks",
    ]
    with pytest.raises(ConfigError, match=r"^\[plugin:notify\] retries = 0: must be at least 1$"):
        load_plugins(make_config(plugin_sections={"notify": {"retries": "0"}}), [Notify()], False)
    with pytest.raises(ConfigError, match=r"^unknown section \[plugin:notify\]"):
        load_plugins(make_config(plugin_sections=sections), [], False)


async def test_hook_register_routes(aiohttp_client, make_app):
    from aiohttp import web

    class Routes:
        @hookimpl
        def register_routes(self, app):
            async def hello(request):
                return web.json_response({"builders": request.app[BUILDERS].names()})

            app.router.add_get("/hello-plugin/", hello)

    client = await aiohttp_client(make_app(plugins=[Routes()]))
    resp = await client.get("/hello-plugin/")
    assert resp.status == 200
    assert "remote" in (await resp.json())["builders"]
    # The built-in remote plugin adds the worker API, whose errors are JSON.
    resp = await client.post("/worker/v1/claim", json={"chroots": ["*"]})
    assert resp.status == 401
    assert (await resp.json())["errcode"] == "unauthorized"
    resp = await client.get("/worker/v1/nothing-here")
    assert resp.status == 404
    assert (await resp.json())["output"] == "notok"


def test_hook_register_commands(tmp_path, capsys):
    """A plugin's command runs as the core's do; the built-in remote plugin adds `worker` and
    `worker-token`, which go when it is blocked."""
    plugins_dir = tmp_path / "plugins"
    plugins_dir.mkdir()
    (plugins_dir / "hello_command.py").write_text(
        "from copr_lite import hookimpl\n"
        "from copr_lite.commands import Command, arg\n"
        "def run(args):\n"
        "    print(f'hello {args.name}')\n"
        "    return 3\n"
        "@hookimpl\n"
        "def register_commands(registry):\n"
        "    registry.add(Command('hello', 'greet', 'Greet someone.', run, (arg('name'),)))\n"
    )
    ini = tmp_path / "copr-lite.ini"
    ini.write_text(f"[plugins]\nplugins_dir = {plugins_dir}\n")
    assert cli.main(["hello", "--config", str(ini), "world"]) == 3
    assert capsys.readouterr().out == "hello world\n"
    names = [command.name for command in cli.all_commands(["--config", str(ini)])]
    assert names[:4] == ["serve", "user", "worker", "worker-token"]  # as listed before
    assert "hello" in names
    ini.write_text("[plugins]\nblocklist = remote\n")
    names = [command.name for command in cli.all_commands(["--config", str(ini)])]
    assert "serve" in names and "worker" not in names and "worker-token" not in names
    # A name taken by the core is a plugin error.
    with pytest.raises(ValueError, match="'serve' is already registered"):
        CommandRegistry(list(cli.COMMANDS)).add(Command("serve", "", ""))


async def test_hook_register_migrations(make_config, tmp_path):
    """A plugin's steps run after the core's, once, recorded under its name."""

    class Notes:
        @hookimpl
        def register_migrations(self, registry):
            registry.add("notes", [Migration(1, "notes", "CREATE TABLE notes (text TEXT);")])

    pm = make_plugin_manager(make_config(), [Notes()], False)
    steps = collect_migrations(pm)
    assert {"notes", "remote"} <= set(steps.plugins())
    path = tmp_path / "db.sqlite3"
    db = await Database.open(path, steps)
    await db.write(lambda conn: conn.execute("INSERT INTO notes VALUES ('kept')"))
    await db.close()
    db = await Database.open(path, steps)  # nothing to apply: the row stays
    assert await db.read(lambda conn: conn.execute("SELECT text FROM notes").fetchall()[0][0]) == (
        "kept"
    )
    versions = await db.read(
        lambda conn: dict(conn.execute("SELECT plugin, version FROM plugin_schema_versions"))
    )
    await db.close()
    assert versions == {"notes": 1, "remote": 1, "webhooks": 1}


async def test_hook_register_api_paths(aiohttp_client, make_app):
    """A plugin's description is in /api/openapi.json; a blocked plugin's route and
    description go together (the remote plugin's GET /api/workers/)."""

    class Described:
        @hookimpl
        def register_api_paths(self, paths):
            paths["/api/hello/"] = {"get": {"responses": {"200": {"description": "hello"}}}}

    client = await aiohttp_client(make_app(plugins=[Described()]))
    paths = (await (await client.get("/api/openapi.json")).json())["paths"]
    assert paths["/api/hello/"]["get"]["responses"]["200"]["description"] == "hello"
    assert "/api/workers/" in paths
    assert (await client.get("/api/workers/")).status == 401

    blocked = await aiohttp_client(make_app(blocklist=("remote",)))
    paths = (await (await blocked.get("/api/openapi.json")).json())["paths"]
    assert "/api/workers/" not in paths and "/api/hello/" not in paths
    assert (await blocked.get("/api/workers/")).status == 404
    assert (await blocked.post("/worker/v1/claim", json={"chroots": ["*"]})).status == 404


async def test_failing_event_hooks_do_not_stop_the_others(make_config, caplog):
    """A plain and an async implementation that raise are logged by plugin name; the
    working one and the built-in event log still run, and every coroutine is awaited."""
    calls: list[str] = []

    class Working:
        @hookimpl
        async def chroot_started(self, build, chroot):
            await asyncio.sleep(0)
            calls.append(f"working {build.id} {chroot}")

    class PlainFailure:
        @hookimpl
        def chroot_started(self, build, chroot):
            calls.append("plain")
            raise RuntimeError("plain hook broke")

    class AsyncFailure:
        @hookimpl
        async def chroot_started(self, build, chroot):
            await asyncio.sleep(0)
            calls.append("async")
            raise RuntimeError("async hook broke")

    # pluggy calls the last registered first: both failures come before the working one.
    # (The metrics plugin reads real builds: this stand-in build is not one.)
    pm = make_plugin_manager(make_config(blocklist=("metrics",)), (), False)
    pm.register(Working(), name="working")
    pm.register(PlainFailure(), name="plain-failure")
    pm.register(AsyncFailure(), name="async-failure")
    caplog.set_level(logging.INFO)
    await fire(pm, "chroot_started", build=SimpleNamespace(id=7), chroot="epel-9-x86_64")

    assert calls == ["async", "plain", "working 7 epel-9-x86_64"]
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in failures] == [
        "plugin async-failure failed in hook chroot_started",
        "plugin plain-failure failed in hook chroot_started",
    ]
    assert [str(r.exc_info[1]) for r in failures if r.exc_info] == [
        "async hook broke",
        "plain hook broke",
    ]
    # The built-in event log, registered first and so called last, still ran.
    assert "event=chroot_started build=7 chroot=epel-9-x86_64" in caplog.text


def test_every_hook_is_documented_tested_and_used_by_a_builtin_plugin():
    assert HOOKS == [
        "build_finished",
        "build_submitted",
        "chroot_finished",
        "chroot_started",
        "register_api_paths",
        "register_builders",
        "register_commands",
        "register_migrations",
        "register_routes",
        "register_settings",
        "repository_published",
        "startup",
    ]
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
    readme = (ROOT / "README.md").read_text()
    builtin = "\n".join(p.read_text() for p in resource_dir("plugins").rglob("*.py"))
    for name in HOOKS:
        spec = getattr(hookspecs, name)
        assert spec.__doc__ and ":param" in spec.__doc__, name
        assert f"def test_hook_{name}(" in tests, f"no test_hook_{name}"
        signature = f"{name}{inspect.signature(spec)}".replace("'", "")
        assert f"`{signature}`" in readme, f"README lacks `{signature}`"
        assert f"def {name}(" in builtin, f"no built-in plugin implements {name}"


def test_blocklist_and_plugins_dir(make_config, tmp_path):
    (tmp_path / "extra_builder.py").write_text(
        "from copr_lite import hookimpl\n"
        "from copr_lite.testing import FakeBuilder\n"
        "@hookimpl\n"
        "def register_builders(registry, config):\n"
        "    registry.add(FakeBuilder('from-dir'))\n"
    )
    app = create_app(
        make_config(
            plugins_dir=str(tmp_path), chroots={"epel-9-x86_64": "from-dir"}, blocklist=("mock",)
        ),
        load_entrypoints=False,
    )
    assert "from-dir" in app[BUILDERS].names()
    assert "mock" not in app[BUILDERS].names()
    assert app[PLUGINS].is_blocked("mock")
    with pytest.raises(ConfigError, match="no plugin provides: mock"):
        create_app(
            make_config(chroots={"epel-9-x86_64": "mock"}, blocklist=("mock",)),
            load_entrypoints=False,
        )
    (tmp_path / "broken.py").write_text("raise RuntimeError('nope')\n")
    with pytest.raises(PluginError, match=r"broken\.py failed to load: nope"):
        make_plugin_manager(make_config(plugins_dir=str(tmp_path)), (), False)


class UnknownHook:
    @hookimpl
    def chroot_startd(self, build, chroot):
        pass


class WrongArgument:
    @hookimpl
    def chroot_started(self, build, chroot_name):
        pass


class Wrapper:
    @hookimpl(wrapper=True)
    def build_finished(self, build):
        return (yield)


class FailsToRegister:
    @hookimpl
    def register_builders(self, registry, config):
        raise RuntimeError("no licence key")


class BadDeclaration:
    @hookimpl
    def register_settings(self, registry):
        registry.add("bad", dict)


@pytest.mark.parametrize(
    ("plugin", "message"),
    [
        (
            UnknownHook(),
            "plugin UnknownHook implements an unknown hook chroot_startd; "
            "did you mean chroot_started?",
        ),
        (
            WrongArgument(),
            "plugin WrongArgument: hookimpl definition: chroot_started(build, chroot_name); "
            "Argument(s) {'chroot_name'} are declared in the hookimpl but can not be found",
        ),
        (Wrapper(), "plugin Wrapper: build_finished is a hook wrapper"),
        (
            FailsToRegister(),
            "plugin FailsToRegister failed in register_builders: RuntimeError: no licence key",
        ),
        (BadDeclaration(), "failed in register_settings: TypeError: <class 'dict'> is not a"),
    ],
)
def test_a_broken_plugin_is_one_error_naming_it(make_config, plugin, message):
    with pytest.raises(PluginError) as info:
        load_plugins(make_config(), [plugin], False)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_blocklist_name_must_match_a_plugin(make_config, tmp_path):
    (tmp_path / "extra_events.py").write_text("x = 1\n")
    with pytest.raises(ConfigError, match=r"blocklist: 'mokc' matches no plugin \(plugins: "):
        load_plugins(make_config(blocklist=("mokc",)), (), False)
    # Built-in file stems and plugins_dir file stems are names.
    pm = load_plugins(
        make_config(plugins_dir=str(tmp_path), blocklist=("event_log", "extra_events")), (), False
    ).pm
    assert pm.is_blocked("event_log") and pm.is_blocked("extra_events")


def test_builtin_plugins_are_plain_files_with_hookimpls():
    for path in resource_dir("plugins").glob("*"):
        if path.name.startswith("_") or not (path.suffix == ".py" or path.is_dir()):
            continue
        tree = ast.parse((path / "__init__.py" if path.is_dir() else path).read_text())
        assert any(isinstance(node, ast.FunctionDef) for node in tree.body), path


async def test_third_party_plugin_installed_through_its_entry_point(
    tmp_path, monkeypatch, aiohttp_client, make_config, fixture_srpm
):
    """pip-installs examples/copr-lite-plain-rpmbuild and builds a real SRPM through it."""
    target = tmp_path / "site"
    await asyncio.to_thread(
        pip_install_into, target, ROOT / "examples" / "copr-lite-plain-rpmbuild"
    )
    monkeypatch.syspath_prepend(str(target))
    config = make_config(chroots={"fedora-40-x86_64": "plain-rpmbuild"})
    app = create_app(config, load_entrypoints=True)
    assert "plain-rpmbuild" in app[BUILDERS].names()
    client = await aiohttp_client(app)
    fields = {"fedora-40-x86_64": "y"}
    build_id = await build_hello(app, client, fixture_srpm("hello-copr-lite"), fields)

    async def done():
        build = await app[DB].read(store.get_build, build_id)
        return all(c.status in ("failed", "succeeded") for c in build.chroots)

    await wait_until(done, within=60)
    detail = await (await client.get(f"/api/coprs/build/{build_id}/")).json()
    assert detail["status"] == "succeeded", detail
    assert detail["built_pkgs"] == ["hello-copr-lite 1.0"]
    rpm = (
        config.data_dir
        / "results/alice/p/fedora-40-x86_64"
        / f"{build_id:08d}-hello-copr-lite"
        / "hello-copr-lite-1.0-1.fc40.noarch.rpm"
    )
    assert rpm.is_file()
