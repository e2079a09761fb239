"""`leased`: the one wrapper of every leased worker: the work runs holding the lease and gives it
back however it ends; a second run is answered busy and runs nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from returns.result import Failure

from adapters.clock import FixedClock
from domain.lease import leased
from domain.models import LeaseHeld
from domain.ports import Lease
from tests.support.memory_leases import MemoryLeases


def _leases() -> MemoryLeases:
    return MemoryLeases(FixedClock(datetime(2024, 5, 1, tzinfo=UTC)), holder="run-1")


def test_the_work_runs_holding_the_lease_and_gives_it_back() -> None:
    leases = _leases()
    other = leases.sharing("run-2")
    during: list[bool] = []

    def work(lease: Lease) -> str:
        during.append(isinstance(other.acquire("wave"), Failure))
        return "done"

    assert leased(leases, "wave", lambda held: f"busy {held.holder}", work) == "done"
    assert during == [True]  # held while it ran
    assert leased(other, "wave", lambda held: "busy", lambda lease: "run-2 ran") == "run-2 ran"


def test_a_second_run_is_answered_busy_naming_the_holder_and_runs_nothing() -> None:
    leases = _leases()
    ran: list[str] = []

    def second(lease: Lease) -> str:
        ran.append("second")
        return "ran"

    def first(lease: Lease) -> str:
        return leased(leases.sharing("run-2"), "wave", _busy, second)

    assert leased(leases, "wave", _busy, first) == "busy: run-1"
    assert ran == []


def test_the_lease_is_given_back_when_the_work_raises() -> None:
    leases = _leases()

    def crash(lease: Lease) -> str:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        leased(leases, "wave", _busy, crash)
    assert leased(leases.sharing("run-2"), "wave", _busy, lambda lease: "retried") == "retried"


def _busy(held: LeaseHeld) -> str:
    return f"busy: {held.holder}"
