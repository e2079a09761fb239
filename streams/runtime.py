"""What every runtime shares: run a stream worker on one batch, replaying it on transient failure.

A stream worker either handles the whole batch (every record handled, filtered or dead-lettered)
or raises DependencyUnavailable. On that error the *whole* batch is run again after a jittered
backoff (workers are idempotent per batch, so a replay writes the same lake objects and assigns
nothing twice). When the budget is spent the outcome says so, and the runtime must then stop
without checkpointing: the KCL, the Lambda event source and the poller would all otherwise move
on past a batch that was never handled.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from domain.backoff import Backoff
from domain.streaming import BatchCounts, DependencyUnavailable, IncomingRecord, StreamWorker

_log = logging.getLogger(__name__)

# Waits of up to 0.1, 0.2, ... capped at 10 s, nine retries: a dependency gets about a minute
# (at most) to come back before the runtime gives up on the batch and lets it be replayed.
DEFAULT_BATCH_BACKOFF = Backoff(base_seconds=0.1, cap_seconds=10.0, retries=9)


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


def run_batch(
    worker: StreamWorker,
    batch: Sequence[IncomingRecord],
    *,
    backoff: Backoff = DEFAULT_BATCH_BACKOFF,
) -> BatchOutcome:
    """Runs `worker` on `batch`, replaying the whole batch on DependencyUnavailable (`backoff`).

    Anything else the worker raises is a bug and propagates: no runtime may treat it as handled.
    """
    if not batch:
        return BatchOutcome(counts=BatchCounts(), attempts=0)
    last_error: DependencyUnavailable | None = None
    first = batch[0]
    for attempt in range(backoff.tries):
        if attempt:
            backoff.wait(attempt)
        try:
            counts = worker(batch)
        except DependencyUnavailable as transient:
            last_error = transient
            _log.warning(
                "%s: batch of %d from %s at %s failed (try %d of %d): %s",
                worker.name,
                len(batch),
                first.shard_id,
                first.sequence_number,
                attempt + 1,
                backoff.tries,
                transient,
            )
            continue
        return BatchOutcome(counts=counts, attempts=attempt + 1)
    _log.error(
        "%s: giving up on the batch of %d from %s at %s after %d tries; it will be replayed: %s",
        worker.name,
        len(batch),
        first.shard_id,
        first.sequence_number,
        backoff.tries,
        last_error,
    )
    return BatchOutcome(counts=None, attempts=backoff.tries, last_error=last_error)
