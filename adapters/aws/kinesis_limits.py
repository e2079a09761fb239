"""Kinesis' limits, and splitting records into PutRecords calls within them. Pure: no I/O, no
clock. Beside the Kinesis adapter, its one user (issue 8), and the one definition of
MAX_RECORD_BYTES.

Kinesis limits (https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html):
at most 500 records and 5 MiB per call, each record's data plus partition key (UTF-8) at most
1 MiB, partition keys 1..256 characters. A record that can never fit is a reject with a reason,
so one oversized row cannot crash a run of two million (and is still accounted for).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from domain.models import RejectedRecord, StreamRecord

# Eight calls in flight: 7.1x the serial rate for no more CPU a record at 30 ms a call; four
# gave 3.8x, short of the 4x a 2 M-row file needs to stream within a Lambda's time
# (benchmarks/README.md). At most 8 x 5 MiB of batches in memory; a key keeps its order.
DEFAULT_MAX_IN_FLIGHT = 8

MIB = 1024 * 1024
MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 5 * MIB
MAX_RECORD_BYTES = 1 * MIB
MAX_PARTITION_KEY_CHARS = 256


@dataclass(frozen=True, slots=True)
class BatchLimits:
    max_records: int = MAX_RECORDS_PER_CALL
    max_bytes: int = MAX_BYTES_PER_CALL
    max_record_bytes: int = MAX_RECORD_BYTES
    max_partition_key_chars: int = MAX_PARTITION_KEY_CHARS

    def __post_init__(self) -> None:
        if self.max_records < 1:
            raise ValueError(f"max_records must be >= 1, got {self.max_records}")
        if not 1 <= self.max_record_bytes <= self.max_bytes:
            raise ValueError(
                f"need 1 <= max_record_bytes ({self.max_record_bytes}) "
                f"<= max_bytes ({self.max_bytes})"
            )


KINESIS_LIMITS = BatchLimits()


# What one shard takes (https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html).
SHARD_RECORDS_PER_SECOND = 1_000
SHARD_BYTES_PER_SECOND = 1 * MIB


@dataclass(frozen=True, slots=True)
class Batch:
    """One call's worth of records, plus the records rejected while it was being filled.
    `positions` are the records' places in the input (0-based), rejects counted too."""

    records: tuple[StreamRecord, ...]
    size_bytes: int
    rejected: tuple[RejectedRecord, ...] = ()
    positions: tuple[int, ...] = ()


def record_size(record: StreamRecord) -> int:
    """What Kinesis counts against its limits: data bytes plus the partition key's UTF-8 bytes."""
    return len(record.data) + len(record.partition_key.encode("utf-8"))


def rejection_reason(record: StreamRecord, limits: BatchLimits = KINESIS_LIMITS) -> str | None:
    """Why the record can never be sent, or None when it can."""
    return _checked(record, limits)[0]


def _checked(record: StreamRecord, limits: BatchLimits) -> tuple[str | None, int]:
    """(why the record can never be sent or None, its size): the size once a record, not
    twice (the key's UTF-8 encoding was a tenth of the producer's CPU a record)."""
    if not isinstance(record.data, bytes):
        # A str here is a bug in the encoder, not bad input: fail loudly.
        raise TypeError(
            f"StreamRecord.data must be bytes, got {type(record.data).__name__} "
            f"(partition key {record.partition_key!r})"
        )
    key_chars = len(record.partition_key)
    if key_chars == 0:
        return "empty partition key", 0
    if key_chars > limits.max_partition_key_chars:
        limit = limits.max_partition_key_chars
        return f"partition key of {key_chars} characters exceeds {limit}", 0
    size = record_size(record)
    if size > limits.max_record_bytes:
        limit = limits.max_record_bytes
        return f"record of {size} bytes (data + partition key) exceeds {limit}", size
    return None, size


def split_batches(
    records: Iterable[StreamRecord], limits: BatchLimits = KINESIS_LIMITS
) -> Iterator[Batch]:
    """Batches in input order, each within `limits`; rejects ride along with the batch they
    were seen in. Lazy: holds at most one batch, so memory stays flat however long the input.
    A batch may carry only rejects (no records) when the input is a run of bad records.

    The common record (bytes data, an ASCII key of allowed length, within the size limit) is
    sized inline: the per-record calls were a tenth of the producer's CPU a record
    (benchmarks/README.md); anything else goes through `_checked`, which says why."""
    max_records, max_bytes = limits.max_records, limits.max_bytes
    max_record_bytes, max_key_chars = limits.max_record_bytes, limits.max_partition_key_chars
    pending: list[StreamRecord] = []
    positions: list[int] = []
    pending_bytes = 0
    rejected: list[RejectedRecord] = []

    def cut() -> Batch:
        return Batch(tuple(pending), pending_bytes, tuple(rejected), tuple(positions))

    for position, record in enumerate(records):
        key, data = record.partition_key, record.data
        if (
            type(data) is bytes
            and 0 < len(key) <= max_key_chars
            and key.isascii()  # one byte a character
            and (size := len(data) + len(key)) <= max_record_bytes
        ):
            pass
        else:
            reason, size = _checked(record, limits)
            if reason is not None:
                rejected.append(RejectedRecord(key, reason))
                if len(rejected) >= max_records:
                    # Bounds memory on a long run of rejects (flushing a short batch early is
                    # fine).
                    yield cut()
                    pending, positions, pending_bytes, rejected = [], [], 0, []
                continue
        if pending and pending_bytes + size > max_bytes:
            yield cut()
            pending, positions, pending_bytes, rejected = [], [], 0, []
        pending.append(record)
        positions.append(position)
        pending_bytes += size
        if len(pending) >= max_records:
            yield cut()
            pending, positions, pending_bytes, rejected = [], [], 0, []
    if pending or rejected:
        yield cut()
