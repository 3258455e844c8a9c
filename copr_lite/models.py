"""Rows as small frozen dataclasses, built from sqlite3.Row by `from_row`."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    is_admin: bool
    created_on: int

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> User:
        return cls(row["id"], row["name"], bool(row["is_admin"]), row["created_on"])


@dataclass(frozen=True, slots=True)
class ApiCredential:
    user: User
    login: str
    token_hash: str
    expires_on: int


@dataclass(frozen=True, slots=True)
class Project:
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

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Project:
        return cls(
            row["id"],
            row["owner_id"],
            row["owner_name"],
            row["name"],
            row["description"],
            row["instructions"],
            row["repos"],
            row["homepage"],
            row["contact"],
            bool(row["auto_createrepo"]),
            bool(row["build_enable_net"]),
            bool(row["unlisted_on_hp"]),
            bool(row["persistent"]),
            bool(row["auto_prune"]),
            bool(row["use_bootstrap_container"]),
            row["created_on"],
        )

    @property
    def full_name(self) -> str:
        return f"{self.owner_name}/{self.name}"
