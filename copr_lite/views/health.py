"""`/healthz`: can this server do its work? For load balancers and monitoring."""

from __future__ import annotations

import asyncio
import shutil
import time

from aiohttp import web

from .. import store
from ..keys import CONFIG, DB, DISPATCHER, START_DISPATCHER
from ..responses import json_response

MIB = 1024 * 1024
# A database write slower than this counts as failed (the writer is stuck or locked).
WRITE_TIMEOUT = 5.0


async def healthz(request: web.Request) -> web.Response:
    """200 `{"status": "ok", ...}` when the database takes a write, the dispatcher runs and
    the data directory has `min_free_disk_mb` free; else 503 with `reasons`."""
    app = request.app
    config = app[CONFIG]
    reasons = []
    try:
        await asyncio.wait_for(
            app[DB].write_unseen(store.probe_write, int(time.time())), WRITE_TIMEOUT
        )
        database = "writable"
    except TimeoutError:
        database = "timeout"
        reasons.append(f"the database took no write within {WRITE_TIMEOUT:.0f} s")
    except Exception as exc:
        database = "error"
        reasons.append(f"the database refused a write: {exc}")
    if not app[START_DISPATCHER]:
        dispatcher = "off"
    elif app[DISPATCHER].alive:
        dispatcher = "alive"
    else:
        dispatcher = "stopped"
        reasons.append("the build dispatcher is not running")
    free = (await asyncio.to_thread(shutil.disk_usage, config.data_dir)).free
    if free < config.min_free_disk_mb * MIB:
        reasons.append(
            f"{free // MIB} MiB free in {config.data_dir}, below the floor of "
            f"{config.min_free_disk_mb} MiB ([server] min_free_disk_mb)"
        )
    body = {
        "status": "fail" if reasons else "ok",
        "reasons": reasons,
        "database": database,
        "dispatcher": dispatcher,
        "disk_free_bytes": free,
        "disk_floor_bytes": config.min_free_disk_mb * MIB,
    }
    response = json_response(body, status=503 if reasons else 200)
    response.headers["Cache-Control"] = "no-store"
    return response
