"""What plugin authors are told holds: the README's plugin test runs as written, the classes
they receive are documented field by field, and hooks see states as `State` values."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from copr_lite import BuildContext, Builder, BuildJob, ChrootResult, Outcome, hookimpl
from copr_lite.builders import Outcome as BuilderOutcome
from copr_lite.models import Build, BuildChroot
from copr_lite.states import State
from copr_lite.testing import BuilderPlugin, FakeBuilder, Script, add_user, basic_auth, wait_until

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
CHROOTS = {"fedora-40-x86_64": "fake", "epel-9-x86_64": "fake"}


def readme_block(after: str, language: str) -> str:
    """The first ```language block of the README after the text `after`."""
    start = README.index(after)
    match = re.compile(rf"^```{language}\n(.*?)^```$", re.S | re.M).search(README, start)
    assert match, f"no {language} block after {after!r}"
    return match.group(1)


def test_readme_plugin_test_example_runs_as_written(tmp_path):
    """The README's example test, with the pytest settings it states and nothing else,
    passes in a project of its own."""
    (tmp_path / "pyproject.toml").write_text(readme_block("### Testing a plugin", "toml"))
    example = readme_block("A complete test of an event plugin", "python")
    (tmp_path / "test_collector.py").write_text(example)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_collector.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_readme_names_the_fixtures_it_documents():
    section = README[README.index("### Testing a plugin") : README.index("### Hooks")]
    for name in ("make_config(", "make_app(", "add_user(", "make_user(", "asyncio_mode"):
        assert name in section, name


@pytest.mark.parametrize("cls", [Build, BuildChroot, BuildJob, ChrootResult, BuildContext])
def test_plugin_facing_dataclasses_document_every_field(cls):
    doc = cls.__doc__ or ""
    for field in dataclasses.fields(cls):
        assert re.search(rf"\b{field.name}\b", doc), f"{cls.__name__}.{field.name} undocumented"


def test_builder_protocol_and_outcome_are_documented():
    assert Outcome is BuilderOutcome
    for obj in (Builder, Builder.build, Outcome):
        assert obj.__doc__ and len(obj.__doc__.split()) > 10, obj
    assert "CancelledError" in (Builder.build.__doc__ or "")


# ---------------------------------------------------------------- states in hook arguments


class StateRecorder:
    """Records, for each event, the types of its `state` and of every chroot status."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None, set[type]]] = []
        self.states: list[State] = []

    def _note(self, event: str, build: Build, state: object = None) -> None:
        types = {type(c.status) for c in build.chroots}
        self.seen.append((event, None if state is None else type(state).__name__, types))

    @hookimpl
    def build_submitted(self, build: Build) -> None:
        self._note("build_submitted", build)

    @hookimpl
    def chroot_started(self, build: Build, chroot: str) -> None:
        self._note("chroot_started", build)

    @hookimpl
    def chroot_finished(self, build: Build, chroot: str, result: object, state: State) -> None:
        self._note("chroot_finished", build, state)
        self.states.append(state)

    @hookimpl
    def build_finished(self, build: Build) -> None:
        self._note("build_finished", build)


@pytest.mark.parametrize("outcome", [Outcome.SUCCEEDED, Outcome.FAILED])
async def test_hook_arguments_carry_state_values(aiohttp_client, make_app, fixture_srpm, outcome):
    recorder = StateRecorder()
    builder = FakeBuilder(scripts={"hello-copr-lite": Script(outcome=outcome)})
    app = make_app(plugins=[BuilderPlugin(builder), recorder], chroots=CHROOTS)
    client = await aiohttp_client(app)
    _, token = await add_user(app, "alice")
    auth = basic_auth(token)
    resp = await client.post(
        "/api/coprs/alice/new/", headers=auth, data={"name": "p", "chroots": " ".join(CHROOTS)}
    )
    assert resp.status == 200
    form = aiohttp.FormData()
    srpm = fixture_srpm("hello-copr-lite")
    form.add_field("pkgs", srpm.read_bytes(), filename=srpm.name)
    resp = await client.post("/api/coprs/alice/p/new_build_upload/", headers=auth, data=form)
    assert resp.status == 200

    async def finished() -> bool:
        return any(event == "build_finished" for event, _, _ in recorder.seen)

    await wait_until(finished)
    events = {event for event, _, _ in recorder.seen}
    assert events == {"build_submitted", "chroot_started", "chroot_finished", "build_finished"}
    for event, state_type, status_types in recorder.seen:
        assert status_types == {State}, (event, status_types)
        assert state_type in (None, "State"), (event, state_type)
    assert recorder.states == [State(outcome.value)] * len(CHROOTS)
