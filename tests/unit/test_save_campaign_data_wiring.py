"""save_campaign_data's fast wiring (orjson parser, orjson canonical JSON, pre-encoded Avro)
archives exactly what the stdlib wiring archives, byte for byte, and a record that cannot be
encoded is dead-lettered alone."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson

from adapters.avro import AvroSchemas, read_container
from adapters.aws.lake import S3Lake
from adapters.canonical_json import orjson_canonical
from adapters.clock import FixedClock
from benchmarks.stream_records import batches
from domain.workers.save_campaign_data import SaveCampaignData
from tests.support.memory_stream_workers import MemoryDeadLetters
from tests.support.stream_records import batch_of, raw, sample_record

CLOCK = FixedClock(datetime(2030, 1, 1, tzinfo=UTC))


class KeepingS3:
    """The two calls S3Lake makes, keeping each object's bytes."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        self.objects[Key] = Body
        return {}

    def delete_objects(self, *, Bucket: str, Delete: dict[str, Any]) -> dict[str, Any]:
        for item in Delete["Objects"]:
            self.objects.pop(item["Key"], None)
        return {}


def worker(s3: KeepingS3, dead: MemoryDeadLetters, **wiring: Any) -> SaveCampaignData:
    schemas = AvroSchemas()
    return SaveCampaignData(
        archive=S3Lake(s3, "campaign-data", schemas),
        schemas=schemas,
        dead_letters=dead,
        clock=CLOCK,
        **wiring,
    )


def test_the_orjson_wiring_writes_the_same_bytes_as_the_stdlib_wiring() -> None:
    stdlib_s3, fast_s3 = KeepingS3(), KeepingS3()
    stdlib_dead, fast_dead = MemoryDeadLetters(), MemoryDeadLetters()
    stdlib = worker(stdlib_s3, stdlib_dead)
    fast = worker(fast_s3, fast_dead, loads=orjson.loads, canonical=orjson_canonical)

    for batch in batches(3000, 500, seed=3):
        assert stdlib(batch) == fast(batch)

    assert fast_s3.objects == stdlib_s3.objects  # same keys, byte-identical Avro
    assert [letter.reason for letter in fast_dead.letters] == stdlib_dead.reasons()
    assert sum(len(read_container(body)) for body in fast_s3.objects.values()) > 2900


def test_a_string_avro_cannot_hold_dead_letters_its_record_and_the_rest_are_written() -> None:
    # The stdlib parser turns "\ud800" into a lone surrogate, which UTF-8 cannot encode.
    broken = json.dumps({**sample_record("scoring", 1), "firstName": "\ud800"}).encode()
    s3, dead = KeepingS3(), MemoryDeadLetters()
    batch = batch_of([raw(sample_record("scoring", 0)), broken, raw(sample_record("codeBan", 2))])

    counts = worker(s3, dead)(batch)

    assert (counts.handled, counts.dead_lettered) == (2, 1)
    (letter,) = dead.letters
    assert letter.record.data == broken
    assert letter.reason.startswith("does not fit the scoring schema: field 'firstName'")
    scoring = read_container(s3.objects["avro/scoring/2026/03/14/shardId-000000000000-1000.avro"])
    assert [r["globalUserId"] for r in scoring] == ["g0"]
