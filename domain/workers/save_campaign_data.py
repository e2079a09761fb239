"""save_campaign_data (the original's cmp-save-data): archive the input stream into the Avro lake.

Every record of a batch ends in exactly one place:
- the lake, as part of `avro/{type}/YYYY/MM/DD/{shard}-{firstSequence}.avro` (one object per type
  per batch), trimmed, with its dedupe id, in its type's schema shape; or
- the dead-letter queue, with its raw data and the reason: not UTF-8, not a JSON object, no
  `type`, a type outside the ten, or a record that does not fit its type's schema.
Nothing is filtered here: this worker keeps every record the stream carries.

Idempotent per batch: the object name and day come from the batch itself (its shard, its first
record's sequence number and arrival time), so a replay rewrites the same objects.
Memory: the batch and its archival copies (bounded by the runtime's batch size; the Avro bytes
of one type at a time in the adapter).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date
from enum import StrEnum
from typing import Any

from returns.result import Failure, Success

from domain.ports import Clock, DeadLetters, RecordArchive, SchemaCheck
from domain.records import (
    RECORD_TYPES,
    CanonicalJson,
    JsonLoads,
    LakeBatch,
    batch_object_name,
    canonical_json,
    decoded_or_reason,
    formatted,
    may_hold_padded_strings,
    record_type_of,
    with_dedupe_id,
)
from domain.streaming import BatchCounts, DeadLetter, IncomingRecord

WORKER = "save_campaign_data"


class PoisonKind(StrEnum):
    """The kinds of poison, as BatchCounts.detail keys (besides "lake:{type}" per type)."""

    UNDECODABLE = "dead:undecodable"
    UNKNOWN_TYPE = "dead:unknown_type"
    SCHEMA = "dead:schema"


_MAX_TYPE_IN_REASON = 64


def save_campaign_data(
    batch: Sequence[IncomingRecord],
    *,
    archive: RecordArchive,
    schemas: SchemaCheck,
    dead_letters: DeadLetters,
    clock: Clock,
    loads: JsonLoads = json.loads,
    canonical: CanonicalJson = canonical_json,
) -> BatchCounts:
    """Archives one batch of one shard; returns received = handled + dead_lettered.

    `loads` parses JSON text (bootstrap may inject orjson.loads, about four times as fast);
    `canonical` encodes a record's content for its dedupe id (bootstrap may inject
    adapters.canonical_json.orjson_canonical: the same bytes, about five times as fast).

    Raises DependencyUnavailable (from the archive or the dead-letter queue) for the runtime
    to replay the batch; the lake objects are written before the dead letters are sent, and
    both are safe to repeat.
    """
    if not batch:
        return BatchCounts()
    parts: dict[str, list[Mapping[str, Any]]] = {}
    letters: list[DeadLetter] = []
    detail: Counter[str] = Counter()

    for incoming in batch:
        outcome = _archival_record(incoming, schemas, loads, canonical)
        if isinstance(outcome, _Poison):
            letters.append(DeadLetter(incoming, outcome.reason, WORKER))
            detail[outcome.kind] += 1
            continue
        record_type, archival = outcome
        records = parts.get(record_type)
        if records is None:
            parts[record_type] = [archival]
        else:
            records.append(archival)
    for record_type, records in parts.items():
        detail[f"lake:{record_type}"] = len(records)

    first = batch[0]
    lake_batch = LakeBatch(
        name=batch_object_name(first.shard_id, first.sequence_number, first.sub_sequence_number),
        day=_batch_day(batch, clock),
        parts={record_type: tuple(records) for record_type, records in parts.items()},
    )
    # Always called, even with no parts: it also clears objects an earlier, longer attempt of
    # this batch wrote for types the replay no longer holds (else those records would be twice
    # in the lake once the next batch archives them again).
    archive.replace_batch(lake_batch)
    if letters:
        dead_letters.send(letters)

    handled = sum(len(records) for records in parts.values())
    return BatchCounts(
        received=len(batch),
        handled=handled,
        filtered=0,
        dead_lettered=len(letters),
        detail=dict(detail),
    )


@dataclass(frozen=True, slots=True)
class _Poison:
    kind: PoisonKind
    reason: str


def _archival_record(
    incoming: IncomingRecord, schemas: SchemaCheck, loads: JsonLoads, canonical: CanonicalJson
) -> tuple[str, Mapping[str, Any]] | _Poison:
    """(type, the record in its archival shape), or why it is poison.

    Plain values instead of Results: this runs once per record, and the wrappers cost about as
    much as the checks between them.
    """
    record = decoded_or_reason(incoming.data, loads)
    if isinstance(record, str):
        return _Poison(PoisonKind.UNDECODABLE, record)
    record_type = record_type_of(record)
    if record_type not in RECORD_TYPES:
        shown = record_type[:_MAX_TYPE_IN_REASON]
        return _Poison(PoisonKind.UNKNOWN_TYPE, f"unknown record type {shown!r}")
    # Most records hold no padded string; a scan of the raw bytes is cheaper than the trim's
    # rebuild of every container (and the trim is what rules say, not what it costs).
    if may_hold_padded_strings(incoming.data):
        record = formatted(record, canonical)
    else:
        record = with_dedupe_id(record, canonical)
    match schemas.conform(record_type, record, incoming.arrived_at):
        case Success(archival):
            return record_type, archival
        case Failure(why):
            return _Poison(PoisonKind.SCHEMA, f"does not fit the {record_type} schema: {why}")
    raise AssertionError("a Result is a Success or a Failure")


def _batch_day(batch: Sequence[IncomingRecord], clock: Clock) -> date:
    """The UTC day of the batch's first record's arrival; the clock only when the runtime gave
    no arrival time (then a replay on another day would land under another day's prefix)."""
    arrived = batch[0].arrived_at or clock.now()
    if arrived.tzinfo is None:
        arrived = arrived.replace(tzinfo=UTC)
    return arrived.astimezone(UTC).date()


@dataclass(frozen=True)
class SaveCampaignData:
    """save_campaign_data bound to its ports: a domain.ports.StreamWorker."""

    archive: RecordArchive
    schemas: SchemaCheck
    dead_letters: DeadLetters
    clock: Clock
    loads: JsonLoads = json.loads
    canonical: CanonicalJson = canonical_json
    name: str = WORKER

    def __call__(self, batch: Sequence[IncomingRecord]) -> BatchCounts:
        return save_campaign_data(
            batch,
            archive=self.archive,
            schemas=self.schemas,
            dead_letters=self.dead_letters,
            clock=self.clock,
            loads=self.loads,
            canonical=self.canonical,
        )
