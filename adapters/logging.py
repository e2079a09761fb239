"""Structured JSON logs on stderr, with a correlation id and people's phones and emails masked.

Every process (Lambda, KCL child, CLI, poller) writes the same JSON lines: Powertools for AWS
Lambda's formatter (`{level, location, message, timestamp, service, logger, correlation_id,
...extra}`), behind one root handler, so every module's `logging.getLogger(__name__)` goes
through it. In Lambda, `lambda_logger.inject_lambda_context` adds to every line the function
name, request id, cold start and (from the environment) the X-Ray trace id. Masking is applied
to the finished record, message, extras and exception text alike, so no field escapes it.

stdout is never written: the KCL MultiLangDaemon reads its protocol from our stdout, and a stray
log line there breaks the conversation with the daemon.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TextIO

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

_correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def current_correlation_id() -> str | None:
    return _correlation_id.get()


@contextmanager
def correlation(correlation_id: str | None = None) -> Iterator[str]:
    """Every log line (and every outgoing service call) inside the block carries this id.

    A fresh uuid4 when none is given; the previous id is restored on exit, so nested
    blocks and concurrent tasks (contextvars are per task/thread) do not leak ids."""
    value = correlation_id or uuid.uuid4().hex
    token = _correlation_id.set(value)
    try:
        yield value
    finally:
        _correlation_id.reset(token)


# --- masking ------------------------------------------------------------------------------------

# The local part takes RFC 5322's atext, not only [\w.+-]: `=@x.co` and `a!b@x.co` are
# addresses too, and a narrower set left part of one in the line.
_LOCAL = r"[\w.!#$%&'*+/=?^`{|}~-]"
_EMAIL = re.compile(rf"(?<!{_LOCAL})({_LOCAL}+)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
# A candidate phone: optional +, digits with common separators. The digit count decides below.
# Not after `shardId-`: Kinesis shard ids (shardId-000000000006) are ids, not phones.
# Up to 60 characters: two phones side by side are one candidate, split below.
_PHONE_CANDIDATE = re.compile(r"(?<![\w+])(?<!shardId-)\+?\(?\d[\d ().-]{5,60}\d(?![\w])")
# Things shaped like phones that are not: ISO dates with a time after a space ("2026-11-28 16"),
# dotted-quad IP addresses. Masking them would make logs useless without protecting anyone.
_NOT_A_PHONE = re.compile(r"^\d{4}-\d{2}-\d{2}\b|^\d{1,3}(?:\.\d{1,3}){3}$")
# Secrets that show in text: a Slack webhook URL (its path is the credential; an error body
# echoed it into a log line), a bearer token, a Slack API token.
_SECRETS = (
    (re.compile(r"(hooks\.slack(?:-gov)?\.com/)[^\s\"'<>]+"), r"\1***"),
    (re.compile(r"/services/T[A-Za-z0-9]+/B[A-Za-z0-9]+/[A-Za-z0-9]+"), "/services/***"),
    (re.compile(r"(?i)(bearer\s+)[\w.~+/=-]+"), r"\1***"),
    (re.compile(r"\bxox[abposre]-[\w-]+"), "xox*-***"),
)
# Field names whose values are masked whole, whatever they look like.
SENSITIVE_KEYS = frozenset({"phone", "phonenumber", "phone_number", "email", "emailaddress"})
# Field names (lowercased, separators dropped) holding a part of one of these are credentials:
# their values are replaced whole (`serviceToken`, `BAND_SECRET`, `slack_webhook_url`).
SECRET_KEY_PARTS = ("token", "secret", "password", "passwd", "webhook", "authorization", "apikey")
MASKED_SECRET = "***"  # noqa: S105 - the mask, not a password


def mask_email(local: str, domain: str) -> str:
    return f"{local[:1]}***@{domain}"


def _masked_phone(text: str) -> str | None:
    """The text masked when it is one phone, else None."""
    if "+" in text[1:]:  # a + starts a number: this piece holds two
        return None
    digits = re.sub(r"\D", "", text)
    international = text.startswith("+")
    # Bare runs of 10-15 digits are phones (US 10, E.164 max 15); with a + even 7 digits are
    # (Niue's +683 7000). Shorter runs are counts and ids, longer ones sequence numbers.
    low = 7 if international else 10
    if not low <= len(digits) <= 15 or _NOT_A_PHONE.search(text):
        return None
    if international:
        return "+" + digits[0] + "*" * (len(digits) - 5) + digits[-4:]
    return "*" * (len(digits) - 4) + digits[-4:]


def _masked_run(text: str) -> str:
    """Space-separated groups with the phones among them masked: of the ways to cut the run
    into phones and other groups, the one that masks the most digits (then the fewest pieces).
    `+97122345600 023 456 7800` is two phones; a greedy cut masked `+97122345600 023` and left
    `456 7800`."""
    groups = text.split(" ")
    # best[i]: (digits masked, -pieces, the pieces) for groups[i:]
    best: list[tuple[int, int, list[str]]] = [(0, 0, [])] * (len(groups) + 1)
    for start in range(len(groups) - 1, -1, -1):
        rest = best[start + 1]
        choice = (rest[0], rest[1] - 1, [groups[start], *rest[2]])
        for end in range(start + 1, len(groups) + 1):
            piece = " ".join(groups[start:end])
            masked = _masked_phone(piece)
            if masked is not None:
                after = best[end]
                digits = sum(ch.isdigit() for ch in piece)
                option = (after[0] + digits, after[1] - 1, [masked, *after[2]])
                if option[:2] > choice[:2]:
                    choice = option
        best[start] = choice
    return " ".join(best[0][2])


def _mask_phone_match(match: re.Match[str]) -> str:
    text = match.group(0)
    masked = _masked_phone(text)
    if masked is not None:
        return masked
    # Two phones side by side ("for +24762800 (06 1) 234 5600") are one candidate with too
    # many digits for a phone, which left both in the line: each is found in the run.
    return _masked_run(text) if " " in text else text


def mask_text(text: str) -> str:
    """Phones become +1******4567 / ******4567, emails j***@example.com, webhook URLs and
    bearer tokens ***."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    text = _EMAIL.sub(lambda m: mask_email(m.group(1), m.group(2)), text)
    return _PHONE_CANDIDATE.sub(_mask_phone_match, text)


