"""Rows as small frozen dataclasses, built from sqlite3.Row by `from_row`."""

from __future__ import annotations

import dataclasses
import functools
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Protocol, Self

from .states import State


class SourcePackage(Protocol):
    """The package an SRPM's header names (builders.PackageInfo is one)."""

    @property
    def name(self) -> str: ...
    @property
    def epoch(self) -> int | None: ...
    @property
    def version(self) -> str: ...
    @property
    def release(self) -> str: ...


@functools.cache
def _reader(cls: type, skip: int) -> tuple[Callable[[sqlite3.Row], Any], tuple[int, ...]]:
    fields = dataclasses.fields(cls)
    fields = fields[: len(fields) - skip]
    bools = tuple(i for i, f in enumerate(fields) if f.type == "bool")
    return itemgetter(*(f.name for f in fields)), bools


def _columns(cls: type, row: sqlite3.Row, *rest: Any) -> list[Any]:
    """The field values of the row dataclass `cls`, in order: each read from the row's
    column of the same name (made a bool for a bool field: SQLite has 0 and 1), but the last
    ones, which are not columns, given as `rest`."""
    get, bools = _reader(cls, len(rest))
    values = list(get(row))
    for index in bools:
        values[index] = bool(values[index])
    values += rest
    return values


class FromColumns:
    """A row dataclass whose fields are the row's columns of the same names."""

    __slots__ = ()

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Self:
        return cls(*_columns(cls, row))


@dataclass(frozen=True, slots=True)
class User(FromColumns):
    id: int
    name: str
    is_admin: bool
    created_on: int


@dataclass(frozen=True, slots=True)
class ApiCredential:
    user: User
    login: str
    token_hash: str
    expires_on: int


@dataclass(frozen=True, slots=True)
class Project(FromColumns):
    id: int
    owner_id: int
    owner_name: str
    name: str
    description: str
    instructions: str
    repos: str
    homepage: str
    contact: str
    auto_createrepo: bool
    build_enable_net: bool
    unlisted_on_hp: bool
    persistent: bool
    auto_prune: bool
    use_bootstrap_container: bool
    created_on: int
    # Retention (see retention.py): days before a superseded succeeded build goes, the
    # finished builds kept per package and chroot (0: unlimited), days failed results stay.
    prune_days: int = 14
    keep_last: int = 0
    failed_log_days: int = 30
    disk_bytes: int = 0  # bytes of its results tree, kept up to date as results change

    @property
    def full_name(self) -> str:
        return f"{self.owner_name}/{self.name}"


@dataclass(frozen=True, slots=True)
class BuildChroot:
    """One chroot of a build: the unit a builder builds, and the source of truth for state.

    Attributes:
        chroot: the chroot name, e.g. ``fedora-40-x86_64``.
        status: its state; the build's overall state is derived from these
            (``states.derive_build_state``). ``status.code`` is the historic integer.
        started_on: Unix time a builder took it, or None.
        ended_on: Unix time it reached a terminal state, or None.
        fail_reason: one line saying why it failed (or was skipped), or None.
        built_packages: ``"name version-release"`` of each binary package it published.
        attempts: earlier runs of it that a server stop interrupted.
        pruned_on: Unix time retention removed its result directory, or None.
    """

    chroot: str
    status: State
    started_on: int | None
    ended_on: int | None
    fail_reason: str | None
    built_packages: tuple[str, ...] = ()
    attempts: int = 0
    pruned_on: int | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> BuildChroot:
        built = row["built"]
        return cls(
            row["chroot"],
            State.from_code(row["status"]),
            row["started_on"],
            row["ended_on"],
            row["fail_reason"],
            tuple(built.split("\n")) if built else (),
            row["attempts"],
            row["pruned_on"],
        )


