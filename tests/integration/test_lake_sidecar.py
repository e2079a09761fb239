"""Sidecars on the emulator, over HTTP, through the Lambda handlers (production's wiring: S3, the
spilling index, the spooled key log): days merged, each with its sidecar; the month merged from
the days' sidecars instead of their records, read back with fastavro; the month's move archiving
the days' merged files with their sidecars; a sidecar big enough for a multipart upload. And the
fault: a sidecar with the right key count but other bytes is not trusted (its checksum), the
day's keys are decoded, the month is the same."""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.aws.s3 import S3ObjectStore
from adapters.lake_sidecar import SpooledKeyLog, read_trusted, write_sidecar
from domain.lake import DropPlan, SourceFile
from domain.models import ObjectInfo, ObjectRef
from entrypoints.lambda_handlers import merge_avro_files_handler, move_merged_avro_files_handler
from tests.conftest import unique_name
from tests.support.lake_files import SCHEMAS, lake_environment, read_records

pytestmark = pytest.mark.integration
MONTH = "2024/05"
DAYS = {"2024/05/01": [range(0, 10), range(5, 15)], "2024/05/02": [range(10, 20), range(18, 22)]}


class Context:
    aws_request_id = "req-1"
    function_name = "merge"
    memory_limit_in_mb = 2048
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:merge"


def ban(i: int, day: int) -> Any:
    arrived = datetime(2024, 5, day, 9, tzinfo=UTC)
    return SCHEMAS.conform("codeBan", {"type": "codeBan", "dedupeId": f"d{i}"}, arrived).unwrap()


@pytest.fixture
def lake(
    emulator: Any, make_bucket: Callable[[], str], aws: Any, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    bucket, sqs = make_bucket(), aws.client("sqs")
    queue = sqs.create_queue(QueueName=unique_name("move"))["QueueUrl"]
    for name, value in lake_environment(emulator.endpoint_url, bucket, queue).items():
        monkeypatch.setenv(name, value)
    s3 = aws.client("s3")
    for day, files in DAYS.items():
        for number, ids in enumerate(files):
            body = SCHEMAS.encode("codeBan", [ban(i, int(day[-2:])) for i in ids])
            s3.put_object(
                Bucket=bucket, Key=f"avro/codeBan/{day}/shardId-0-{number}.avro", Body=body
            )
        merged = merge_avro_files_handler({"prefix": day, "recordTypes": ["codeBan"]}, Context())
        assert "refused" not in merged["types"]["codeBan"]
    return {"bucket": bucket, "queue": queue, "sqs": sqs, "s3": s3}


def keys_in(lake: dict[str, Any], prefix: str) -> list[str]:
    listed = lake["s3"].list_objects_v2(Bucket=lake["bucket"], Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def read(lake: dict[str, Any], key: str) -> bytes:
    body: bytes = lake["s3"].get_object(Bucket=lake["bucket"], Key=key)["Body"].read()
    return body


def move(lake: dict[str, Any], prefix: str) -> None:
    body = json.dumps({"recordType": "codeBan", "prefix": prefix})
    event = {"Records": [{"messageId": "m1", "body": body, "eventSource": "aws:sqs"}]}
    assert move_merged_avro_files_handler(event, Context()) == {"batchItemFailures": []}


def test_a_month_merges_from_the_days_sidecars_and_its_move_archives_them(
    lake: dict[str, Any],
) -> None:
    for day in DAYS:
        move(lake, day)
    # The days' moves archived their sources, and left each merged day with its sidecar.
    assert keys_in(lake, "avro/merged-keys/") == [
        "avro/merged-keys/codeBan/2024/05/01.keys",
        "avro/merged-keys/codeBan/2024/05/02.keys",
    ]
    assert keys_in(lake, "avro/codeBan/2024/") == []

    result = merge_avro_files_handler({"prefix": MONTH, "recordTypes": ["codeBan"]}, Context())

    month = result["types"]["codeBan"]
    assert (month["files"], month["records"], month["duplicates"]) == (2, 22, 5)
    assert (month["keysFromSidecars"], month["keysDecoded"]) == (2, 0)
    records = read_records(read(lake, "avro/codeBan/merged/2024/05.avro"))  # fastavro
    assert [r["dedupeId"] for r in records] == [f"d{i}" for i in range(22)]
    sidecar = read(lake, "avro/merged-keys/codeBan/2024/05.keys")
    assert len(sidecar) == 22 * 16

    move(lake, MONTH)

    assert keys_in(lake, "avro/merged-keys/") == ["avro/merged-keys/codeBan/2024/05.keys"]
    assert keys_in(lake, "avro/codeBan/") == ["avro/codeBan/merged/2024/05.avro"]
    assert keys_in(lake, "avro/archived/merged-keys/") == [
        "avro/archived/merged-keys/codeBan/2024/05/01.keys",
        "avro/archived/merged-keys/codeBan/2024/05/02.keys",
    ]
    assert keys_in(lake, "avro/archived/codeBan/merged/") == [
        "avro/archived/codeBan/merged/2024/05/01.avro",
        "avro/archived/codeBan/merged/2024/05/02.avro",
    ]


def test_a_sidecar_with_the_right_count_but_other_bytes_falls_back_to_decoding(
    lake: dict[str, Any],
) -> None:
    for day in DAYS:
        move(lake, day)
    key = "avro/merged-keys/codeBan/2024/05/02.keys"
    keys = read(lake, key)
    lake["s3"].put_object(Bucket=lake["bucket"], Key=key, Body=keys[16:] + keys[:16])

    result = merge_avro_files_handler({"prefix": MONTH, "recordTypes": ["codeBan"]}, Context())

    month = result["types"]["codeBan"]
    assert (month["files"], month["records"], month["duplicates"]) == (2, 22, 5)
    assert (month["keysFromSidecars"], month["keysDecoded"]) == (1, 1)
    records = read_records(read(lake, "avro/codeBan/merged/2024/05.avro"))  # fastavro
    assert sorted(r["dedupeId"] for r in records) == sorted(f"d{i}" for i in range(22))


def test_a_big_sidecar_is_uploaded_in_parts_and_read_back_trusted(
    s3_client: Any, make_bucket: Callable[[], str]
) -> None:
    bucket = make_bucket()
    store = S3ObjectStore(s3_client, part_size=5 * 1024 * 1024)
    keys = os.urandom(16 * 400_000)  # 6.4 MB: two parts
    log = SpooledKeyLog()
    log.add("source", keys)
    source = SourceFile(ObjectInfo(ObjectRef(bucket, "source"), 1), 400_000, None, keyed=False)
    target = ObjectRef(bucket, "avro/merged-keys/codeBan/2024/05.keys")

    seal = write_sidecar(store, target, [source], DropPlan({"source": (3, 399_999)}), log)
    log.close()

    written = store.head(target)
    assert written is not None and written.etag is not None and written.etag.endswith("-2")
    kept = keys[: 3 * 16] + keys[4 * 16 : 399_999 * 16]
    assert (seal.count, seal.crc32) == (399_998, zlib.crc32(kept))
    assert read_trusted(store.read_bytes, bucket, seal)[0] == kept
