"""Sign-in and API credentials under attack: hashing off the event loop, throttling by client
address and by (address, user name), the 429 answers, and the counters' bounds.

The HTTP tests run a real server (aiohttp's test server on a port) on a real SQLite file;
`trusted_proxies = 127.0.0.1` lets them speak for different client addresses through
X-Forwarded-For, as a reverse proxy would.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import threading
import time
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict

from copr_lite import auth, signin, store
from copr_lite.errors import TooManyRequests
from copr_lite.keys import DB, GUARD, HASHER, TOKEN_CACHE
from copr_lite.testing import add_user, basic_auth
from copr_lite.throttle import Throttle, address_key, client_address, parse_networks

ATTACKER = "203.0.113.7"
FRIEND = "198.51.100.9"
PROXIED = {"trusted_proxies": ("127.0.0.1",)}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def throttle(limit: int = 3, **kwargs: Any) -> tuple[Throttle, Clock]:
    clock = Clock()
    settings = {"window": 60, "lockout": 10, "max_lockout": 35, "max_entries": 100, **kwargs}
    return Throttle(limit, clock=clock, **settings), clock


# ---------------------------------------------------------------- the counters


def test_throttle_locks_after_the_limit_and_the_lockout_grows():
    t, clock = throttle()
    assert [t.failed("a"), t.failed("a")] == [0, 0]
    assert t.retry_after("a") == 0
    assert t.failed("a") == 10  # the third failure locks for `lockout`
    assert t.retry_after("a") == 10
    assert t.retry_after("b") == 0  # other keys are free
    clock.now += 10
    assert t.retry_after("a") == 0
    assert [t.failed("a") for _ in range(3)] == [0, 0, 20]  # doubled
    clock.now += 20
    assert [t.failed("a") for _ in range(3)] == [0, 0, 35]  # capped at max_lockout
    for _ in range(200):  # a key that never gives up stays at the cap
        clock.now += 35
        assert [t.failed("a") for _ in range(3)] == [0, 0, 35]


def test_throttle_counts_attempts_in_progress():
    t, _ = throttle()
    for _ in range(3):
        assert t.retry_after("a") == 0
        t.begin("a")
    assert t.retry_after("a") == 1  # three pending attempts fill the quota
    t.abandoned("a")  # a busy server: it does not count
    assert t.retry_after("a") == 0
    t.failed("a")
    t.succeeded("a")  # success forgets everything of the key
    assert t.retry_after("a") == 0
    assert len(t) == 0


def test_throttle_window_and_forgetting():
    t, clock = throttle()
    t.failed("a")
    t.failed("a")
    clock.now += 61  # a new window: the old failures no longer count, the entry is gone
    assert t.failed("a") == 0
    assert t.failed("a") == 0
    assert t.failed("a") == 10
    clock.now += 10 + 60  # quiet for a window after the lockout: lockouts forgotten too
    assert t.retry_after("a") == 0
    assert len(t) == 0
    assert [t.failed("a") for _ in range(3)] == [0, 0, 10]


def test_throttle_size_is_bounded_and_forgets_the_least_recent_first():
    t, _ = throttle(max_entries=100)
    for i in range(10_000):
        t.begin(("203.0.113.7", f"name{i}"))
        t.failed(("203.0.113.7", f"name{i}"))
    assert len(t) == 100
    t2, _ = throttle(max_entries=100)
    t2.failed("old")
    t2.failed("old")
    t2.failed("keep")
    for i in range(98):
        t2.failed(i)
    t2.failed("keep")  # touched again: now the most recent
    t2.failed("new")  # one too many: "old" goes
    assert t2.retry_after("keep") == 0 and len(t2) == 100
    assert t2.failed("old") == 0  # forgotten: counting starts again
    assert t2.failed("keep") == 10  # remembered: its third failure locks


class FakeRequest:
    def __init__(self, remote: str, forwarded: list[str] | None = None) -> None:
        self.remote = remote
        self.headers: CIMultiDict[str] = CIMultiDict()
        for value in forwarded or []:
            self.headers.add("X-Forwarded-For", value)


@pytest.mark.parametrize(
    ("trusted", "remote", "forwarded", "expected"),
    [
        ((), "192.0.2.1", ["203.0.113.7"], "192.0.2.1"),  # header of an untrusted peer
        (("127.0.0.1",), "192.0.2.1", ["203.0.113.7"], "192.0.2.1"),
        (("127.0.0.1",), "127.0.0.1", [], "127.0.0.1"),
        (("127.0.0.1",), "127.0.0.1", ["203.0.113.7"], "203.0.113.7"),
        # A client's own forged entries come first; the nearest untrusted hop is believed.
        (("127.0.0.1",), "127.0.0.1", ["1.1.1.1, 203.0.113.7"], "203.0.113.7"),
        (("127.0.0.1", "10.0.0.0/8"), "127.0.0.1", ["203.0.113.7, 10.1.2.3"], "203.0.113.7"),
        (
            ("127.0.0.1", "10.0.0.0/8"),
            "127.0.0.1",
            ["1.1.1.1", "203.0.113.7, 10.1.2.3"],
            "203.0.113.7",
        ),
        (("127.0.0.1", "10.0.0.0/8"), "127.0.0.1", ["10.9.9.9"], "10.9.9.9"),
        (("127.0.0.1",), "127.0.0.1", ["not-an-address"], "127.0.0.1"),
        (("127.0.0.1",), "127.0.0.1", ["2001:db8::1"], "2001:db8::1"),
    ],
)
def test_client_address(trusted, remote, forwarded, expected):
    request: Any = FakeRequest(remote, forwarded)
    assert client_address(request, parse_networks(trusted)) == expected


def test_ipv6_clients_count_per_64():
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::2")
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:203.0.113.7") == "203.0.113.7"
    assert address_key("203.0.113.7") == "203.0.113.7"


# ---------------------------------------------------------------- password hashing


async def test_hashing_runs_beside_the_event_loop_and_refuses_beyond_its_queue(monkeypatch):
    threads: list[str] = []
    release = threading.Event()
    real_verify = auth.verify_password

    def verify(password: str, stored: str | None) -> bool:
        threads.append(threading.current_thread().name)
        release.wait(10)
        return real_verify(password, stored)

    monkeypatch.setattr(auth, "verify_password", verify)
    hasher = auth.PasswordHasher(threads=1, queue=1)
    try:
        stored = auth.hash_password("right password")
        first = asyncio.ensure_future(hasher.verify("right password", stored))
        second = asyncio.ensure_future(hasher.verify("wrong", stored))
        await asyncio.sleep(0.05)
        assert hasher.in_flight == 2
        started = time.monotonic()
        with pytest.raises(TooManyRequests) as info:
            await hasher.verify("third", stored)
        assert time.monotonic() - started < 0.05  # refused at once, not queued
        assert info.value.retry_after == 1
        release.set()
        assert await first is True
        assert await second is False
        assert hasher.in_flight == 0
        assert threads and all(name.startswith("scrypt") for name in threads)
        assert threading.main_thread().name not in threads
        # No user (or no password) is never a match, and still costs a hash.
        assert await hasher.verify("", None) is False
        assert len(threads) == 3
    finally:
        release.set()
        hasher.close()


async def test_new_password_hashes_come_from_the_hashing_threads(client):
    stored = await client.server.app[HASHER].hash("s3cret-password")
    assert stored.startswith(f"scrypt${auth.SCRYPT_N}$")
    assert auth.verify_password("s3cret-password", stored)


# ---------------------------------------------------------------- sign-in over HTTP


class Browser:
    """One client with its own cookies (and so its own CSRF token), at `address`."""

    def __init__(self, base: str, address: str) -> None:
        self.base = base
        self.address = address
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    async def __aenter__(self) -> Browser:
        async with self.session.get(self.base + "/login/", headers=self._headers()) as resp:
            assert resp.status == 200
            found = re.search(r'name="csrf_token" value="([^"]+)"', await resp.text())
            assert found
            self.csrf = found.group(1)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()

    def _headers(self) -> dict[str, str]:
        return {"X-Forwarded-For": self.address}

    async def sign_in(self, name: str, password: str) -> tuple[int, str | None, str]:
        """(status, Retry-After, page) of one sign-in."""
        data = {"username": name, "password": password, "csrf_token": self.csrf, "next": "/"}
        async with self.session.post(
            self.base + "/login/", data=data, headers=self._headers(), allow_redirects=False
        ) as resp:
            return resp.status, resp.headers.get("Retry-After"), await resp.text()


def base_of(client: Any) -> str:
    return str(client.make_url("")).rstrip("/")


async def test_flood_meets_429_while_the_api_keeps_answering(aiohttp_client, make_app):
    """16 clients guess one real user's password at once from one address."""
    app = make_app(
        **PROXIED,
        signin_failures_per_name=5,
        signin_failures_per_address=20,
        lockout=2,
        password_hash_threads=1,
        password_hash_queue=4,
    )
    client = await aiohttp_client(app)
    await add_user(app, "alice", password="right-password")
    _, token = await add_user(app, "bob")
    base = base_of(client)
    flooding = True
    probes: list[int] = []

    async def probe() -> None:
        # The API, public and authenticated, all the while the flood runs.
        while flooding:
            public = await client.get("/api/coprs/alice/")
            private = await client.post("/api/auth_check/", headers=basic_auth(token))
            probes.extend((public.status, private.status))
            await asyncio.sleep(0.01)

    async def guesser(index: int) -> list[tuple[int, str | None, str]]:
        answers = []
        async with Browser(base, ATTACKER) as browser:
            for attempt in range(30):
                answers.append(await browser.sign_in("alice", f"guess-{index}-{attempt}"))
                if answers[-1][0] == 429 and "failed sign-ins" in answers[-1][2]:
                    break
        return answers

    prober = asyncio.ensure_future(probe())
    try:
        results = await asyncio.gather(*(guesser(i) for i in range(16)))
    finally:
        flooding = False
        await prober
    flat = [answer for answers in results for answer in answers]
    for answers in results:  # every client met the lockout within 30 attempts
        assert answers[-1][0] == 429 and "failed sign-ins" in answers[-1][2]
    # Only 5 guesses were judged wrong (the fifth one answered 429: locked from then on).
    assert sum(status == 401 for status, _, _ in flat) == 4
    locked = [page for status, _, page in flat if status == 429 and "failed sign-ins" in page]
    assert len(locked) >= 16
    for status, retry_after, page in flat:
        assert status in (401, 429)
        if status == 429:
            assert retry_after is not None and int(retry_after) >= 1
            assert 'id="login-form"' in page  # the form, saying when to try again
            assert re.search(r"try again in \d+ seconds? \(after \d\d:\d\d:\d\d UTC\)", page) or (
                "busy" in page
            )
    assert probes and set(probes) == {200}

    # The account is not locked for everyone: another address signs in at once.
    async with Browser(base, FRIEND) as friend:
        status, _, _ = await friend.sign_in("alice", "right-password")
        assert status == 302
    async with Browser(base, ATTACKER) as browser:
        # The locked address is not even asked for its password...
        status, retry_after, _ = await browser.sign_in("alice", "right-password")
        assert status == 429
        # ... until the lockout is over; then the right password works again.
        await asyncio.sleep(int(retry_after or 1) + 0.1)
        status, _, _ = await browser.sign_in("alice", "right-password")
        assert status == 302


