"""The DynamoDB adapters classify failures one way (adapters/aws/errors.lookup_failure). The
codes table's conditional writes: a failed condition is an answer (the code exists, is held, is
owned), any other error outlasted botocore's retries and becomes the caller's kind of failure,
named by what was being written. The entries' many writes: the call fails as unavailable when
any write was (a retry may cure it), else as the first failure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from returns.result import Failure, Success

from adapters.aws.dynamo_codes import DynamoCodeInventory, DynamoCodeIssuer
from adapters.aws.dynamo_ledger import DynamoOnceLedger
from domain.backoff import no_wait
from domain.codes import CodeRequest, CodeType, IssuedCode
from domain.issued_codes import OnceIssuedCodes
from domain.models import FailureKind, LookupFailure
from domain.streaming import DependencyUnavailable

CONDITION_FAILED = "ConditionalCheckFailedException"
REQUEST = CodeRequest(
    product_id="p1",
    source="wave",
    begin=datetime(2026, 12, 1, tzinfo=UTC),
    end=datetime(2026, 12, 2, tzinfo=UTC),
    global_user_id="g1",
)


class RefusingDynamo:
    """Every PutItem and UpdateItem fails with `code`, a failed condition carrying `item` when
    the request asks for it (ReturnValuesOnConditionCheckFailure=ALL_OLD), as DynamoDB does;
    GetItem answers `item`."""

    def __init__(self, code: str, item: dict[str, Any] | None = None) -> None:
        self.code = code
        self.item = item or {}
        self.writes = 0

    def _refuse(self, operation: str, request: dict[str, Any]) -> ClientError:
        self.writes += 1
        answer: dict[str, Any] = {"Error": {"Code": self.code, "Message": "no"}}
        asked = request.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
        if self.code == CONDITION_FAILED and self.item and asked:
            answer["Item"] = self.item
        return ClientError(answer, operation)  # type: ignore[arg-type]

    def put_item(self, **request: Any) -> dict[str, Any]:
        raise self._refuse("PutItem", request)

    def update_item(self, **request: Any) -> dict[str, Any]:
        raise self._refuse("UpdateItem", request)

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> dict[str, Any]:
        """A failed condition cancels the transaction, naming every item, as DynamoDB does."""
        if self.code != CONDITION_FAILED:
            raise self._refuse("TransactWriteItems", {})
        self.writes += 1
        reasons = []
        for entry in TransactItems:
            reason: dict[str, Any] = {"Code": "ConditionalCheckFailed"}
            if entry["Put"].get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD":
                reason["Item"] = self.item
            reasons.append(reason)
        answer = {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": reasons,
        }
        raise ClientError(answer, "TransactWriteItems")  # type: ignore[arg-type]

    def get_item(self, **_request: Any) -> dict[str, Any]:
        return {"Item": self.item}


def test_a_refused_issue_draws_again_until_the_draws_run_out() -> None:
    dynamo = RefusingDynamo(CONDITION_FAILED)
    issuer = DynamoCodeIssuer(dynamo, "codes", generate=lambda: "ABC")
    outcome = issuer.issue(REQUEST)
    assert isinstance(outcome, Failure)
    assert outcome.failure().kind == FailureKind.INVALID
    assert "draws all collided" in outcome.failure().detail
    assert dynamo.writes == 5


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("ValidationException", FailureKind.INVALID),
        ("InternalServerError", FailureKind.UNAVAILABLE),
    ],
)
def test_an_issue_that_fails_otherwise_is_a_failure_of_its_kind(code: str, kind: str) -> None:
    dynamo = RefusingDynamo(code)
    outcome = DynamoCodeIssuer(dynamo, "codes", generate=lambda: "ABC").issue(REQUEST)
    assert outcome == Failure(LookupFailure("code for fan 'g1'", FailureKind(kind), code))
    assert dynamo.writes == 1


def test_a_refused_assignment_is_already_or_a_conflict_by_the_owner() -> None:
    ours = RefusingDynamo(CONDITION_FAILED, {"campaignId": {"S": "camp-1"}})
    theirs = RefusingDynamo(CONDITION_FAILED, {"campaignId": {"S": "camp-2"}})
    for dynamo, conflicts in ((ours, 0), (theirs, 1)):
        outcome = DynamoCodeInventory(dynamo, "codes").assign("camp-1", ["A"])
        assert isinstance(outcome, Success)
        assert (outcome.unwrap().updated, outcome.unwrap().conflicts) == (0, conflicts)


def test_an_assignment_that_fails_otherwise_fails_the_call() -> None:
    outcome = DynamoCodeInventory(RefusingDynamo("InternalServerError"), "codes").assign(
        "camp-1", ["A"]
    )
    assert isinstance(outcome, Failure)
    assert outcome.failure().kind == FailureKind.UNAVAILABLE
    assert outcome.failure().detail == "InternalServerError"


def test_stock_that_fails_otherwise_raises_naming_the_campaign() -> None:
    inventory = DynamoCodeInventory(RefusingDynamo("InternalServerError"), "codes")
    with pytest.raises(Exception, match=r"stock code for campaign 'camp-1'.*InternalServerError"):
        inventory.stock("camp-1", CodeType.EXTERNAL, ["A"])


def led(dynamo: Any, **options: Any) -> OnceIssuedCodes:
    """The issued-code ledger as bootstrap builds it: the once-ledger in the codes table."""
    return OnceIssuedCodes(DynamoOnceLedger(dynamo, "codes", **options), "run-1")


def test_a_refused_ledger_entry_returns_the_code_recorded_first() -> None:
    first = {
        "pk": {"S": "issued-code#w1#g1"},
        "state": {"S": "done"},
        "owner": {"S": "run-0"},
        "expiresAt": {"N": "0"},
        "version": {"N": "1"},
        "detail": {"S": "3:FIRST"},
    }
    ledger = led(RefusingDynamo(CONDITION_FAILED, first))
    assert ledger.record("w1", {"g1": IssuedCode("SECOND", 7)}) == {"g1": IssuedCode("FIRST", 3)}


def test_a_ledger_entry_that_fails_otherwise_is_the_table_unavailable() -> None:
    ledger = led(RefusingDynamo("InternalServerError"))
    with pytest.raises(DependencyUnavailable, match="InternalServerError"):
        ledger.record("w1", {"g1": IssuedCode("SECOND", 7)})


class ConflictingDynamo:
    """TransactWriteItems cancelled by a conflicting transaction `conflicts` times, then made."""

    def __init__(self, conflicts: int) -> None:
        self.conflicts = conflicts
        self.calls: list[int] = []

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(len(TransactItems))
        if len(self.calls) <= self.conflicts:
            reasons = [{"Code": "TransactionConflict"}] + [{"Code": "None"}] * (
                len(TransactItems) - 1
            )
            answer = {
                "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                "CancellationReasons": reasons,
            }
            raise ClientError(answer, "TransactWriteItems")  # type: ignore[arg-type]
        return {}


def test_a_ledger_transaction_cancelled_by_a_conflict_is_resent_whole() -> None:
    dynamo = ConflictingDynamo(conflicts=2)
    ledger = led(dynamo, backoff=no_wait(retries=3))
    issued = {f"g{i}": IssuedCode(f"C{i}", i) for i in range(150)}
    assert ledger.record("w1", issued) == issued
    # 100 + 50, the first cancelled twice: every fan sent until recorded, none dropped.
    assert dynamo.calls == [100, 100, 100, 50]


def test_ledger_transactions_still_cancelled_when_the_resends_run_out_are_unavailable() -> None:
    ledger = led(ConflictingDynamo(99), backoff=no_wait(retries=2))
    with pytest.raises(DependencyUnavailable, match=r"still cancelled after retries"):
        ledger.record("w1", {"g1": IssuedCode("C", 1), "g2": IssuedCode("D", 2)})


class FailingByCode:
    """UpdateItem fails with the error code its fan's user id names ('ok' succeeds)."""

    def update_item(self, **request: Any) -> dict[str, Any]:
        code = request["ExpressionAttributeValues"][":user"]["S"]
        if code == "ok":
            return {}
        raise ClientError({"Error": {"Code": code, "Message": "no"}}, "UpdateItem")


@pytest.mark.parametrize(
    ("codes", "kind", "detail"),
    [
        (["ok", "ValidationException"], FailureKind.INVALID, "ValidationException"),
        (["ValidationException", "InternalServerError"], FailureKind.UNAVAILABLE, "Internal"),
        (["InternalServerError", "ValidationException"], FailureKind.UNAVAILABLE, "Internal"),
    ],
)
def test_entries_fail_as_unavailable_when_any_write_was(
    codes: list[str], kind: FailureKind, detail: str
) -> None:
    from adapters.aws.dynamo_entries import DynamoEntryDirectory, DynamoSelectionLedger
    from domain.records import CodeAssignment

    assignments = [CodeAssignment("camp-1", c, f"g{i}", f"C{i}") for i, c in enumerate(codes)]
    for outcome in (
        DynamoEntryDirectory(FailingByCode(), "demand").assign_codes("camp-1", assignments),
        DynamoSelectionLedger(FailingByCode(), "demand").record_selections("camp-1", assignments),
    ):
        assert isinstance(outcome, Failure)
        assert outcome.failure().kind == kind and outcome.failure().detail.startswith(detail)
        assert "camp-1" in outcome.failure().what
