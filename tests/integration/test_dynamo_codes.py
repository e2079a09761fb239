"""The DynamoDB code inventory, issuer and ledger over HTTP on the embedded emulator: the
inventory model under any interleaving, holds that expire, the same key, assignment conflicts,
collisions of generated codes."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import Phase, settings
from returns.result import Failure, Success

from adapters.aws.clients import ClientFactory
from adapters.aws.dynamo_codes import (
    DynamoCodeInventory,
    DynamoCodeIssuer,
    StockCount,
    create_codes_table,
    iter_table_codes,
)
from adapters.aws.dynamo_ledger import DynamoOnceLedger
from adapters.code_generator import CodeGenerator
from domain.codes import AssignCount, CodeRequest, CodeType, IssuedCode
from domain.issued_codes import OnceIssuedCodes
from tests.conftest import unique_name
from tests.support.inventory_model import InventoryModel

pytestmark = pytest.mark.integration
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def dynamodb(aws: ClientFactory) -> Any:
    return aws.client("dynamodb")


@pytest.fixture(scope="module")
def table(dynamodb: Any) -> str:
    name = unique_name("codes")
    create_codes_table(dynamodb, name)
    return name


def test_inventory_model_holds_on_dynamodb(dynamodb: Any, table: str) -> None:
    class DynamoInventoryModel(InventoryModel):
        @staticmethod
        def build(clock: Callable[[], datetime]) -> DynamoCodeInventory:
            return DynamoCodeInventory(dynamodb, table, clock=clock, concurrency=4)

    # No shrinking over HTTP (minutes); a failure still prints the steps that led to it.
    DynamoInventoryModel.TestCase.settings = settings(
        max_examples=15,
        stateful_step_count=14,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
    )
    DynamoInventoryModel.TestCase("runTest").runTest()


def test_a_hold_expires_after_24_hours_unless_assigned(dynamodb: Any, table: str) -> None:
    now = [NOW]
    codes = DynamoCodeInventory(dynamodb, table, clock=lambda: now[0])
    stock = [unique_name("E") for _ in range(4)]
    assert codes.stock("camp-x", CodeType.EXTERNAL, stock) == StockCount(added=4)
    first = codes.reserve("camp-x", 2, CodeType.EXTERNAL, "wave-1").unwrap()
    codes.assign("camp-x", [first.codes[0]])
    taken = codes.reserve("camp-x", 4, CodeType.EXTERNAL, "wave-2").unwrap()
    assert set(taken.codes) == set(stock) - set(first.codes)  # the others are held
    now[0] += timedelta(hours=24, seconds=1)
    later = codes.reserve("camp-x", 4, CodeType.EXTERNAL, "wave-3").unwrap()
    # wave-2's and the unassigned half of wave-1's holds expired; the assigned code never frees.
    assert set(later.codes) == set(stock) - {first.codes[0]}
    status = codes.lookup("camp-x", stock).unwrap()
    assert status[first.codes[0]] == "assigned"
    # wave-1 asked again: its assigned code is still its own, the lost one is not replaced.
    again = codes.reserve("camp-x", 2, CodeType.EXTERNAL, "wave-1").unwrap()
    assert again.codes == (first.codes[0],)


def test_a_code_of_another_campaign_is_a_conflict_and_unknown_codes_are_claimed(
    dynamodb: Any, table: str
) -> None:
    codes = DynamoCodeInventory(dynamodb, table, clock=lambda: NOW)
    theirs, new = unique_name("T"), unique_name("N")
    codes.stock("camp-1", CodeType.EXTERNAL, [theirs])
    assert codes.assign("camp-2", [theirs, new]).unwrap() == AssignCount(2, 1, conflicts=1)
    assert codes.assign("camp-2", [theirs, new]).unwrap() == AssignCount(2, 0, conflicts=1)
    assert codes.assign("camp-1", [new]).unwrap() == AssignCount(1, 0, conflicts=1)
    assert codes.lookup("camp-2", [theirs, new]).unwrap() == {new: "assigned"}


def test_short_stock_gives_a_short_reservation_then_fills_up(dynamodb: Any, table: str) -> None:
    codes = DynamoCodeInventory(dynamodb, table, clock=lambda: NOW)
    campaign = unique_name("camp")
    codes.stock(campaign, CodeType.EXTERNAL, ["S1" + campaign, "S2" + campaign])
    first = codes.reserve(campaign, 3, CodeType.EXTERNAL, "k").unwrap().codes
    assert sorted(first) == ["S1" + campaign, "S2" + campaign]
    codes.stock(campaign, CodeType.EXTERNAL, ["S3" + campaign])
    again = codes.reserve(campaign, 3, CodeType.EXTERNAL, "k").unwrap().codes
    # Slots fill concurrently, so which slot holds which code is not fixed; what is: the codes
    # already held stay held, and the free slot takes the new stock.
    assert set(first) < set(again) and sorted(again) == [f"S{i}{campaign}" for i in (1, 2, 3)]


def test_types_are_separate_pools(dynamodb: Any, table: str) -> None:
    codes = DynamoCodeInventory(dynamodb, table, clock=lambda: NOW)
    campaign = unique_name("camp")
    codes.stock(campaign, CodeType.TM, ["TM1" + campaign])
    assert codes.reserve(campaign, 1, CodeType.EXTERNAL, "k").unwrap().codes == ()


def test_generated_codes_are_written_once_and_collisions_draw_again(
    dynamodb: Any, table: str
) -> None:
    taken = unique_name("C").upper()
    draws = itertools.chain([taken, taken], (unique_name("D") for _ in itertools.count()))
    issuer = DynamoCodeIssuer(dynamodb, table, lambda: next(draws), clock=lambda: NOW)
    request = CodeRequest("prod", "vf", NOW - timedelta(days=1), NOW + timedelta(days=365), "g1")
    assert issuer.issue(request).unwrap() == taken
    second = issuer.issue(request.__class__("prod", "vf", NOW, NOW, "g2"))
    assert isinstance(second, Success) and second.unwrap() != taken
    item = next(i for i in iter_table_codes(dynamodb, table) if i["code"]["S"] == taken)
    assert item["globalUserId"]["S"] == "g1" and item["status"]["S"] == "issued"
    stuck = DynamoCodeIssuer(dynamodb, table, lambda: taken)
    assert isinstance(stuck.issue(request), Failure)


def test_generated_codes_use_the_documented_alphabet(dynamodb: Any, table: str) -> None:
    generate = CodeGenerator()
    issuer = DynamoCodeIssuer(dynamodb, table, generate, concurrency=4)
    request = CodeRequest("prod", "vf", NOW, NOW + timedelta(days=365), "g")
    codes = [r.unwrap() for r in issuer.issue_many([request] * 50)]
    assert len(set(codes)) == 50
    assert all(len(c) == 12 and set(c) <= set("23456789ABCDEFGHJKLMNPQRSTUVWXYZ") for c in codes)
    assert generate.bits == 60


def test_requests_not_started_by_the_deadline_are_unavailable_and_write_nothing(
    dynamodb: Any, table: str
) -> None:
    """The worker's share of its lease bounds a chunk with the DynamoDB issuer too."""
    drawn: list[str] = []

    def draw() -> str:
        drawn.append(unique_name("E").upper())
        return drawn[-1]

    issuer = DynamoCodeIssuer(dynamodb, table, draw)
    request = CodeRequest("prod", "vf", NOW, NOW + timedelta(days=365), "g-late")
    late = issuer.issue_many([request] * 3, deadline_seconds=0)
    assert all(isinstance(r, Failure) and r.failure().kind == "unavailable" for r in late)
    assert "deadline of 0 s" in late[0].failure().detail and drawn == []
    assert len(issuer.issue_many([request], deadline_seconds=60)) == 1 and len(drawn) == 1


