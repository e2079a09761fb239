"""`campaign-workers poll`: a stream worker over its stream, from the terminal, with checkpoints."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastavro import reader

from entrypoints.cli import main

pytestmark = pytest.mark.integration


def _records() -> list[dict[str, Any]]:
    registrations = [
        {"type": "registration", "campaignId": "c1", "globalUserId": f"gu{i}", "email": "a@b.co"}
        for i in range(30)
    ]
    mappings = [{"type": "campaignMapping", "campaignId": "c1", "categoryId": "77"}]
    return registrations + mappings


def _lake(s3_client: Any, bucket: str) -> list[dict[str, Any]]:
    found: list[Any] = []
    for item in s3_client.list_objects_v2(Bucket=bucket).get("Contents", []):
        body = s3_client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        found.extend(reader(io.BytesIO(body)))
    return found


def test_poll_archives_a_stream_once_and_resumes_from_its_checkpoint(
    emulator: Any,
    aws: Any,
    kinesis_client: Any,
    s3_client: Any,
    make_bucket: Callable[[], str],
    make_stream: Callable[..., str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bucket, stream = make_bucket(), make_stream(shards=2)
    queue = aws.client("sqs").create_queue(QueueName=f"dlq-{bucket}")["QueueUrl"]
    for name, value in {
        "AWS_ENDPOINT_URL": emulator.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "CAMPAIGN_DATA_BUCKET": bucket,
        "DEAD_LETTER_QUEUE": queue,
    }.items():
        monkeypatch.setenv(name, value)
    for record in [*_records(), "not json"]:
        data = record.encode() if isinstance(record, str) else json.dumps(record).encode()
        kinesis_client.put_record(StreamName=stream, Data=data, PartitionKey=str(len(data)))
    checkpoints = tmp_path / "checkpoints.json"
    args = ["poll", "save_campaign_data", "--stream", stream, "--checkpoints", str(checkpoints)]

    assert main(args) == 0
    first = capsys.readouterr().out
    assert "32 records: 31 handled, 0 filtered, 1 dead-lettered" in first
    archived = _lake(s3_client, bucket)
    assert sorted(r.get("globalUserId", "") for r in archived if r["type"] == "registration") == (
        sorted(f"gu{i}" for i in range(30))
    )
    letters = aws.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
    assert len(letters["Messages"]) == 1

    assert main(args) == 0
    assert "0 records" in capsys.readouterr().out
    assert len(_lake(s3_client, bucket)) == len(archived)
