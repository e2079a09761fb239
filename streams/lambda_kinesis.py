"""A Kinesis event handler for Lambda with partial batch responses (`batchItemFailures`).

Lambda retries a batch from the first item it is told failed (with ReportBatchItemFailures on
the event source mapping). Kinesis is ordered per shard, so the handler walks each shard's
records in order, in chunks, and stops a shard at its first chunk that could not be handled:
that chunk's first record and everything after it in that shard are reported, nothing before.
Reporting only the failed record and going on would let later records of the same shard be
handled before it (out of order), and then handled again when Lambda retries from the failure.

Poison records (not JSON, not UTF-8, unknown type, failing their schema) never fail a batch: the
worker dead-letters them and goes on, so one bad record cannot block its shard. Only transient
failures (DependencyUnavailable past the retry budget) and bugs (any other exception) stop a
shard; Lambda then retries from the reported record, and its on-failure destination takes the
batch if it never succeeds.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from domain.backoff import Backoff
from domain.streaming import BatchCounts, IncomingRecord, StreamWorker
from streams.runtime import run_batch

_log = logging.getLogger(__name__)

# Lambda has a deadline: a short budget, and the event source mapping retries the rest.
DEFAULT_LAMBDA_BACKOFF = Backoff(base_seconds=0.1, cap_seconds=2.0, retries=4)


class MalformedEvent(ValueError):
    """The event is not a Kinesis event (a wiring mistake, not a bad record)."""


def stream_of(event_source_arn: str) -> str:
    """`arn:aws:kinesis:region:account:stream/name` -> `name`."""
    _, _, name = event_source_arn.rpartition("stream/")
    return name or event_source_arn


def incoming_record(entry: Mapping[str, Any], position: int) -> IncomingRecord:
    """One event entry as an IncomingRecord; MalformedEvent names the entry and what is missing."""
    try:
        kinesis = entry["kinesis"]
        sequence_number = str(kinesis["sequenceNumber"])
        event_id = str(entry.get("eventID") or "")
        shard_id = event_id.split(":", 1)[0] if ":" in event_id else "unknown-shard"
        raw = kinesis["data"]
    except (KeyError, TypeError) as missing:
        raise MalformedEvent(f"Records[{position}] is not a Kinesis record: no {missing}") from None
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError, TypeError):
        # Kept whole so the worker dead-letters it with its raw content; never dropped here.
        data = str(raw).encode("utf-8", "surrogatepass")
    arrival = kinesis.get("approximateArrivalTimestamp")
    return IncomingRecord(
        stream=stream_of(str(entry.get("eventSourceARN", ""))),
        shard_id=shard_id,
        sequence_number=sequence_number,
        partition_key=str(kinesis.get("partitionKey", "")),
        data=data,
        arrived_at=datetime.fromtimestamp(float(arrival), tz=UTC) if arrival is not None else None,
    )


def by_shard(records: Sequence[IncomingRecord]) -> dict[str, list[IncomingRecord]]:
    """Records grouped by shard, each group in event order (which is shard order)."""
    shards: dict[str, list[IncomingRecord]] = {}
    for record in records:
        shards.setdefault(record.shard_id, []).append(record)
    return shards


@dataclass
class KinesisBatchResult:
    """What the handler did: the Lambda response plus counts for logs and metrics."""

    failed_sequence_numbers: list[str] = field(default_factory=list)
    counts: BatchCounts = field(default_factory=BatchCounts)

    def response(self) -> dict[str, list[dict[str, str]]]:
        return {
            "batchItemFailures": [
                {"itemIdentifier": sequence} for sequence in self.failed_sequence_numbers
            ]
        }


def handle_kinesis_event(
    event: Mapping[str, Any],
    worker: StreamWorker,
    *,
    chunk_size: int | None = None,
    backoff: Backoff = DEFAULT_LAMBDA_BACKOFF,
) -> KinesisBatchResult:
    """Runs `worker` over the event's records, shard by shard, in order, in chunks.

    `chunk_size` None runs each shard's records as one batch (what the worker's lake naming
    expects); a smaller chunk means a failure holds back fewer records.
    """
    entries = event.get("Records")
    if not isinstance(entries, list):
        raise MalformedEvent("the event has no Records list: is this a Kinesis event?")
    records = [incoming_record(entry, position) for position, entry in enumerate(entries)]
    result = KinesisBatchResult()
    for shard_id, shard_records in by_shard(records).items():
        size = chunk_size or len(shard_records)
        for start in range(0, len(shard_records), size):
            chunk = shard_records[start : start + size]
            try:
                outcome = run_batch(worker, chunk, backoff=backoff)
            except Exception:
                # A bug, not a bad record: stop this shard here so Lambda retries it (and,
                # when retries run out, hands it to the on-failure destination) - never lost.
                _log.exception(
                    "%s: chunk at %s of %s raised; reporting it and the rest of the shard",
                    worker.name,
                    chunk[0].sequence_number,
                    shard_id,
                )
                outcome = None
            if outcome is None or outcome.exhausted:
                result.failed_sequence_numbers.extend(
                    record.sequence_number for record in shard_records[start:]
                )
                break
            assert outcome.counts is not None
            result.counts += outcome.counts
    return result


def kinesis_handler(
    build_worker: Callable[[], StreamWorker], **options: Any
) -> Callable[[Mapping[str, Any], Any], dict[str, list[dict[str, str]]]]:
    """A Lambda handler for a worker built once per container (on the first event)."""
    built: list[StreamWorker] = []

    def handler(event: Mapping[str, Any], _context: Any) -> dict[str, list[dict[str, str]]]:
        if not built:
            built.append(build_worker())
        result = handle_kinesis_event(event, built[0], **options)
        _log.info(
            "%s: %d received, %d handled, %d filtered, %d dead-lettered, %d reported failed",
            built[0].name,
            result.counts.received,
            result.counts.handled,
            result.counts.filtered,
            result.counts.dead_lettered,
            len(result.failed_sequence_numbers),
        )
        return result.response()

    return handler
