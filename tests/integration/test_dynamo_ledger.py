"""The DynamoDB once-ledger over HTTP on the embedded emulator: the ledger model under any
interleaving (the same model the in-memory one passes), claims in transactions of 100 where
the entries held by others come back with the cancellation, and a takeover after expiry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import Phase, settings

from adapters.aws.clients import ClientFactory
from adapters.aws.dynamo_ledger import DynamoOnceLedger, create_ledger_table
from domain.once import (
    EXPIRED_AFTER_START,
    OWNER_DEAD_AFTER_START,
    Done,
    EntryState,
    LedgerConflict,
)
from tests.conftest import unique_name
from tests.support.ledger_model import LedgerModel

pytestmark = pytest.mark.integration
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
TTL = timedelta(seconds=30)


@pytest.fixture(scope="module")
def dynamodb(aws: ClientFactory) -> Any:
    return aws.client("dynamodb")


@pytest.fixture(scope="module")
def table(dynamodb: Any) -> str:
    name = unique_name("ledger")
    create_ledger_table(dynamodb, name)
    return name


def test_ledger_model_holds_on_dynamodb(dynamodb: Any, table: str) -> None:
    class DynamoLedgerModel(LedgerModel):
        @staticmethod
        def build(clock: Callable[[], datetime]) -> DynamoOnceLedger:
            return DynamoOnceLedger(dynamodb, table, clock=clock)

    # No shrinking over HTTP (minutes); a failure still prints the steps that led to it.
    DynamoLedgerModel.TestCase.settings = settings(
        max_examples=20,
        stateful_step_count=25,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
    )
    DynamoLedgerModel.TestCase("runTest").runTest()


def _counting_calls(aws: ClientFactory) -> tuple[Any, list[str]]:
    """A client whose DynamoDB operations are logged by name (botocore's event hook)."""
    db = aws._new_client("dynamodb")
    calls: list[str] = []
    db.meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name), unique_id="count"
    )
    return db, calls


def test_claims_go_in_transactions_of_100_and_entries_held_by_others_are_answered(
    aws: ClientFactory, table: str
) -> None:
    """250 keys: three transactions. Claimed again by another owner with 10 of them released
    meanwhile: the 10 are claimed, the other 240 come back held by the first owner, and no
    key is read with a GetItem (the cancellation carries each held entry)."""
    db, calls = _counting_calls(aws)
    ledger = DynamoOnceLedger(db, table, clock=lambda: NOW)
    keys = [unique_name("sms") for _ in range(250)]
    first = ledger.claim(keys, "owner-a", TTL)
    assert all(e.held_by("owner-a") and e.state is EntryState.CLAIMED for e in first.values())
    assert calls == ["TransactWriteItems"] * 3
    for key in keys[::25]:
        ledger.release(first[key])
    calls.clear()
    second = ledger.claim(keys, "owner-b", TTL)
    won = {k for k, e in second.items() if e.held_by("owner-b")}
    assert won == set(keys[::25])
    assert {e.owner for k, e in second.items() if k not in won} == {"owner-a"}
    assert "GetItem" not in calls and "BatchGetItem" not in calls


def test_an_expired_started_claim_becomes_unknown_and_its_owner_can_still_settle_it(
    dynamodb: Any, table: str
) -> None:
    now = [NOW]
    ledger = DynamoOnceLedger(dynamodb, table, clock=lambda: now[0])
    key = unique_name("sms")
    started = ledger.start(ledger.claim([key], "owner-a", TTL)[key])
    now[0] += TTL
    taken = ledger.claim([key], "owner-b", TTL)[key]
    assert (taken.state, taken.owner, taken.detail) == (
        EntryState.UNKNOWN,
        "owner-a",
        EXPIRED_AFTER_START,
    )
    with pytest.raises(LedgerConflict, match="cannot start"):
        ledger.start(taken)
    settled = ledger.finish([(started, Done("provider-id-1"))])[key]
    assert (settled.state, settled.detail) == (EntryState.DONE, "provider-id-1")
    assert ledger.read([key]) == {key: settled}


def test_a_dead_owners_entries_count_as_expired_at_once_on_both_ledgers(
    dynamodb: Any, table: str
) -> None:
    """Within every claim's ttl, a claimer naming `run-dead` proven dead: its CLAIMED entry is
    taken over, its STARTED one turned UNKNOWN (not taken), another live run's entries and a
    settled one stand; the DynamoDB ledger and the memory one answer the same."""
    from tests.support.memory_ledger import MemoryOnceLedger

    answers = []
    for ledger in (
        DynamoOnceLedger(dynamodb, table, clock=lambda: NOW),
        MemoryOnceLedger(lambda: NOW),
    ):
        keys = {name: unique_name(name) for name in ("claimed", "started", "live", "busy", "done")}
        ledger.claim([keys["claimed"]], "run-dead", TTL)
        ledger.start(ledger.claim([keys["started"]], "run-dead", TTL)[keys["started"]])
        ledger.claim([keys["live"]], "run-live", TTL)
        ledger.start(ledger.claim([keys["busy"]], "run-live", TTL)[keys["busy"]])
        done = ledger.start(ledger.claim([keys["done"]], "run-dead", TTL)[keys["done"]])
        ledger.finish([(done, Done("provider-id-9"))])

        got = ledger.claim(list(keys.values()), "run-new", TTL, frozenset({"run-dead"}))

        answers.append(
            {name: (got[k].state, got[k].owner, got[k].detail) for name, k in keys.items()}
        )
        assert ledger.read(list(keys.values())) == got  # what was answered is what is stored
        with pytest.raises(ValueError, match="cannot name itself dead"):
            ledger.claim([keys["live"]], "run-live", TTL, frozenset({"run-live"}))
    dynamo, memory = answers
    assert (
        dynamo
        == memory
        == {
            "claimed": (EntryState.CLAIMED, "run-new", ""),
            "started": (EntryState.UNKNOWN, "run-dead", OWNER_DEAD_AFTER_START),
            "live": (EntryState.CLAIMED, "run-live", ""),
            "busy": (EntryState.STARTED, "run-live", ""),
            "done": (EntryState.DONE, "run-dead", "provider-id-9"),
        }
    )
