"""Counting failed sign-ins and credentials, and who the client is.

A `Throttle` keeps failure counters per key (a client address, or an address and a user
name). After `limit` failures within `window` seconds the key is locked: it may not try again
for `lockout` seconds, twice as long at each further lockout (up to `max_lockout`). The
counters live in memory, at most `max_entries` of them; the least recently active key is
forgotten first, so a flood of distinct names or addresses cannot grow them without bound.

Attempts in progress count against the limit (`begin`, then `failed`, `succeeded` or
`abandoned`), so many concurrent guesses cannot slip past it while their hashes are computed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .config import Config

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class _Entry:
    window_start: float
    failures: int = 0
    pending: int = 0
    lockouts: int = 0
    locked_until: float = 0.0
    last_failure: float = 0.0


@dataclass(eq=False)
class Throttle:
    """Failure counters with a lockout that grows, for any hashable key."""

    limit: int
    window: float
    lockout: float
    max_lockout: float
    max_entries: int
    clock: Callable[[], float] = time.monotonic
    # Ordered by last activity: the first entry is the one to forget first.
    _entries: dict[Hashable, _Entry] = field(default_factory=dict, init=False, repr=False)

    def __len__(self) -> int:
        return len(self._entries)

    def _get(self, key: Hashable, now: float) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        quiet_since = max(entry.last_failure, entry.locked_until)
        if entry.pending == 0 and now - quiet_since >= self.window:
            del self._entries[key]  # quiet for a whole window: forget it, lockouts too
            return None
        if now >= entry.locked_until and now - entry.window_start >= self.window:
            entry.window_start, entry.failures = now, 0
        return entry

    def retry_after(self, key: Hashable) -> int:
        """Seconds until `key` may try again; 0 when it may try now."""
        now = self.clock()
        entry = self._get(key, now)
        if entry is None:
            return 0
        if entry.locked_until > now:
            return math.ceil(entry.locked_until - now)
        if entry.failures + entry.pending >= self.limit:
            return 1  # attempts in progress fill the quota: one of them may yet succeed
        return 0

    def begin(self, key: Hashable) -> None:
        """An attempt starts: it counts against the limit until it ends."""
        now = self.clock()
        entry = self._get(key, now)
        if entry is None:
            entry = self._entries[key] = _Entry(window_start=now, last_failure=now)
            self._bound()
        entry.pending += 1

    def failed(self, key: Hashable) -> int:
        """The attempt failed. Returns the lockout in seconds when this failure started one."""
        now = self.clock()
        entry = self._get(key, now)
        if entry is None:
            entry = self._entries[key] = _Entry(window_start=now)
            self._bound()
        entry.pending = max(0, entry.pending - 1)
        entry.failures += 1
        entry.last_failure = now
        # Most recently failing last: eviction takes the key that failed longest ago.
        self._entries[key] = self._entries.pop(key)
        if entry.failures < self.limit:
            return 0
        # The exponent is capped: a key that keeps failing for months stays a small number.
        seconds: float = min(self.lockout * 2 ** min(entry.lockouts, 40), self.max_lockout)
        entry.lockouts += 1
        entry.locked_until = now + seconds
        entry.window_start, entry.failures = entry.locked_until, 0
        return math.ceil(seconds)

    def succeeded(self, key: Hashable) -> None:
        """The attempt succeeded: forget the key's failures and lockouts."""
        self._entries.pop(key, None)

    def abandoned(self, key: Hashable) -> None:
        """The attempt ended undecided (the server was busy): it does not count."""
        entry = self._entries.get(key)
        if entry is not None:
            entry.pending = max(0, entry.pending - 1)

    def _bound(self) -> None:
        while len(self._entries) > self.max_entries:
            del self._entries[next(iter(self._entries))]


def parse_networks(texts: Sequence[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(text, strict=False) for text in texts)


def client_address(request: web.Request, trusted: Sequence[IPNetwork]) -> str:
    """The client's address: the TCP peer, or, when the peer is a trusted proxy, the nearest
    address in X-Forwarded-For that is not one (a client can prepend anything to that header,
    so only what trusted proxies appended is believed)."""
    peer = request.remote or ""
    if not trusted:
        return peer
    hops = [
        part.strip()
        for header in request.headers.getall("X-Forwarded-For", ())
        for part in header.split(",")
    ]
    hops.append(peer)  # [client?, proxy1, ..., peer]: walk from the right
    address = peer
    for hop in reversed(hops):
        try:
            ip = ipaddress.ip_address(hop)
        except ValueError:
            return address  # garbage from beyond the last trusted hop
        address = str(ip)
        if not any(ip in net for net in trusted):
            return address
    return address


def address_key(address: str) -> str:
    """The unit the per-address limit counts: an IPv4 address, or an IPv6 /64 (one machine
    easily holds a whole /64, so single IPv6 addresses would be free to rotate)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class Guard:
    """One app's failure counters, its trusted proxies, and how long failures wait."""

    # At most this many answers are held back at once; beyond, they go out at once (a held
    # answer costs a sleeping task and a socket, which must stay bounded too).
    MAX_HELD = 1024

    def __init__(self, config: Config) -> None:
        window, lockout, longest = config.failure_window, config.lockout, config.lockout_max
        entries = config.failure_entries

        def throttle(limit: int) -> Throttle:
            return Throttle(limit, window, lockout, longest, entries)

        self.signin_by_address = throttle(config.signin_failures_per_address)
        self.signin_by_name = throttle(config.signin_failures_per_name)
        self.api_by_address = throttle(config.api_failures_per_address)
        self.trusted = parse_networks(config.trusted_proxies)
        self.delay = config.failure_delay_ms / 1000
        self.held = 0

    def client(self, request: web.Request) -> str:
        """The key the per-address limits count for this request's client."""
        return address_key(client_address(request, self.trusted))

    async def hold(self) -> None:
        """Wait `failure_delay_ms` before a failure is answered: no CPU for the server, a
        slower loop for a guesser that waits for its answers."""
        if self.delay <= 0 or self.held >= self.MAX_HELD:
            return
        self.held += 1
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.held -= 1
