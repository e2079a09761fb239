"""The emulator's DynamoDB conditional writes are atomic under concurrent requests
(local/dynamodb_atomic.py), as DynamoDB's are. The race that made them not so lives in moto's
UpdateItem path and shows in tests/integration/test_dynamo_codes.py's model test; here: the fix
applies, and racing conditional writes still have exactly one winner each."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local import dynamodb_atomic
from local.moto_patch import fingerprint
from tests.conftest import unique_name

pytestmark = pytest.mark.integration


def test_the_dynamodb_fix_applies_to_the_pinned_moto(emulator: Any) -> None:
    status = dynamodb_atomic.DYNAMODB_FIX.status()
    assert status.applied, status.reason
    fix = dynamodb_atomic.DYNAMODB_FIX
    assert set(fix.originals) == set(fix.fingerprints)
    for qualified, original in fix.originals.items():
        assert fingerprint(original) == fix.fingerprints[qualified]


def test_a_changed_call_action_is_detected_and_not_patched() -> None:
    class Changed:
        def call_action(self) -> None:  # not moto's
            return None

    status = dynamodb_atomic.DYNAMODB_FIX.apply_to({"DynamoHandler": Changed})
    assert not status.applied and "differs" in status.reason
    assert Changed.__dict__["call_action"] is not dynamodb_atomic.DYNAMODB_FIX.installed.get(
        "DynamoHandler.call_action"
    )


def test_of_racing_conditional_puts_on_one_item_exactly_one_wins(aws: Any) -> None:
    dynamodb = aws.client("dynamodb")
    table = unique_name("race")
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    def claim(item: str, claimant: int) -> bool:
        try:
            dynamodb.put_item(
                TableName=table,
                Item={"pk": {"S": item}, "by": {"N": str(claimant)}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as refused:
            assert refused.response["Error"]["Code"] == "ConditionalCheckFailedException"
            return False
        return True

    items = [f"code-{i}" for i in range(40)]
    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(lambda job: claim(*job), [(i, c) for i in items for c in range(8)]))
    winners = [sum(won[n * 8 : (n + 1) * 8]) for n in range(len(items))]
    assert winners == [1] * len(items)
