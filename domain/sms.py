"""Sending a wave (pure): a wave CSV row -> a registrant and its channels, what an SMS gateway
answers, and the counts of a send. docs/sending.md states the rules.

Channels of a registrant:
- SMS when the row has a valid number, `doNotText` is not true and `smsText` is not empty. An
  empty number, `doNotText` true, an empty text, or an international number in a wave that does
  not allow them (`allowIntlPhones`, the campaign's rule; North American numbers are domestic,
  as the original's `/^\\+?1/`) is `skipped`. A number that is not a valid one is `failed`
  (`invalid_number`): a number a spreadsheet saved in scientific notation (`1.20156E+10`) lost
  its last digits, so it is invalid, never guessed.
- Email when the row has an address. Wave option `channels`: `both` (default: Use Case 5, both
  channels for a fan who has both) or `email-on-sms-failure` (the original's code: email only
  when the text was not sent: failed, skipped or opted out; not when its fate is unknown).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

COLUMNS = (
    "code",
    "doNotText",
    "email",
    "firstName",
    "lastName",
    "link",
    "locale",
    "marketId",
    "globalUserId",
    "mobileNumber",
    "smsText",
)
NANP = 1
_SCIENTIFIC = re.compile(r"[0-9.,]+[eE][+-]?\d+")
_LETTERS = re.compile(r"[A-Za-z]")


class Channels(StrEnum):
    BOTH = "both"
    EMAIL_ON_SMS_FAILURE = "email-on-sms-failure"


class Outcome(StrEnum):
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    OPTED_OUT = "opted_out"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class WaveOptions:
    channels: Channels = Channels.BOTH
    allow_international: bool = False


def parse_wave_options(config: Mapping[str, Any]) -> WaveOptions | str:
    """The send options of a wave config, or why they are wrong (naming the field)."""
    raw = config.get("channels", Channels.BOTH.value)
    try:
        channels = Channels(raw)
    except ValueError:
        allowed = " | ".join(c.value for c in Channels)
        return f"config.channels must be {allowed}, got {raw!r}"
    intl = config.get("allowIntlPhones", False)
    if isinstance(intl, str) and intl.strip().lower() in ("true", "false"):
        intl = intl.strip().lower() == "true"
    if not isinstance(intl, bool):
        return "config.allowIntlPhones must be true or false"
    return WaveOptions(channels, intl)


@dataclass(frozen=True, slots=True)
class Registrant:
    row: int
    fan: str  # globalUserId
    values: Mapping[str, str]
    # The E.164 number when the fan is to be texted; otherwise why not (sms_reason).
    phone: str | None
    sms_reason: str  # "" when texted; "skipped:<why>" or "failed:<why>"
    email: str | None

    @property
    def text(self) -> str:
        return self.values.get("smsText", "")


def _flag(value: str) -> bool | None:
    text = value.strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    return None


def phone_decision(raw: str, allow_international: bool) -> tuple[str | None, str]:
    """(E.164, "") for a number to text, else (None, "skipped:<why>" | "failed:<why>")."""
    raw = raw.strip()
    if not raw:
        return None, "skipped:no_number"
    if _SCIENTIFIC.fullmatch(raw) or _LETTERS.search(raw):
        return None, "failed:invalid_number"
    if raw[0].isdigit() and raw[0] != "1" and len(re.sub(r"\D", "", raw)) > 10:
        raw = "+" + raw  # the original prefixed `+`: 447700900123 is +44...
    # Imported here: phonenumbers costs ~400 ms at import, and every handler imports this
    # module through domain.ports; only the send reads phones.
    from domain.scoring.phones import check_phone

    check = check_phone(raw, "US")
    if check.e164 is None or not check.valid:
        return None, "failed:invalid_number"
    if check.country_code != NANP and not allow_international:
        return None, "skipped:international"
    return check.e164, ""


def read_registrant(
    row: int, values: Mapping[str, str] | None, options: WaveOptions
) -> Registrant | str:
    """A row -> a Registrant, or why the row cannot be one (a counted failure)."""
    if values is None:
        return "wrong number of fields"
    fan = values.get("globalUserId", "").strip()
    if not fan or not fan.isprintable():
        return "missing or unprintable globalUserId"
    do_not_text = _flag(values.get("doNotText", ""))
    if do_not_text is None:
        return "doNotText is not TRUE or FALSE"
    if do_not_text:
        phone, reason = None, "skipped:do_not_text"
    elif not values.get("smsText", "").strip():
        phone, reason = None, "skipped:no_text"
    else:
        phone, reason = phone_decision(values.get("mobileNumber", ""), options.allow_international)
    email = values.get("email", "").strip() or None
    return Registrant(row, fan, values, phone, reason, email)


# --- what a gateway answers ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SmsMessage:
    key: str  # the ledger key: a correlation id the provider may keep
    to: str  # E.164
    text: str
    parts: int


@dataclass(frozen=True, slots=True)
class Accepted:
    message_id: str


@dataclass(frozen=True, slots=True)
class OptedOut:
    """The number opted out of texts (a STOP): its own outcome, not a failure."""


@dataclass(frozen=True, slots=True)
class Refused:
    """The provider refused before acting (a bad number, a text too long): will not be retried."""

    reason: str


@dataclass(frozen=True, slots=True)
class Throttled:
    """Slow down and send it again: the provider did not act (429, Throttling, connect refused)."""

    reason: str
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class NoAnswer:
    """The call ended without an answer after it may have reached the provider (a timeout, a
    reset connection, a 5xx): the text may have gone. Recorded UNKNOWN, never resent."""

    reason: str


SmsAnswer = Accepted | OptedOut | Refused | Throttled | NoAnswer

R = TypeVar("R")
# One fan's send as a generator the TaskRunner drives: it yields each SmsMessage to send (again
# after a throttle), receives the gateway's answer, and returns its result. The domain keeps
# the rules (ledger start before the call, finish after); the runner decides how a call waits
# (a thread blocked in http.client, or a coroutine on one event loop).
SendExchange = Generator[SmsMessage, SmsAnswer, R]


@dataclass(frozen=True, slots=True)
class EmailRequest:
    """`{data: EmailRequest}` on the SMS wave email queue (§2.6)."""

    dedupe_id: str
    body: Mapping[str, str]


def email_request(wave: str, registrant: Registrant) -> EmailRequest:
    v = registrant.values
    body = {"email": registrant.email or ""}
    for name, column in (
        ("firstName", "firstName"),
        ("lastName", "lastName"),
        ("link", "link"),
        ("code", "code"),
        ("locale", "locale"),
        ("smsMessage", "smsText"),
    ):
        if v.get(column, "").strip():
            body[name] = v[column]
    return EmailRequest(dedupe_id(wave, registrant.fan, "email"), body)


def dedupe_id(wave: str, fan: str, channel: str) -> str:
    """Deterministic per (wave, fan, channel): a consumer drops a repeat by it (no PII)."""
    return hashlib.sha256(f"{channel}#{wave}#{fan}".encode()).hexdigest()[:32]


def ledger_key(channel: str, wave: str, fan: str) -> str:
    return f"{channel}#{wave}#{fan}"


# --- counts ----------------------------------------------------------------------------------


def _outcomes() -> dict[str, int]:
    return {o.value: 0 for o in Outcome}


@dataclass
class SendCounts:
    total: int = 0
    ok: int = 0
    failed: int = 0
    sms: dict[str, int] = field(default_factory=_outcomes)
    email: dict[str, int] = field(default_factory=_outcomes)
    reasons: dict[str, int] = field(default_factory=dict)  # why failed / skipped / unknown
    rejected: list[dict[str, Any]] = field(default_factory=list)  # bad rows, the first few

    def reason(self, channel: str, why: str) -> None:
        name = f"{channel}:{why}"
        self.reasons[name] = self.reasons.get(name, 0) + 1

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "ok": self.ok,
            "failed": self.failed,
            "detail": {"sms": dict(self.sms), "email": dict(self.email)},
            "reasons": dict(sorted(self.reasons.items())),
            "rejected": list(self.rejected),
        }
