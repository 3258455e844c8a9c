"""The import rules ARCHITECTURE.md draws, checked on the source: which module may import which.

Read from the files with `ast` (nothing is imported), so a new import across a line the layout
forbids fails here with the module and the import named.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, *, type_checking: bool = True) -> set[str]:
    """Absolute names of the modules (and imported names) `path` imports; with
    `type_checking=False`, imports under `if TYPE_CHECKING:` are left out."""
    tree = ast.parse(path.read_text())
    package = _module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    skipped: set[int] = set()
    if not type_checking:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
                skipped |= {id(inner) for inner in ast.walk(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return found


def _sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def _offending(paths: list[Path], forbidden: tuple[str, ...], **kwargs: bool) -> list[str]:
    bad = []
    for path in paths:
        for name in sorted(_imports(path, **kwargs)):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                bad.append(f"{_module_name(path)} imports {name}")
    return bad


def _core_modules() -> set[str]:
    names = {_module_name(p) for p in _sources("copr_lite")}
    return {n for n in names if n != "copr_lite"}


def _not(*allowed: str) -> tuple[str, ...]:
    """Every core module except `allowed` (and their submodules)."""
    return tuple(
        sorted(
            name
            for name in _core_modules()
            if not any(name == a or name.startswith(a + ".") for a in allowed)
        )
    )


def test_the_store_reads_and_writes_sql_only() -> None:
    store = _sources("copr_lite/store")
    assert store
    assert _offending(store, _not("copr_lite.store", "copr_lite.models", "copr_lite.states")) == []


def test_the_scheduler_is_pure() -> None:
    scheduler = [ROOT / "copr_lite/engine/scheduler.py"]
    assert _offending(scheduler, ("copr_lite", "aiohttp", "asyncio", "sqlite3", "aiosqlite")) == []


def test_the_engine_never_reaches_up_into_the_web_side() -> None:
    forbidden = ("copr_lite.views", "copr_lite.services", "copr_lite.app", "copr_lite.cli")
    assert _offending(_sources("copr_lite/engine"), forbidden) == []


def test_only_the_app_builds_the_engine() -> None:
    others = [
        p
        for p in _sources("copr_lite", "plugins")
        if p.parent.name != "engine" and p.name not in ("app.py", "keys.py")
    ]
    assert _offending(others, ("copr_lite.engine",)) == []


def test_services_know_nothing_of_http_or_views() -> None:
    services = _sources("copr_lite/services")
    assert _offending(services, ("aiohttp", "copr_lite.views", "copr_lite.engine")) == []


def test_keys_imports_other_modules_only_for_type_checking() -> None:
    keys = [ROOT / "copr_lite/keys.py"]
    assert _offending(keys, ("copr_lite",), type_checking=False) == []


def test_the_apis_share_helpers_through_views_common_only() -> None:
    apis = ("copr_lite.views.api_v1", "copr_lite.views.api_v3", "copr_lite.views.web")
    for path in _sources("copr_lite/views"):
        if path.name == "__init__.py":
            continue  # the route table
        name = _module_name(path)
        # The web UI's own parts (web_packages ...) build on web.py's page helpers.
        own = "copr_lite.views.web" if name.startswith("copr_lite.views.web_") else name
        others = tuple(a for a in apis if a != own)
        assert _offending([path], others) == []


def test_the_core_never_imports_a_plugin() -> None:
    assert _offending(_sources("copr_lite"), ("plugins", "copr_lite._plugins")) == []


PLUGINS = sorted(
    p.name
    for p in (ROOT / "plugins").iterdir()
    if not p.name.startswith("__") and (p.suffix == ".py" or (p / "__init__.py").exists())
)


@pytest.mark.parametrize("plugin", PLUGINS)
def test_no_plugin_imports_another(plugin: str) -> None:
    path = ROOT / "plugins" / plugin
    own = "plugins." + path.stem
    files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
    for name in sorted(n for f in files for n in _imports(f)):
        if name.startswith(("plugins.", "copr_lite._plugins.")):
            assert name.startswith((own, "copr_lite._plugins." + path.stem)), name
