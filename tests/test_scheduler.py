"""The scheduler's choices, with no database and no event loop: limits and owner turns."""

from __future__ import annotations

from copr_lite.engine.scheduler import (
    BuilderLimit,
    Candidate,
    GlobalLimit,
    Load,
    OwnerTurns,
    Scheduler,
)

ALICE, BOB, CAROL = 1, 2, 3


def queue(owner: int, first_build: int, count: int, builder: str = "local") -> list[Candidate]:
    return [Candidate(owner, first_build + n, "fedora-40-x86_64", builder) for n in range(count)]


def scheduler(slots: int, **per_builder: int | None) -> Scheduler:
    return Scheduler([GlobalLimit(slots), BuilderLimit(per_builder.get)])


def test_a_thousand_chroots_of_one_owner_do_not_delay_another_owners_one() -> None:
    flood = queue(ALICE, 1, 1000)
    single = Candidate(BOB, 5000, "fedora-40-x86_64", "local")
    plan = scheduler(1)
    running = plan.choose([*flood, single], [])
    assert running == [flood[0]]
    # Alice holds the slot; when it frees, Bob (nothing running, never served) goes first.
    assert plan.choose([*flood[1:], single], []) == [single]


def test_owners_take_turns_whatever_their_queues() -> None:
    plan = scheduler(6)
    chosen = plan.choose([*queue(ALICE, 1, 100), *queue(BOB, 200, 2), *queue(CAROL, 300, 1)], [])
    owners = [c.owner_id for c in chosen]
    assert owners == [ALICE, BOB, CAROL, ALICE, BOB, ALICE]


def test_the_owner_with_fewer_running_chroots_goes_first() -> None:
    running = queue(ALICE, 1, 3)
    candidates = [*queue(ALICE, 10, 5), *queue(BOB, 20, 5)]
    chosen = scheduler(8).choose(candidates, running)  # 3 run: 5 slots free
    assert [c.owner_id for c in chosen] == [BOB, BOB, BOB, ALICE, BOB]


def test_between_equal_owners_the_one_served_longest_ago_goes_first() -> None:
    plan = scheduler(1)
    bob, alice = queue(BOB, 20, 1), queue(ALICE, 10, 1)
    assert plan.choose([*alice, *bob], []) == alice  # never served: the oldest build first
    assert plan.choose([*queue(ALICE, 11, 1), *bob], []) == bob
    assert plan.choose([*queue(ALICE, 11, 1), *queue(BOB, 21, 1)], []) == queue(ALICE, 11, 1)


def test_an_owners_own_candidates_keep_their_order() -> None:
    # The store lists normal builds before background ones: that order is kept.
    normal, background = queue(ALICE, 50, 1), queue(ALICE, 10, 1)
    assert scheduler(1).choose([*normal, *background], []) == normal


def test_the_global_limit_holds() -> None:
    plan = scheduler(3)
    chosen = plan.choose([*queue(ALICE, 1, 10), *queue(BOB, 100, 10)], [])
    assert len(chosen) == 3
    assert plan.choose(queue(CAROL, 200, 5), chosen) == []
    assert not plan.has_room(chosen)
    assert plan.has_room(chosen[:2])
    assert plan.choose(queue(CAROL, 200, 5), chosen[:2]) == queue(CAROL, 200, 1)


def test_per_builder_limits_hold_and_other_builders_still_start() -> None:
    plan = scheduler(10, mock=1, remote=2)
    candidates = [
        *queue(ALICE, 1, 5, "mock"),
        *queue(BOB, 100, 5, "remote"),
        *queue(CAROL, 200, 10, "local"),
    ]
    chosen = plan.choose(candidates, [])
    per_builder = Load.of(chosen).per_builder
    assert per_builder["mock"] == 1 and per_builder["remote"] == 2
    assert per_builder["local"] == 7  # no limit of its own: the global one fills
    assert len(chosen) == 10


def test_a_per_builder_limit_counts_what_already_runs() -> None:
    plan = scheduler(10, mock=2)
    running = queue(ALICE, 1, 2, "mock")
    assert plan.choose(queue(BOB, 100, 3, "mock"), running) == []


def test_a_builder_limit_is_read_at_each_choice() -> None:
    limits: dict[str, int | None] = {"mock": None}
    plan = Scheduler([GlobalLimit(10), BuilderLimit(limits.get)])
    assert len(plan.choose(queue(ALICE, 1, 5, "mock"), [])) == 5
    limits["mock"] = 1
    assert len(plan.choose(queue(ALICE, 1, 5, "mock"), [])) == 1


def test_running_chroots_are_not_chosen_again() -> None:
    running = queue(ALICE, 1, 1)
    assert scheduler(5).choose([*running, *queue(ALICE, 2, 1)], running) == queue(ALICE, 2, 1)


def test_no_candidates_choose_nothing() -> None:
    assert scheduler(2).choose([], []) == []


def test_turns_are_remembered_across_choices() -> None:
    turns = OwnerTurns()
    first, second = Scheduler([GlobalLimit(1)], turns), Scheduler([GlobalLimit(1)], turns)
    assert first.choose([*queue(ALICE, 1, 1), *queue(BOB, 2, 1)], []) == queue(ALICE, 1, 1)
    assert second.choose([*queue(ALICE, 3, 1), *queue(BOB, 2, 1)], []) == queue(BOB, 2, 1)