async def test_per_address_limit_covers_every_name_and_the_wait_grows(aiohttp_client, make_app):
    app = make_app(
        **PROXIED, signin_failures_per_name=100, signin_failures_per_address=3, lockout=1
    )
    client = await aiohttp_client(app)
    await add_user(app, "alice", password="right-password")
    base = base_of(client)
    async with Browser(base, ATTACKER) as browser:
        assert (await browser.sign_in("nobody1", "x"))[0] == 401
        assert (await browser.sign_in("alice", "x"))[0] == 401
        status, retry_after, page = await browser.sign_in("nobody2", "x")
        assert (status, retry_after) == (429, "1")
        assert (
            "Wrong user name or password. Too many failed sign-ins: try again in 1 second" in page
        )
        assert 'value="nobody2"' in page  # the name typed is kept
        status, retry_after, _ = await browser.sign_in("someone-else", "x")
        assert (status, retry_after) == (429, "1")
        await asyncio.sleep(1.1)
        for name in ("a", "b"):
            assert (await browser.sign_in(name, "x"))[0] == 401
        status, retry_after, _ = await browser.sign_in("c", "x")
        assert (status, retry_after) == (429, "2")  # the second lockout lasts twice as long
    async with Browser(base, FRIEND) as friend:
        assert (await friend.sign_in("alice", "right-password"))[0] == 302


