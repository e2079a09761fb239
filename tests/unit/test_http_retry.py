"""The client's retry rules: backoff growth and bounds, Retry-After parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from adapters.http.client import RetryPolicy, parse_retry_after

policies = st.builds(
    RetryPolicy,
    attempts=st.integers(1, 10),
    base_delay=st.floats(0.001, 2.0),
    max_delay=st.floats(0.001, 60.0),
)


@given(policies, st.integers(0, 30), st.floats(0, 1, exclude_max=True))
def test_backoff_stays_between_half_and_all_of_its_ceiling(
    policy: RetryPolicy, retry: int, rand: float
) -> None:
    ceiling = min(policy.max_delay, policy.base_delay * 2**retry)
    delay = policy.backoff(retry, rand)
    assert ceiling / 2 <= delay <= ceiling


@given(policies, st.integers(0, 29), st.floats(0, 1, exclude_max=True))
def test_backoff_never_shrinks_for_the_same_draw(
    policy: RetryPolicy, retry: int, rand: float
) -> None:
    assert policy.backoff(retry + 1, rand) >= policy.backoff(retry, rand)


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
