"""Run one call of a real python-copr 2.x (API v3) proxy and print, as JSON, what it returned.

This file runs under the v3 client virtual environment's interpreter (copr==2.7), never under
the server's, so it imports nothing from copr_lite or pytest.

    python v3_driver.py CONFIG PROXY METHOD KWARGS_JSON

`PROXY` is an attribute of `copr.v3.Client` (`build_proxy`, `project_proxy`, ...) or `base`
for the base proxy, `METHOD` one of its methods and `KWARGS_JSON` its keyword arguments.

Output, one JSON line on stdout:
  exit 0: {"ok": true, "result": <the Munch or List the proxy returned, as JSON>}
  exit 3: {"ok": false, "exception": "<CoprException subclass>", "message": "<its text>"}
Anything else (a crash inside the client) is an uncaught traceback and exit 1.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from copr.v3 import Client
from copr.v3.exceptions import CoprException


def plain(value: Any) -> Any:
    """Munch, List and their contents as JSON-ready data (the client's private keys
    `__response__` and `__proxy__` left out)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def main() -> int:
    config, proxy_name, method, kwargs = sys.argv[1:5]
    client = Client.create_from_config_file(config)
    proxy = client.base_proxy if proxy_name == "base" else getattr(client, proxy_name)
    try:
        result = getattr(proxy, method)(**json.loads(kwargs))
    except CoprException as exc:
        print(json.dumps({"ok": False, "exception": type(exc).__name__, "message": str(exc)}))
        return 3
    print(json.dumps({"ok": True, "result": plain(result)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
