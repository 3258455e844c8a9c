"""Users, their API credentials and their web sessions."""

from __future__ import annotations

import sqlite3
import time

from ..models import ApiCredential, User


def count_users(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM users").fetchone()[0])


def create_user(
    conn: sqlite3.Connection, name: str, password_hash: str | None, is_admin: bool
) -> User:
    """Insert a user; raises sqlite3.IntegrityError when the name is taken."""
    now = int(time.time())
    cur = conn.execute(
        "INSERT INTO users (name, password_hash, is_admin, created_on) VALUES (?, ?, ?, ?)",
        (name, password_hash, int(is_admin), now),
    )
    return User(int(cur.lastrowid or 0), name, is_admin, now)


def get_user(conn: sqlite3.Connection, name: str) -> User | None:
    row = conn.execute(
        "SELECT id, name, is_admin, created_on FROM users WHERE name = ?", (name,)
    ).fetchone()
    return User.from_row(row) if row else None


def get_user_by_id(conn: sqlite3.Connection, user_id: int) -> User | None:
    row = conn.execute(
        "SELECT id, name, is_admin, created_on FROM users WHERE id = ?", (user_id,)
    ).fetchone()
    return User.from_row(row) if row else None


def get_password_hash(conn: sqlite3.Connection, name: str) -> tuple[User, str | None] | None:
    row = conn.execute(
        "SELECT id, name, is_admin, created_on, password_hash FROM users WHERE name = ?", (name,)
    ).fetchone()
    return (User.from_row(row), row["password_hash"]) if row else None


def set_password_hash(conn: sqlite3.Connection, user_id: int, password_hash: str) -> None:
    conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))


def list_users(conn: sqlite3.Connection) -> list[tuple[User, int | None]]:
    """Every user with the expiry of their API token (None: no token)."""
    rows = conn.execute(
        "SELECT u.id, u.name, u.is_admin, u.created_on, t.expires_on FROM users u"
        " LEFT JOIN api_tokens t ON t.user_id = u.id ORDER BY u.name"
    ).fetchall()
    return [(User.from_row(row), row["expires_on"]) for row in rows]


def set_api_token(
    conn: sqlite3.Connection, user_id: int, login: str, token_hash: str, expires_on: int
) -> None:
    """Replace the user's API credential: the previous one stops working at once."""
    conn.execute(
        "INSERT INTO api_tokens (user_id, login, token_hash, created_on, expires_on)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT(user_id) DO UPDATE SET login = excluded.login,"
        " token_hash = excluded.token_hash, created_on = excluded.created_on,"
        " expires_on = excluded.expires_on",
        (user_id, login, token_hash, int(time.time()), expires_on),
    )


def get_api_credential(conn: sqlite3.Connection, login: str) -> ApiCredential | None:
    row = conn.execute(
        "SELECT u.id, u.name, u.is_admin, u.created_on, t.login, t.token_hash, t.expires_on"
        " FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.login = ?",
        (login,),
    ).fetchone()
    if row is None:
        return None
    return ApiCredential(User.from_row(row), row["login"], row["token_hash"], row["expires_on"])


def get_api_login(conn: sqlite3.Connection, user_id: int) -> tuple[str, int] | None:
    """The user's API login and token expiry, if they have a token."""
    row = conn.execute(
        "SELECT login, expires_on FROM api_tokens WHERE user_id = ?", (user_id,)
    ).fetchone()
    return (row[0], row[1]) if row else None


def create_session(conn: sqlite3.Connection, id_hash: str, user_id: int, expires_on: int) -> None:
    now = int(time.time())
    conn.execute("DELETE FROM sessions WHERE expires_on < ?", (now,))
    conn.execute(
        "INSERT INTO sessions (id_hash, user_id, created_on, expires_on) VALUES (?, ?, ?, ?)",
        (id_hash, user_id, now, expires_on),
    )


def get_session_user(conn: sqlite3.Connection, id_hash: str, now: int) -> User | None:
    row = conn.execute(
        "SELECT u.id, u.name, u.is_admin, u.created_on FROM sessions s"
        " JOIN users u ON u.id = s.user_id WHERE s.id_hash = ? AND s.expires_on >= ?",
        (id_hash, now),
    ).fetchone()
    return User.from_row(row) if row else None


def delete_session(conn: sqlite3.Connection, id_hash: str) -> None:
    conn.execute("DELETE FROM sessions WHERE id_hash = ?", (id_hash,))


def delete_user_sessions(conn: sqlite3.Connection, user_id: int) -> int:
    """End every web session of the user; returns how many there were."""
    return conn.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,)).rowcount
