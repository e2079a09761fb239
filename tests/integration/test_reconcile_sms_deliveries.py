"""reconcile_sms_deliveries through its Lambda handler on an SQS event: delivery events sent to
the emulator's SQS (one in an SNS notification), received back, and settled in the DynamoDB
send ledger on the emulator; a text still started is retried (a partial batch failure)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from adapters.aws.dynamo_ledger import DynamoOnceLedger, create_ledger_table
from domain.once import Done, EntryState, Unsure
from entrypoints import lambda_handlers, runtime
from tests.conftest import unique_name

pytestmark = pytest.mark.integration
TTL = timedelta(minutes=10)


class Context:
    aws_request_id = "req-1"
    function_name = "reconcile"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:reconcile"


@pytest.fixture
def world(emulator: Any, aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    table = unique_name("once")
    db = aws.client("dynamodb")
    create_ledger_table(db, table)
    queue = aws.client("sqs").create_queue(QueueName=unique_name("events"))["QueueUrl"]
    for name, value in {
        "AWS_ENDPOINT_URL": emulator.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "LEDGER_TABLE": table,
        "SMS_EVENTS_QUEUE": queue,
    }.items():
        monkeypatch.setenv(name, value)
    runtime.reset_settings()
    yield {"ledger": DynamoOnceLedger(db, table), "sqs": aws.client("sqs"), "queue": queue}
    runtime.reset_settings()


def test_delivery_events_from_sqs_settle_unknown_texts_in_the_dynamodb_ledger(
    world: dict[str, Any],
) -> None:
    ledger: DynamoOnceLedger = world["ledger"]
    keys = [f"sms#c1_w1#fan{n}" for n in range(5)]
    claimed = ledger.claim(keys, "run-1", TTL)
    started = {k: ledger.start(claimed[k]) for k in keys}
    ledger.finish(
        [
            (started[keys[0]], Unsure("timeout")),
            (started[keys[1]], Unsure("timeout")),
            (started[keys[2]], Unsure("timeout")),
            (started[keys[3]], Done("m-3")),
        ]
    )  # keys[4] stays started: its run still going

    def text_event(key: str, event_type: str, final: bool = True) -> dict[str, Any]:
        return {
            "eventType": event_type,
            "isFinal": final,
            "messageId": f"eum-{key[-1]}",
            "destinationPhoneNumber": "+14255550156",
            "context": {"ledgerKey": key},
        }

    sqs, queue = world["sqs"], world["queue"]
    bodies = [
        json.dumps(text_event(keys[0], "TEXT_DELIVERED")),
        json.dumps(
            {"Type": "Notification", "Message": json.dumps(text_event(keys[1], "TEXT_BLOCKED"))}
        ),
        json.dumps(text_event(keys[2], "TEXT_PENDING", final=False)),
        json.dumps(text_event(keys[3], "TEXT_CARRIER_UNREACHABLE")),
        json.dumps(text_event(keys[4], "TEXT_SUCCESSFUL")),
    ]
    for body in bodies:
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    received: list[dict[str, Any]] = []
    while len(received) < len(bodies):
        received += sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    records = [
        {"messageId": m["MessageId"], "body": m["Body"], "eventSource": "aws:sqs"} for m in received
    ]
    pending = next(m["MessageId"] for m in received if keys[4] in m["Body"])

    response = lambda_handlers.reconcile_sms_deliveries_handler({"Records": records}, Context())

    assert response == {"batchItemFailures": [{"itemIdentifier": pending}]}
    entries = ledger.read(keys)
    assert [(entries[k].state, entries[k].detail) for k in keys] == [
        (EntryState.DONE, "eum-0"),
        (EntryState.FAILED, "text_blocked"),
        (EntryState.UNKNOWN, "timeout"),  # not final: left alone
        (EntryState.DONE, "m-3"),  # the sender's record: never touched
        (EntryState.STARTED, ""),  # retried later, when its run has recorded it
    ]
