from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from adapters.avro import AvroSchemas
from adapters.clock import FixedClock
from domain.records import RECORD_TYPES, RecordType, dedupe_id
from domain.streaming import DependencyUnavailable
from domain.workers.save_campaign_data import SaveCampaignData, save_campaign_data
from tests.support.memory_stream_workers import MemoryDeadLetters, MemoryLake
from tests.support.stream_records import ARRIVED, batch_of, raw, sample_record

SCHEMAS = AvroSchemas()
CLOCK = FixedClock(datetime(2030, 1, 1, tzinfo=UTC))


def run(batch, lake=None, dead=None):  # type: ignore[no-untyped-def]
    lake = lake or MemoryLake()
    dead = dead or MemoryDeadLetters()
    counts = save_campaign_data(
        batch, archive=lake, schemas=SCHEMAS, dead_letters=dead, clock=CLOCK
    )
    return counts, lake, dead


def test_every_type_is_archived_as_one_object_per_type_named_by_the_batch() -> None:
    types = sorted(RECORD_TYPES)
    batch = batch_of([raw(sample_record(t, i)) for i, t in enumerate(types * 2)])

    counts, lake, dead = run(batch)

    assert counts.received == 20 and counts.handled == 20 and counts.dead_lettered == 0
    assert dead.letters == []
    assert sorted(lake.objects) == sorted(
        f"avro/{t}/2026/03/14/shardId-000000000000-1000.avro" for t in types
    )
    assert all(len(records) == 2 for records in lake.objects.values())
    assert counts.detail == {f"lake:{t}": 2 for t in types}


def test_strings_are_trimmed_at_any_depth_and_the_dedupe_id_is_set() -> None:
    record = sample_record(RecordType.SCORING, 7)
    counts, lake, _ = run(batch_of([raw(record)]))

    (archived,) = lake.records("scoring")
    assert archived["campaignId"] == "camp-1"
    assert archived["email"] == "fan7@example.com"
    assert archived["tags"] == ["unconfirmed"]
    assert archived["receivedAt"] == ARRIVED
    assert json.loads(archived["extra"]["hbase"]) == "nyc"
    trimmed = {**record, "campaignId": "camp-1", "email": "fan7@example.com", "firstName": "Ada"}
    trimmed["tags"] = ["unconfirmed"]
    assert archived["dedupeId"] == dedupe_id(trimmed)
    assert counts.handled == 1


def test_envelope_types_keep_the_whole_record_as_payload() -> None:
    record = sample_record(RecordType.CODE_BAN, 3)
    _, lake, _ = run(batch_of([raw(record)]))

    (archived,) = lake.records("codeBan")
    payload = json.loads(archived["payload"])
    assert payload["value"] == "v3"
    assert payload["__meta"] == record["__meta"]
    assert payload["dedupeId"] == archived["dedupeId"]


def test_a_dedupe_id_set_by_the_producer_is_kept() -> None:
    record = {**sample_record(RecordType.SCORING), "dedupeId": "from-producer"}
    _, lake, _ = run(batch_of([raw(record)]))
    assert lake.records("scoring")[0]["dedupeId"] == "from-producer"


@pytest.mark.parametrize(
    ("data", "reason_start"),
    [
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"type": "scoring", ', "not JSON"),
        (b"[1, 2]", "not a JSON object: got an array"),
        (b'{"campaignId": "c"}', "no record type"),
        (b'{"type": "somethingElse"}', "unknown record type 'somethingElse'"),
        (raw({**sample_record(RecordType.SCORING), "score": "high"}), "does not fit the scoring"),
        (raw({"type": "registration", "campaignId": "c"}), "does not fit the registration"),
    ],
)
def test_poison_is_dead_lettered_with_its_raw_data_and_reason(
    data: bytes, reason_start: str
) -> None:
    good = raw(sample_record(RecordType.EVENT_MAPPING))
    batch = batch_of([good, data, good])

    counts, lake, dead = run(batch)

    assert (counts.received, counts.handled, counts.dead_lettered) == (3, 2, 1)
    (letter,) = dead.letters
    assert letter.record is batch[1] and letter.record.data == data
    assert letter.reason.startswith(reason_start), letter.reason
    assert letter.worker == "save_campaign_data"
    assert len(lake.records("eventMapping")) == 2


def test_schema_reasons_name_the_field_and_not_its_value() -> None:
    record = {**sample_record(RecordType.SCORING), "email": 12345}
    _, _, dead = run(batch_of([raw(record)]))
    (letter,) = dead.letters
    assert "'email'" in letter.reason and "12345" not in letter.reason


def test_a_replayed_batch_rewrites_the_same_objects() -> None:
    batch = batch_of([raw(sample_record(t, i)) for i, t in enumerate(sorted(RECORD_TYPES))])
    _, lake, _ = run(batch)
    first = dict(lake.objects)

    run(batch, lake=lake)

    assert lake.objects == first


def test_a_shorter_replay_removes_the_first_attempts_objects_for_types_it_lacks() -> None:
    records = [sample_record(RecordType.SCORING, 0), sample_record(RecordType.CODE_BAN, 1)]
    lake = MemoryLake()
    run(batch_of([raw(r) for r in records]), lake=lake)

    run(batch_of([raw(records[0])]), lake=lake)

    assert list(lake.objects) == ["avro/scoring/2026/03/14/shardId-000000000000-1000.avro"]


def test_the_day_comes_from_the_first_arrival_in_utc_else_from_the_clock() -> None:
    late_evening_in_la = datetime.fromisoformat("2026-03-14T20:00:00-07:00")  # 03:00Z on the 15th
    _, lake, _ = run(batch_of([raw(sample_record("codeBan"))], arrived_at=late_evening_in_la))
    assert list(lake.objects) == ["avro/codeBan/2026/03/15/shardId-000000000000-1000.avro"]

    _, lake, _ = run(batch_of([raw(sample_record("codeBan"))], arrived_at=None))
    assert list(lake.objects) == ["avro/codeBan/2030/01/01/shardId-000000000000-1000.avro"]


def test_a_lake_failure_raises_for_a_replay_and_sends_no_dead_letters() -> None:
    lake, dead = MemoryLake(), MemoryDeadLetters()
    lake.faults.fail_next = 1
    batch = batch_of([raw(sample_record("scoring")), b"garbage"])

    with pytest.raises(DependencyUnavailable):
        run(batch, lake=lake, dead=dead)
    assert dead.letters == [] and lake.objects == {}

    counts, _, _ = run(batch, lake=lake, dead=dead)
    assert (counts.handled, counts.dead_lettered) == (1, 1)
    assert len(dead.letters) == 1


def test_an_empty_batch_does_nothing() -> None:
    counts, lake, dead = run([])
    assert counts.received == 0 and lake.objects == {} and dead.letters == []


def test_the_bound_worker_has_a_name_and_delegates() -> None:
    lake, dead = MemoryLake(), MemoryDeadLetters()
    worker = SaveCampaignData(archive=lake, schemas=SCHEMAS, dead_letters=dead, clock=CLOCK)
    counts = worker(batch_of([raw(sample_record("scoring")), b"{}"]))
    assert worker.name == "save_campaign_data"
    assert (counts.handled, counts.dead_lettered) == (1, 1)