async def test_success_resets_the_count_of_its_address_and_name(aiohttp_client, make_app):
    app = make_app(**PROXIED, signin_failures_per_name=3)
    client = await aiohttp_client(app)
    await add_user(app, "alice", password="right-password")
    async with Browser(base_of(client), ATTACKER) as browser:
        for _ in range(2):
            assert (await browser.sign_in("alice", "typo"))[0] == 401
        assert (await browser.sign_in("alice", "right-password"))[0] == 302
        for _ in range(2):  # two more typos are allowed again, not one
            assert (await browser.sign_in("alice", "typo"))[0] == 401
        assert (await browser.sign_in("alice", "typo"))[0] == 429


async def test_x_forwarded_for_is_ignored_without_trusted_proxies(aiohttp_client, make_app):
    app = make_app(signin_failures_per_name=2)
    client = await aiohttp_client(app)
    base = base_of(client)
    async with Browser(base, ATTACKER) as browser:
        assert (await browser.sign_in("alice", "x"))[0] == 401
    async with Browser(base, FRIEND) as other:  # another header, the same TCP peer
        assert (await other.sign_in("alice", "x"))[0] == 429


async def test_busy_hashing_is_refused_at_once(aiohttp_client, make_app):
    # One failure locks an address: what was judged shows in the counters.
    app = make_app(
        **PROXIED, password_hash_threads=1, password_hash_queue=0, signin_failures_per_address=1
    )
    client = await aiohttp_client(app)
    base = base_of(client)
    browsers = [Browser(base, f"203.0.113.{i}") for i in range(6)]
    for browser in browsers:
        await browser.__aenter__()
    try:
        answers = await asyncio.gather(*(b.sign_in("alice", "x") for b in browsers))
    finally:
        for browser in browsers:
            await browser.__aexit__()
    busy = [b for b, (_, _, page) in zip(browsers, answers, strict=True) if "busy" in page]
    assert 1 <= len(busy) < len(browsers)
    counters = app[GUARD].signin_by_address
    for browser, (status, retry_after, page) in zip(browsers, answers, strict=True):
        assert status == 429
        if browser in busy:
            assert retry_after == "1"
            assert counters.retry_after(browser.address) == 0  # refused, so not counted
        else:
            assert "Wrong user name or password." in page
            assert counters.retry_after(browser.address) > 0


