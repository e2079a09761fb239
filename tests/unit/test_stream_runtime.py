from __future__ import annotations

import pytest

from domain.backoff import Backoff, no_wait
from streams.runtime import run_batch
from tests.support.stream_fakes import ScriptedWorker
from tests.support.stream_records import batch_of


def test_a_batch_handled_first_time_reports_its_counts() -> None:
    worker = ScriptedWorker()
    outcome = run_batch(worker, batch_of([b"{}", b"nope"]), backoff=no_wait())
    assert outcome.handled and not outcome.exhausted
    assert outcome.attempts == 1
    assert outcome.counts is not None
    assert (outcome.counts.handled, outcome.counts.dead_lettered) == (1, 1)


def test_the_whole_batch_is_replayed_after_each_transient_failure() -> None:
    waits: list[float] = []
    backoff = Backoff(
        base_seconds=1.0, cap_seconds=4.0, retries=5, sleep=waits.append, random=lambda: 0.5
    )
    worker = ScriptedWorker(transient_failures=3)
    batch = batch_of([b"{}", b"{}", b"{}"])
    outcome = run_batch(worker, batch, backoff=backoff)
    assert outcome.attempts == 4
    assert worker.batches == [[r.sequence_number for r in batch]]
    assert waits == [0.5, 1.0, 2.0]  # full jitter (here half) of 1, 2, 4 s


def test_a_spent_budget_is_reported_not_raised() -> None:
    batch = batch_of([b"{}"])
    worker = ScriptedWorker(failing=frozenset({batch[0].sequence_number}))
    outcome = run_batch(worker, batch, backoff=no_wait(retries=2))
    assert outcome.exhausted
    assert outcome.attempts == 3
    assert worker.calls == 3
    assert outcome.last_error is not None
    assert outcome.last_error.dependency == "fake-dependency"


def test_a_bug_propagates_instead_of_counting_as_handled() -> None:
    class Broken(ScriptedWorker):
        def __call__(self, batch):  # type: ignore[no-untyped-def]
            raise ZeroDivisionError("bug")

    with pytest.raises(ZeroDivisionError):
        run_batch(Broken(), batch_of([b"{}"]), backoff=no_wait())


def test_an_empty_batch_is_not_sent_to_the_worker() -> None:
    worker = ScriptedWorker()
    assert run_batch(worker, [], backoff=no_wait()).handled
    assert worker.calls == 0


def test_batch_counts_add_up_field_by_field_and_detail_by_key():
    from domain.streaming import BatchCounts

    first = BatchCounts(received=3, handled=2, dead_lettered=1, detail={"a": 1, "b": 2})
    second = BatchCounts(received=4, handled=1, filtered=3, detail={"b": 5, "c": 1})

    total = first + second

    assert total == BatchCounts(7, 3, 3, 1, {"a": 1, "b": 7, "c": 1})
    assert first.detail == {"a": 1, "b": 2}, "adding must not change an operand"


class _FakeClock:
    """Time that moves only when the runtime sleeps (or a test advances it)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_failing_batch_is_replayed_until_its_deadline_and_no_longer() -> None:
    clock = _FakeClock()
    backoff = Backoff(base_seconds=1.0, cap_seconds=8.0, retries=10**6, sleep=clock.sleep)
    batch = batch_of([b"{}"])
    worker = ScriptedWorker(failing=frozenset({batch[0].sequence_number}))
    outcome = run_batch(worker, batch, backoff=backoff, deadline_seconds=60.0, clock=clock)
    assert outcome.exhausted
    assert clock.now <= 60.0, "slept past the deadline"
    assert worker.calls == outcome.attempts > 5  # retried throughout, not a fixed handful


def test_a_dependency_that_recovers_before_the_deadline_gets_the_batch_handled() -> None:
    clock = _FakeClock()
    backoff = Backoff(base_seconds=1.0, cap_seconds=2.0, retries=10**6, sleep=clock.sleep)
    worker = ScriptedWorker(transient_failures=20)
    outcome = run_batch(
        worker, batch_of([b"{}"]), backoff=backoff, deadline_seconds=600.0, clock=clock
    )
    assert outcome.handled and outcome.attempts == 21


def test_a_call_that_never_returns_is_abandoned_at_the_deadline() -> None:
    import threading

    release = threading.Event()

    class Hung(ScriptedWorker):
        def __call__(self, batch):  # type: ignore[no-untyped-def]
            release.wait()
            return super().__call__(batch)

    try:
        outcome = run_batch(
            Hung(), batch_of([b"{}"]), deadline_seconds=0.2, abandon_hung_calls=True
        )
    finally:
        release.set()
    assert outcome.exhausted
    assert outcome.last_error is not None and "unanswered" in str(outcome.last_error)
