"""The monitor answer (spec A12): the newest build of each package in each chroot.

`MonitorRows` keeps, per project, each package's encoded row and the encoded builds it
shows, and re-reads only the packages whose builds changed since (tracked by
`changes.package_tag`). An answer is then one small query for the package names, a query for
the changed packages, and joining bytes: its cost follows packages x chroots, never the
project's number of builds. The bytes are exactly `orjson.dumps` of the whole answer.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, NamedTuple

import orjson

from . import store
from .cache import AnswerCache, Fresh
from .changes import chroots_tag, package_tag, project_tag
from .db import Database
from .models import Build, LatestBuild, Project
from .states import State, derive_build_state


def package_entries(latest: Iterable[LatestBuild], chroots: tuple[str, ...]) -> dict[str, Any]:
    """The monitor's package entries from latest_builds rows (`store.monitor`), by name."""
    packages: dict[str, dict[str, Any]] = {}
    newest: dict[str, int] = {}
    for row in latest:
        name = row.pkg_name
        entry = packages.get(name)
        if entry is None:
            entry = packages[name] = {
                "pkg_name": name,
                "pkg_version": None,
                "results": dict.fromkeys(chroots),
            }
        if row.chroot in entry["results"]:
            entry["results"][row.chroot] = [row.build_id, row.status.value]
        if row.build_id > newest.get(name, 0):
            newest[name] = row.build_id
            entry["pkg_version"] = row.version_release
    return packages


def build_entry(build: Build, results: str) -> dict[str, Any]:
    """One build of the monitor's `builds` list; `results` is the project's results URL."""
    state = derive_build_state(build.canceled, (c.status for c in build.chroots))
    return {
        "id": build.id,
        "pkg_name": build.pkg_name,
        "pkg_version": build.version_release,
        "status": State(state).code if state != "unknown" else None,
        "state": state,
        "canceled": build.canceled,
        "repos": build.repos,
        "submitted_on": build.submitted_on,
        "started_on": build.started_on,
        "ended_on": build.ended_on,
        "results": results if build.started_on else None,
        "memory_reqs": build.memory_reqs,
        "timeout": build.timeout,
        "src_pkg": build.source_url,
        "built_packages": list(build.built_packages),
    }


class _Package(NamedTuple):
    snapshot: int  # the cache's write count before its rows were read
    row: bytes  # the encoded package entry
    builds: list[tuple[int, bytes]]  # (id, encoded build entry) of the builds it shows


class MonitorRows:
    """Encoded monitor rows of the `projects` most recently asked for."""

    def __init__(self, cache: AnswerCache, projects: int = 64) -> None:
        self._cache = cache
        self._max_projects = projects
        self._projects: OrderedDict[int, dict[str, _Package]] = OrderedDict()

    async def answer(
        self,
        db: Database,
        snapshot: int,
        project: Project,
        chroots: tuple[str, ...],
        results: str,
    ) -> Fresh:
        """The whole `{"output": "ok", ...}` monitor answer of `project`, encoded.
        `snapshot` is the cache's version taken before `project` and `chroots` were read."""
        known = self._projects.pop(project.id, {})
        self._projects[project.id] = known
        while len(self._projects) > self._max_projects:
            self._projects.popitem(last=False)
        # A package's rows hold while neither its builds nor the project's chroots changed.
        changed_after, enabled = self._cache.changed_after, chroots_tag(project.id)
        current = [
            name
            for name, package in known.items()
            if not changed_after(package.snapshot, package_tag(project.id, name))
            and not changed_after(package.snapshot, enabled)
        ]
        names, latest, builds = await db.read(store.monitor_packages, project.id, current)
        package_of = {row.build_id: row.pkg_name for row in latest}
        builds_of: dict[str, list[Build]] = {}
        for build in builds:
            builds_of.setdefault(package_of[build.id], []).append(build)
        entries = package_entries(latest, chroots)
        for name, entry in entries.items():
            known[name] = _Package(
                snapshot,
                orjson.dumps(entry),
                [(b.id, orjson.dumps(build_entry(b, results))) for b in builds_of.get(name, ())],
            )
        for gone in known.keys() - set(names):
            del known[gone]
        names = [name for name in names if name in known]
        shown = sorted(
            (build for name in names for build in known[name].builds),
            key=lambda build: build[0],
            reverse=True,
        )
        body = b"".join(
            (
                b'{"output":"ok","chroots":',
                orjson.dumps(list(chroots)),
                b',"builds":[',
                b",".join(encoded for _, encoded in shown),
                b'],"packages":[',
                b",".join(known[name].row for name in names),
                b"]}",
            )
        )
        return Fresh(body, (project_tag(project.id),))
