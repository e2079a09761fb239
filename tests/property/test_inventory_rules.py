"""domain/inventory.py: the inventory's rules, pure, shared by DynamoDB and memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from domain.inventory import HOLD, AssignOutcome, assign_outcome, hold_until, is_free, seen_status

NOW = datetime(2026, 12, 1, tzinfo=UTC)
STATUSES = st.sampled_from(["available", "reserved", "assigned", "issued"])
OFFSETS = st.one_of(st.none(), st.integers(-100_000, 100_000).map(lambda s: timedelta(seconds=s)))


@given(status=STATUSES, offset=OFFSETS)
def test_a_code_is_free_when_available_or_its_hold_ran_out_and_never_once_assigned(
    status: str, offset: timedelta | None
) -> None:
    free_at = None if offset is None else NOW + offset
    free = is_free(status, free_at, NOW)
    expired = free_at is not None and free_at <= NOW
    assert free == (status == "available" or (status == "reserved" and expired))
    assert seen_status(status, free_at, NOW) == ("available" if free else status)


def test_a_hold_lasts_24_hours_from_the_call() -> None:
    assert hold_until(NOW) == NOW + timedelta(hours=24) == NOW + HOLD
    assert not is_free("reserved", hold_until(NOW), NOW + HOLD - timedelta(seconds=1))
    assert is_free("reserved", hold_until(NOW), NOW + HOLD)


@given(
    owner=st.sampled_from([None, "c1", "c2"]),
    status=st.one_of(st.none(), STATUSES),
    seen=st.booleans(),
)
def test_assigning_an_unseen_code_takes_it_another_campaigns_is_a_conflict_ours_is_idempotent(
    owner: str | None, status: str | None, seen: bool
) -> None:
    outcome = assign_outcome(owner, status, "c1", seen=seen)
    if not seen:
        assert outcome is AssignOutcome.UPDATED
    elif owner == "c2":
        assert outcome is AssignOutcome.CONFLICT
    elif status == "assigned":
        assert outcome is AssignOutcome.ALREADY
    else:
        assert outcome is AssignOutcome.UPDATED
