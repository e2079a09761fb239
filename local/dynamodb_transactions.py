"""The emulator's TransactWriteItems without a copy of the whole table per item.

moto 5.2.5 deep-copies every table a transaction touches, once per item of the transaction,
before it writes anything (its rollback). The issued-code ledger writes each chunk of a wave as
transactions of 100 conditional puts: against a table of 4,000 items that was 29 items/s, and
it grows with the table (quadratic over a wave). This replacement checks every item's condition
first and writes only when all hold, which is DynamoDB's all-or-nothing: a cancelled
transaction writes nothing, so nothing is copied; only a write that fails midway (a malformed
update, which the checks cannot foresee) is undone, from copies of the touched items alone.

It relies on local/dynamodb_atomic.py (one request at a time): nothing changes between the
checks and the writes. Patched through local/moto_patch.py, fingerprinted like every fix.
"""

from __future__ import annotations

import copy
from typing import Any

from local.moto_patch import MotoPatch

_OPS = frozenset({"ConditionCheck", "Put", "Delete", "Update"})


def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    from moto.dynamodb.exceptions import (
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )
    from moto.dynamodb.models import get_filter_expression

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    ops: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = []
    seen: set[tuple[str, str]] = set()
    errors: list[tuple[str | None, str | None, dict[str, Any] | None]] = []
    # 1. Every condition, nothing written (moto's own checks, in its order).
    for entry in transact_items:
        if len(entry) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(entry.items()))
        if op_type not in _OPS:
            raise ValueError("Unsupported transaction operation")
        table_name = op["TableName"]
        if op_type == "Put":
            table = self.get_table(table_name)
            key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = op["Item"][table.range_key_attr]
        else:
            key = op["Key"]
        unique = (str(table_name), str(dict(sorted(key.items()))))
        if unique in seen:
            raise MultipleTransactionsException()
        seen.add(unique)
        ops.append((op_type, op, table_name, key))
        current = self.get_item(table_name, key)
        condition = op.get("ConditionExpression")
        if condition is not None and not get_filter_expression(
            condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
        ).expr(current):
            old = None
            if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                old = current.to_json()["Attributes"]
            errors.append(("ConditionalCheckFailed", "The conditional request failed", old))
        else:
            errors.append((None, None, None))
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)
    # 2. Every write; a failure midway puts the touched items back as they were.
    before = [(t, k, copy.deepcopy(self.get_item(t, k))) for _, _, t, k in ops]
    try:
        for op_type, op, table_name, key in ops:
            _write(self, op_type, op, table_name, key)
    except Exception as error:
        for table_name, key, item in before:
            if item is None:
                self.delete_item(table_name, key)
            else:
                self.put_item(table_name, item.to_json()["Attributes"])
        failed = [(type(error).__name__, str(error), None)] * len(ops)
        raise TransactionCanceledException(failed) from error


def _write(backend: Any, op_type: str, op: dict[str, Any], table_name: str, key: Any) -> None:
    names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
    if op_type == "Put":
        backend.put_item(
            table_name,
            op["Item"],
            expression_attribute_names=names,
            expression_attribute_values=values,
        )
    elif op_type == "Delete":
        backend.delete_item(
            table_name, key, expression_attribute_names=names, expression_attribute_values=values
        )
    elif op_type == "Update":
        backend.update_item(
            table_name,
            key,
            update_expression=op["UpdateExpression"],
            expression_attribute_names=names,
            expression_attribute_values=values,
        )


def _classes() -> dict[str, type]:
    from moto.dynamodb.models import DynamoDBBackend

    return {"DynamoDBBackend": DynamoDBBackend}


TRANSACTIONS_FIX = MotoPatch(
    "dynamodb transactions",
    __name__,
    _classes,
    replacements={"DynamoDBBackend.transact_write_items": transact_write_items},
    # fingerprint() of DynamoDBBackend.transact_write_items in moto 5.2.5.
    fingerprints={"DynamoDBBackend.transact_write_items": "81db2cb7d94e39c90b3a2077e1f4bb41"},
)
