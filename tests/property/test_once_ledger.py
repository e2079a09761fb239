"""Two workers sending one text each through the once-ledger, interleaved step by step in any
order, either dying at any point (and starting again as a new process that names the dead one
to the ledger, as after a lease taken over from a holder proven dead), the clock jumping past
claims' expiry: the text is never sent twice, and in the end the ledger says what happened."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.once import (
    Done,
    Entry,
    EntryState,
    Failed,
    LedgerConflict,
    Unsure,
    on_claim,
    on_finish,
    on_resolve,
    on_start,
)
from tests.support.memory_ledger import MemoryOnceLedger

KEY = "sms#camp#wave#fan-1"
TTL = timedelta(seconds=30)
START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


class World:
    def __init__(self) -> None:
        self.now = START
        self.ledger = MemoryOnceLedger(lambda: self.now)
        self.sent: Counter[str] = Counter()


def send_once(world: World, owner: str, times_out: bool, dead: str | None = None) -> Iterator[None]:
    """A worker's whole protocol, one ledger call or outside call per step. `dead`: the owner
    of the process it replaced, proven dead (its lease taken over at once), named to claim."""
    if dead is None:
        entry = world.ledger.claim([KEY], owner, TTL)[KEY]
    else:
        entry = world.ledger.claim([KEY], owner, TTL, frozenset({dead}))[KEY]
    yield
    if not entry.held_by(owner):
        return
    try:
        started = world.ledger.start(entry)
    except LedgerConflict:
        return
    yield
    if started.expires_at <= world.now:  # its claim lapsed: do not call
        try:
            world.ledger.release(started)
        except LedgerConflict:
            world.ledger.finish([(started, Failed("not sent: claim lapsed"))])
        return
    world.sent[KEY] += 1  # the provider acts (and, when the call times out, says nothing)
    yield
    outcome = Unsure("timed out") if times_out else Done("provider-msg-1")
    world.ledger.finish([(started, outcome)])


STEP = st.one_of(
    st.tuples(st.just("step"), st.integers(0, 1)),
    st.tuples(st.just("die"), st.integers(0, 1)),
    st.tuples(st.just("time"), st.sampled_from([1, 29, 31])),
)


# A successor resending its dead predecessor's started text takes one worker's steps in a row
# (claim, start, send, die, claim, start, send): 100 examples missed that mutant, 1,000 found it.
@settings(max_examples=1000)
@given(st.lists(STEP, max_size=40), st.tuples(st.booleans(), st.booleans()))
def test_two_workers_and_crashes_at_any_point_never_send_a_text_twice(
    schedule: list[tuple[str, int]], times_out: tuple[bool, bool]
) -> None:
    world = World()
    lives = [0, 0]

    def spawn(worker: int) -> Iterator[None]:
        # A worker's next process names its dead predecessor (the lease proved it gone): its
        # claim counts as expired at once, its started attempt turns UNKNOWN.
        lives[worker] += 1
        dead = f"w{worker}#{lives[worker] - 1}" if lives[worker] > 1 else None
        return send_once(world, f"w{worker}#{lives[worker]}", times_out[worker], dead)

    workers = [spawn(0), spawn(1)]
    for action, value in schedule:
        if action == "time":
            world.now += timedelta(seconds=value)
        elif action == "die":
            workers[value] = spawn(value)  # what it held is forgotten; a new owner id
        else:
            next(workers[value], None)
        assert world.sent[KEY] <= 1
    # Then the claims lapse and a last worker runs to its end.
    world.now += 2 * TTL
    for _ in send_once(world, "last", False):
        pass
    assert world.sent[KEY] <= 1
    entry = world.ledger.read([KEY])[KEY]
    if entry.state is EntryState.UNKNOWN:  # reported, then reconciled from the provider
        lookup = Done("found") if world.sent[KEY] else Failed("never arrived")
        entry = world.ledger.resolve(KEY, lookup)
    assert entry.state in (EntryState.DONE, EntryState.FAILED)
    assert (entry.state is EntryState.DONE) == (world.sent[KEY] == 1)


# --- The rules, one transition at a time ---------------------------------------------------------


def _claimed(owner: str = "a") -> Entry:
    entry = on_claim(None, KEY, owner, START, TTL)
    assert entry is not None
    return entry


def test_a_live_claim_is_not_taken_over_and_an_expired_one_is() -> None:
    claimed = _claimed()
    assert on_claim(claimed, KEY, "b", START + TTL - timedelta(seconds=1), TTL) is None
    taken = on_claim(claimed, KEY, "b", START + TTL, TTL)
    assert taken is not None
    assert (taken.state, taken.owner, taken.version) == (EntryState.CLAIMED, "b", 2)


def test_an_expired_started_claim_turns_unknown_and_is_never_claimed_again() -> None:
    started = on_start(_claimed(), KEY, "a", START)
    unknown = on_claim(started, KEY, "b", START + TTL, TTL)
    assert unknown is not None
    assert (unknown.state, unknown.owner) == (EntryState.UNKNOWN, "a")
    assert on_claim(unknown, KEY, "c", START + 10 * TTL, TTL) is None


def test_an_attempt_cannot_start_on_a_lapsed_or_foreign_claim() -> None:
    with pytest.raises(LedgerConflict, match="cannot start for 'a': it is claimed by 'a'"):
        on_start(_claimed(), KEY, "a", START + TTL)
    with pytest.raises(LedgerConflict, match="it is claimed by 'a'"):
        on_start(_claimed(), KEY, "b", START)


def test_done_needs_a_recorded_start_but_failed_does_not() -> None:
    with pytest.raises(LedgerConflict, match="cannot record Done"):
        on_finish(_claimed(), KEY, "a", Done("id"))
    assert on_finish(_claimed(), KEY, "a", Failed("opted out")).state is EntryState.FAILED


def test_the_owner_settles_its_entry_after_it_turned_unknown_but_not_after_a_resolution() -> None:
    started = on_start(_claimed(), KEY, "a", START)
    unknown = on_claim(started, KEY, "b", START + TTL, TTL)
    assert unknown is not None
    assert on_finish(unknown, KEY, "a", Done("late-id")).detail == "late-id"
    resolved = on_resolve(unknown, KEY, Failed("never arrived"))
    assert on_finish(resolved, KEY, "a", Done("late-id")) == resolved


def test_only_an_unknown_entry_is_resolved() -> None:
    with pytest.raises(LedgerConflict, match="cannot resolve: it is claimed"):
        on_resolve(_claimed(), KEY, Done("id"))
