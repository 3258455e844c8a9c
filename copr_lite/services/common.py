"""What every service function shares: the `Services` context, the build queue it
tells, and the project lookup with the permission check."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from .. import auth, forms, operations, store
from ..config import Config
from ..db import Database
from ..errors import NotFound
from ..models import Project, User
from ..publisher import Publisher

# The calling API's own check of a request against the project and its enabled chroots.
Precheck = Callable[[Project, tuple[str, ...]], None]


class BuildQueue(Protocol):
    """What the services tell the build engine (the dispatcher)."""

    def submitted(self, build_ids: Iterable[int]) -> None:
        """New builds were stored: start their imports."""

    def prepare_repos(
        self, owner: str, project: str, chroots: Iterable[str], *, created: bool = False
    ) -> None:
        """Create the empty repositories of a project's new chroots (`created`: of a
        project created just now)."""

    async def cancel_build(self, build_id: int) -> None:
        """Stop the running chroots of a build already marked canceled."""


@dataclass(frozen=True)
class Services:
    """What every service function works with, built once per app (keys.SERVICES)."""

    db: Database
    config: Config
    builds: BuildQueue
    publisher: Publisher


@dataclass(frozen=True)
class Found:
    """A project as the caller sees it: their roles on it and its enabled chroots."""

    project: Project
    roles: frozenset[str]
    chroots: tuple[str, ...]


def find_project(conn: sqlite3.Connection, owner: str, name: str, user: User | None) -> Found:
    """The addressed project, or NotFound (also for names that cannot exist)."""
    found = None
    if forms.NAME_RE.match(owner) and forms.NAME_RE.match(name):
        found = store.get_project_with_roles(conn, owner, name, user.id if user else None)
    if found is None:
        raise NotFound(f"Project {owner[:100]}/{name[:100]} does not exist.")
    return Found(*found)


def allowed_in(
    conn: sqlite3.Connection,
    user: User,
    owner: str,
    name: str,
    operation: operations.Operation,
    precheck: Precheck | None,
) -> Found:
    """In a transaction: the project, once `user` is found allowed to do `operation` on it
    (NotFound, Forbidden), and `precheck` passed."""
    found = find_project(conn, owner, name, user)
    if operation.action is not None:
        auth.check_permission(user, found.project, found.roles, operation.action)
    if precheck is not None:
        precheck(found.project, found.chroots)
    return found


async def check_allowed(
    ctx: Services, user: User, owner: str, name: str, operation: operations.Operation
) -> Found:
    """The project, once `user` is found allowed to do `operation` on it (404, 403)."""
    return await ctx.db.read(allowed_in, user, owner, name, operation, None)


def chroot_names(names: object, offered: tuple[str, ...] | set[str]) -> list[str]:
    assert isinstance(names, list)
    for chroot in names:
        if chroot not in offered:
            raise forms.validation_error("chroots", f"Chroot {chroot} is not available here.")
    return sorted(set(names))
