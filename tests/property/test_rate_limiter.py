"""The rate limiter with a fake clock: no one-second window ever holds more than the rate (the
first second included), callers go in the order they asked, a weight the limiter can never
hold is refused by name, it is safe from threads and asyncio, and a throttle's cap on calls in
flight is never exceeded."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.rate_limiter import Throttle, TokenBucketLimiter
from domain.rate import RateSchedule


def worst_second(times: Sequence[float], weights: Sequence[float]) -> float:
    """The most units given in any half-open second [t, t + 1) (one starting at a given time
    holds the most)."""
    return max(
        sum(w for a, w in zip(times, weights, strict=True) if s <= a < s + 1.0) for s in times
    )


callers = st.lists(
    st.tuples(st.floats(0, 5, allow_nan=False), st.integers(1, 6)), min_size=1, max_size=60
)


@given(callers, st.integers(6, 20), st.data())
def test_no_one_second_window_holds_more_than_the_rate(
    arrivals: list[tuple[float, int]], rate: int, data: st.DataObject
) -> None:
    burst = data.draw(st.integers(6, rate))
    schedule = RateSchedule(rate, burst=burst)
    arrivals.sort()
    weights = [w for _, w in arrivals]
    times = [schedule.reserve(w, t) for t, w in arrivals]
    assert worst_second(times, weights) <= rate
    # and it does not hold callers back for nothing: all arriving at once, every second but
    # the last is given more than `rate - the next weight` units (the next did not fit)
    schedule = RateSchedule(rate, burst=burst)
    last = max(schedule.reserve(w, 0.0) for w in weights)
    assert last <= sum(weights) / (rate - max(weights) + 1) + 1.0


@given(callers, st.integers(6, 20))
def test_callers_are_served_in_the_order_they_asked(
    arrivals: list[tuple[float, int]], rate: int
) -> None:
    schedule = RateSchedule(rate)
    arrivals.sort()
    times = [schedule.reserve(w, t) for t, w in arrivals]
    assert times == sorted(times)
    assert all(at >= t for at, (t, _) in zip(times, arrivals, strict=True))


def test_a_light_caller_does_not_overtake_a_heavy_one_waiting_before_it() -> None:
    schedule = RateSchedule(10)
    assert schedule.reserve(9, 0.0) == 0.0
    heavy = schedule.reserve(6, 0.0)  # waits for the first second to pass
    assert heavy == 1.0
    assert schedule.reserve(1, 0.0) == 1.0  # would fit at 0.0, goes after the heavy one


def test_the_initial_burst_is_one_seconds_worth_not_two() -> None:
    schedule = RateSchedule(100)
    times = [schedule.reserve(1, 0.0) for _ in range(300)]
    assert sum(1 for t in times if t < 1.0) == 100
    assert sum(1 for t in times if t < 2.0) == 200


def test_a_weight_above_the_capacity_is_refused_by_name() -> None:
    limiter = TokenBucketLimiter(10, burst=4)
    with pytest.raises(ValueError, match=r"a weight of 5 units can never go: .* at most 4 units"):
        limiter.acquire(5)
    with pytest.raises(ValueError, match="weight must be positive"):
        limiter.acquire(0)


class FakeClock:
    """Time moves only when someone sleeps; sleeps are recorded, not waited."""

    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.slept.append(seconds)

    async def sleep_async(self, seconds: float) -> None:
        self.slept.append(seconds)
        await asyncio.sleep(0)


def test_threads_and_tasks_share_one_limiter_within_the_rate() -> None:
    """8 threads and 8 asyncio tasks at once, the clock standing still: the times they were
    given (now + the wait) never put more than the rate in a second."""
    clock = FakeClock()
    limiter = TokenBucketLimiter(50, clock=clock)

    def thread_work() -> None:
        for _ in range(25):
            limiter.acquire(2)

    async def tasks() -> None:
        async def one() -> None:
            for _ in range(25):
                await limiter.acquire_async(2)

        await asyncio.gather(*(one() for _ in range(8)))

    with ThreadPoolExecutor(8) as pool:
        done = [pool.submit(thread_work) for _ in range(8)]
        asyncio.run(tasks())
        for future in done:
            future.result()
    times = sorted([0.0] * (16 * 25 - len(clock.slept)) + clock.slept)
    assert len(times) == 16 * 25
    assert worst_second(times, [2] * len(times)) <= 50
    assert max(times) <= 16 * 25 * 2 / 50  # 800 units at 50/s: the last within 16 s


@given(st.integers(1, 5), st.lists(st.integers(0, 3), min_size=1, max_size=30))
def test_a_throttles_cap_on_calls_in_flight_is_never_exceeded(cap: int, yields: list[int]) -> None:
    throttle = Throttle(TokenBucketLimiter(1_000, clock=FakeClock()), max_in_flight=cap)
    in_flight = 0
    most = 0

    async def call(pauses: int) -> None:
        nonlocal in_flight, most
        async with throttle.slot_async(1):
            in_flight += 1
            most = max(most, in_flight)
            for _ in range(pauses):
                await asyncio.sleep(0)
            in_flight -= 1

    async def run() -> None:
        await asyncio.gather(*(call(p) for p in yields))

    asyncio.run(run())
    assert most <= cap
