"""The lake's compaction on the emulator, over HTTP: a day of lake files written by
save_campaign_data from a stream that was replayed and partly re-sent, merged (each record once),
the move queued on SQS and run from its message, and the merged file read back with fastavro
and with the official Apache `avro` reader."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import avro.datafile
import avro.io
import fastavro
import pytest

from adapters.avro import AvroSchemas
from adapters.aws.lake import S3Lake
from adapters.aws.s3 import S3ObjectStore
from adapters.aws.sqs import SqsMoveQueue, move_request_from_body
from adapters.clock import FixedClock
from adapters.lake_compactor import AvroLakeCompactor
from domain.lake import LakeLayout, MoveRequest
from domain.models import ObjectRef
from domain.streaming import IncomingRecord
from domain.workers.merge_avro_files import MergeRequest, merge_avro_files
from domain.workers.move_merged_avro_files import move_merged_avro_files
from domain.workers.save_campaign_data import save_campaign_data
from tests.conftest import unique_name
from tests.support.memory_stream_workers import MemoryDeadLetters
from tests.support.stream_records import raw, sample_record

pytestmark = pytest.mark.integration
SCHEMAS = AvroSchemas(compression_level=1)
CLOCK = FixedClock(datetime(2030, 1, 1, tzinfo=UTC))
BATCH = 40


def put(kinesis: Any, stream: str, records: list[dict[str, Any]]) -> None:
    for start in range(0, len(records), 500):
        chunk = records[start : start + 500]
        kinesis.put_records(
            StreamName=stream,
            Records=[
                {"Data": raw(r), "PartitionKey": str(r.get("globalUserId", i))}
                for i, r in enumerate(chunk)
            ],
        )


def incoming(stream: str, shard: str, records: list[dict[str, Any]]) -> list[IncomingRecord]:
    return [
        IncomingRecord(
            stream=stream,
            shard_id=shard,
            sequence_number=r["SequenceNumber"],
            partition_key=r["PartitionKey"],
            data=r["Data"],
            arrived_at=r["ApproximateArrivalTimestamp"].astimezone(UTC),
        )
        for r in records
    ]


def archive(batch: list[IncomingRecord], lake: S3Lake) -> None:
    counts = save_campaign_data(
        batch, archive=lake, schemas=SCHEMAS, dead_letters=MemoryDeadLetters(), clock=CLOCK
    )
    assert counts.dead_lettered == 0


def test_a_replayed_day_merges_to_each_record_once_and_its_sources_are_archived(
    s3_client: Any,
    kinesis_client: Any,
    aws: Any,
    make_bucket: Callable[[], str],
    make_stream: Callable[..., str],
    read_stream: Callable[[str], dict[str, list[dict[str, Any]]]],
) -> None:
    bucket, stream = make_bucket(), make_stream(shards=2)
    sqs = aws.client("sqs")
    queue_url = sqs.create_queue(QueueName=unique_name("move"))["QueueUrl"]
    registrations = [sample_record("registration", i) for i in range(300)]
    bans = [sample_record("codeBan", i) for i in range(60)]
    put(kinesis_client, stream, registrations + bans)
    # The producer re-sends a stretch (a re-run file): same content, new correlation ids.
    resent = [
        {**r, "__meta": {**r["__meta"], "correlation": f"again-{i}"}}
        for i, r in enumerate(registrations[100:160])
    ]
    put(kinesis_client, stream, resent)
    lake = S3Lake(s3_client, bucket, SCHEMAS)
    for shard, records in read_stream(stream).items():
        batch = incoming(stream, shard, records)
        for start in range(0, len(batch), BATCH):
            archive(batch[start : start + BATCH], lake)
        # The runtime replays two batches from their checkpoint, seeing more records this
        # time: the replay overwrites the first attempt's objects.
        archive(batch[: BATCH + 15], lake)
        archive(batch[BATCH * 2 : BATCH * 3 + 7], lake)
    first_arrival = min(
        r["ApproximateArrivalTimestamp"] for rs in read_stream(stream).values() for r in rs
    )
    day = first_arrival.astimezone(UTC).strftime("%Y/%m/%d")

    store = S3ObjectStore(s3_client, list_page_size=3)  # paginated listings
    compactor = AvroLakeCompactor(store, compression_level=1)
    layout = LakeLayout(bucket)
    counts = merge_avro_files(
        MergeRequest(day, ("registration", "codeBan", "scoring")),
        store=store,
        compactor=compactor,
        manifests=compactor,
        queue=SqsMoveQueue(sqs, queue_url),
        layout=layout,
    )

    assert counts.refusals == ()
    by_type = {t.record_type: t for t in counts.types}
    assert by_type["scoring"].files == 0  # nothing of that type that day
    assert (by_type["registration"].records, by_type["codeBan"].records) == (300, 60)
    # The lake held the re-sent 60 twice, and the replays' extra records once more each.
    assert by_type["registration"].duplicates >= 60
    merged = s3_client.get_object(Bucket=bucket, Key=layout.merged_ref("registration", day).key)
    data = merged["Body"].read()
    ours: list[Any] = list(fastavro.reader(io.BytesIO(data)))
    apache: list[Any] = list(avro.datafile.DataFileReader(io.BytesIO(data), avro.io.DatumReader()))
    expected = {r["globalUserId"].strip() for r in registrations}
    for records in (ours, apache):
        assert len(records) == 300
        assert {r["globalUserId"] for r in records} == expected
        assert len({r["dedupeId"] for r in records}) == 300
    assert apache[0]["receivedAt"] == ours[0]["receivedAt"]  # timestamp-millis both ways

    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    requests = sorted(
        (move_request_from_body(m["Body"]) for m in messages), key=lambda r: r.record_type
    )
    assert requests == [MoveRequest("codeBan", day), MoveRequest("registration", day)]
    sources = {
        o["Key"]
        for o in s3_client.list_objects_v2(Bucket=bucket, Prefix=f"avro/registration/{day}/")[
            "Contents"
        ]
    }
    for request in requests:
        assert (
            move_merged_avro_files(request, store=store, manifests=compactor, layout=layout)
            .unwrap()
            .moved
            > 0
        )
    archived = {
        o["Key"]
        for o in s3_client.list_objects_v2(
            Bucket=bucket, Prefix=f"avro/archived/registration/{day}/"
        )["Contents"]
    }
    assert archived == {key.replace("avro/", "avro/archived/", 1) for key in sources}
    assert (
        s3_client.list_objects_v2(Bucket=bucket, Prefix=f"avro/registration/{day}/")["KeyCount"]
        == 0
    )
    # Run again: nothing left to move, nothing copied twice.
    again = move_merged_avro_files(
        requests[1], store=store, manifests=compactor, layout=layout
    ).unwrap()
    assert (again.moved, again.already_archived) == (0, len(sources))
    rerun = merge_avro_files(
        MergeRequest(day, ("registration",)),
        store=store,
        compactor=compactor,
        manifests=compactor,
        queue=SqsMoveQueue(sqs, queue_url),
        layout=layout,
    )
    assert rerun.already_merged and rerun.records == 300


def test_a_multipart_object_is_copied_with_its_etag(
    s3_client: Any, make_bucket: Callable[[], str]
) -> None:
    bucket = make_bucket()
    store = S3ObjectStore(s3_client, part_size=5 * 1024 * 1024)
    source, target = ObjectRef(bucket, "avro/x/merged/2024/05/03.avro"), ObjectRef(bucket, "copy")
    with store.open_writer(source) as out:
        out.write(b"a" * (11 * 1024 * 1024 + 5))
    original = store.head(source)
    assert original is not None and original.etag is not None and original.etag.endswith("-3")

    store.copy(source, target)

    copied = store.head(target)
    assert copied is not None
    assert (copied.size, copied.etag) == (original.size, original.etag)
    assert s3_client.get_object(Bucket=bucket, Key="copy")["Body"].read() == b"a" * (
        11 * 1024 * 1024 + 5
    )
