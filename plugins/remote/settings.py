"""The `[plugin:remote]` settings of the server side."""

from __future__ import annotations

from dataclasses import dataclass

from copr_lite import plugin_setting


@dataclass(frozen=True)
class RemoteSettings:
    heartbeat_timeout: float = plugin_setting(
        30.0, "Seconds without a heartbeat before a job is taken back.", min=0.5, max=3600
    )
    heartbeat_interval: float = plugin_setting(
        0.0,
        "How often workers heartbeat, in seconds (at most heartbeat_timeout / 1.5). "
        "0: a third of heartbeat_timeout.",
        min=0,
        max=2400,
    )
    max_attempts: int = plugin_setting(
        3, "Attempts in all before the chroot fails.", min=1, max=100
    )
    claim_wait: float = plugin_setting(
        20.0, "Longest long poll of a worker asking for work, in seconds.", min=0.1, max=300
    )
    max_upload_mb: int = plugin_setting(
        4096, "Largest result upload, in MiB.", min=1, max=1024 * 1024
    )

    def __post_init__(self) -> None:
        if not self.heartbeat_interval:
            # frozen: the derived default is set once, here.
            object.__setattr__(self, "heartbeat_interval", self.heartbeat_timeout / 3)
        elif not 0.1 <= self.heartbeat_interval <= self.heartbeat_timeout / 1.5:
            raise ValueError(
                f"heartbeat_interval = {self.heartbeat_interval:g}: must be between 0.1 and "
                f"heartbeat_timeout / 1.5 ({self.heartbeat_timeout / 1.5:g})"
            )
