"""Passwords, API tokens, web sessions, CSRF and the one permission check.

- Passwords are hashed with scrypt (memory-hard), salted per user. The server hashes in a
  few threads beside the event loop (`PasswordHasher`), never on it, and refuses work beyond
  a small queue at once rather than letting it pile up.
- API tokens are 30 random letters; only their SHA-256 is stored (a token has ~141 bits of
  entropy, so a fast hash is safe) and compared with `hmac.compare_digest`.
- Web sessions are random ids in an HttpOnly, SameSite cookie; only their hash is stored.
- CSRF uses a double-submit token: a random value in its own cookie that every POST form
  must echo in the `csrf_token` field.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
import hashlib
import hmac
import secrets
import string
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

from . import store
from .db import Database
from .errors import Forbidden, TooManyRequests, Unauthorized
from .keys import NEW_CSRF
from .models import Project, User

T = TypeVar("T")

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
TOKEN_LENGTH = 30
LOGIN_LENGTH = 20
SESSION_COOKIE = "copr_lite_session"
CSRF_COOKIE = "copr_lite_csrf"
CSRF_FIELD = "csrf_token"

# ---------------------------------------------------------------- passwords


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


# Checked instead of a real hash when the user is unknown or has no password, so that such
# a sign-in costs the same scrypt work: timing does not tell which names exist. Zero bytes
# are no hash of any password anyone can find.
DUMMY_HASH = (
    f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}$"
    f"{base64.b64encode(bytes(16)).decode()}${base64.b64encode(bytes(32)).decode()}"
)


def verify_password(password: str, stored: str | None) -> bool:
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, binascii.Error):
        return False
    return scheme == "scrypt" and hmac.compare_digest(actual, expected)


class PasswordHasher:
    """scrypt in `threads` worker threads, with at most `queue` more hashes waiting.

    scrypt takes tens of milliseconds of CPU; run on the event loop it would stall every
    request meanwhile. hashlib releases the GIL while it hashes, so threads keep the loop
    free. A hash that would wait behind `threads + queue` others is refused at once with
    TooManyRequests: a flood must not build an unbounded backlog.
    """

    def __init__(self, threads: int, queue: int) -> None:
        self.capacity = threads + queue
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="scrypt")
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._in_flight >= self.capacity:
            raise TooManyRequests(
                "The server is busy checking other passwords: try again in a second.", 1
            )
        self._in_flight += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            self._in_flight -= 1

    async def hash(self, password: str) -> str:
        """A new salted hash of `password` (for new accounts and password changes)."""
        return await self._run(hash_password, password)

    async def verify(self, password: str, stored: str | None) -> bool:
        """Whether `password` matches `stored`; None (no such user, no password) costs the
        same time as a real hash and is never a match."""
        matched = await self._run(verify_password, password, stored or DUMMY_HASH)
        return matched and bool(stored)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


# ---------------------------------------------------------------- API tokens


def random_letters(length: int) -> str:
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(length))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewToken:
    login: str
    token: str
    expires_on: int

    @classmethod
    def generate(cls, days: int) -> NewToken:
        """A fresh random login and token, valid for `days` days from now."""
        return cls(
            random_letters(LOGIN_LENGTH),
            random_letters(TOKEN_LENGTH),
            int(time.time()) + days * 86400,
        )

    @property
    def expiration_date(self) -> str:
        return expiration_date(self.expires_on)


def expiration_date(expires_on: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(expires_on))


def copr_config_block(user_name: str, new: NewToken, base_url: str) -> str:
    """The ~/.config/copr text that the copr client and copr-cli read.

    copr-cli 2.x refuses an http:// copr_url unless the block says `encrypted = False`;
    older clients ignore that key.
    """
    plain = "encrypted = False\n" if base_url.startswith("http://") else ""
    return (
        "[copr-cli]\n"
        f"login = {new.login}\n"
        f"username = {user_name}\n"
        f"token = {new.token}\n"
        f"copr_url = {base_url}\n"
        f"{plain}"
        f"# expiration date: {new.expiration_date}\n"
    )


class TokenCache:
    """Recently verified Authorization headers, so a hot endpoint skips the token lookup.

    Cleared whenever this process changes a token; entries also honour the token's expiry
    and live at most MAX_AGE seconds, which bounds how long a token replaced by another
    process (`python -m copr_lite user token`) keeps working here.
    """

    MAX_AGE = 30.0

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._entries: dict[str, tuple[User, float]] = {}

    def get(self, header: str, now: float) -> User | None:
        entry = self._entries.get(header)
        if entry is None or entry[1] < now:
            return None
        return entry[0]

    def put(self, header: str, user: User, expires_on: int, now: float) -> None:
        if len(self._entries) >= self._size:
            self._entries.clear()
        self._entries[header] = (user, min(float(expires_on), now + self.MAX_AGE))

    def clear(self) -> None:
        self._entries.clear()


async def issue_token(db: Database, cache: TokenCache, user: User, days: int) -> NewToken:
    """Generate and store a new API credential for `user`; the old one stops working."""
    new = NewToken.generate(days)
    await db.write(store.set_api_token, user.id, new.login, hash_token(new.token), new.expires_on)
    cache.clear()
    return new


def _parse_basic(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    login, sep, token = decoded.partition(":")
    return (login, token) if sep else None


async def authenticate(db: Database, cache: TokenCache, header: str | None, base_url: str) -> User:
    """The user named by an HTTP Basic `api_login:api_token` header, or raise Unauthorized."""
    denied = Unauthorized(
        f"Login invalid/expired. Please visit {base_url}/api/ to get or renew your API token."
    )
    if not header:
        raise denied
    now = time.time()
    user = cache.get(header, now)
    if user is not None:
        return user
    parsed = _parse_basic(header)
    if parsed is None:
        raise denied
    login, token = parsed
    credential = await db.read(store.get_api_credential, login)
    expected = credential.token_hash if credential else hash_token("")
    if not hmac.compare_digest(hash_token(token), expected) or credential is None:
        raise denied
    if credential.expires_on < now:
        raise denied
    cache.put(header, credential.user, credential.expires_on, now)
    return credential.user


# ---------------------------------------------------------------- permissions


class Action(enum.Enum):
    """What a user wants to do to a project, and which project roles allow it."""

    BUILD = frozenset({"builder", "admin"})  # new builds, cancel
    MODIFY = frozenset({"admin"})  # project and chroot settings
    DELETE = frozenset[str]()  # owner or system admin only


def check_permission(user: User, project: Project, roles: frozenset[str], action: Action) -> None:
    """Raise Forbidden unless `user` may do `action` on `project`, holding `roles` on it:
    the owner, a user granted a fitting role, or a system admin."""
    if user.is_admin or user.id == project.owner_id or action.value & roles:
        return
    texts = {
        Action.BUILD: f"You are not allowed to build in the project {project.full_name}.",
        Action.MODIFY: "Only owners and admins may update their projects.",
        Action.DELETE: "Only owners may delete their projects.",
    }
    raise Forbidden(texts[action])


# ---------------------------------------------------------------- web sessions and CSRF


async def start_session(
    db: Database, response: web.StreamResponse, user: User, days: int, secure: bool
) -> None:
    session_id = secrets.token_urlsafe(32)
    expires = int(time.time()) + days * 86400
    await db.write(store.create_session, hash_token(session_id), user.id, expires)
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=days * 86400,
        httponly=True,
        samesite="Lax",
        secure=secure,
        path="/",
    )


async def end_session(db: Database, request: web.Request, response: web.StreamResponse) -> None:
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        await db.write(store.delete_session, hash_token(session_id))
    response.del_cookie(SESSION_COOKIE, path="/")


async def session_user(db: Database, request: web.Request) -> User | None:
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return None
    return await db.read(store.get_session_user, hash_token(session_id), int(time.time()))


def csrf_token(request: web.Request) -> str:
    """This visitor's CSRF token (the cookie is set by the middleware when new)."""
    token = request.cookies.get(CSRF_COOKIE) or request.get(NEW_CSRF)
    if not token:
        token = secrets.token_urlsafe(24)
        request[NEW_CSRF] = token
    return token


def check_csrf(request: web.Request, form_value: str | None) -> None:
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not form_value or not hmac.compare_digest(cookie, form_value):
        raise Forbidden("The form's CSRF token is missing or wrong: reload the page and retry.")
