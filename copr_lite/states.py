"""Build-chroot states, their historic integer codes, and the derived build state. Pure code."""

from __future__ import annotations

import enum
from collections.abc import Iterable


class State(enum.StrEnum):
    """A build-chroot state; the value is the API name, `code` the historic integer."""

    FAILED = "failed"
    SUCCEEDED = "succeeded"
    CANCELED = "canceled"
    RUNNING = "running"
    PENDING = "pending"
    SKIPPED = "skipped"
    STARTING = "starting"
    IMPORTING = "importing"
    FORKED = "forked"

    @property
    def code(self) -> int:
        return _CODES[self]

    @classmethod
    def from_code(cls, code: int | State) -> State:
        """The state of a historic integer code; a State passes through unchanged, so code
        written when rows held integers keeps working now that they hold States."""
        return code if isinstance(code, State) else _BY_CODE[code]

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


_CODES: dict[State, int] = {state: code for code, state in enumerate(State)}
_BY_CODE: dict[int, State] = {code: state for state, code in _CODES.items()}

TERMINAL = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELED, State.SKIPPED, State.FORKED})
UNFINISHED_CODES: tuple[int, ...] = tuple(s.code for s in State if s not in TERMINAL)
# A chroot in one of these counts as "built" for last_modified (spec §4.2).
BUILT_CODES: tuple[int, ...] = (State.SUCCEEDED.code, State.SKIPPED.code)

# Allowed moves of one build-chroot; anything non-terminal may also become canceled.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.IMPORTING: frozenset({State.PENDING, State.FAILED}),
    State.PENDING: frozenset({State.STARTING, State.SKIPPED, State.FAILED}),
    State.STARTING: frozenset({State.RUNNING, State.PENDING, State.SKIPPED, State.FAILED}),
    State.RUNNING: frozenset({State.SUCCEEDED, State.FAILED, State.PENDING}),
}


def can_move(old: State, new: State) -> bool:
    """True when a build-chroot may go from `old` to `new`."""
    if new is State.CANCELED:
        return not old.terminal
    return new in TRANSITIONS.get(old, frozenset())


# Spec A9: the first state present in this order is the build's state.
BUILD_STATE_PRECEDENCE: tuple[State, ...] = (
    State.RUNNING,
    State.STARTING,
    State.IMPORTING,
    State.PENDING,
    State.FAILED,
    State.SUCCEEDED,
    State.SKIPPED,
    State.FORKED,
)
_RANK: dict[int, int] = {state.code: rank for rank, state in enumerate(BUILD_STATE_PRECEDENCE)}


def derive_build_state(canceled: bool, chroot_codes: Iterable[int | State]) -> str:
    """The overall build state from its canceled flag and its chroots' states (State
    values, as BuildChroot.status holds, or their integer codes, as the database does)."""
    if canceled:
        return State.CANCELED.value
    best = len(BUILD_STATE_PRECEDENCE)
    for code in chroot_codes:
        rank = _RANK.get(code.code if isinstance(code, State) else code)
        if rank is not None and rank < best:
            best = rank
    if best == len(BUILD_STATE_PRECEDENCE):
        return "unknown"
    return BUILD_STATE_PRECEDENCE[best].value
