"""The scored file's lease (domain/scoring/lease.py): one holder at a time, renewed before it
runs short, taken over only once expired or released, never blocking past its term."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from returns.pipeline import is_successful

from adapters.clock import FixedClock
from domain.models import ObjectRef
from domain.scoring.lease import FileLease, LeaseHeld
from tests.support.memory_objects import InMemoryObjectStore

LEASE = ObjectRef("b", "progress/c1.t/lease.json")
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def lease(store: InMemoryObjectStore, clock: FixedClock, holder: str) -> FileLease:
    return FileLease(store, LEASE, holder, clock, seconds=120)


def test_a_second_run_is_refused_while_the_first_holds_the_lease() -> None:
    store, clock = InMemoryObjectStore(), FixedClock(T0)
    assert is_successful(lease(store, clock, "first").acquire())
    clock.at = T0 + timedelta(seconds=119)
    refused = lease(store, clock, "second").acquire().failure()
    assert refused == LeaseHeld("first", T0 + timedelta(seconds=120))
    assert "another run (first) holds this file until 2026-12-01T12:02:00Z" in str(refused)


def test_a_crashed_runs_lease_is_taken_over_once_it_expires() -> None:
    store, clock = InMemoryObjectStore(), FixedClock(T0)
    crashed = lease(store, clock, "crashed")
    assert is_successful(crashed.acquire())  # and then the process dies: no release
    clock.at = T0 + timedelta(seconds=120)
    retry = lease(store, clock, "retry")
    assert is_successful(retry.acquire())
    assert not crashed.keep()  # were it alive after all, it learns it lost the file
    assert retry.keep()


def test_a_released_lease_is_taken_at_once() -> None:
    store, clock = InMemoryObjectStore(), FixedClock(T0)
    first = lease(store, clock, "first")
    assert is_successful(first.acquire())
    first.release()
    assert is_successful(lease(store, clock, "second").acquire())


def test_the_holder_renews_when_less_than_half_its_term_is_left() -> None:
    store, clock = InMemoryObjectStore(), FixedClock(T0)
    holder = lease(store, clock, "holder")
    assert is_successful(holder.acquire())
    version = store.read_versioned(LEASE)
    clock.at = T0 + timedelta(seconds=59)
    assert holder.keep() and store.read_versioned(LEASE) == version  # 61 s left: no write
    clock.at = T0 + timedelta(seconds=61)
    assert holder.keep() and store.read_versioned(LEASE) != version  # renewed
    clock.at = T0 + timedelta(seconds=61 + 119)
    refused = lease(store, clock, "other").acquire().failure()
    assert refused.expires_at == T0 + timedelta(seconds=61 + 120)


def test_two_runs_racing_for_a_free_lease_have_one_winner() -> None:
    store, clock = InMemoryObjectStore(), FixedClock(T0)
    a, b = lease(store, clock, "a"), lease(store, clock, "b")
    # Both read "no lease"; b writes first: a's conditional create then fails.
    assert store.read_versioned(LEASE) is None
    assert is_successful(b.acquire())
    store_read = store.read_versioned

    def stale_read(ref: ObjectRef) -> tuple[bytes, str] | None:
        store.read_versioned = store_read  # type: ignore[method-assign]
        return None  # what a read taken before b's write saw

    store.read_versioned = stale_read  # type: ignore[method-assign]
    assert a.acquire().failure() == LeaseHeld("b", T0 + timedelta(seconds=120))


def test_an_unreadable_lease_object_counts_as_expired() -> None:
    store, clock = InMemoryObjectStore({LEASE: b"not a lease"}), FixedClock(T0)
    assert is_successful(lease(store, clock, "run").acquire())


def test_a_lease_has_a_positive_term() -> None:
    with pytest.raises(ValueError, match="more than 0 s"):
        FileLease(InMemoryObjectStore(), LEASE, "run", FixedClock(T0), seconds=0)
