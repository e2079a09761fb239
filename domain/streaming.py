"""The contract between stream workers and the runtimes that drive them (KCL, Lambda, local poller).

A stream worker takes one batch of raw records from one shard and either
- handles every record: each ends in its destination, is filtered out by rule, or is dead-lettered
  with its raw data and a reason (poison: not JSON, not UTF-8, unknown type, fails its schema), or
- raises DependencyUnavailable (throttling, 5xx, timeouts that outlasted the adapter's retries):
  the runtime then replays the same batch (workers are idempotent per batch) and never
  checkpoints past it.
The value types live here; the ports (StreamWorker, DeadLetters) in domain/ports.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

# The first bytes of a KPL-aggregated Kinesis record. The runtimes de-aggregate every well-formed
# aggregate (streams/kinesis_records.py), so a record that still starts with them is a corrupt
# one, and workers dead-letter it as such (domain.records.CORRUPT_AGGREGATE).
KPL_MAGIC = b"\xf3\x89\x9a\xc2"


@dataclass(frozen=True, slots=True)
class IncomingRecord:
    stream: str
    shard_id: str
    sequence_number: str
    partition_key: str
    data: bytes
    arrived_at: datetime | None = None
    sub_sequence_number: int = 0


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that can never be handled, kept whole with the reason."""

    record: IncomingRecord
    reason: str
    worker: str


@dataclass(frozen=True, slots=True)
class BatchCounts:
    """received = handled + filtered + dead_lettered."""

    received: int = 0
    handled: int = 0
    filtered: int = 0
    dead_lettered: int = 0
    detail: Mapping[str, int] = field(default_factory=dict)

    def __add__(self, more: BatchCounts) -> BatchCounts:
        """Totals over several batches (a Lambda event's shards, a poller's run)."""
        detail = Counter(self.detail)
        detail.update(more.detail)
        return BatchCounts(
            received=self.received + more.received,
            handled=self.handled + more.handled,
            filtered=self.filtered + more.filtered,
            dead_lettered=self.dead_lettered + more.dead_lettered,
            detail=detail,
        )


@dataclass
class BatchTally:
    """What a worker counts while it handles one batch (the one tally every stream worker
    shares): its dead letters, how many records it handled and filtered, and the detail keys.
    `counts(received)` is the BatchCounts it returns. One per call: no state outlives a batch."""

    worker: str
    letters: list[DeadLetter] = field(default_factory=list)
    handled: int = 0
    filtered: int = 0
    detail: Counter[str] = field(default_factory=Counter)

    def count(self, key: str, n: int = 1) -> None:
        if n:
            self.detail[key] += n

    def filter(self, key: str) -> None:
        self.filtered += 1
        self.detail[key] += 1

    def dead(self, incoming: IncomingRecord, key: str, reason: str) -> None:
        self.letters.append(DeadLetter(incoming, reason, self.worker))
        self.detail[key] += 1

    def counts(self, received: int) -> BatchCounts:
        return BatchCounts(
            received=received,
            handled=self.handled,
            filtered=self.filtered,
            dead_lettered=len(self.letters),
            detail=dict(self.detail),
        )


class DependencyUnavailable(Exception):
    """A dependency failed transiently past its own retries: replay the batch, do not skip it."""

    def __init__(self, dependency: str, detail: str) -> None:
        super().__init__(f"{dependency} unavailable: {detail}")
        self.dependency = dependency
        self.detail = detail
