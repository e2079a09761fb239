"""reconcile_sms_deliveries with the in-memory ledger: a final delivery event settles an unknown
text (delivered -> done, a final failure -> failed), anything not final leaves it alone, and a
text already done or failed is never touched whatever the event says."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from returns.result import Failure, Success

from domain.once import Done, EntryState, Failed, Outcome, Unsure
from domain.workers.reconcile_sms_deliveries import (
    DELIVERED,
    UNDELIVERED,
    DeliveryEvent,
    Reconciled,
    reconcile_sms_delivery,
)
from tests.support.memory_ledger import MemoryOnceLedger

KEY = "sms#c1_w1#fan7"
TTL = timedelta(minutes=10)
EVENT_TYPES = sorted(
    DELIVERED | UNDELIVERED | {"TEXT_QUEUED", "TEXT_PENDING", "TEXT_UNKNOWN", "VOICE_ANSWERED"}
)


def ledger_with(state: str, key: str = KEY) -> MemoryOnceLedger:
    """An entry in `state`: claimed, started, done, failed or unknown (a send that timed out)."""
    ledger = MemoryOnceLedger(lambda: datetime(2024, 5, 1, tzinfo=UTC))
    entry = ledger.claim([key], "run-1", TTL)[key]
    if state == "claimed":
        return ledger
    started = ledger.start(entry)
    outcome: dict[str, Outcome] = {
        "done": Done("m-1"),
        "failed": Failed("opted_out"),
        "unknown": Unsure("timeout"),
    }
    if state in outcome:
        ledger.finish([(started, outcome[state])])
    return ledger


def event(event_type: str, key: str | None = KEY, **extra: Any) -> DeliveryEvent:
    body: dict[str, Any] = {
        "eventType": event_type,
        "eventVersion": "1.0",
        "isFinal": event_type not in ("TEXT_QUEUED", "TEXT_PENDING"),
        "destinationPhoneNumber": "+14255550156",
        "messageId": "eum-862a",
        **extra,
    }
    if key is not None:
        body["context"] = {"ledgerKey": key}
    return DeliveryEvent.parse(json.dumps(body)).unwrap()


@pytest.mark.parametrize("event_type", ["TEXT_DELIVERED", "TEXT_SUCCESSFUL"])
def test_a_delivered_event_settles_an_unknown_text_as_done(event_type: str) -> None:
    ledger = ledger_with("unknown")

    result = reconcile_sms_delivery(event(event_type), ledger=ledger)

    assert result.outcome is Reconciled.SENT
    entry = ledger.read([KEY])[KEY]
    assert (entry.state, entry.detail) == (EntryState.DONE, "eum-862a")


@pytest.mark.parametrize(
    "event_type", ["TEXT_BLOCKED", "TEXT_INVALID", "TEXT_CARRIER_UNREACHABLE", "TEXT_SPAM"]
)
def test_a_final_failure_settles_an_unknown_text_as_failed_naming_the_event(
    event_type: str,
) -> None:
    ledger = ledger_with("unknown")

    result = reconcile_sms_delivery(event(event_type), ledger=ledger)

    assert result.outcome is Reconciled.FAILED
    entry = ledger.read([KEY])[KEY]
    assert (entry.state, entry.detail) == (EntryState.FAILED, event_type.lower())


@pytest.mark.parametrize(
    "made",
    [
        event("TEXT_QUEUED"),
        event("TEXT_PENDING"),
        event("TEXT_BLOCKED", isFinal=False),
        event("TEXT_UNKNOWN"),
        event("VOICE_COMPLETED"),
    ],
    ids=["queued", "pending", "blocked-not-final", "text-unknown", "unknown-type"],
)
def test_an_event_that_is_not_final_leaves_the_unknown_text_alone(made: DeliveryEvent) -> None:
    ledger = ledger_with("unknown")

    assert reconcile_sms_delivery(made, ledger=ledger).outcome is Reconciled.NOT_FINAL
    assert ledger.read([KEY])[KEY].state is EntryState.UNKNOWN


@given(st.sampled_from(EVENT_TYPES), st.sampled_from(["done", "failed"]), st.booleans())
def test_a_text_done_or_failed_is_never_touched_by_any_event(
    event_type: str, state: str, final: bool
) -> None:
    ledger = ledger_with(state)
    before = ledger.read([KEY])[KEY]

    result = reconcile_sms_delivery(event(event_type, isFinal=final), ledger=ledger)

    assert result.outcome in (Reconciled.SETTLED, Reconciled.NOT_FINAL)
    assert ledger.read([KEY])[KEY] == before


@pytest.mark.parametrize("state", ["claimed", "started"])
def test_a_text_still_claimed_or_started_is_pending_and_retried_later(state: str) -> None:
    ledger = ledger_with(state)
    before = ledger.read([KEY])[KEY]

    result = reconcile_sms_delivery(event("TEXT_DELIVERED"), ledger=ledger)

    assert result.outcome is Reconciled.PENDING and result.retryable
    assert ledger.read([KEY])[KEY] == before


@pytest.mark.parametrize(
    "key", [None, "email#c1_w1#fan7", "sms#c1_w1#someone-else"], ids=["none", "email", "absent"]
)
def test_an_event_without_a_text_of_ours_is_acknowledged_and_changes_nothing(
    key: str | None,
) -> None:
    ledger = ledger_with("unknown")

    result = reconcile_sms_delivery(event("TEXT_DELIVERED", key), ledger=ledger)

    assert result.outcome is Reconciled.NOT_OURS and not result.retryable
    assert ledger.read([KEY])[KEY].state is EntryState.UNKNOWN


def test_an_event_in_an_sns_notification_is_read_and_no_phone_is_kept() -> None:
    inner = {"eventType": "TEXT_DELIVERED", "isFinal": True, "context": {"ledgerKey": KEY}}
    inner["destinationPhoneNumber"] = "+14255550156"
    wrapped = json.dumps({"Type": "Notification", "Message": json.dumps(inner)})

    parsed = DeliveryEvent.parse(wrapped)

    assert isinstance(parsed, Success)
    assert parsed.unwrap().ledger_key == KEY
    assert "+1425" not in repr(parsed.unwrap())
    result = reconcile_sms_delivery(parsed.unwrap(), ledger=ledger_with("unknown"))
    assert "+1425" not in json.dumps(result.to_json())


@pytest.mark.parametrize("body", ["not json", "[]", json.dumps({"context": {"ledgerKey": KEY}})])
def test_a_body_that_is_not_a_delivery_event_is_refused_saying_why(body: str) -> None:
    parsed = DeliveryEvent.parse(body)

    assert isinstance(parsed, Failure)
    assert "event" in parsed.failure()
