"""What every runtime shares: run a stream worker on one batch, replaying it on transient failure
until the batch's wall-clock deadline.

A stream worker either handles the whole batch (every record handled, filtered or dead-lettered)
or raises DependencyUnavailable. On that error the *whole* batch is run again after a jittered
backoff (workers are idempotent per batch, so a replay writes the same lake objects and assigns
nothing twice), until the batch's deadline (`BATCH_DEADLINE_SECONDS`, default 120 s) has
passed. Then the outcome says it is abandoned, and the runtime gives it up the way it does:
the KCL child exits without checkpointing, the poller stops without checkpointing, the Lambda
handler reports the batch's records as failed. Each call inside is retried by one layer only
(botocore, the HTTP client, or the adapter for partial-batch resends); this is the only loop
around them, and the two do not stack: the batch's Deadline is in force while the worker runs
(`scope`: adapters/deadline.py `within`, handed in by the entry point), so every call inside,
its retries included, ends by it; a replay only starts while time is left (`Backoff.attempts`).

A hung call (an endpoint that accepts and never answers) is bounded too: with
`abandon_hung_calls` the worker runs in a daemon thread and the batch is abandoned when the
deadline passes mid-call. Only runtimes that then end their process may use it (the KCL child,
the poller's CLI): the abandoned call may still finish later, and in a process that carried on
it could write a stale copy of a batch after its replay. The Lambda handler does not: Lambda's
own timeout ends a hung invocation, and the event is retried whole.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from domain.backoff import Backoff
from domain.deadline import Deadline, DeadlineScope, unscoped
from domain.ports import StreamWorker
from domain.streaming import BatchCounts, DependencyUnavailable, IncomingRecord

_log = logging.getLogger(__name__)

# The deadline decides when a batch is given up, not a count of tries: waits of up to 0.1, 0.2,
# ... capped at 10 s between replays; the retry count is only a ceiling nobody reaches.
DEFAULT_BATCH_BACKOFF = Backoff(base_seconds=0.1, cap_seconds=10.0, retries=1_000_000)
# Two minutes: long enough for a throttled or restarting dependency, short enough that a lasting
# outage shows as an exit (and a supervisor restart) within minutes, not hours.
DEFAULT_BATCH_DEADLINE_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What became of one batch: handled (with counts) or abandoned after `attempts` tries."""

    counts: BatchCounts | None
    attempts: int
    last_error: DependencyUnavailable | None = None

    @property
    def handled(self) -> bool:
        return self.counts is not None

    @property
    def exhausted(self) -> bool:
        return self.counts is None


class _HungCall(Exception):
    """The worker was still running when the deadline passed."""


def _call_within(
    worker: StreamWorker, batch: Sequence[IncomingRecord], seconds: float
) -> BatchCounts:
    """worker(batch) in a daemon thread, waited for at most `seconds`."""
    result: list[BatchCounts] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(worker(batch))
        except BaseException as error:  # handed to the caller's thread below
            failure.append(error)

    # The thread runs in this context: its calls see the batch's deadline (threads start empty).
    context = contextvars.copy_context()
    thread = threading.Thread(
        target=context.run, args=(run,), name=f"batch-{worker.name}", daemon=True
    )
    thread.start()
    thread.join(max(seconds, 0.0))
    if thread.is_alive():
        raise _HungCall
    if failure:
        raise failure[0]
    return result[0]


def run_batch(
    worker: StreamWorker,
    batch: Sequence[IncomingRecord],
    *,
    backoff: Backoff = DEFAULT_BATCH_BACKOFF,
    deadline_seconds: float | None = DEFAULT_BATCH_DEADLINE_SECONDS,
    abandon_hung_calls: bool = False,
    clock: Callable[[], float] = time.monotonic,
    scope: DeadlineScope = unscoped,
) -> BatchOutcome:
    """Runs `worker` on `batch`, replaying the whole batch on DependencyUnavailable (`backoff`)
    until `deadline_seconds` after the first try (None: no deadline, the backoff's count only).

    Anything else the worker raises is a bug and propagates: no runtime may treat it as handled.
    """
    if not batch:
        return BatchOutcome(counts=BatchCounts(), attempts=0)
    started = clock()
    deadline = (
        Deadline.never(clock)
        if deadline_seconds is None
        else Deadline.after(deadline_seconds, clock)
    )
    last_error: DependencyUnavailable | None = None
    first = batch[0]
    attempts = 0
    for _ in backoff.attempts(deadline):
        attempts += 1
        try:
            with scope(deadline if deadline.bounded else None):
                if abandon_hung_calls and deadline.bounded:
                    counts = _call_within(worker, batch, deadline.remaining())
                else:
                    counts = worker(batch)
        except _HungCall:
            last_error = DependencyUnavailable(
                "batch deadline",
                f"a call was still unanswered {deadline_seconds:.0f} s after the batch began",
            )
            break
        except DependencyUnavailable as transient:
            last_error = transient
            _log.warning(
                "%s: batch of %d from %s at %s failed (try %d, %.1f s in): %s",
                worker.name,
                len(batch),
                first.shard_id,
                first.sequence_number,
                attempts,
                clock() - started,
                transient,
            )
            if deadline.passed:
                break
            continue
        return BatchOutcome(counts=counts, attempts=attempts)
    _log.error(
        "%s: giving up on the batch of %d from %s at %s after %d tries in %.1f s; it will be "
        "replayed: %s",
        worker.name,
        len(batch),
        first.shard_id,
        first.sequence_number,
        attempts,
        clock() - started,
        last_error,
    )
    return BatchOutcome(counts=None, attempts=attempts, last_error=last_error)
