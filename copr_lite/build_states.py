"""The state of every build read so far, one byte per build id, for build_status.

build_status is what every client polls (copr-cli watching builds, dashboards, scripts that
check many builds at once), so it must not depend on the answer cache's recency: a poll of
any build should answer without reading SQLite, also while builds are running. One byte per
build id keeps that cheap (a million builds: 1 MiB). It follows the answer cache's rule: a
build's byte is cleared by every committed write that touched the build (its `build_tag`,
noted by the writer's triggers whichever code writes), and a state read at write count N is
kept only if the build did not change after N.
"""

from __future__ import annotations

from .cache import AnswerCache
from .changes import Tag, build_tag
from .db import Database
from .states import BUILD_STATE_PRECEDENCE, State

# Every state derive_build_state returns; a build's byte is its index + 1 (0: not known).
STATES: tuple[str, ...] = (
    State.CANCELED.value,
    "unknown",
    *(state.value for state in BUILD_STATE_PRECEDENCE),
)
_CODE = {state: index + 1 for index, state in enumerate(STATES)}


class BuildStates:
    """Derived build states by id, for ids up to `limit` (higher ones are not kept)."""

    def __init__(self, db: Database, cache: AnswerCache, limit: int = 1 << 26) -> None:
        self._cache = cache
        self._limit = limit
        self._codes = bytearray()
        db.on_change(self._on_change)

    @property
    def version(self) -> int:
        """The snapshot to take before reading a build's state."""
        return self._cache.version

    def get(self, build_id: int) -> str | None:
        """The build's state if it is known and nothing changed it since it was read."""
        if build_id < len(self._codes):
            code = self._codes[build_id]
            if code:
                return STATES[code - 1]
        return None

    def put(self, build_id: int, snapshot: int, state: str) -> None:
        """Keep `state`, read at `snapshot`, unless the build changed after it."""
        if build_id >= self._limit or self._cache.changed_after(snapshot, build_tag(build_id)):
            return
        codes = self._codes
        if build_id >= len(codes):
            # Grow by half again at least, so that new builds do not copy it each time.
            grown = max(build_id + 1, len(codes) + len(codes) // 2)
            codes.extend(bytes(min(grown, self._limit) - len(codes)))
        codes[build_id] = _CODE[state]

    def _on_change(self, tags: set[Tag], writes: int) -> None:
        codes, known = self._codes, len(self._codes)
        for tag in tags:
            if tag[0] == "build" and tag[1] < known:
                codes[tag[1]] = 0
