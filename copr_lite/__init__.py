"""copr_lite: a self-hosted package build service speaking the Copr API v1.

What plugin authors import: `hookimpl`, the builder contract (`Builder`, `BuildJob`,
`BuildContext`, `ChrootResult`, `Outcome`, `PackageInfo`, `Chroot`), `run_logged`,
`built_result` (the result of a build that left RPMs), and
`processes` for builders that start commands of their own (every process a builder starts
must end with its task: `processes.start`/`stop`/`run_captured` see to it), and
`plugin_setting` to declare a plugin's settings.
"""

import pluggy

from . import processes
from .builders import (
    BuildContext,
    Builder,
    BuildJob,
    Chroot,
    ChrootResult,
    Outcome,
    PackageInfo,
    built_result,
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
    "built_result",
    "hookimpl",
    "plugin_setting",
    "processes",
    "read_rpm_headers",
    "run_logged",
]
