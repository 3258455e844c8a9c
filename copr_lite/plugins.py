"""The plugin manager factory: built-in plugins, a plugins directory, entry points, blocklist.

Each app gets its own manager (no module-global state). Built-in plugins are the `*.py`
files and the packages (directories with an `__init__.py`, such as `remote/`) of the shipped
`plugins/` directory, loaded by path under their file stem or directory name; a directory of
more plugins, laid out the same way, can be configured; installed packages register through the
`copr_lite` entry-point group. Any of them can be blocked by name. `load_plugins()` then
validates the plugins' settings and registers their builders; every problem on the way is
one line for the operator (ConfigError or PluginError).
"""

from __future__ import annotations

import difflib
import importlib.metadata
import importlib.util
import inspect
import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from . import hookspecs
from .builders import BuilderRegistry
from .config import Config, ConfigError, PluginSettingsRegistry
from .migrations import MigrationRegistry
from .resources import resource_dir

log = logging.getLogger(__name__)
PROJECT = "copr_lite"


class PluginError(Exception):
    """A plugin could not be loaded (worded for the operator)."""


def _load_module(path: Path, prefix: str) -> ModuleType:
    """Load a plugin file, or a plugin package (a directory; its modules import each other
    relatively), under `prefix` + its name."""
    name = f"{prefix}{path.stem}"
    if path.is_dir():
        spec = importlib.util.spec_from_file_location(
            name, path / "__init__.py", submodule_search_locations=[str(path)]
        )
    else:
        spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"cannot load plugin {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise PluginError(f"plugin {path} failed to load: {_one_line(exc)}") from exc
    return module


def _plugin_files(directory: Path) -> list[Path]:
    """The plugin files and plugin packages in `directory`."""
    return sorted(
        p
        for p in directory.iterdir()
        if not p.name.startswith(("_", "."))
        and (p.suffix == ".py" if p.is_file() else (p / "__init__.py").is_file())
    )


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or exc.__class__.__name__


def _register(pm: pluggy.PluginManager, plugin: object, name: str | None = None) -> None:
    """Register a plugin; a hook implementation that does not fit its spec (an argument
    the spec lacks, a hook wrapper) is a PluginError naming the plugin."""
    if name is None:
        # Log lines and errors name a plugin object by its class (or module) name.
        name = str(getattr(plugin, "__name__", type(plugin).__name__))
        if pm.get_plugin(name) is not None:
            name = f"{name}-{id(plugin)}"
    try:
        registered = pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        # pluggy's first line names the plugin by its id; the rest says what is wrong.
        lines = [line.strip() for line in str(exc).splitlines()[1:] if line.strip()]
        raise PluginError(f"plugin {name}: {'; '.join(lines) or _one_line(exc)}") from None
    if registered is None:
        return  # blocked
    for impl in pm.get_hookcallers(plugin) or []:
        for hookimpl in impl.get_hookimpls():
            if hookimpl.plugin is plugin and (hookimpl.hookwrapper or hookimpl.wrapper):
                raise PluginError(
                    f"plugin {hookimpl.plugin_name}: {impl.name} is a hook wrapper; copr_lite "
                    "calls each implementation on its own, so wrappers are not supported"
                )


def _check_hook_names(pm: pluggy.PluginManager) -> None:
    """Every implemented hook must exist: a misspelled one would never be called."""
    known = sorted(
        name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "copr_lite_spec")
    )
    for name, caller in vars(pm.hook).items():
        if not isinstance(caller, pluggy.HookCaller) or caller.spec is not None:
            continue
        for impl in caller.get_hookimpls():
            if impl.optionalhook:
                continue
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else f" (hooks: {', '.join(known)})"
            raise PluginError(f"plugin {impl.plugin_name} implements an unknown hook {name}{hint}")


def plugin_names(config: Config) -> set[str]:
    """The names plugins can be blocked by: file stems and entry-point names."""
    names = {p.stem for p in _plugin_files(resource_dir("plugins"))}
    if config.plugins_dir and Path(config.plugins_dir).is_dir():
        names |= {p.stem for p in _plugin_files(Path(config.plugins_dir))}
    names |= {ep.name for ep in importlib.metadata.entry_points(group=PROJECT)}
    return names


