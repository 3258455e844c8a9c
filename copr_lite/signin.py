"""Checking a password or an API credential as the server does it: throttled, with scrypt in
threads beside the event loop.

Sign-in failures are counted per client address and per (address, user name); API failures
per address. A locked address gets 429 with Retry-After; other addresses are never affected,
so nobody can lock a user out of their account. Failures are answered after
`failure_delay_ms`; refusals because every hashing thread is busy are answered at once.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web

from . import auth, store
from .errors import TooManyRequests, Unauthorized
from .keys import CONFIG, DB, GUARD, HASHER, TOKEN_CACHE
from .models import User

log = logging.getLogger(__name__)
WRONG_PASSWORD = "Wrong user name or password."
NAME_KEY_LENGTH = 128  # user names longer than any real one count as this prefix


def wait_text(seconds: int) -> str:
    """`try again in 2 minutes (after 21:52:10 UTC)`."""
    if seconds < 120:
        span = f"{seconds} second{'s' if seconds != 1 else ''}"
    elif seconds < 7200:
        span = f"{-(-seconds // 60)} minutes"
    else:
        span = f"{-(-seconds // 3600)} hours"
    at = time.strftime("%H:%M:%S", time.gmtime(time.time() + seconds))
    return f"try again in {span} (after {at} UTC)"


async def check_password(request: web.Request, name: str, password: str) -> User:
    """The user `name` signs in as, or raise Unauthorized (wrong name or password) or
    TooManyRequests (this client must wait, or every hashing thread is busy)."""
    app = request.app
    guard = app[GUARD]
    address = guard.client(request)
    pair = (address, name[:NAME_KEY_LENGTH])
    by_address, by_name = guard.signin_by_address, guard.signin_by_name
    wait = max(by_address.retry_after(address), by_name.retry_after(pair))
    if wait:
        await guard.hold()
        raise TooManyRequests(f"Too many failed sign-ins: {wait_text(wait)}.", wait)
    by_address.begin(address)
    by_name.begin(pair)
    try:
        found = await app[DB].read(store.get_password_hash, name) if name else None
        matched = await app[HASHER].verify(password, found[1] if found else None)
    except BaseException:  # busy, cancelled, a database error: the attempt does not count
        by_address.abandoned(address)
        by_name.abandoned(pair)
        raise
    if matched and found is not None:
        by_address.abandoned(address)  # its pending count goes; earlier failures stay
        by_name.succeeded(pair)
        return found[0]
    lockout = max(by_address.failed(address), by_name.failed(pair))
    await guard.hold()
    if lockout:
        log.warning("sign-in lockout address=%s name=%r seconds=%d", address, name[:64], lockout)
        raise TooManyRequests(
            f"{WRONG_PASSWORD} Too many failed sign-ins: {wait_text(lockout)}.", lockout
        )
    raise Unauthorized(WRONG_PASSWORD)


async def api_user(request: web.Request) -> User:
    """The user of the request's HTTP Basic API credentials, or raise Unauthorized, or
    TooManyRequests when the client's address sent too many wrong ones.

    Credentials verified recently (the token cache) pass first, whatever their address:
    someone else's wrong credentials never slow or refuse a good token.
    """
    app = request.app
    cache = app[TOKEN_CACHE]
    header = request.headers.get("Authorization")
    if header:
        user = cache.get(header, time.time())
        if user is not None:
            return user
    base_url = app[CONFIG].public_base_url
    if not header:  # no credentials at all is no guess: nothing to count
        return await auth.authenticate(app[DB], cache, header, base_url)
    guard = app[GUARD]
    address = guard.client(request)
    throttle = guard.api_by_address
    wait = throttle.retry_after(address)
    if wait:
        await guard.hold()
        raise TooManyRequests(f"Too many wrong API credentials: {wait_text(wait)}.", wait)
    try:
        return await auth.authenticate(app[DB], cache, header, base_url)
    except Unauthorized:
        lockout = throttle.failed(address)
        if not lockout:
            raise
    log.warning("API credential lockout address=%s seconds=%d", address, lockout)
    raise TooManyRequests(f"Too many wrong API credentials: {wait_text(lockout)}.", lockout)
