"""Entries, selections and users on DynamoDB over HTTP (the embedded emulator); save_selection
end to end on AWS-native adapters; DynamoDB throttling and failing."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from returns.result import Failure, Success

from adapters.aws.clients import ClientFactory, ClientOptions
from adapters.aws.dynamo_entries import (
    DynamoEntryDirectory,
    DynamoSelectionLedger,
    DynamoUserDirectory,
    fan_key,
)
from adapters.aws.sqs import SqsDeadLetters, SqsVerdictQueue
from domain.records import AssignedCodes, CodeAssignment
from domain.streaming import DependencyUnavailable
from domain.workers.save_selection import save_selection
from tests.conftest import unique_name
from tests.support.http_server import Fault, Response, running_server
from tests.support.stream_records import batch_of, enriched_assignment, raw

pytestmark = pytest.mark.integration
AT = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def dynamodb(aws: ClientFactory) -> Any:
    return aws.client("dynamodb")


@pytest.fixture
def demand_table(dynamodb: Any) -> str:
    name = unique_name("demand")
    dynamodb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def assignment(i: int, code: str | None = None, campaign: str = "camp-1") -> CodeAssignment:
    return CodeAssignment(
        campaign_id=campaign,
        user_id=f"{i:024d}",
        global_user_id=f"g{i}",
        code=code or f"CODE{i}",
        market_id=f"m{i % 3}",
    )


def item(dynamodb: Any, table: str, fan: str, campaign: str = "camp-1") -> dict[str, Any]:
    return dict(dynamodb.get_item(TableName=table, Key=fan_key(fan, campaign))["Item"])


def test_codes_are_assigned_once_per_fan_and_a_replay_assigns_none(
    dynamodb: Any, demand_table: str
) -> None:
    entries = DynamoEntryDirectory(dynamodb, demand_table, clock=lambda: AT)
    batch = [assignment(i) for i in range(30)]

    assert entries.assign_codes("camp-1", batch) == Success(AssignedCodes(assigned=30, already=0))
    assert entries.assign_codes("camp-1", batch) == Success(AssignedCodes(assigned=0, already=30))

    stored = item(dynamodb, demand_table, "g4")
    assert stored["codes"] == {"SS": ["CODE4"]}
    assert stored["verdict"] == {"BOOL": True}
    assert stored["userId"] == {"S": f"{4:024d}"}
    assert stored["selectedEvents"] == {"SS": ["m1"]}
    assert stored["selectedAt"] == {"S": AT.isoformat()}


def test_a_second_code_for_the_same_fan_is_added_beside_the_first(
    dynamodb: Any, demand_table: str
) -> None:
    entries = DynamoEntryDirectory(dynamodb, demand_table)
    entries.assign_codes("camp-1", [assignment(1, "A")])
    outcome = entries.assign_codes("camp-1", [assignment(1, "B"), assignment(1, "A")])
    assert outcome == Success(AssignedCodes(assigned=1, already=1))
    assert sorted(item(dynamodb, demand_table, "g1")["codes"]["SS"]) == ["A", "B"]


def test_more_than_the_call_limit_is_refused_as_invalid(dynamodb: Any, demand_table: str) -> None:
    entries = DynamoEntryDirectory(dynamodb, demand_table, max_assignments_per_call=2)
    outcome = entries.assign_codes("camp-1", [assignment(i) for i in range(3)])
    assert isinstance(outcome, Failure) and outcome.failure().kind == "invalid"


def test_the_selection_ledger_marks_fans_idempotently(dynamodb: Any, demand_table: str) -> None:
    ledger = DynamoSelectionLedger(dynamodb, demand_table)
    assert ledger.record_selections("camp-1", [assignment(1), assignment(2)]) == Success(2)
    assert ledger.record_selections("camp-1", [assignment(1)]) == Success(1)
    stored = item(dynamodb, demand_table, "g1")
    assert stored["verdict"] == {"BOOL": True} and stored["selectedEvents"] == {"SS": ["m1"]}
    assert "codes" not in stored


def test_users_are_looked_up_in_calls_of_a_hundred(dynamodb: Any) -> None:
    table = unique_name("users")
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "globalUserId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "globalUserId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for i in range(0, 250, 2):
        dynamodb.put_item(
            TableName=table, Item={"globalUserId": {"S": f"g{i}"}, "userId": {"S": f"u{i}"}}
        )
    users = DynamoUserDirectory(dynamodb, table)
    found = users.user_ids_for([f"g{i}" for i in range(250)] + ["g0"]).unwrap()
    assert found == {f"g{i}": f"u{i}" for i in range(0, 250, 2)}


def test_save_selection_end_to_end_on_dynamodb_and_sqs(
    dynamodb: Any, demand_table: str, aws: ClientFactory
) -> None:
    sqs = aws.client("sqs")
    verdict_queue = sqs.create_queue(
        QueueName=unique_name("vdct") + ".fifo", Attributes={"FifoQueue": "true"}
    )["QueueUrl"]
    dlq = sqs.create_queue(QueueName=unique_name("dlq"))["QueueUrl"]
    records = [raw(enriched_assignment(i, campaign=f"camp-{i % 2}")) for i in range(40)]
    batch = batch_of([*records, b"\x00junk"], stream="save-selection-stream")

    def run() -> Any:
        return save_selection(
            batch,
            entries=DynamoEntryDirectory(dynamodb, demand_table, max_assignments_per_call=7),
            verdicts=SqsVerdictQueue(sqs, verdict_queue),
            dead_letters=SqsDeadLetters(sqs, dlq),
        )

    first, replay = run(), run()

    assert (first.handled, first.dead_lettered) == (40, 1)
    assert first.detail["assigned"] == 40 and replay.detail["already_assigned"] == 40
    counts: Counter[str] = Counter()
    while messages := sqs.receive_message(QueueUrl=verdict_queue, MaxNumberOfMessages=10).get(
        "Messages"
    ):
        for message in messages:
            body = json.loads(message["Body"])
            assert set(body) == {"campaignId", "count"}
            counts[body["campaignId"]] += body["count"]
        sqs.delete_message_batch(
            QueueUrl=verdict_queue,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )
    # one verdict per assignment; the FIFO queue dropped the replay's copies
    assert counts == {"camp-0": 20, "camp-1": 20}
    codes = dynamodb.scan(TableName=demand_table)["Items"]
    assert sum(len(i["codes"]["SS"]) for i in codes) == 40


DYNAMO_THROTTLE = Fault(
    name="throttled",
    response=Response(
        status=400,
        body=json.dumps(
            {
                "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "message": "slow down",
            }
        ).encode(),
        headers=(("Content-Type", "application/x-amz-json-1.0"),),
    ),
)


@pytest.mark.parametrize("fault", [DYNAMO_THROTTLE, Fault.status(503)], ids=["throttled", "503"])
def test_dynamodb_failing_past_its_retries_makes_save_selection_raise(fault: Fault) -> None:
    with running_server() as server:
        server.inject(fault, times=1000)
        dynamodb = ClientFactory(
            ClientOptions(endpoint_url=server.url, max_attempts=2, read_timeout=2.0)
        ).client("dynamodb")
        entries = DynamoEntryDirectory(dynamodb, "demand")
        outcome = entries.assign_codes("camp-1", [assignment(1)])
        assert isinstance(outcome, Failure) and outcome.failure().kind == "unavailable"
        users = DynamoUserDirectory(dynamodb, "users")
        assert users.user_ids_for(["g1"]).failure().kind == "unavailable"  # type: ignore[union-attr]

        class NoVerdicts:
            def send(self, verdict: Any) -> None:
                raise AssertionError("no verdict may go out for a batch that failed")

        class NoDeadLetters:
            def send(self, letters: Any) -> None:
                raise AssertionError("nothing may be dead-lettered for a transient failure")

        with pytest.raises(DependencyUnavailable, match="entry directory"):
            save_selection(
                batch_of([raw(enriched_assignment(1))]),
                entries=entries,
                verdicts=NoVerdicts(),
                dead_letters=NoDeadLetters(),
            )
