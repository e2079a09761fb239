"""A claim naming owners proven dead (domain/once.py on_claim's `dead_owners`): their entries
count as expired at once, under the rules for expired entries; nobody else's do."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.once import (
    EXPIRED_AFTER_START,
    OWNER_DEAD_AFTER_START,
    Entry,
    EntryState,
    check_dead_owners,
    on_claim,
)

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
TTL = timedelta(minutes=10)
LIVE = NOW + timedelta(minutes=9)  # well inside the dead run's claim ttl
DEAD = frozenset({"host/4242/dead0123"})


def entry(state: EntryState, owner: str = "host/4242/dead0123", version: int = 3) -> Entry:
    return Entry("sms#w#fan-1", state, owner, LIVE, version)


def test_a_dead_owners_live_claim_is_taken_over_at_once() -> None:
    new = on_claim(entry(EntryState.CLAIMED), "sms#w#fan-1", "run-b", NOW, TTL, DEAD)
    assert new == Entry("sms#w#fan-1", EntryState.CLAIMED, "run-b", NOW + TTL, 4)


def test_a_dead_owners_started_entry_turns_unknown_and_is_not_taken() -> None:
    new = on_claim(entry(EntryState.STARTED), "sms#w#fan-1", "run-b", NOW, TTL, DEAD)
    assert new is not None
    assert (new.state, new.owner, new.detail, new.version) == (
        EntryState.UNKNOWN,
        "host/4242/dead0123",  # still the dead run's: the claimer never acts on it
        OWNER_DEAD_AFTER_START,
        4,
    )


@pytest.mark.parametrize("state", [EntryState.CLAIMED, EntryState.STARTED])
def test_another_owners_live_claim_is_respected(state: EntryState) -> None:
    held = entry(state, owner="host/4242/dead0123x")  # a name that only begins like the dead
    assert on_claim(held, "sms#w#fan-1", "run-b", NOW, TTL, DEAD) is None


@pytest.mark.parametrize("state", [EntryState.DONE, EntryState.FAILED, EntryState.UNKNOWN])
def test_a_dead_owners_settled_entry_stands(state: EntryState) -> None:
    assert on_claim(entry(state), "sms#w#fan-1", "run-b", NOW, TTL, DEAD) is None


def test_a_claimer_cannot_name_itself_dead() -> None:
    with pytest.raises(ValueError, match="cannot name itself dead: 'run-b'"):
        check_dead_owners("run-b", frozenset({"run-b"}))


@given(
    state=st.sampled_from(list(EntryState)),
    owner=st.sampled_from(["dead", "live", "dead-2", "Dead"]),
    minutes=st.integers(-20, 20),
)
def test_naming_a_dead_owner_changes_only_that_owners_entries(
    state: EntryState, owner: str, minutes: int
) -> None:
    """For any entry: naming `dead` decides as if that entry had expired when `dead` holds
    it, and exactly as without the name otherwise."""
    current = Entry("k", state, owner, NOW + timedelta(minutes=minutes), 5)
    named = on_claim(current, "k", "run-b", NOW, TTL, frozenset({"dead"}))
    if owner == "dead":
        expected = on_claim(replace(current, expires_at=NOW), "k", "run-b", NOW, TTL)
        if expected is not None and expected.owner == "dead":  # a STARTED one turned UNKNOWN
            why = OWNER_DEAD_AFTER_START if minutes > 0 else EXPIRED_AFTER_START
            expected = replace(expected, expires_at=current.expires_at, detail=why)
        assert named == expected
    else:
        assert named == on_claim(current, "k", "run-b", NOW, TTL)
