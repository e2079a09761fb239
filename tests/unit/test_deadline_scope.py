"""The deadline reaches the calls: the batch runtime puts the batch's deadline in force for the
worker (in the hung-call thread too), and a Lambda invocation's remaining time is the root."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

from adapters import deadline as deadlines
from domain.backoff import no_wait
from domain.deadline import Deadline
from domain.streaming import BatchCounts, IncomingRecord
from entrypoints.runtime import REPORT_MARGIN_SECONDS, invocation_deadline
from streams.runtime import run_batch
from tests.support.stream_records import batch_of


class SeesTheDeadline:
    name = "sees-the-deadline"

    def __init__(self) -> None:
        self.seen: list[float | None] = []

    def __call__(self, batch: Sequence[IncomingRecord]) -> BatchCounts:
        current = deadlines.current()
        self.seen.append(None if current is None else current.remaining())
        return BatchCounts()


def test_the_batch_deadline_is_in_force_for_the_workers_calls() -> None:
    for abandon_hung_calls in (False, True):
        worker = SeesTheDeadline()
        outcome = run_batch(
            worker,
            batch_of([b"{}"]),
            backoff=no_wait(),
            deadline_seconds=30.0,
            abandon_hung_calls=abandon_hung_calls,
            scope=deadlines.within,
        )
        assert outcome.handled
        (seen,) = worker.seen
        assert seen is not None and 0 < seen <= 30.0


def test_an_inner_scope_never_outlives_the_one_around_it() -> None:
    with deadlines.within(Deadline.after(5.0)) as outer:
        with deadlines.within(Deadline.after(500.0)) as inner:
            assert inner is outer
        with deadlines.within(Deadline.after(1.0)) as tighter:
            assert tighter is not None and tighter.remaining() <= 1.0
    assert deadlines.current() is None


def test_a_lambda_invocations_remaining_time_less_the_margin_is_the_root_deadline() -> None:
    context = SimpleNamespace(get_remaining_time_in_millis=lambda: 60_000)
    root = invocation_deadline(context)
    assert root is not None and root.remaining() <= 60.0 - REPORT_MARGIN_SECONDS
    assert invocation_deadline(None) is None