def test_the_ledger_keeps_the_first_code_recorded(dynamodb: Any, table: str) -> None:
    ledger = OnceIssuedCodes(DynamoOnceLedger(dynamodb, table), "run-1")
    wave = unique_name("wave")
    assert ledger.record(wave, {"g1": IssuedCode("A", 1)}) == {"g1": IssuedCode("A", 1)}
    assert ledger.record(wave, {"g1": IssuedCode("B", 7), "g2": IssuedCode("C", 2)}) == {
        "g1": IssuedCode("A", 1),
        "g2": IssuedCode("C", 2),
    }
    assert ledger.recall(wave, ["g1", "g2", "g3"]) == {
        "g1": IssuedCode("A", 1),
        "g2": IssuedCode("C", 2),
    }
    assert ledger.recall(unique_name("other"), ["g1"]) == {}


def _counting_calls(aws: ClientFactory) -> tuple[Any, list[str]]:
    """A client of its own whose DynamoDB operations are logged by name (botocore's event hook:
    the real requests, observed, not replaced)."""
    db = aws._new_client("dynamodb")
    calls: list[str] = []
    db.meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name), unique_id="count"
    )
    return db, calls


def test_a_re_run_of_assign_learns_the_owner_from_the_failed_condition(
    aws: ClientFactory, table: str
) -> None:
    """ReturnValuesOnConditionCheckFailure=ALL_OLD: one UpdateItem per code, no GetItem."""
    db, calls = _counting_calls(aws)
    ours, theirs = unique_name("ours"), unique_name("theirs")
    codes = DynamoCodeInventory(db, table, concurrency=2)
    assert codes.assign("camp-a", [ours]).unwrap() == AssignCount(1, 1)
    assert codes.assign("camp-b", [theirs]).unwrap() == AssignCount(1, 1)
    calls.clear()
    assert codes.assign("camp-a", [ours, theirs]).unwrap() == AssignCount(2, 0, conflicts=1)
    assert calls == ["UpdateItem", "UpdateItem"]


