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

_EMAIL = re.compile(r"(?<![\w.+-])([\w.+%-]+)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
# A candidate phone: optional +, digits with common separators. The digit count decides below.
# Not after `shardId-`: Kinesis shard ids (shardId-000000000006) are ids, not phones.
_PHONE_CANDIDATE = re.compile(r"(?<![\w+])(?<!shardId-)\+?\(?\d[\d ().-]{5,22}\d(?![\w])")
# Things shaped like phones that are not: ISO dates with a time after a space ("2026-11-28 16"),
# dotted-quad IP addresses. Masking them would make logs useless without protecting anyone.
_NOT_A_PHONE = re.compile(r"^\d{4}-\d{2}-\d{2}\b|^\d{1,3}(?:\.\d{1,3}){3}$")
# Field names whose values are masked whole, whatever they look like.
SENSITIVE_KEYS = frozenset({"phone", "phonenumber", "phone_number", "email", "emailaddress"})


def mask_email(local: str, domain: str) -> str:
    return f"{local[:1]}***@{domain}"


def _mask_phone_match(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = re.sub(r"\D", "", text)
    international = text.startswith("+")
    # Bare runs of 10-15 digits are phones (US 10, E.164 max 15); with a + even 8 digits are.
    # Shorter runs are counts and ids, longer ones sequence numbers: left alone.
    low = 8 if international else 10
    if not low <= len(digits) <= 15 or _NOT_A_PHONE.search(text):
        return text
    if international:
        return "+" + digits[0] + "*" * (len(digits) - 5) + digits[-4:]
    return "*" * (len(digits) - 4) + digits[-4:]


def mask_text(text: str) -> str:
    """Phones become +1******4567 / ******4567, emails j***@example.com."""
    text = _EMAIL.sub(lambda m: mask_email(m.group(1), m.group(2)), text)
    return _PHONE_CANDIDATE.sub(_mask_phone_match, text)


def _mask_whole(value: str) -> str:
    masked = mask_text(value)
    if masked != value:
        return masked
    return "*" * min(len(value), 8) if value else value


def mask_value(value: Any, key: str | None = None) -> Any:
    """Masks strings anywhere inside dicts/lists; values under a sensitive key are masked whole."""
    if isinstance(value, str):
        if key is not None and key.lower() in SENSITIVE_KEYS:
            return _mask_whole(value)
        return mask_text(value)
    if isinstance(value, Mapping):
        return {str(k): mask_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [mask_value(v, key) for v in value]
    return value


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
