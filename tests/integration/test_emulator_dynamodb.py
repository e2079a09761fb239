"""The emulator's DynamoDB conditional writes are atomic under concurrent requests
(local/dynamodb_atomic.py), as DynamoDB's are. The race that made them not so lives in moto's
UpdateItem path and shows in tests/integration/test_dynamo_codes.py's model test; here: the fix
applies, and racing conditional writes still have exactly one winner each."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local import dynamodb_atomic, dynamodb_transactions
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


def test_the_transactions_fix_applies_to_the_pinned_moto(emulator: Any) -> None:
    """TransactWriteItems without moto's copy of the whole table per item
    (local/dynamodb_transactions.py)."""
    fix = dynamodb_transactions.TRANSACTIONS_FIX
    status = fix.status()
    assert status.applied, status.reason
    for qualified, original in fix.originals.items():
        assert fingerprint(original) == fix.fingerprints[qualified]


def _table(dynamodb: Any) -> str:
    table = unique_name("tx")
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return table


def _put(table: str, pk: str, value: str) -> dict[str, Any]:
    return {
        "Put": {
            "TableName": table,
            "Item": {"pk": {"S": pk}, "v": {"S": value}},
            "ConditionExpression": "attribute_not_exists(pk)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def _values(dynamodb: Any, table: str) -> dict[str, str]:
    items = dynamodb.scan(TableName=table)["Items"]
    return {i["pk"]["S"]: i["v"]["S"] for i in items}


def test_a_transaction_is_all_or_nothing_and_names_each_failed_condition(aws: Any) -> None:
    dynamodb = aws.client("dynamodb")
    table = _table(dynamodb)
    dynamodb.transact_write_items(TransactItems=[_put(table, "a", "1"), _put(table, "b", "1")])
    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(
            TransactItems=[_put(table, "c", "2"), _put(table, "a", "2"), _put(table, "d", "2")]
        )
    reasons = cancelled.value.response["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "ConditionalCheckFailed", "None"]
    assert reasons[1]["Item"] == {"pk": {"S": "a"}, "v": {"S": "1"}}
    assert _values(dynamodb, table) == {"a": "1", "b": "1"}  # c and d not written


def test_a_transaction_failing_midway_puts_the_touched_items_back(aws: Any) -> None:
    """A write the checks cannot foresee failing (an update of a number by a string) undoes
    the writes before it."""
    dynamodb = aws.client("dynamodb")
    table = _table(dynamodb)
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "n"}, "v": {"S": "x"}, "n": {"N": "1"}})
    bad_update = {
        "Update": {
            "TableName": table,
            "Key": {"pk": {"S": "n"}},
            "UpdateExpression": "SET n = n + :s",
            "ExpressionAttributeValues": {":s": {"S": "not a number"}},
        }
    }
    with pytest.raises(ClientError):
        dynamodb.transact_write_items(TransactItems=[_put(table, "new", "1"), bad_update])
    assert _values(dynamodb, table) == {"n": "x"}
