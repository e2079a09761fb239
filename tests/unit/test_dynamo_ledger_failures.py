"""The DynamoDB once-ledger when DynamoDB fails: a transaction cancelled by throttling is sent
again whole (nothing decided from it), one that stays cancelled, or any other error that
outlasted botocore's retries, is DependencyUnavailable naming the table, never a claim."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from adapters.aws.dynamo_ledger import DynamoOnceLedger
from domain.backoff import no_wait
from domain.once import EntryState
from domain.streaming import DependencyUnavailable

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
TTL = timedelta(seconds=30)


class ThrottlingDynamo:
    """Cancels the first `throttled` transactions with ThrottlingError for every item (as
    DynamoDB does), then accepts; other calls fail with `error` when set."""

    def __init__(self, throttled: int, error: str | None = None) -> None:
        self.throttled = throttled
        self.error = error
        self.transactions = 0

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> dict[str, Any]:
        self.transactions += 1
        if self.error:
            raise ClientError(
                {"Error": {"Code": self.error, "Message": "no"}}, "TransactWriteItems"
            )  # type: ignore[arg-type]
        if self.transactions <= self.throttled:
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                    "CancellationReasons": [{"Code": "ThrottlingError"} for _ in TransactItems],
                },  # type: ignore[typeddict-unknown-key]
                "TransactWriteItems",
            )
        return {}


def test_a_throttled_transaction_is_sent_again_and_then_claims() -> None:
    db = ThrottlingDynamo(throttled=2)
    ledger = DynamoOnceLedger(db, "ledger", clock=lambda: NOW, backoff=no_wait(3))
    claimed = ledger.claim(["a", "b"], "owner", TTL)
    assert {e.state for e in claimed.values()} == {EntryState.CLAIMED}
    assert db.transactions == 3


def test_a_transaction_that_stays_throttled_is_unavailable_not_a_claim() -> None:
    ledger = DynamoOnceLedger(
        ThrottlingDynamo(throttled=99), "ledger", clock=lambda: NOW, backoff=no_wait(2)
    )
    with pytest.raises(DependencyUnavailable, match=r"ledger.*2 ledger writes still cancelled"):
        ledger.claim(["a", "b"], "owner", TTL)


def test_an_error_that_outlasted_botocore_is_unavailable_naming_the_table() -> None:
    ledger = DynamoOnceLedger(
        ThrottlingDynamo(0, error="ResourceNotFoundException"), "ledger", backoff=no_wait(2)
    )
    with pytest.raises(DependencyUnavailable, match=r"ledger.*ResourceNotFoundException"):
        ledger.claim(["a", "b"], "owner", TTL)
