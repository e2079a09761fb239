"""The lake's two workers through their Lambda handlers (a scheduled/direct merge; the move on
its SQS event with a partial batch response) and their CLI commands, on the emulator."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from entrypoints import cli
from entrypoints.lambda_handlers import merge_avro_files_handler, move_merged_avro_files_handler
from tests.conftest import unique_name
from tests.support.lake_files import SCHEMAS, lake_environment

pytestmark = pytest.mark.integration
DAY = "2024/05/03"


class Context:
    aws_request_id = "req-1"
    function_name = "merge"
    memory_limit_in_mb = 2048
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:merge"


def ban(i: int) -> Any:
    arrived = datetime(2024, 5, 3, 9, tzinfo=UTC)
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
    for number, ids in enumerate([range(0, 10), range(5, 15), range(20, 25)]):
        body = SCHEMAS.encode("codeBan", [ban(i) for i in ids])
        key = f"avro/codeBan/{DAY}/shardId-000000000000-{number}.avro"
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    return {"bucket": bucket, "queue": queue, "sqs": sqs, "s3": s3}


def test_merge_by_lambda_then_move_by_its_sqs_event(lake: dict[str, Any]) -> None:
    result = merge_avro_files_handler({"prefix": DAY}, Context())

    assert (result["files"], result["records"], result["duplicates"]) == (3, 20, 5)
    assert result["types"]["codeBan"]["merged"].endswith("avro/codeBan/merged/2024/05/03.avro")
    sqs = lake["sqs"]
    (message,) = sqs.receive_message(QueueUrl=lake["queue"], MaxNumberOfMessages=10)["Messages"]
    event = {
        "Records": [
            {"messageId": "m1", "body": message["Body"], "eventSource": "aws:sqs"},
            {"messageId": "m2", "body": "not json", "eventSource": "aws:sqs"},
        ]
    }

    response = move_merged_avro_files_handler(event, Context())

    assert response == {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    s3 = lake["s3"]
    listed = s3.list_objects_v2(Bucket=lake["bucket"], Prefix="avro/")["Contents"]
    assert sorted(o["Key"] for o in listed) == [
        f"avro/archived/codeBan/{DAY}/shardId-000000000000-{n}.avro" for n in range(3)
    ] + ["avro/codeBan/merged/2024/05/03.avro", "avro/merged-keys/codeBan/2024/05/03.keys"]


def test_a_scheduled_daily_merge_takes_the_day_before_the_events_time(
    lake: dict[str, Any],
) -> None:
    scheduled = {
        "version": "0",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": "2024-05-04T10:00:00Z",
        "detail": {},
        "type": "daily",
    }
    assert merge_avro_files_handler(scheduled, Context())["prefix"] == DAY
    assert merge_avro_files_handler({"type": "weekly"}, Context())["status"] == "refused"


def test_the_cli_merges_moves_and_says_when_a_prefix_was_merged(
    lake: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["merge-avro-files", "--prefix", DAY, "--type", "codeBan", "--quiet"]) == 0
    assert '"records": 20' in capsys.readouterr().out
    assert cli.main(["move-merged-avro-files", DAY, "--type", "codeBan", "--quiet"]) == 0
    assert '"moved": 3' in capsys.readouterr().out

    assert cli.main(["merge-avro-files", "--prefix", DAY, "--quiet"]) == 0

    captured = capsys.readouterr()
    assert '"alreadyMerged": true' in captured.out
    assert "merged already" in captured.err
