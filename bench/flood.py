"""A sign-in flood for bench/api.py: CLIENTS clients post wrong passwords for one user.

Run as `python bench/flood.py PORT USER [CLIENTS]`. Each client fetches /login/ once for its
own CSRF cookie, then posts wrong passwords on one keep-alive connection, each as soon as the
previous one is answered, until standard input closes. Then it prints one JSON object: the
answers by status and, per client, how many attempts it made before its first 429.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections import Counter
from typing import Any

import aiohttp


async def guesser(base: str, user: str, index: int, stop: asyncio.Event) -> dict[str, Any]:
    statuses: Counter[int] = Counter()
    first_429: int | None = None
    jar = aiohttp.CookieJar(unsafe=True)  # the server is an IP address
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(cookie_jar=jar, connector=connector) as session:
        async with session.get(base + "/login/") as resp:
            found = re.search(r'name="csrf_token" value="([^"]+)"', await resp.text())
        if found is None:
            raise SystemExit("no CSRF token on /login/")
        attempt = 0
        while not stop.is_set():
            attempt += 1
            data = {
                "username": user,
                "password": f"wrong-{index}-{attempt}",
                "csrf_token": found.group(1),
                "next": "/",
            }
            async with session.post(base + "/login/", data=data, allow_redirects=False) as resp:
                await resp.read()
                statuses[resp.status] += 1
                if resp.status == 429 and first_429 is None:
                    first_429 = attempt
    return {"statuses": statuses, "first_429": first_429, "attempts": attempt}


async def main() -> None:
    port, user = int(sys.argv[1]), sys.argv[2]
    clients = int(sys.argv[3]) if len(sys.argv) > 3 else 16
    base = f"http://127.0.0.1:{port}"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    tasks = [asyncio.ensure_future(guesser(base, user, i, stop)) for i in range(clients)]
    print("started", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # until the benchmark closes it
    stop.set()
    results = await asyncio.gather(*tasks)
    total: Counter[int] = Counter()
    for result in results:
        total.update(result["statuses"])
    summary = {
        "statuses": {str(status): count for status, count in sorted(total.items())},
        "first_429": [result["first_429"] for result in results],
        "attempts": [result["attempts"] for result in results],
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