async def test_failures_are_answered_after_the_delay(aiohttp_client, make_app):
    app = make_app(**PROXIED, failure_delay_ms=300, signin_failures_per_name=2)
    client = await aiohttp_client(app)
    await add_user(app, "alice", password="right-password")
    async with Browser(base_of(client), ATTACKER) as browser:
        for expected in (401, 429, 429):
            started = time.monotonic()
            assert (await browser.sign_in("alice", "x"))[0] == expected
            assert time.monotonic() - started >= 0.3


async def test_unknown_and_known_names_take_the_same_time(aiohttp_client, make_app):
    app = make_app(**PROXIED, signin_failures_per_name=1000, signin_failures_per_address=1000)
    client = await aiohttp_client(app)
    await add_user(app, "alice", password="right-password")
    await app[DB].write(store.create_user, "nopassword", None, False)
    times: dict[str, list[float]] = {"alice": [], "ghost": [], "nopassword": []}
    async with Browser(base_of(client), ATTACKER) as browser:
        for _ in range(7):
            for name, samples in times.items():
                started = time.perf_counter()
                assert (await browser.sign_in(name, "wrong"))[0] == 401
                samples.append(time.perf_counter() - started)
    known = statistics.median(times["alice"])
    for name in ("ghost", "nopassword"):
        # Generous bounds: without the stand-in hash these answer ~50 times faster.
        assert 0.5 * known < statistics.median(times[name]) < 2 * known, times


