"""The contract between stream workers and the runtimes that drive them (KCL, Lambda, local poller).

A stream worker takes one batch of raw records from one shard and either
- handles every record: each ends in its destination, is filtered out by rule, or is dead-lettered
  with its raw data and a reason (poison: not JSON, not UTF-8, unknown type, fails its schema), or
- raises DependencyUnavailable (throttling, 5xx, timeouts that outlasted the adapter's retries):
  the runtime then replays the same batch (workers are idempotent per batch) and never
  checkpoints past it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

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
        detail = dict(self.detail)
        for key, value in more.detail.items():
            detail[key] = detail.get(key, 0) + value
        return BatchCounts(
            received=self.received + more.received,
            handled=self.handled + more.handled,
            filtered=self.filtered + more.filtered,
            dead_lettered=self.dead_lettered + more.dead_lettered,
            detail=detail,
        )


class DependencyUnavailable(Exception):
    """A dependency failed transiently past its own retries: replay the batch, do not skip it."""

    def __init__(self, dependency: str, detail: str) -> None:
        super().__init__(f"{dependency} unavailable: {detail}")
        self.dependency = dependency
        self.detail = detail


class StreamWorker(Protocol):
    """A worker bound to its ports (bootstrap does the binding), ready for a runtime to call."""

    # Read-only, so frozen dataclasses (the domain's workers) and plain class attributes fit.
    @property
    def name(self) -> str: ...

    def __call__(self, batch: Sequence[IncomingRecord]) -> BatchCounts: ...


class DeadLetters(Protocol):
    def send(self, letters: Sequence[DeadLetter]) -> None:
        """Stores dead letters durably; raises DependencyUnavailable when it cannot."""
        ...
