"""Which pending chroots start next: a pure decision, no database and no event loop.

The loop (loop.py) reads the pending candidates from the store, hands them with what is
running to `Scheduler.choose()`, and starts a chroot run (run.py) for each one chosen.

Owners take turns: the owner with the fewest running chroots goes first, then the one
served longest ago, then the one whose next build is oldest; each owner's own candidates
keep their order (the store's: normal builds before background ones, oldest first). So a
queue of a thousand chroots of one owner does not delay another owner's single one.
Limits are small predicate objects: a candidate starts only when every limit allows it,
and the round ends as soon as one limit is full whatever comes next.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Candidate:
    """A chroot of a build, pending or running, with who owns it and what builds it."""

    owner_id: int
    build_id: int
    chroot: str
    builder: str  # the builder name the chroot is mapped to ("" when it is mapped to none)

    @property
    def key(self) -> tuple[int, str]:
        return (self.build_id, self.chroot)


@dataclass
class Load:
    """What runs, counted the ways the limits look at it."""

    total: int = 0
    per_owner: Counter[int] = field(default_factory=Counter)
    per_builder: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(cls, running: Iterable[Candidate]) -> Load:
        load = cls()
        for candidate in running:
            load.add(candidate)
        return load

    def add(self, candidate: Candidate) -> None:
        self.total += 1
        self.per_owner[candidate.owner_id] += 1
        self.per_builder[candidate.builder] += 1


class Limit(Protocol):
    """A rule on how much may run at once."""

    def full(self, load: Load) -> bool:
        """Nothing more may start, whatever the candidate."""
        ...

    def allows(self, candidate: Candidate, load: Load) -> bool:
        """`candidate` may start on top of `load`."""
        ...


@dataclass(frozen=True)
class GlobalLimit:
    """At most `slots` chroots run at once (`[builds] concurrency`)."""

    slots: int

    def full(self, load: Load) -> bool:
        return load.total >= self.slots

    def allows(self, candidate: Candidate, load: Load) -> bool:
        return not self.full(load)


@dataclass(frozen=True)
class BuilderLimit:
    """At most `concurrency_of(name)` chroots run at once on the builder of that name;
    None means no limit of its own (only the global one)."""

    concurrency_of: Callable[[str], int | None]

    def full(self, load: Load) -> bool:
        return False  # another builder's candidate may still fit

    def allows(self, candidate: Candidate, load: Load) -> bool:
        limit = self.concurrency_of(candidate.builder)
        return limit is None or load.per_builder[candidate.builder] < limit


class OwnerTurns:
    """Owner fairness: the order in which owners get a slot, remembered across rounds."""

    def __init__(self) -> None:
        self._served: dict[int, int] = {}  # owner id -> when (a counter) it last got a slot
        self._count = 0

    def next_owner(self, queues: dict[int, list[Candidate]], load: Load) -> int:
        """The owner whose turn it is among those with candidates in `queues`."""
        return min(
            queues,
            key=lambda owner: (
                load.per_owner[owner],
                self._served.get(owner, -1),
                queues[owner][0].build_id,
            ),
        )

    def served(self, owner_id: int) -> None:
        self._count += 1
        self._served[owner_id] = self._count


class Scheduler:
    """Chooses the chroots to start, under `limits`, owners taking turns."""

    def __init__(self, limits: Sequence[Limit], turns: OwnerTurns | None = None) -> None:
        self.limits = tuple(limits)
        self.turns = turns or OwnerTurns()

    def has_room(self, running: Iterable[Candidate]) -> bool:
        """Something could start (asked before reading the candidates)."""
        load = Load.of(running)
        return not any(limit.full(load) for limit in self.limits)

    def choose(
        self, candidates: Iterable[Candidate], running: Iterable[Candidate]
    ) -> list[Candidate]:
        """The candidates to start now, in the order they get their slots. A candidate
        that is already running is left out; one a limit refuses waits for a later round."""
        running = list(running)
        load = Load.of(running)
        busy = {c.key for c in running}
        queues: dict[int, list[Candidate]] = {}
        for candidate in candidates:
            if candidate.key not in busy:
                queues.setdefault(candidate.owner_id, []).append(candidate)
        chosen: list[Candidate] = []
        while queues and not any(limit.full(load) for limit in self.limits):
            owner_id = self.turns.next_owner(queues, load)
            candidate = queues[owner_id].pop(0)
            if not queues[owner_id]:
                del queues[owner_id]
            if not all(limit.allows(candidate, load) for limit in self.limits):
                continue
            chosen.append(candidate)
            load.add(candidate)
            self.turns.served(owner_id)
        return chosen
