"""A lease whose holder is provably dead (domain/lease.py, "A holder provably dead") is taken
over at once; any holder not proven dead (alive, unknown, an old lease without an identity)
keeps its term. The liveness here is a hand-written fake; adapters/process_liveness.py is tested
against real processes in tests/unit/test_process_liveness.py."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from returns.pipeline import is_successful

from adapters.clock import FixedClock
from adapters.leases import ObjectLeases
from domain.lease import BlobLease
from domain.models import LeaseHeld, ObjectRef, ProcessIdentity
from tests.support.memory_objects import InMemoryObjectStore

LEASE = ObjectRef("b", "progress/c1.t/lease.json")
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
KILLED = ProcessIdentity("ops-box", "boot-1", 4026531836, 4242, 987654)
RERUN = replace(KILLED, pid=4300, start_time=999000)


class FakeLiveness:
    """This process is `me`; the processes in `dead` are provably dead, all others are not."""

    def __init__(self, me: ProcessIdentity | None, dead: set[ProcessIdentity] | None = None):
        self.me, self.dead = me, dead or set()
        self.asked: list[ProcessIdentity] = []

    def identity(self) -> ProcessIdentity | None:
        return self.me

    def provably_dead(self, holder: ProcessIdentity) -> bool:
        self.asked.append(holder)
        return holder in self.dead


class EveryoneDead(FakeLiveness):
    """Calls any identity it is shown dead: a lease it still refuses was never asked about."""

    def provably_dead(self, holder: ProcessIdentity) -> bool:
        self.asked.append(holder)
        return True


def lease(
    store: InMemoryObjectStore, clock: FixedClock, holder: str, liveness: FakeLiveness | None
) -> BlobLease:
    return BlobLease(store, LEASE, holder, clock, 600, liveness=liveness)


def killed_holder(store: InMemoryObjectStore, clock: FixedClock) -> BlobLease:
    crashed = lease(store, clock, "ops-box/4242/run1", FakeLiveness(KILLED))
    assert is_successful(crashed.acquire())  # then kill -9: no release
    return crashed


def stored(store: InMemoryObjectStore) -> dict[str, Any]:
    found = store.read_versioned(LEASE)
    assert found is not None
    state: dict[str, Any] = json.loads(found[0])
    return state


def test_the_lease_records_its_holders_process_beside_the_holder() -> None:
    store, clock = InMemoryObjectStore(), FixedClock(T0)
    killed_holder(store, clock)
    assert stored(store)["holder"] == "ops-box/4242/run1"
    assert stored(store)["process"] == {
        "host": "ops-box",
        "bootId": "boot-1",
        "pidNamespace": 4026531836,
        "pid": 4242,
        "startTime": 987654,
    }


def test_a_provably_dead_holders_lease_is_taken_at_once_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, clock = InMemoryObjectStore(), FixedClock(T0)
    crashed = killed_holder(store, clock)
    clock.at = T0 + timedelta(seconds=1)  # 599 s of its term left
    with caplog.at_level(logging.INFO, logger="domain.lease"):
        rerun = lease(store, clock, "ops-box/4300/run2", FakeLiveness(RERUN, {KILLED}))
        assert is_successful(rerun.acquire())
    assert stored(store)["holder"] == "ops-box/4300/run2"
    assert stored(store)["process"]["pid"] == RERUN.pid
    clock.at = T0 + timedelta(seconds=301)
    assert rerun.keep()
    assert not crashed.keep()  # were it alive after all, it would learn at its next renewal
    [line] = [r for r in caplog.records if "dead holder" in r.getMessage()]
    assert line.getMessage() == "took over the lease of a dead holder early"
    assert (line.__dict__["deadHolder"], line.__dict__["pid"]) == ("ops-box/4242/run1", 4242)


def test_a_live_holder_is_refused_until_its_term_ends() -> None:
    store, clock = InMemoryObjectStore(), FixedClock(T0)
    killed_holder(store, clock)
    liveness = FakeLiveness(RERUN, dead=set())
    refused = lease(store, clock, "ops-box/4300/run2", liveness).acquire().failure()
    assert refused == LeaseHeld("ops-box/4242/run1", T0 + timedelta(seconds=600))
    assert liveness.asked == [KILLED]
    clock.at = T0 + timedelta(seconds=600)
    assert is_successful(lease(store, clock, "ops-box/4300/run2", liveness).acquire())


def test_without_a_liveness_check_a_dead_holder_keeps_its_term_and_none_is_recorded() -> None:
    store, clock = InMemoryObjectStore(), FixedClock(T0)
    killed_holder(store, clock)
    assert is_failure_held(lease(store, clock, "rerun", None))
    clock.at = T0 + timedelta(seconds=600)
    assert is_successful(lease(store, clock, "rerun", None).acquire())
    assert "process" not in stored(store)


def is_failure_held(candidate: BlobLease) -> bool:
    return isinstance(candidate.acquire().failure(), LeaseHeld)


def old_lease(store: InMemoryObjectStore, process: object = None) -> None:
    """A lease as written before holders recorded their process (or with `process` as given)."""
    state: dict[str, Any] = {
        "holder": "ops-box/4242/run1",
        "expiresAt": (T0 + timedelta(seconds=600)).isoformat(),
        "released": False,
        "renewals": 0,
    }
    if process is not None:
        state["process"] = process
    assert store.put_versioned(LEASE, json.dumps(state).encode(), None) is not None


def test_an_old_lease_without_a_process_is_refused_until_its_term_ends() -> None:
    store, clock = InMemoryObjectStore(), FixedClock(T0)
    old_lease(store)
    liveness = EveryoneDead(RERUN)
    assert is_failure_held(lease(store, clock, "rerun", liveness))
    assert liveness.asked == []
    clock.at = T0 + timedelta(seconds=600)
    assert is_successful(lease(store, clock, "rerun", liveness).acquire())


GOOD = {"host": "h", "bootId": "b", "pidNamespace": 1, "pid": 2, "startTime": 3}


@pytest.mark.parametrize(
    "process",
    [
        "ops-box/4242",
        [4242],
        {},
        {**GOOD, "pid": "4242"},
        {**GOOD, "pid": True},
        {**GOOD, "pid": 0},
        {**GOOD, "startTime": -1},
        {**GOOD, "startTime": 1.5},
        {**GOOD, "host": ""},
        {**GOOD, "bootId": None},
        {k: v for k, v in GOOD.items() if k != "pidNamespace"},
    ],
    ids=repr,
)
def test_a_holder_with_a_malformed_process_is_refused_until_its_term_ends(process: Any) -> None:
    """Unknown is not dead: the lease still holds (a malformed lease would count as expired)."""
    store, clock = InMemoryObjectStore(), FixedClock(T0)
    old_lease(store, process)
    liveness = EveryoneDead(RERUN)
    refused = lease(store, clock, "rerun", liveness).acquire().failure()
    assert refused == LeaseHeld("ops-box/4242/run1", T0 + timedelta(seconds=600))
    assert liveness.asked == []


def test_two_reruns_racing_for_a_dead_holders_lease_have_one_winner() -> None:
    store, clock = InMemoryObjectStore(), FixedClock(T0)
    killed_holder(store, clock)
    seen = store.read_versioned(LEASE)  # what both re-runs read: the dead holder's lease
    a = lease(store, clock, "a", FakeLiveness(RERUN, {KILLED}))
    b = lease(store, clock, "b", FakeLiveness(replace(RERUN, pid=4301), {KILLED}))
    assert is_successful(b.acquire())
    store_read = store.read_versioned

    def stale_read(ref: ObjectRef) -> tuple[bytes, str] | None:
        store.read_versioned = store_read  # type: ignore[method-assign]
        return seen  # a read taken before b's write

    store.read_versioned = stale_read  # type: ignore[method-assign]
    assert a.acquire().failure() == LeaseHeld("b", T0 + timedelta(seconds=600))
    assert stored(store)["holder"] == "b"


def test_object_leases_take_a_dead_holders_lease_at_once() -> None:
    store, clock = InMemoryObjectStore(), FixedClock(T0)

    def leases(holder: str, liveness: FakeLiveness) -> ObjectLeases:
        return ObjectLeases(
            store, "b", "leases/", holder=holder, clock=clock, seconds=600, liveness=liveness
        )

    assert is_successful(leases("killed", FakeLiveness(KILLED)).acquire("w1"))
    assert not is_successful(leases("rerun", FakeLiveness(RERUN)).acquire("w1"))
    assert is_successful(leases("rerun", FakeLiveness(RERUN, {KILLED})).acquire("w1"))


identities = st.builds(
    ProcessIdentity,
    host=st.text(min_size=1),
    boot_id=st.text(min_size=1),
    pid_namespace=st.integers(1, 2**64),
    pid=st.integers(1, 2**22),
    start_time=st.integers(1, 2**63),
)


@given(holder=identities, other=identities)
def test_only_the_recorded_process_proven_dead_lets_a_rerun_in_early(
    holder: ProcessIdentity, other: ProcessIdentity
) -> None:
    store, clock = InMemoryObjectStore(), FixedClock(T0)
    assert is_successful(lease(store, clock, "first", FakeLiveness(holder)).acquire())
    # Another process proven dead is not the holder: refused (unless it is the holder).
    others = lease(store, clock, "x", FakeLiveness(other, {other})).acquire()
    assert is_successful(others) == (other == holder)
    # The identity survives the lease's JSON exactly: the check sees what the holder wrote.
    assert is_successful(lease(store, clock, "rerun", FakeLiveness(other, {holder})).acquire())


def test_a_process_that_cannot_tell_who_it_is_records_no_process() -> None:
    """Not Linux, or /proc unreadable: the lease is as before, and its holder keeps its term."""
    store, clock = InMemoryObjectStore(), FixedClock(T0)
    assert is_successful(lease(store, clock, "first", FakeLiveness(None)).acquire())
    assert "process" not in stored(store)
    liveness = EveryoneDead(RERUN)
    assert is_failure_held(lease(store, clock, "rerun", liveness))
    assert liveness.asked == []


def test_a_lease_taken_from_a_dead_holder_names_it_and_no_other_lease_does() -> None:
    """The name of the holder proven dead (the owner of its ledger claims) is what a re-run
    hands to its ledger; a lease taken free, or from a holder not proven dead (released or
    after the term), names nobody."""
    store, clock = InMemoryObjectStore(), FixedClock(T0)
    first = lease(store, clock, "ops-box/4242/run1", FakeLiveness(KILLED, {RERUN}))
    assert is_successful(first.acquire())
    assert first.taken_from_dead is None  # free
    first.release()
    again = lease(store, clock, "ops-box/4242/run1b", FakeLiveness(KILLED, {RERUN}))
    assert is_successful(again.acquire())
    assert again.taken_from_dead is None  # released
    clock.at = T0 + timedelta(seconds=600)
    late = lease(store, clock, "ops-box/4242/run1c", FakeLiveness(KILLED))
    assert is_successful(late.acquire())
    assert late.taken_from_dead is None  # after its term, its holder not proven dead
    clock.at += timedelta(seconds=1)
    rerun = lease(store, clock, "ops-box/4300/run2", FakeLiveness(RERUN, {KILLED}))
    assert is_successful(rerun.acquire())
    assert rerun.taken_from_dead == "ops-box/4242/run1c"
    assert rerun.keep() and rerun.taken_from_dead == "ops-box/4242/run1c"


def test_object_leases_name_the_dead_holder_they_took_over_from() -> None:
    store, clock = InMemoryObjectStore(), FixedClock(T0)

    def leases(holder: str, liveness: FakeLiveness) -> ObjectLeases:
        return ObjectLeases(
            store, "b", "leases/", holder=holder, clock=clock, seconds=600, liveness=liveness
        )

    assert is_successful(leases("killed", FakeLiveness(KILLED)).acquire("w1"))
    taken = leases("rerun", FakeLiveness(RERUN, {KILLED})).acquire("w1").unwrap()
    assert taken.taken_from_dead == "killed"


@pytest.mark.parametrize("how", ["after its term", "released"])
def test_a_dead_holders_lease_taken_after_its_term_or_release_still_names_it(how: str) -> None:
    """Its ledger claims outlive the lease (10 min against 2): a re-run 5 minutes after the
    kill, or after a run that released its lease and then died, may take them over at once."""
    store, clock = InMemoryObjectStore(), FixedClock(T0)
    crashed = killed_holder(store, clock)
    if how == "released":
        crashed.release()
    else:
        clock.at = T0 + timedelta(seconds=601)
    rerun = lease(store, clock, "ops-box/4300/run2", FakeLiveness(RERUN, {KILLED}))
    assert is_successful(rerun.acquire())
    assert rerun.taken_from_dead == "ops-box/4242/run1"
    alive = lease(store, clock, "ops-box/4400/run3", FakeLiveness(RERUN))
    rerun.release()
    assert is_successful(alive.acquire())
    assert alive.taken_from_dead is None  # run2's process (this one) is not proven dead
