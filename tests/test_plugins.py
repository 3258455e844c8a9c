"""The plugin system: manager factory, every hook, built-in and third-party plugins."""

from __future__ import annotations

import ast
import asyncio
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from copr_lite import hookimpl, hookspecs, store
from copr_lite.app import create_app
from copr_lite.config import ConfigError
from copr_lite.keys import BUILDERS, CONFIG, DB, PLUGINS
from copr_lite.plugins import PluginError, make_plugin_manager
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


@pytest.fixture
async def recorded(aiohttp_client, make_app, fixture_srpm):
    """A server with a Recorder plugin, after one real build submitted through the API."""
    recorder = Recorder()
    app = make_app(plugins=[BuilderPlugin(FakeBuilder()), recorder], chroots=CHROOTS)
    client = await aiohttp_client(app)
    _, token = await add_user(app, "alice")
    resp = await client.post(
        "/api/coprs/alice/new/",
        headers=basic_auth(token),
        data={"name": "p", "chroots": " ".join(CHROOTS)},
    )
    assert resp.status == 200
    import aiohttp

    form = aiohttp.FormData()
    form.add_field(
        "pkgs",
        fixture_srpm("hello-copr-lite").read_bytes(),
        filename="hello-copr-lite-1.0-1.src.rpm",
        content_type="application/x-rpm",
    )
    resp = await client.post(
        "/api/coprs/alice/p/new_build_upload/", data=form, headers=basic_auth(token)
    )
    build_id = (await resp.json())["id"]

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


def test_every_hook_is_documented_tested_and_used_by_a_builtin_plugin():
    assert HOOKS == [
        "build_finished",
        "build_submitted",
        "chroot_finished",
        "chroot_started",
        "register_builders",
        "register_routes",
        "startup",
    ]
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
    readme = (ROOT / "README.md").read_text()
    builtin = "\n".join(p.read_text() for p in resource_dir("plugins").glob("*.py"))
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


def test_builtin_plugins_are_plain_files_with_hookimpls():
    for path in resource_dir("plugins").glob("*.py"):
        if path.name.startswith("_"):
            continue
        tree = ast.parse(path.read_text())
        assert any(isinstance(node, ast.FunctionDef) for node in tree.body), path


async def test_third_party_plugin_installed_through_its_entry_point(
    tmp_path, monkeypatch, aiohttp_client, make_config, fixture_srpm
):
    """pip-installs examples/copr-lite-plain-rpmbuild and builds a real SRPM through it."""
    target = tmp_path / "site"
    await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(ROOT / "examples" / "copr-lite-plain-rpmbuild"),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    monkeypatch.syspath_prepend(str(target))
    config = make_config(chroots={"fedora-40-x86_64": "plain-rpmbuild"})
    app = create_app(config, load_entrypoints=True)
    assert "plain-rpmbuild" in app[BUILDERS].names()
    client = await aiohttp_client(app)
    _, token = await add_user(app, "alice")
    await client.post(
        "/api/coprs/alice/new/",
        headers=basic_auth(token),
        data={"name": "p", "fedora-40-x86_64": "y"},
    )
    import aiohttp

    form = aiohttp.FormData()
    form.add_field(
        "pkgs",
        fixture_srpm("hello-copr-lite").read_bytes(),
        filename="hello-copr-lite-1.0-1.src.rpm",
        content_type="application/x-rpm",
    )
    resp = await client.post(
        "/api/coprs/alice/p/new_build_upload/", data=form, headers=basic_auth(token)
    )
    build_id = (await resp.json())["id"]

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
