"""The `[plugin:webhooks]` settings: how deliveries are retried and for how long."""

from __future__ import annotations

from dataclasses import dataclass

from copr_lite import plugin_setting


@dataclass(frozen=True)
class WebhookSettings:
    retry_base_seconds: float = plugin_setting(
        10.0,
        "Wait before the first retry of a failed delivery, in seconds; each further retry "
        "waits retry_factor times longer.",
        min=0.01,
        max=3600,
    )
    retry_factor: float = plugin_setting(3.0, "Growth of the wait between retries.", min=1, max=10)
    retry_max_seconds: float = plugin_setting(
        3600.0, "Longest wait between two attempts, in seconds.", min=0.01, max=86400
    )
    give_up_seconds: float = plugin_setting(
        86400.0,
        "A delivery not accepted this long after its event is given up (state `failed`).",
        min=0.1,
        max=30 * 86400,
    )
    timeout_seconds: float = plugin_setting(
        10.0, "Time limit of one attempt (connecting, sending, the answer's status).", min=0.1
    )
    keep_deliveries: int = plugin_setting(
        200, "Finished deliveries kept per project (the newest); older ones are removed.", min=1
    )

    def delay(self, attempts: int) -> float:
        """The wait after the `attempts`-th failed attempt."""
        wait = self.retry_base_seconds * self.retry_factor ** (attempts - 1)
        return min(wait, self.retry_max_seconds)
