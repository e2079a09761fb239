"""reconcileSmsDeliveries: a text whose fate the sender could not record (`unknown` in the send
ledger: a timeout, a run that died between its call and its record) is settled from the
provider's delivery event. docs/sending.md, "Reconciling unknown texts".

End User Messaging's event destinations (a configuration set: SNS -> SQS, or SQS through
EventBridge) carry the `Context` sent with the text, `{ledgerKey}`
(adapters/sms/gateways.EndUserMessagingGateway). One event per input:

- TEXT_DELIVERED, TEXT_SUCCESSFUL (final) -> the entry DONE with the event's message id;
- a final failure (TEXT_BLOCKED, TEXT_INVALID, TEXT_CARRIER_UNREACHABLE, TEXT_TTL_EXPIRED, ...)
  -> FAILED with the event type as the reason;
- anything not final (TEXT_QUEUED, TEXT_PENDING, `isFinal: false`), TEXT_UNKNOWN (no answer
  either way), a type we do not know, or an event without our ledger key -> left alone.

Only an UNKNOWN entry is resolved (OnceLedger.resolve): a DONE or FAILED one is never touched
(the sender's own record wins). An entry still CLAIMED or STARTED (its run alive, or dead and
not yet turned UNKNOWN by a re-run) is `pending`: retryable, so the queue delivers the event
again later instead of losing it. No phone number in any result: the event's destination
number is never read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from returns.result import Failure, Result, Success

from domain.once import Done, EntryState, LedgerConflict, Resolution
from domain.once import Failed as LedgerFailed
from domain.ports import OnceLedger

DELIVERED = frozenset({"TEXT_DELIVERED", "TEXT_SUCCESSFUL"})
# The documented SMS event types that say the text will not be delivered.
UNDELIVERED = frozenset(
    {
        "TEXT_BLOCKED",
        "TEXT_TTL_EXPIRED",
        "TEXT_CARRIER_UNREACHABLE",
        "TEXT_INVALID",
        "TEXT_INVALID_MESSAGE",
        "TEXT_CARRIER_BLOCKED",
        "TEXT_UNREACHABLE",
        "TEXT_SPAM",
        "TEXT_PROTECT_BLOCKED",
    }
)
# TEXT_UNKNOWN is left alone: "temporary or permanent", and what End User Messaging reports when
# no carrier answered in 72 hours. It does not say the text was not delivered; the entry stays
# unknown rather than claim a failure.
SMS_KEY_PREFIX = "sms#"
MAX_KEY = 256  # End User Messaging's Context value limit; the sender cuts the key there


@dataclass(frozen=True, slots=True)
class DeliveryEvent:
    event_type: str
    ledger_key: str | None  # None: the event carries no key of ours
    message_id: str
    final: bool

    @staticmethod
    def parse(body: Any) -> Result[DeliveryEvent, str]:
        """An event as the queue holds it: the event's JSON, or an SNS notification around it
        (`{Type: Notification, Message: "<event JSON>"}`: SNS -> SQS without raw delivery)."""
        event = _json(body)
        if isinstance(event, Mapping) and event.get("Type") == "Notification":
            event = _json(event.get("Message"))
        if not isinstance(event, Mapping):
            return Failure("a delivery event must be a JSON object (or an SNS notification of one)")
        event_type = event.get("eventType")
        if not isinstance(event_type, str) or not event_type:
            return Failure("delivery event: eventType missing or not a string")
        context = event.get("context", event.get("Context"))
        key = context.get("ledgerKey") if isinstance(context, Mapping) else None
        final = event.get("isFinal", True)
        message_id = event.get("messageId")
        return Success(
            DeliveryEvent(
                event_type,
                key if isinstance(key, str) and key else None,
                message_id if isinstance(message_id, str) else "",
                final is not False,
            )
        )


def _json(value: Any) -> Any:
    if isinstance(value, str | bytes):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def resolution_of(event: DeliveryEvent) -> Resolution | None:
    """What a final event says about the text; None when it says nothing final."""
    if not event.final:
        return None
    if event.event_type in DELIVERED:
        return Done(event.message_id or event.event_type)
    if event.event_type in UNDELIVERED:
        return LedgerFailed(event.event_type.lower())
    return None


class Reconciled(StrEnum):
    SENT = "resolved_sent"  # unknown -> done
    FAILED = "resolved_failed"  # unknown -> failed
    NOT_FINAL = "not_final"  # queued, pending, an unknown type: left alone
    NOT_OURS = "not_ours"  # no ledger key of a text, or no such entry
    SETTLED = "already_settled"  # done or failed already: never touched
    PENDING = "pending"  # claimed or started: retried later (retryable)


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    outcome: Reconciled
    event_type: str
    ledger_key: str = ""

    @property
    def retryable(self) -> bool:
        return self.outcome is Reconciled.PENDING

    def to_json(self) -> dict[str, Any]:
        out = {"outcome": self.outcome.value, "eventType": self.event_type}
        if self.ledger_key:
            out["ledgerKey"] = self.ledger_key  # sms#{wave}#{globalUserId}: no phone
        return out


def reconcile_sms_delivery(event: DeliveryEvent, *, ledger: OnceLedger) -> ReconcileResult:
    """Settles the text's ledger entry from one delivery event, if it is UNKNOWN."""
    key = event.ledger_key
    resolution = resolution_of(event)
    if resolution is None:
        return ReconcileResult(Reconciled.NOT_FINAL, event.event_type, key or "")
    if key is None or not key.startswith(SMS_KEY_PREFIX) or len(key) > MAX_KEY:
        return ReconcileResult(Reconciled.NOT_OURS, event.event_type)
    entry = ledger.read([key]).get(key)
    while True:
        if entry is None:
            return ReconcileResult(Reconciled.NOT_OURS, event.event_type, key)
        if entry.state in (EntryState.DONE, EntryState.FAILED):
            return ReconcileResult(Reconciled.SETTLED, event.event_type, key)
        if entry.state is not EntryState.UNKNOWN:
            return ReconcileResult(Reconciled.PENDING, event.event_type, key)
        try:
            ledger.resolve(key, resolution)
        except LedgerConflict as conflict:  # settled meanwhile (a late finish): decide again
            entry = conflict.entry
            continue
        outcome = Reconciled.SENT if isinstance(resolution, Done) else Reconciled.FAILED
        return ReconcileResult(outcome, event.event_type, key)
