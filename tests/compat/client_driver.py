"""Run one call of the real python `copr` 1.x client and print, as JSON, what the client read.

This file runs under the client virtual environment's interpreter (copr==1.109), never under
the server's, so it imports nothing from copr_lite or pytest.

    python client_driver.py CONFIG METHOD KWARGS_JSON

`CONFIG` is a `~/.config/copr`-style file, `METHOD` a `CoprClient` method and `KWARGS_JSON` its
keyword arguments. The driver reads the response through the client's own parsers (the fields
the client exposes, as its users read them), so a key the client needs but the server left out
fails here the way it fails for a real user.

Output, one JSON line on stdout:
  exit 0: {"ok": true, "result": {...what the client read...}, "raw": {...the response body...}}
  exit 3: {"ok": false, "exception": "<CoprException subclass>", "message": "<its text>"}
Anything else (a KeyError in a parser, a crash) is an uncaught traceback and exit 1.
"""

from __future__ import annotations

import json
import sys
import warnings
from typing import Any

from copr.client import CoprClient
from copr.exceptions import CoprException


def _project(wrapper: Any) -> dict[str, Any]:
    return {
        "username": wrapper.username,
        "projectname": wrapper.projectname,
        "description": wrapper.description,
        "yum_repos": wrapper.yum_repos,
        "additional_repos": wrapper.additional_repos,
    }


def read_projects(response: Any) -> dict[str, Any]:
    return {
        "output": response.output,
        "projects": [_project(p) for p in response.projects_list],
    }


def read_details(response: Any) -> dict[str, Any]:
    return {
        "name": response.name,
        "description": response.description,
        "instructions": response.instructions,
        "last_modified": response.last_modified,
        "chroots": {c.chrootname: c.repo_url for c in response.chroots},
    }


def read_new_build(response: Any) -> dict[str, Any]:
    return {
        "output": response.output,
        "message": response.message,
        "build_ids": [b.build_id for b in response.builds_list],
    }


BUILD_FIELDS = (
    "project",
    "owner",
    "status",
    "results",
    "results_by_chroot",
    "submitted_on",
    "started_on",
    "ended_on",
    "built_pkgs",
    "src_pkg",
    "src_version",
)


def read_build(response: Any) -> dict[str, Any]:
    result = {field: getattr(response, field) for field in BUILD_FIELDS}
    result["output"] = response.output
    return result


READERS = {
    "authentication_check": lambda response: {},
    "create_project": lambda r: {"output": r.output, "message": r.message},
    "get_projects_list": read_projects,
    "search_projects": read_projects,
    "get_project_details": read_details,
    "modify_project": lambda r: {"output": r.output},
    "modify_project_chroot_details": lambda r: {
        "output": r.output,
        "buildroot_pkgs": r.buildroot_pkgs,
    },
    "get_project_chroot_details": lambda r: {
        "output": r.output,
        "buildroot_pkgs": r.buildroot_pkgs,
    },
    "create_new_build": read_new_build,
    "get_build_details": read_build,
    "cancel_build": lambda r: {"output": r.output, "status": r.status},
    "delete_project": lambda r: {"output": r.output, "message": r.message},
}


def main(argv: list[str]) -> int:
    config, method, raw_kwargs = argv
    kwargs = json.loads(raw_kwargs)
    with warnings.catch_warnings():
        # CoprClient warns that API v1 is deprecated; that is the point of this exercise.
        warnings.simplefilter("ignore", DeprecationWarning)
        client = CoprClient.create_from_file_config(config)
    try:
        response = getattr(client, method)(**kwargs)
        result = READERS[method](response)
    except CoprException as exc:
        print(json.dumps({"ok": False, "exception": type(exc).__name__, "message": str(exc)}))
        return 3
    raw = getattr(response, "data", None)
    print(json.dumps({"ok": True, "result": result, "raw": raw}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
