"""A deadline that travels (domain/deadline.py) and the one retry loop that respects it
(Backoff.attempts): a child never outlives its parent, and no retry starts without time left."""

from __future__ import annotations

import asyncio
import math

from hypothesis import given
from hypothesis import strategies as st

from domain.backoff import Backoff
from domain.deadline import Deadline

seconds = st.floats(0, 10_000, allow_nan=False)


class FakeClock:
    """Time that moves only when something sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@given(parent=seconds, child=seconds, elapsed=seconds)
def test_a_child_deadline_never_outlives_its_parent(
    parent: float, child: float, elapsed: float
) -> None:
    clock = FakeClock()
    outer = Deadline.after(parent, clock)
    clock.sleep(elapsed)
    inner = outer.child(child)
    assert inner.at <= outer.at
    assert inner.remaining() <= outer.remaining()
    assert inner.remaining() <= child + 1e-6  # float rounding of clock + seconds - clock


@given(parent=seconds, share=st.floats(0.01, 1.0))
def test_a_share_of_the_time_left_is_no_more_than_that_share(parent: float, share: float) -> None:
    outer = Deadline.after(parent, FakeClock())
    assert outer.fraction(share).remaining() <= parent * share + 1e-9


def test_an_unbounded_deadline_leaves_timeouts_alone() -> None:
    never = Deadline.never(FakeClock())
    assert not never.bounded and math.isinf(never.remaining())
    assert never.cap(30.0) == 30.0 and never.child(5.0).remaining() == 5.0


@given(budget=st.floats(0.0, 100.0), base=st.floats(0.01, 5.0), retries=st.integers(0, 30))
def test_no_retry_starts_after_the_deadline_and_no_wait_sleeps_past_it(
    budget: float, base: float, retries: int
) -> None:
    clock = FakeClock()
    deadline = Deadline.after(budget, clock)
    backoff = Backoff(base, base * 8, retries=retries, sleep=clock.sleep, random=lambda: 0.75)
    started_at = [clock.now for _ in backoff.attempts(deadline)]
    assert len(started_at) <= backoff.tries
    assert all(at < deadline.at or (at == 0.0 and budget == 0.0) for at in started_at[1:])
    assert clock.now <= max(budget, 0.0)


@given(retries=st.integers(0, 30))
def test_without_a_deadline_every_try_of_the_budget_is_made(retries: int) -> None:
    clock = FakeClock()
    backoff = Backoff(0.1, 1.0, retries=retries, sleep=clock.sleep, random=lambda: 0.5)
    assert list(backoff.attempts()) == list(range(retries + 1))


def test_a_deadline_already_passed_makes_no_try() -> None:
    clock = FakeClock()
    assert list(Backoff(sleep=clock.sleep).attempts(Deadline.after(0.0, clock))) == []


def test_the_asyncio_form_spaces_and_bounds_the_tries_alike() -> None:
    clock = FakeClock()

    async def sleep(seconds: float) -> None:
        clock.sleep(seconds)

    async def tries() -> list[int]:
        backoff = Backoff(1.0, 4.0, retries=10, random=lambda: 1.0)
        deadline = Deadline.after(6.5, clock)
        return [n async for n in backoff.attempts_async(deadline, sleep=sleep)]

    # waits of 1, 2, 4 s: the third would end at 7 s, past the 6.5 s deadline
    assert asyncio.run(tries()) == [0, 1, 2]
    assert clock.now == 3.0