# ---------------------------------------------------------------- API credentials


async def test_wrong_api_credentials_are_throttled_per_address(aiohttp_client, make_app):
    app = make_app(**PROXIED, api_failures_per_address=4, lockout=30)
    client = await aiohttp_client(app)
    _, token = await add_user(app, "alice")
    _, other = await add_user(app, "bob")
    attacker = {"X-Forwarded-For": ATTACKER}
    assert (await client.post("/api/auth_check/", headers=basic_auth(token))).status == 200
    for _ in range(3):  # no credentials at all is not a guess and does not count
        assert (await client.post("/api/auth_check/", headers=attacker)).status == 401
    for _ in range(3):
        wrong = {**attacker, **basic_auth((token.login, "x" * 30))}
        assert (await client.post("/api/auth_check/", headers=wrong)).status == 401
    for _ in range(2):
        resp = await client.get("/api/coprs/build_status/1/", headers=wrong)
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "30"
        body = await resp.json()
        assert body["output"] == "notok" and body["errcode"] == "too_many_requests"
        assert re.match(r"Too many wrong API credentials: try again in 30 seconds", body["error"])
    # A token verified recently passes from any address, the attacker's too...
    ok = await client.post("/api/auth_check/", headers={**attacker, **basic_auth(token)})
    assert ok.status == 200
    # ... and other addresses are not slowed or refused, with any good token.
    app[TOKEN_CACHE].clear()
    for headers in (
        basic_auth(token),
        basic_auth(other),
        {"X-Forwarded-For": FRIEND, **basic_auth(other)},
    ):
        assert (await client.post("/api/auth_check/", headers=headers)).status == 200
    # A token not verified lately, sent from the locked address, waits like the guesses.
    app[TOKEN_CACHE].clear()
    resp = await client.post("/api/auth_check/", headers={**attacker, **basic_auth(token)})
    assert resp.status == 429


async def test_api_counters_are_bounded(aiohttp_client, make_app):
    app = make_app(**PROXIED, api_failures_per_address=2, failure_entries=100)
    client = await aiohttp_client(app)
    wrong = basic_auth(("nobody", "x" * 30))
    for i in range(300):
        address = f"10.0.{i // 250}.{i % 250}"
        resp = await client.post("/api/auth_check/", headers={**wrong, "X-Forwarded-For": address})
        assert resp.status == 401
    assert len(app[GUARD].api_by_address) == 100


def test_wait_text():
    assert signin.wait_text(1).startswith("try again in 1 second (after ")
    assert signin.wait_text(60).startswith("try again in 60 seconds")
    assert signin.wait_text(600).startswith("try again in 10 minutes")
    assert signin.wait_text(3 * 3600).startswith("try again in 3 hours")
