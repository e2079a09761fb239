"""save_campaign_data into the S3 lake over HTTP (the embedded emulator), and S3 failing."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.avro import AvroSchemas, read_container
from adapters.aws.clients import ClientFactory, ClientOptions
from adapters.aws.lake import S3Lake
from adapters.clock import FixedClock
from domain.records import RECORD_TYPES
from domain.streaming import DependencyUnavailable
from domain.workers.save_campaign_data import save_campaign_data
from tests.support.http_server import Fault, running_server
from tests.support.memory_stream_workers import MemoryDeadLetters
from tests.support.stream_records import batch_of, raw, sample_record

pytestmark = pytest.mark.integration
SCHEMAS = AvroSchemas()
CLOCK = FixedClock(datetime(2030, 1, 1, tzinfo=UTC))


def lake_objects(s3: Any, bucket: str) -> dict[str, list[dict[str, Any]]]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="avro/").get("Contents", [])
    return {
        o["Key"]: read_container(
            io.BytesIO(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())
        )
        for o in listed
    }


def archive(batch: list[Any], lake: S3Lake, dead: MemoryDeadLetters | None = None) -> Any:
    return save_campaign_data(
        batch, archive=lake, schemas=SCHEMAS, dead_letters=dead or MemoryDeadLetters(), clock=CLOCK
    )


def test_a_mixed_batch_lands_as_one_avro_object_per_type(
    s3_client: Any, make_bucket: Callable[[], str]
) -> None:
    bucket = make_bucket()
    lake = S3Lake(s3_client, bucket, SCHEMAS)
    types = sorted(RECORD_TYPES)
    datas = [raw(sample_record(t, i)) for i, t in enumerate(types * 3)] + [b"not json"]
    dead = MemoryDeadLetters()

    counts = archive(batch_of(datas, shard="shardId-000000000001"), lake, dead)

    assert (counts.handled, counts.dead_lettered) == (30, 1)
    objects = lake_objects(s3_client, bucket)
    assert sorted(objects) == sorted(
        f"avro/{t}/2026/03/14/shardId-000000000001-1000.avro" for t in types
    )
    scoring = objects["avro/scoring/2026/03/14/shardId-000000000001-1000.avro"]
    assert [r["globalUserId"] for r in scoring] == ["g8", "g18", "g28"]
    head = s3_client.head_object(Bucket=bucket, Key=next(iter(objects)))
    assert head["ContentType"] == "avro/binary"


def test_a_replay_rewrites_the_same_objects_and_a_shorter_one_leaves_no_stale_copy(
    s3_client: Any, make_bucket: Callable[[], str]
) -> None:
    bucket = make_bucket()
    lake = S3Lake(s3_client, bucket, SCHEMAS)
    records = [
        sample_record("scoring", 1),
        sample_record("codeBan", 2),
        sample_record("scoring", 3),
    ]
    batch = batch_of([raw(r) for r in records])

    archive(batch, lake)
    first = lake_objects(s3_client, bucket)
    archive(batch, lake)
    assert lake_objects(s3_client, bucket) == first

    archive(batch[:1], lake)  # the replay's page ended earlier: codeBan is the next batch's
    archive(batch[1:], lake)
    payloads = [
        json.loads(r["payload"])["id"] if "payload" in r else r["globalUserId"]
        for records_ in lake_objects(s3_client, bucket).values()
        for r in records_
    ]
    assert sorted(payloads) == ["codeBan-2", "g1", "g3"]


def test_a_missing_bucket_is_a_dependency_failure_naming_it(s3_client: Any) -> None:
    lake = S3Lake(s3_client, "no-such-bucket-for-the-lake", SCHEMAS)
    with pytest.raises(DependencyUnavailable, match=r"no-such-bucket-for-the-lake.*NoSuchBucket"):
        archive(batch_of([raw(sample_record("scoring"))]), lake)


@pytest.mark.parametrize("fault", [Fault.status(503), Fault.throttle()])
def test_s3_failing_past_its_retries_raises_for_a_replay(fault: Fault) -> None:
    dead = MemoryDeadLetters()
    with running_server() as server:
        server.inject(fault, times=1000)
        s3 = ClientFactory(
            ClientOptions(endpoint_url=server.url, max_attempts=2, read_timeout=2.0)
        ).client("s3")
        lake = S3Lake(s3, "campaign-data", SCHEMAS)
        with pytest.raises(DependencyUnavailable, match="lake s3://campaign-data"):
            archive(batch_of([raw(sample_record("scoring")), b"\xff"]), lake, dead)
        # botocore's own retries, all of the first PUT; then it is the runtime's turn to replay
        assert {(r.method, r.path.split("/")[3]) for r in server.requests} == {("PUT", "scoring")}
    assert dead.letters == []  # dead letters go only after the lake has the batch
