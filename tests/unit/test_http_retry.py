"""Retry-After parsing (the backoff itself is domain.backoff's: tests/property/test_backoff.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.http.client import parse_retry_after

NOW = datetime(2026, 11, 28, 16, 0, tzinfo=UTC)


def test_retry_after_forms() -> None:
    assert parse_retry_after("7", lambda: NOW) == 7.0
    assert parse_retry_after(" 1.5 ", lambda: NOW) == 1.5
    assert parse_retry_after("-3", lambda: NOW) == 0.0
    http_date = (NOW + timedelta(seconds=90)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(http_date, lambda: NOW) == 90.0
    assert parse_retry_after("Sat, 28 Nov 2020 10:00:00 GMT", lambda: NOW) == 0.0
    assert parse_retry_after(None, lambda: NOW) is None
    assert parse_retry_after("soon", lambda: NOW) is None
