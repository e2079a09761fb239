"""Structured JSON logs on stderr, with a correlation id and people's phones and emails masked.

One JSON object per line: {timestamp, level, message, logger, correlationId, ...extra}.
stdout is never written: the KCL MultiLangDaemon reads its protocol from our stdout, and a stray
log line there breaks the conversation with the daemon.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

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
_PHONE_CANDIDATE = re.compile(r"(?<![\w+])\+?\(?\d[\d ().-]{5,22}\d(?![\w])")
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

# Attributes every LogRecord has; anything else on a record came in through `extra=`.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "message": mask_text(record.getMessage()),
            "logger": record.name,
            "correlationId": getattr(record, "correlationId", None) or current_correlation_id(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in entry:
                entry[key] = mask_value(value, key)
        if record.exc_info:
            entry["exception"] = mask_text(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = mask_text(self.formatStack(record.stack_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


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


def configure_logging(level: str | int = "INFO") -> logging.Handler:
    """Replaces the root logger's handlers with one JSON handler on stderr. Idempotent.

    Any handler already on the root (basicConfig, a library's) is removed, because one writing
    to stdout would corrupt the KCL protocol."""
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    logging.captureWarnings(True)
    # httpx logs every request's full URL at INFO; a Slack webhook's URL is its secret.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    return handler
