"""`pip install .` (not only editable) ships the templates and the built-in plugins."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from conftest import pip_install_into

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_contains_templates_and_plugins_and_serves_from_them(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(tmp_path.glob("copr_lite-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in ("api.html", "layout.html", "login.html", "error.html"):
        assert f"copr_lite/_templates/{template}" in names
    assert "copr_lite/_plugins/__init__.py" in names
    assert "copr_lite/_plugins/webhooks/templates/outgoing.html" in names  # a plugin's own
    assert not any(name.startswith(("tests/", "plugins/", "templates/")) for name in names)

    target = tmp_path / "site"
    pip_install_into(target, wheel)
    probe = (
        "import copr_lite.resources as r; t = r.resource_dir('templates');"
        "assert (t / 'api.html').is_file(), t; print(t)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": os.pathsep.join([str(target), sysconfig.get_paths()["purelib"]])},
        check=True,
    )
    assert result.stdout.strip().startswith(str(target))
