"""A build submitter for bench/api.py's mixed load: new_build at a fixed rate.

Run as `python bench/writer.py PORT PROJECT_PATH RATE [SRPM [CHROOT]]` with the
Authorization header value in BENCH_AUTH. It POSTs `new_build` to
`/api/coprs/PROJECT_PATH/new_build/` RATE times a second, on time (a late request does not
shift the ones after it), on one keep-alive connection, until standard input closes; then
it prints one JSON object: requests sent, answers by status, and the achieved rate.

Without SRPM each build points at a closed port, so its import fails at once (a build that
changes state twice). With SRPM, this process serves that file over HTTP and each build
imports it and goes on to be built in CHROOT (every state of a build).
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path

from copr_lite.liveserver import HOST, serving_directory


def main() -> int:
    port, project, rate = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    fields = {"pkgs": "http://127.0.0.1:9/x-1.0-1.src.rpm"}
    if len(sys.argv) > 5:
        fields["chroots"] = sys.argv[5]
    if len(sys.argv) > 4:
        srpm = Path(sys.argv[4])
        with serving_directory(srpm.parent) as url:
            fields["pkgs"] = f"{url}/{srpm.name}"
            return submit(port, project, rate, fields)
    return submit(port, project, rate, fields)


def submit(port: int, project: str, rate: float, fields: dict[str, str]) -> int:
    """POST new_build with `fields` `rate` times a second until standard input closes; print
    the summary."""
    body = urllib.parse.urlencode(fields).encode()
    headers = {
        "Authorization": os.environ["BENCH_AUTH"],
        "Content-Type": "application/x-www-form-urlencoded",
    }
    path = f"/api/coprs/{project}/new_build/"
    stop = threading.Event()

    def wait_for_eof() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    statuses: Counter[int] = Counter()
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    print("started", flush=True)
    started = time.monotonic()
    sent = 0
    while not stop.is_set():
        due = started + sent / rate
        if stop.wait(max(0.0, due - time.monotonic())):
            break
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            statuses[response.status] += 1
        except OSError:
            statuses[0] += 1
            conn.close()
            conn = http.client.HTTPConnection(HOST, port, timeout=30)
        sent += 1
    elapsed = time.monotonic() - started
    print(
        json.dumps(
            {"sent": sent, "statuses": dict(statuses), "rate": sent / elapsed if elapsed else 0}
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
