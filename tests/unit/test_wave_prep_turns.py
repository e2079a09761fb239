"""Waves of one campaign take turns through its selection lease (domain/wave_prep/turns.py):
waiting for a live holder, refused as busy without spending an attempt, taking a crashed
holder's lease over after its term, and a wave stalled past its lease recording nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from returns.result import Result, Success

from adapters.clock import FixedClock
from domain.models import LeaseHeld
from domain.ports import Lease
from domain.streaming import DependencyUnavailable
from domain.wave_prep.fans import EligibilityQuery, EligibleFan
from domain.wave_prep.turns import SelectionTurns
from tests.support.memory_leases import MemoryLeases, _Held
from tests.support.wave_world import BUCKET, CAMPAIGN, DATE_KEY, WaveWorld

OTHER_DAY = "2026-12-08"
MARKETS = [("m1", "NY", 2, "external")]


def fans(n: int) -> list[EligibleFan]:
    return [EligibleFan(f"g{i}", i / n, ("m1",), email=f"f{i}@example.com") for i in range(n)]


def selected(world: WaveWorld, date_key: str) -> set[str]:
    return {r["globalUserId"] for r in world.zip_files(date_key)["masterCodes/m1.csv"]}


def _never(_seconds: float) -> None:
    raise AssertionError("no wait expected")


def hold(world: WaveWorld, holder: str, seconds: float) -> None:
    """Another run holds the campaign's lease (a live wave, or one that crashed)."""
    at = world.clock.at
    world.leases.table[CAMPAIGN] = _Held(holder, at, at + timedelta(seconds=seconds))


@given(st.integers(1, 3600), st.none() | st.integers(0, 3600))
def test_a_wave_waits_its_setting_or_half_of_what_its_invocation_has_left(
    wait: int, left: int | None
) -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    turns = SelectionTurns(MemoryLeases(FixedClock(now)), _never, wait=timedelta(seconds=wait))
    deadline = None if left is None else now + timedelta(seconds=left)
    give_up = turns.give_up_at(now, deadline)
    assert give_up - now == timedelta(seconds=wait if left is None else min(wait, left / 2))


def test_a_wave_waits_for_a_live_wave_of_its_campaign_and_then_selects_after_it() -> None:
    world = WaveWorld(MARKETS, list[EligibleFan | str](fans(6)))
    hold(world, "wave 2026-12-08 on host/1/abc", 600)
    slept: list[float] = []

    def the_holder_finishes(seconds: float) -> None:
        slept.append(seconds)
        world.clock.at += timedelta(seconds=seconds)
        if len(slept) == 3:
            del world.leases.table[CAMPAIGN]  # released

    world.clock.sleep = the_holder_finishes  # type: ignore[method-assign]
    counts = world.run().unwrap()
    assert counts.selected == 2 and slept == [1.0, 1.0, 1.0]


def test_a_wave_that_waited_long_enough_is_refused_naming_the_holder_and_spends_nothing() -> None:
    world = WaveWorld(MARKETS, list[EligibleFan | str](fans(6)))
    hold(world, "wave 2026-12-08 on host/1/abc", 10_000)
    refused = world.run().failure()
    assert (refused.kind, refused.attempt, refused.retryable) == ("campaign_busy", None, True)
    assert "wave 2026-12-08 on host/1/abc" in refused.message
    status = world.status.current(CAMPAIGN, DATE_KEY)
    assert status is not None and status.attempts == 0 and status.extra["attemptSpent"] is False
    assert world.inventory.reserved == [] and not list(
        world.store.list_objects(BUCKET, f"wavePrep/{CAMPAIGN}/selected/")
    )
    del world.leases.table[CAMPAIGN]
    assert world.run().unwrap().attempt == 1  # the trigger again runs, as attempt 1


def test_a_crashed_waves_lease_is_taken_over_after_its_term() -> None:
    world = WaveWorld(MARKETS, list[EligibleFan | str](fans(6)))
    hold(world, "wave 2026-12-08 on host/1/dead", 90)  # never released: the run was killed
    assert world.run().unwrap().selected == 2


@dataclass
class StallingFans:
    """Fans, and at the `at`-th one the wave stalls (the hook runs) before going on."""

    fans: list[EligibleFan]
    at: int
    stall: Callable[[], None]

    def eligible_fans(
        self, campaign_id: str, query: EligibilityQuery
    ) -> Iterator[Result[EligibleFan, str]]:
        hook, self.at = self.at, -1
        for index, fan in enumerate(self.fans):
            if index == hook:
                self.stall()
            yield Success(fan)


def test_a_wave_stalled_past_its_lease_records_nothing_and_its_retry_sees_the_taker() -> None:
    world = WaveWorld(MARKETS, list[EligibleFan | str](fans(6)))
    world.leases = MemoryLeases(world.clock, seconds=120)
    other: list[set[str]] = []

    def stall_while_another_wave_runs() -> None:
        world.clock.sleep(500)  # stalled past the term: the lease is up for taking over
        world.run(date_key=OTHER_DAY).unwrap()
        other.append(selected(world, OTHER_DAY))

    world.source = StallingFans(fans(6), 3, stall_while_another_wave_runs)  # type: ignore[assignment]
    stalled = world.run().failure()
    assert (stalled.kind, stalled.attempt) == ("campaign_busy", None)
    assert "took over" in stalled.message
    assert other == [{"g5", "g4"}]
    assert not list(world.store.list_objects(BUCKET, f"wavePrep/{CAMPAIGN}/selected/{DATE_KEY}"))
    retried = world.run().unwrap()
    assert retried.attempt == 1 and selected(world, DATE_KEY) == {"g3", "g2"}


class _UnreleasableLeases:
    """Leases whose release meets an S3 outage."""

    def __init__(self, inner: MemoryLeases) -> None:
        self.inner = inner

    def acquire(self, name: str) -> Result[Lease, LeaseHeld]:
        return self.inner.acquire(name).map(_Unreleasable)

    def sharing(self, holder: str) -> _UnreleasableLeases:
        return _UnreleasableLeases(self.inner.sharing(holder))


class _Unreleasable:
    def __init__(self, lease: Lease) -> None:
        self.lease = lease

    def keep(self) -> bool:
        return self.lease.keep()

    def seconds_left(self) -> float:
        return self.lease.seconds_left()

    @property
    def taken_from_dead(self) -> str | None:
        return self.lease.taken_from_dead

    def release(self) -> None:
        raise DependencyUnavailable("s3", "release: connection reset")


def test_a_lease_that_cannot_be_released_does_not_fail_a_wave_that_selected() -> None:
    world = WaveWorld(MARKETS, list[EligibleFan | str](fans(6)))
    world.leases = _UnreleasableLeases(world.leases)  # type: ignore[assignment]
    assert world.run().unwrap().selected == 2