def test_a_lost_ledger_race_learns_the_first_code_from_the_failed_condition(
    aws: ClientFactory, table: str
) -> None:
    db, calls = _counting_calls(aws)
    ledger = OnceIssuedCodes(DynamoOnceLedger(db, table), "run-1")
    wave = unique_name("wave")
    ledger.record(wave, {"g1": IssuedCode("A", 1)})
    calls.clear()
    assert ledger.record(wave, {"g1": IssuedCode("B", 7)}) == {"g1": IssuedCode("A", 1)}
    assert "GetItem" not in calls


def test_the_ledger_records_a_chunk_in_transactions_of_100_and_the_first_record_wins(
    aws: ClientFactory, table: str
) -> None:
    """250 fans: three transactions. Recorded again with 10 of them already held (a concurrent
    or earlier run): the held keep their codes, the rest are recorded in the resent
    transactions, and no fan is left out."""
    db, calls = _counting_calls(aws)
    ledger = OnceIssuedCodes(DynamoOnceLedger(db, table, concurrency=2), "run-1")
    wave = unique_name("wave")
    earlier = {f"g{i}": IssuedCode(f"OLD{i}", i) for i in range(0, 250, 25)}
    assert ledger.record(wave, earlier) == earlier
    calls.clear()
    fresh = {f"g{i}": IssuedCode(f"NEW{i}", i) for i in range(250)}
    held = ledger.record(wave, fresh)
    assert held == {**fresh, **earlier}
    assert set(calls) == {"TransactWriteItems"}
    # 3 transactions cancelled by the held records (which come back with the cancellation),
    # then 3 resent without them: nothing read, nothing written one by one.
    assert len(calls) == 6
    assert ledger.recall(wave, list(fresh)) == held
