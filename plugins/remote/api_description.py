"""The OpenAPI description of `GET /api/workers/`, added to /api/openapi.json by the
`register_api_paths` hook (a blocked plugin's route and description go together)."""

from __future__ import annotations

from typing import Any

from copr_lite.openapi import (
    array,
    integer,
    nullable_integer,
    nullable_string,
    obj,
    ok,
    operation,
    string,
)

from .protocol import WORKERS_LIST

WORKER_JOB = obj(
    {
        "id": string("The job id the worker uses (one attempt by one worker)."),
        "build_id": integer(),
        "chroot": string(),
        "attempt": integer("1 for the first attempt; lost workers and rejected uploads add one."),
        "claimed_on": integer("Unix time the worker took the job."),
        "last_heartbeat": integer("Unix time of the worker's last request on this job."),
    }
)
WORKERS_OK = ok(
    {
        "workers": array(
            obj(
                {
                    "name": string(),
                    "state": string(
                        "`building`, `idle` (asking for work or seen within the heartbeat "
                        "timeout), `offline` or `revoked`.",
                        enum=["building", "idle", "offline", "revoked"],
                    ),
                    "serves": array(string(), "Chroot names or patterns the worker asks for."),
                    "builder": nullable_string("The worker's local builder."),
                    "host": nullable_string("The worker's host name."),
                    "created_on": integer(),
                    "revoked_on": nullable_integer(),
                    "last_heartbeat": nullable_integer(
                        "Unix time of the worker's last heartbeat or other request."
                    ),
                    "current_job": {**WORKER_JOB, "nullable": True},
                    "jobs": array(WORKER_JOB, "Every job it builds now (one per slot)."),
                }
            )
        ),
        "queued": array(
            obj({"build_id": integer(), "chroot": string(), "attempt": integer()}),
            "Jobs waiting for a worker, oldest first.",
        ),
    }
)


def api_paths() -> dict[str, Any]:
    """The path item of the workers list."""
    return {
        WORKERS_LIST: {
            "get": operation(
                "Remote build workers and the jobs waiting for them (system admins only)",
                WORKERS_OK,
                (403,),
                operation_id="list_workers",
                login=True,
                description="Every worker token (`python -m copr_lite worker-token create`), "
                "what its worker last reported, the jobs it is building now, and the jobs of "
                "chroots mapped to the `remote` builder that wait for a worker.",
            )
        }
    }
