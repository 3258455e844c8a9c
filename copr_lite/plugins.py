"""The plugin manager factory: built-in plugins, a plugins directory, entry points, blocklist.

Each app gets its own manager (no module-global state). Built-in plugins are the `*.py`
files of the shipped `plugins/` directory, loaded by path under their file stem; a
directory of more plugin files can be configured; installed packages register through the
`copr_lite` entry-point group. Any of them can be blocked by name.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from . import hookspecs
from .config import Config
from .resources import resource_dir

log = logging.getLogger(__name__)
PROJECT = "copr_lite"


class PluginError(Exception):
    """A plugin could not be loaded (worded for the operator)."""


def _load_module(path: Path, prefix: str) -> ModuleType:
    name = f"{prefix}{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"cannot load plugin {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise PluginError(f"plugin {path} failed to load: {exc}") from exc
    return module


def _plugin_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.py") if not p.name.startswith("_"))


def make_plugin_manager(
    config: Config, extra: Iterable[object] = (), load_entrypoints: bool = True
) -> pluggy.PluginManager:
    """A new plugin manager with every plugin `config` asks for, and `extra` ones."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in config.blocklist:
        pm.set_blocked(name)
    directories = [(resource_dir("plugins"), "copr_lite_builtin_")]
    if config.plugins_dir:
        directory = Path(config.plugins_dir)
        if not directory.is_dir():
            raise PluginError(f"[plugins] plugins_dir {directory} is not a directory")
        directories.append((directory, "copr_lite_plugin_"))
    for directory, prefix in directories:
        for path in _plugin_files(directory):
            if pm.is_blocked(path.stem):
                continue
            pm.register(_load_module(path, prefix), name=path.stem)
    if load_entrypoints:
        pm.load_setuptools_entrypoints(PROJECT)
    for plugin in extra:
        pm.register(plugin)
    pm.check_pending()
    return pm


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
