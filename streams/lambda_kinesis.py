"""A Kinesis event handler for Lambda with partial batch responses (`batchItemFailures`).

Lambda retries a batch from the first item it is told failed (with ReportBatchItemFailures on
the event source mapping). Kinesis is ordered per shard, so the handler walks each shard's
records in order, in chunks, and stops a shard at its first chunk that could not be handled:
that chunk's first record and everything after it in that shard are reported, nothing before.
Reporting only the failed record and going on would let later records of the same shard be
handled before it (out of order), and then handled again when Lambda retries from the failure.

No record is archived twice, whatever batches Lambda sends: retries of a whole batch, halves
from BisectBatchOnFunctionError, a retry that starts inside an earlier batch (0-99 handled,
then 50-149 arrives). A per-shard watermark (streams/checkpoints.py, DynamoDB table
CHECKPOINT_TABLE, key `{worker}@{stream}/{shard}`) holds the last sequence number of the last
chunk fully handled, moved forward only, by a conditional write after the chunk; records at or
below it are skipped. So a chunk always starts at the first record after the watermark, and a
chunk that wrote its lake objects but failed before its watermark (a dependency down, a
timeout) is rewritten by its retry into the same objects (they are named after the chunk's
first record), never beside them. A record is handled again only in the unconfirmed chunk;
the lake is unchanged by that.

Chunks hold whole Kinesis records (a failure is reported by Kinesis sequence number); a
KPL-aggregated record is de-aggregated inside its chunk (streams/kinesis_records.py).

Poison records (not JSON, not UTF-8, unknown type, failing their schema, corrupt aggregates)
never fail a batch: the worker dead-letters them and goes on, so one bad record cannot block its
shard. Only transient failures (DependencyUnavailable past the batch deadline) and bugs (any
other exception) stop a shard; Lambda then retries from the reported record, and its on-failure
destination takes the batch if it never succeeds.

The deadline of a chunk is BATCH_DEADLINE_SECONDS or the invocation's remaining time less a
margin, whichever is sooner. A call that hangs is not abandoned mid-call here (an abandoned
call could still write after its retry, in the next invocation of a thawed sandbox): Lambda's
own timeout ends such an invocation, and the batch is retried whole.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from domain.backoff import Backoff
from domain.ports import StreamWorker
from domain.streaming import BatchCounts, IncomingRecord
from streams.checkpoints import CheckpointStore, is_at_or_before
from streams.kinesis_records import from_lambda
from streams.runtime import DEFAULT_BATCH_DEADLINE_SECONDS, run_batch

_log = logging.getLogger(__name__)

# Waits of up to 0.1, 0.2, ... 2 s between replays of a chunk, until its deadline.
DEFAULT_LAMBDA_BACKOFF = Backoff(base_seconds=0.1, cap_seconds=2.0, retries=1_000_000)
# Time kept back from the invocation's remaining time, to report and return before Lambda's
# timeout ends the invocation (which would retry the whole batch, handled chunks too).
LAMBDA_MARGIN_SECONDS = 5.0


class MalformedEvent(ValueError):
    """The event is not a Kinesis event (a wiring mistake, not a bad record)."""


def stream_of(event_source_arn: str) -> str:
    """`arn:aws:kinesis:region:account:stream/name` -> `name`."""
    _, _, name = event_source_arn.rpartition("stream/")
    return name or event_source_arn


@dataclass(frozen=True, slots=True)
class KinesisEntry:
    """One Kinesis record of the event: its sequence number and the user records it holds."""

    shard_id: str
    sequence_number: str
    records: tuple[IncomingRecord, ...]


def incoming_entry(entry: Mapping[str, Any], position: int) -> KinesisEntry:
    """One event entry; MalformedEvent names the entry and what is missing."""
    try:
        kinesis = entry["kinesis"]
        event_id = str(entry.get("eventID") or "")
        shard_id = event_id.split(":", 1)[0] if ":" in event_id else "unknown-shard"
        stream = stream_of(str(entry.get("eventSourceARN", "")))
        records = from_lambda(stream, shard_id, kinesis)
    except (KeyError, TypeError) as missing:
        raise MalformedEvent(f"Records[{position}] is not a Kinesis record: no {missing}") from None
    return KinesisEntry(shard_id, str(kinesis["sequenceNumber"]), tuple(records))


def incoming_record(entry: Mapping[str, Any], position: int) -> IncomingRecord:
    """The first user record of an event entry (the entry itself unless it is aggregated)."""
    return incoming_entry(entry, position).records[0]


def by_shard(entries: Sequence[KinesisEntry]) -> dict[str, list[KinesisEntry]]:
    """Entries grouped by shard, each group in event order (which is shard order)."""
    shards: dict[str, list[KinesisEntry]] = {}
    for entry in entries:
        shards.setdefault(entry.shard_id, []).append(entry)
    return shards


@dataclass
class KinesisBatchResult:
    """What the handler did: the Lambda response plus counts for logs and metrics."""

    failed_sequence_numbers: list[str] = field(default_factory=list)
    counts: BatchCounts = field(default_factory=BatchCounts)
    # Kinesis records at or below their shard's watermark: handled by an earlier batch.
    skipped: int = 0

    def metrics(self) -> dict[str, int]:
        """The counts every worker reports (in, out, rejected, failed) and this runtime's own:
        `failed` is the records reported back for Lambda to retry."""
        c = self.counts
        return {
            "in": c.received,
            "out": c.handled,
            "rejected": c.filtered,
            "failed": len(self.failed_sequence_numbers),
            "deadLettered": c.dead_lettered,
            "skipped": self.skipped,
        }

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
    deadline_seconds: float = DEFAULT_BATCH_DEADLINE_SECONDS,
    watermarks: CheckpointStore | None = None,
    remaining_seconds: Callable[[], float] | None = None,
) -> KinesisBatchResult:
    """Runs `worker` over the event's records, shard by shard, in order, in chunks.

    `chunk_size` (Kinesis records) None runs each shard's records as one batch; a smaller chunk
    means a failure holds back fewer records. `watermarks` None (tests, dry runs) skips nothing:
    then an overlapping retry may archive records twice. `remaining_seconds` is the
    invocation's remaining time (the Lambda context's).
    """
    events = event.get("Records")
    if not isinstance(events, list):
        raise MalformedEvent("the event has no Records list: is this a Kinesis event?")
    entries = [incoming_entry(entry, position) for position, entry in enumerate(events)]
    result = KinesisBatchResult()
    for shard_id, shard_entries in by_shard(entries).items():
        first = shard_entries[0].records[0]
        namespace = f"{worker.name}@{first.stream}"
        try:
            watermark = watermarks.get(namespace, shard_id) if watermarks else None
        except Exception:
            _log.exception(
                "%s: watermark of %s unreadable; reporting the shard", worker.name, shard_id
            )
            result.failed_sequence_numbers.extend(e.sequence_number for e in shard_entries)
            continue
        fresh = [e for e in shard_entries if not is_at_or_before(e.sequence_number, watermark)]
        result.skipped += len(shard_entries) - len(fresh)
        size = chunk_size or len(fresh) or 1
        for start in range(0, len(fresh), size):
            chunk = fresh[start : start + size]
            if not _run_chunk(worker, chunk, result, backoff, deadline_seconds, remaining_seconds):
                result.failed_sequence_numbers.extend(e.sequence_number for e in fresh[start:])
                break
            if watermarks is not None:
                try:
                    watermarks.put(namespace, shard_id, chunk[-1].sequence_number)
                except Exception:
                    # Handled but not recorded: the retry rewrites the same objects.
                    _log.exception("%s: watermark of %s not written", worker.name, shard_id)
                    result.failed_sequence_numbers.extend(e.sequence_number for e in fresh[start:])
                    break
    return result


def _run_chunk(
    worker: StreamWorker,
    chunk: Sequence[KinesisEntry],
    result: KinesisBatchResult,
    backoff: Backoff,
    deadline_seconds: float,
    remaining_seconds: Callable[[], float] | None,
) -> bool:
    """Runs one chunk; adds its counts and returns True when it was handled."""
    batch = [record for entry in chunk for record in entry.records]
    if remaining_seconds is not None:
        deadline_seconds = min(deadline_seconds, remaining_seconds() - LAMBDA_MARGIN_SECONDS)
        if deadline_seconds <= 0:
            return False  # no time left for even one try: Lambda retries from here
    try:
        outcome = run_batch(worker, batch, backoff=backoff, deadline_seconds=deadline_seconds)
    except Exception:
        # A bug, not a bad record: stop this shard here so Lambda retries it (and, when
        # retries run out, hands it to the on-failure destination) - never lost.
        _log.exception(
            "%s: chunk at %s of %s raised; reporting it and the rest of the shard",
            worker.name,
            chunk[0].sequence_number,
            chunk[0].shard_id,
        )
        return False
    if outcome.exhausted:
        return False
    assert outcome.counts is not None
    result.counts += outcome.counts
    return True


def kinesis_handler(
    build_worker: Callable[[], StreamWorker],
    *,
    build_watermarks: Callable[[], CheckpointStore | None] = lambda: None,
    report: Callable[[str, Mapping[str, int]], object] = lambda _name, _counts: None,
    **options: Any,
) -> Callable[[Mapping[str, Any], Any], dict[str, list[dict[str, str]]]]:
    """A Lambda handler for a worker (and its watermarks) built once per container, on the
    first event: building touches nothing remote, so a cold start never fails on an outage.
    `report` gets the worker's name and each invocation's counts (the metrics)."""
    built: list[tuple[StreamWorker, CheckpointStore | None]] = []

    def handler(event: Mapping[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
        if not built:
            built.append((build_worker(), build_watermarks()))
        worker, watermarks = built[0]
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        result = handle_kinesis_event(
            event,
            worker,
            watermarks=watermarks,
            remaining_seconds=(lambda: remaining() / 1000.0) if remaining else None,
            **options,
        )
        _log.info(
            "%s: %d received, %d handled, %d filtered, %d dead-lettered, %d skipped (at or "
            "below the watermark), %d reported failed",
            worker.name,
            result.counts.received,
            result.counts.handled,
            result.counts.filtered,
            result.counts.dead_lettered,
            result.skipped,
            len(result.failed_sequence_numbers),
        )
        report(worker.name, result.metrics())
        return result.response()

    return handler
