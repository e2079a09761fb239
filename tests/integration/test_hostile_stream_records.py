"""Issue 17 item 4: one crafted record (20+ digits, nested 1,000 deep) no longer blocks a shard.
Each stream worker, on the emulator (S3, SQS, DynamoDB, Kinesis), takes 6 good records with the
poison between them through the Lambda handler (a child process importing
`entrypoints.lambda_handlers.stream_worker_handler`, a Kinesis event with base64 data) and
through `campaign-workers poll`: the good records land, the poison is dead-lettered with its
reason (transform_code_assignments filters it: on the input stream it is save_campaign_data's to
dead-letter), nothing is reported failed, nothing raises."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastavro import reader

from domain.records import TOO_DEEP
from entrypoints.cli import main
from tests.conftest import unique_name
from tests.support.lambda_sandbox import Sandbox
from tests.support.stream_fakes import kinesis_event
from tests.support.stream_records import code_assignment, enriched_assignment, raw, sample_record

pytestmark = pytest.mark.integration

POISON = b'{"type":"registration","n":12345678901234567890123,"x":' + b"[" * 1000
POISON += b"]" * 1000 + b"}"
SHARD = "shardId-000000000000"
WORKERS = ["save_campaign_data", "transform_code_assignments", "save_selection"]


@dataclass
class World:
    """The emulator's resources for one worker, and the environment that points it at them."""

    worker: str
    env: dict[str, str]
    aws: Any
    bucket: str
    queue_url: str
    output_stream: str = ""
    demand_table: str = ""
    verdict_url: str = ""
    good: list[bytes] = field(default_factory=list)

    def payloads(self) -> list[bytes]:
        """6 good records with the poison in the middle."""
        return [*self.good[:3], POISON, *self.good[3:]]

    def dead_letters(self) -> list[dict[str, Any]]:
        sqs = self.aws.client("sqs")
        bodies: list[dict[str, Any]] = []
        while True:
            answer = sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=600
            )
            messages = answer.get("Messages", [])
            if not messages:
                return bodies
            bodies.extend(json.loads(m["Body"]) for m in messages)

    def landed(self, kinesis: Any) -> int:
        """How many good records reached the worker's destination."""
        if self.worker == "save_campaign_data":
            s3 = self.aws.client("s3")
            found = 0
            for item in s3.list_objects_v2(Bucket=self.bucket, Prefix="avro/").get("Contents", []):
                body = s3.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
                found += sum(1 for _ in reader(io.BytesIO(body)))
            return found
        if self.worker == "transform_code_assignments":
            shard = kinesis.list_shards(StreamName=self.output_stream)["Shards"][0]["ShardId"]
            iterator = kinesis.get_shard_iterator(
                StreamName=self.output_stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            return len(kinesis.get_records(ShardIterator=iterator)["Records"])
        items = self.aws.client("dynamodb").scan(TableName=self.demand_table)["Items"]
        return sum(len(item["codes"]["SS"]) for item in items)


def _table(dynamodb: Any, name: str, *keys: str) -> None:
    kinds = ["HASH", "RANGE"]
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": k, "KeyType": kinds[n]} for n, k in enumerate(keys)],
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture(params=WORKERS)
def world(
    request: pytest.FixtureRequest,
    emulator: Any,
    aws: Any,
    make_bucket: Callable[[], str],
    make_stream: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[World]:
    worker: str = request.param
    bucket = make_bucket()
    sqs, dynamodb = aws.client("sqs"), aws.client("dynamodb")
    queue_name = unique_name("dlq")
    env = {
        "AWS_ENDPOINT_URL": emulator.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "WORKER": worker,
        "CAMPAIGN_DATA_BUCKET": bucket,
        "SCORING_BUCKET": bucket,
        "DEAD_LETTER_QUEUE": queue_name,
        "CHECKPOINT_TABLE": unique_name("watermarks"),
    }
    found = World(worker, env, aws, bucket, sqs.create_queue(QueueName=queue_name)["QueueUrl"])
    if worker == "save_campaign_data":
        found.good = [raw(sample_record("registration", i)) for i in range(6)]
    elif worker == "transform_code_assignments":
        users = unique_name("users")
        _table(dynamodb, users, "globalUserId")
        for i in range(6):
            dynamodb.put_item(
                TableName=users,
                Item={"globalUserId": {"S": f"g{i}"}, "userId": {"S": f"{i:024d}"}},
            )
        aws.client("s3").put_object(
            Bucket=bucket, Key="campaigns/categories.json", Body=b'{"cat-1": "camp-1"}'
        )
        found.output_stream = make_stream()
        env |= {"USERS_TABLE": users, "SAVE_SELECTION_STREAM": found.output_stream}
        found.good = [raw(code_assignment(i)) for i in range(6)]
    else:
        found.demand_table = unique_name("demand")
        _table(dynamodb, found.demand_table, "PK", "SK")
        verdicts = unique_name("verdicts")
        found.verdict_url = sqs.create_queue(QueueName=verdicts)["QueueUrl"]
        env |= {"DEMAND_TABLE": found.demand_table, "VERDICT_QUEUE": verdicts}
        found.good = [raw(enriched_assignment(i)) for i in range(6)]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield found


def _assert_poison_handled(world: World, kinesis: Any) -> None:
    assert world.landed(kinesis) == 6
    letters = world.dead_letters()
    if world.worker == "transform_code_assignments":
        assert letters == []  # filtered as undecodable: save_campaign_data dead-letters it
        return
    assert [letter["reason"] for letter in letters] == [TOO_DEEP]
    assert letters[0]["worker"] == world.worker


def test_the_lambda_handler_dead_letters_the_poison_and_handles_the_batch(
    world: World, kinesis_client: Any
) -> None:
    event, _sequences = kinesis_event({SHARD: world.payloads()}, stream=unique_name("stream"))
    sandbox = Sandbox({**os.environ, **world.env})
    try:
        assert sandbox.started == {"imported": True}
        assert sandbox.invoke(event) == {"batchItemFailures": []}
        assert sandbox.invoke(event) == {"batchItemFailures": []}  # a redelivery: skipped
    finally:
        sandbox.close()
    assert sandbox.process.returncode == 0
    _assert_poison_handled(world, kinesis_client)


def test_the_poller_dead_letters_the_poison_and_goes_on(
    world: World,
    kinesis_client: Any,
    make_stream: Callable[..., str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stream = make_stream()
    for data in world.payloads():
        kinesis_client.put_record(StreamName=stream, Data=data, PartitionKey="one-shard")
    args = ["poll", world.worker, "--stream", stream, "--checkpoints", str(tmp_path / "cp.json")]

    assert main(args) == 0
    counted = capsys.readouterr().out
    assert "7 records: 6 handled" in counted
    _assert_poison_handled(world, kinesis_client)
    assert main(args) == 0  # the checkpoint is past the poison: nothing is read again
    assert "0 records" in capsys.readouterr().out
