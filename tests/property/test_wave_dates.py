"""The codes' validity window always contains the notify instant with the documented margins:
at least 24 h before, at least 365 days after, whatever the offset, DST or 29 February."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from domain.waves import iso_millis, parse_notify_date, validity_window

zones = st.sampled_from(
    [
        UTC,
        ZoneInfo("America/New_York"),
        ZoneInfo("Europe/London"),
        ZoneInfo("Australia/Lord_Howe"),
        timezone(timedelta(hours=-9, minutes=-30)),
        timezone(timedelta(hours=14)),
    ]
)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2090, 12, 31), timezones=zones
)


@given(moments)
def test_the_window_contains_the_notify_instant_with_its_margins(notify: datetime) -> None:
    begin, end = validity_window(notify)
    instant = notify.astimezone(UTC)  # resolves an ambiguous local time by its fold
    assert instant - begin == timedelta(hours=24)
    assert timedelta(days=365) <= end - instant <= timedelta(days=366)
    assert begin.tzinfo is UTC and end.tzinfo is UTC


@given(moments)
def test_an_iso_notify_date_means_the_same_instant(notify: datetime) -> None:
    parsed = parse_notify_date(notify.isoformat()).unwrap()
    # timestamps: PEP 495 makes an ambiguous local time unequal to every other zone's datetime
    assert parsed.timestamp() == notify.timestamp()
    assert iso_millis(parsed).endswith("Z")


def test_29_february_ends_on_28_february() -> None:
    begin, end = validity_window(datetime(2028, 2, 29, 12, tzinfo=UTC))
    assert (begin, end) == (
        datetime(2028, 2, 28, 12, tzinfo=UTC),
        datetime(2029, 2, 28, 12, tzinfo=UTC),
    )


def test_a_date_without_time_or_offset_is_midnight_utc() -> None:
    assert parse_notify_date("2026-03-08").unwrap() == datetime(2026, 3, 8, tzinfo=UTC)
    assert parse_notify_date("2026-03-08T02:30:00Z").unwrap() == datetime(
        2026, 3, 8, 2, 30, tzinfo=UTC
    )
