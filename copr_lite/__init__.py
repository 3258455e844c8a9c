"""copr_lite: a self-hosted package build service speaking the Copr API v1.

What plugin authors import: `hookimpl`, the builder contract (`Builder`, `BuildJob`,
`BuildContext`, `ChrootResult`, `Outcome`, `PackageInfo`, `Chroot`), `run_logged`, and
`plugin_setting` to declare a plugin's settings.
"""

import pluggy

from .builders import (
    BuildContext,
    Builder,
    BuildJob,
    Chroot,
    ChrootResult,
    Outcome,
    PackageInfo,
    read_rpm_headers,
    run_logged,
)
from .config import plugin_setting

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("copr_lite")

__all__ = [
    "BuildContext",
    "BuildJob",
    "Builder",
    "Chroot",
    "ChrootResult",
    "Outcome",
    "PackageInfo",
    "hookimpl",
    "plugin_setting",
    "read_rpm_headers",
    "run_logged",
]
