from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture
def python() -> str:
    return sys.executable


# ---------------------------------------------------------------- SRPMs for builder tests


@pytest.fixture(scope="session")
def fixture_srpm(tmp_path_factory: pytest.TempPathFactory):
    """`fixture_srpm("hello-copr-lite")` -> the SRPM of tests/fixtures/<name>.spec, built once
    per session with rpmbuild -bs (private _topdir/_tmppath/_dbpath, _sourcedir = fixtures)."""
    from copr_lite.conformance import make_srpm

    out_dir = tmp_path_factory.mktemp("srpms")
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            built[name] = make_srpm(FIXTURES / f"{name}.spec", out_dir, sourcedir=FIXTURES)
        return built[name]

    return get


# The conformance kit's long-build marker for this test run: its own, so that another run on
# the same machine is never taken for this one's leftovers (pass it to check_builder).
CONFORMANCE_MARKER = f"copr-lite-conformance-long-{os.getpid()}-{secrets.token_hex(3)}"


@pytest.fixture(scope="session")
def conformance_srpms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The good, failing and long SRPMs of the builder conformance kit (the long one
    carries CONFORMANCE_MARKER)."""
    from copr_lite.conformance import build_conformance_srpms

    directory = tmp_path_factory.mktemp("conformance-srpms")
    return build_conformance_srpms(directory, marker=CONFORMANCE_MARKER)


# ---------------------------------------------------------------- shared steps


async def new_project(client, token, name: str, chroots, owner: str = "alice") -> None:
    """Create project owner/name with `chroots` enabled through API v1 (as the `token`'s
    user); it must succeed."""
    from copr_lite.testing import basic_auth

    resp = await client.post(
        f"/api/coprs/{owner}/new/",
        headers=basic_auth(token),
        data={"name": name, **dict.fromkeys(chroots, "y")},
    )
    assert resp.status == 200, await resp.text()


def pip_install_into(target: Path, source: Path | str) -> None:
    """`pip install --no-deps` of `source` (a directory or a wheel) into `target`."""
    import subprocess

    command = [sys.executable, "-m", "pip", "install", "--no-deps", "-q"]
    subprocess.run(
        [*command, "--target", str(target), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