def make_plugin_manager(
    config: Config, extra: Iterable[object] = (), load_entrypoints: bool = True
) -> pluggy.PluginManager:
    """A new plugin manager with every plugin `config` asks for, and `extra` ones.

    Raises PluginError (one line, naming the plugin) when a plugin cannot be loaded or
    implements a hook wrongly, and ConfigError for a blocklist name that matches no plugin.
    """
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    directories = [(resource_dir("plugins"), "copr_lite_builtin_")]
    if config.plugins_dir:
        directory = Path(config.plugins_dir)
        if not directory.is_dir():
            raise PluginError(f"[plugins] plugins_dir {directory} is not a directory")
        directories.append((directory, "copr_lite_plugin_"))
    known = plugin_names(config)
    for name in config.blocklist:
        if name not in known:
            names = ", ".join(sorted(known))
            raise ConfigError(f"[plugins] blocklist: {name!r} matches no plugin (plugins: {names})")
        pm.set_blocked(name)
    for directory, prefix in directories:
        for path in _plugin_files(directory):
            if pm.is_blocked(path.stem):
                continue
            _register(pm, _load_module(path, prefix), name=path.stem)
    if load_entrypoints:
        for ep in importlib.metadata.entry_points(group=PROJECT):
            if pm.is_blocked(ep.name) or pm.get_plugin(ep.name) is not None:
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(
                    f"plugin {ep.name} (entry point {ep.value}) failed to load: {_one_line(exc)}"
                ) from exc
            _register(pm, plugin, name=ep.name)
    for plugin in extra:
        _register(pm, plugin)
    _check_hook_names(pm)
    pm.check_pending()
    return pm


def call_each(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> None:
    """Call a registration hook's implementations one by one. A ConfigError goes on as it
    is; any other exception becomes a PluginError naming the plugin."""
    caller: pluggy.HookCaller = getattr(pm.hook, hook)
    for impl in reversed(caller.get_hookimpls()):
        try:
            impl.function(**{name: kwargs[name] for name in impl.argnames})
        except ConfigError:
            raise
        except Exception as exc:
            raise PluginError(
                f"plugin {impl.plugin_name} failed in {hook}: {exc.__class__.__name__}: "
                f"{_one_line(exc)}"
            ) from exc


def collect_migrations(pm: pluggy.PluginManager) -> MigrationRegistry:
    """Every plugin's own database migrations (`register_migrations`)."""
    registry = MigrationRegistry()
    call_each(pm, "register_migrations", registry=registry)
    return registry


def api_paths(pm: pluggy.PluginManager) -> dict[str, Any]:
    """The OpenAPI path items of the plugins' `/api/` routes (`register_api_paths`)."""
    paths: dict[str, Any] = {}
    call_each(pm, "register_api_paths", paths=paths)
    return paths


@dataclass(frozen=True)
class Plugins:
    """The loaded plugins of one app: their manager, settings and builders."""

    pm: pluggy.PluginManager
    settings: PluginSettingsRegistry
    builders: BuilderRegistry


def load_plugins(
    config: Config, extra: Iterable[object] = (), load_entrypoints: bool = True
) -> Plugins:
    """Load the plugins, validate their settings and register their builders.

    Every problem is one line: ConfigError for the settings file (an undeclared
    `[plugin:...]` section, an unknown key or bad value, a blocklist name that matches no
    plugin, a chroot mapped to a builder no plugin provides), PluginError for a plugin
    (it fails to load, implements an unknown hook, or fails while registering).
    """
    pm = make_plugin_manager(config, extra, load_entrypoints)
    settings = PluginSettingsRegistry()
    call_each(pm, "register_settings", registry=settings)
    settings.validate(config)
    builders = BuilderRegistry()
    call_each(pm, "register_builders", registry=builders, config=config)
    missing = sorted({b for b in config.chroots.values() if builders.get(b) is None})
    if missing:
        raise ConfigError(
            f"[chroots] names builders no plugin provides: {', '.join(missing)} "
            f"(available: {', '.join(builders.names()) or 'none'})"
        )
    return Plugins(pm, settings, builders)


async def fire(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> None:
    """Call every implementation of an event hook on its own and await what it returns.

    pluggy's own call stops at the first exception, which would skip the remaining plugins
    (and leave the coroutines already returned unawaited). Here each implementation is
    called and awaited in turn, in pluggy's order; one that raises, at once or when
    awaited, is logged with its plugin's name and the others still run.
    """
    caller: pluggy.HookCaller = getattr(pm.hook, hook)
    # get_hookimpls() lists the last-called first; pluggy calls them in reverse.
    for impl in reversed(caller.get_hookimpls()):
        try:
            result = impl.function(**{name: kwargs[name] for name in impl.argnames})
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("plugin %s failed in hook %s", impl.plugin_name, hook)