def _mask_whole(value: str) -> str:
    masked = mask_text(value)
    if masked != value:
        return masked
    return "*" * min(len(value), 8) if value else value


def is_secret_key(key: str) -> bool:
    folded = re.sub(r"[^a-z0-9]", "", key.lower())
    return any(part in folded for part in SECRET_KEY_PARTS)


# Deeper structures are cut: the walk recurses, and a RecursionError inside logging makes
# logging print the record's unmasked arguments to stderr (Handler.handleError).
_MAX_MASK_DEPTH = 40
TOO_DEEP_TO_LOG = "[nested too deep to log]"


def mask_value(value: Any, key: str | None = None, _depth: int = 0) -> Any:
    """Masks strings anywhere inside dicts/lists, dictionary keys included (a dict keyed by
    email once logged one); values under a sensitive key are masked whole, under a secret
    key replaced. Numbers shaped like phones and other objects (logged through str()) are
    masked as their text."""
    if key is not None and value is not None and value != "" and is_secret_key(key):
        return MASKED_SECRET
    if isinstance(value, str):
        if key is not None and key.lower() in SENSITIVE_KEYS:
            return _mask_whole(value)
        return mask_text(value)
    if _depth > _MAX_MASK_DEPTH:
        return TOO_DEEP_TO_LOG
    if isinstance(value, Mapping):
        masked: dict[str, Any] = {}
        for k, v in value.items():
            name = mask_text(str(k))
            while name in masked:  # two keys that mask alike both stay in the line
                name += "~"
            masked[name] = mask_value(v, str(k), _depth + 1)
        return masked
    if isinstance(value, list | tuple | set | frozenset):
        return [mask_value(v, key, _depth + 1) for v in value]
    if value is None or isinstance(value, bool | float):
        return value
    text = str(value)
    masked_text = mask_value(text, key)
    if isinstance(value, int) and masked_text == text:
        return value
    return masked_text


# --- the formatter ------------------------------------------------------------------------------

SERVICE = "campaign-workers"


class MaskingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON lines, masked as a whole just before they are written, plus the
    correlation id of the current `correlation()` block.

    The stack-trace serialiser is off: it would put the exception object (its message, with
    whatever personal data it holds) into the line through `str()`, past the masking; the
    formatted exception text is kept, masked."""

    def __init__(self) -> None:
        super().__init__(
            utc=True,
            use_rfc3339=True,
            serialize_stacktrace=False,
            service=SERVICE,
        )

    def format(self, record: logging.LogRecord) -> str:
        record.logger = record.name  # the module that logged, as an ordinary key
        return super().format(record)

    def serialize(self, log: Mapping[str, object]) -> str:
        entry = dict(log)
        correlation_id = current_correlation_id()
        if correlation_id and "correlation_id" not in entry:
            entry["correlation_id"] = correlation_id
        masked = mask_value(entry)
        return str(self.json_serializer(masked))


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Looks sys.stderr up at each write, so a redirected stderr (pytest, daemons) is honoured."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


# One formatter and handler per process, shared by the root logger (every module's logger) and
# Powertools' Logger: the Lambda context keys it appends then appear on every line.
_FORMATTER = MaskingFormatter()
_HANDLER = _StderrHandler()
_HANDLER.setFormatter(_FORMATTER)

# Libraries whose DEBUG output holds request bodies or URLs: botocore dumps whole PutRecords
# and SendMessage bodies (base64 of people's records, which masking cannot see into); urllib3
# and httpx log URLs, and a Slack webhook's URL is its secret. They stay at WARNING whatever
# LOG_LEVEL says.
WIRE_LOGGERS = (
    "botocore",
    "boto3",
    "urllib3",
    "s3transfer",
    "httpx",
    "httpcore",
    "hpack",
    "aiohttp",
)

lambda_logger = Logger(
    service=SERVICE,
    logger_formatter=_FORMATTER,
    logger_handler=_HANDLER,
)
# It has the shared handler itself; propagating too would write each of its lines twice.
logging.getLogger(SERVICE).propagate = False


def configure_logging(level: str | int = "INFO") -> logging.Handler:
    """Replaces the root logger's handlers with the one JSON handler on stderr. Idempotent.

    Any handler already on the root (basicConfig, a library's) is removed, because one writing
    to stdout would corrupt the KCL protocol."""
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(_HANDLER)
    resolved = level.upper() if isinstance(level, str) else level
    root.setLevel(resolved)
    lambda_logger.setLevel(resolved)
    logging.captureWarnings(True)
    for chatty in WIRE_LOGGERS:
        logging.getLogger(chatty).setLevel(logging.WARNING)
    return _HANDLER