@dataclass(frozen=True, slots=True)
class Build:
    """A build as stored: one SRPM, built for each of its chroots. Hooks receive it as read
    from the database when the event fired; it is a snapshot, never updated in place.

    Attributes:
        id: the build id (the API's and the web UI's).
        project_id, owner_name, project_name: the project it belongs to.
        submitter_name: who submitted it, or None when that user is gone.
        source_url: where the SRPM came from (for an upload, its file name).
        srpm_path: the stored SRPM once imported, else None.
        srpm_sha256: its SHA-256 once imported, else None.
        pkg_name, pkg_epoch, pkg_version, pkg_release: read from the SRPM header on import;
            None until then (and when the import failed).
        memory_reqs: memory in MiB the build asked for (2048-4096).
        timeout: seconds each chroot may build before it fails.
        enable_net: whether the build may use the network.
        repos: extra repository URLs, space-separated.
        background: submitted as a background (low priority) build.
        canceled: a cancel was requested; its unfinished chroots are then ``canceled``.
        submitted_on: Unix time it was stored.
        started_on: Unix time of its first chroot's start, or None.
        ended_on: Unix time of its last chroot's end once every chroot ended, else None.
        source_type: what it is made from: ``link`` (an SRPM URL), ``upload``, ``scm`` or
            ``custom`` (a package source, see sources.py).
        source_json: the source's settings as JSON for scm and custom (``source_dict``).
        chroots: one BuildChroot per chroot, ordered by name; each carries a ``State``.
        built_packages: the union of its chroots' ``built_packages``.
    """

    id: int
    project_id: int
    owner_name: str
    project_name: str
    submitter_name: str | None
    source_url: str
    srpm_path: str | None
    srpm_sha256: str | None
    pkg_name: str | None
    pkg_epoch: int | None
    pkg_version: str | None
    pkg_release: str | None
    memory_reqs: int
    timeout: int
    enable_net: bool
    repos: str
    background: bool
    canceled: bool
    submitted_on: int
    started_on: int | None
    ended_on: int | None
    source_type: str = "link"
    source_json: str = "{}"
    chroots: tuple[BuildChroot, ...] = ()
    built_packages: tuple[str, ...] = ()

    @classmethod
    def from_row(cls, row: sqlite3.Row, chroots: list[BuildChroot]) -> Build:
        built = tuple(dict.fromkeys(p for c in chroots for p in c.built_packages))
        return cls(*_columns(cls, row, tuple(chroots), built))

    @property
    def version_release(self) -> str | None:
        if self.pkg_version is None:
            return None
        return f"{self.pkg_version}-{self.pkg_release}" if self.pkg_release else self.pkg_version

    @property
    def source_dict(self) -> dict[str, Any]:
        """The settings of a package source (scm, custom) the build is made from; else {}."""
        found = json.loads(self.source_json)
        return found if isinstance(found, dict) else {}


@dataclass(frozen=True, slots=True)
class LatestBuild:
    """The newest non-canceled build of a package in one chroot of a project (a
    latest_builds row with its build's state and version): one cell of the monitor."""

    pkg_name: str
    chroot: str
    build_id: int
    status: State
    pkg_version: str | None
    pkg_release: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> LatestBuild:
        pkg_name, chroot, build_id, status, version, release = row
        return cls(pkg_name, chroot, build_id, State.from_code(status), version, release)

    @property
    def version_release(self) -> str | None:
        return f"{self.pkg_version}-{self.pkg_release}" if self.pkg_release else self.pkg_version


@dataclass(frozen=True, slots=True)
class BuiltPackage:
    """A binary (or source) package a build published in one of its chroots."""

    chroot: str
    name: str
    epoch: int | None
    version: str
    release: str
    arch: str


@dataclass(frozen=True, slots=True)
class PendingChroot:
    """A pending build chroot the dispatcher may start, with the owner of its project."""

    owner_id: int
    build_id: int
    chroot: str


@dataclass(frozen=True)
class Policy:
    """The effective retention of one package of one project."""

    auto_prune: bool = True
    prune_days: int = 14
    keep_last: int = 0
    failed_log_days: int = 30


@dataclass(frozen=True)
class ChrootRow:
    """One build chroot as retention sees it."""

    project_id: int
    owner: str
    project: str
    build_id: int
    pkg_name: str | None
    chroot: str
    state: State
    ended_on: int | None
    disk_bytes: int
    pruned_on: int | None
    import_bytes: int
