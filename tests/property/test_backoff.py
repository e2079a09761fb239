"""The one backoff policy: full jitter under a capped exponential, a budget counted in retries."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.backoff import Backoff, no_wait

bases = st.floats(0, 10)
caps = st.floats(0, 100)
retry_numbers = st.integers(1, 10_000)
draws = st.floats(0, 1, exclude_max=True)


@given(base=bases, cap=caps, retry=retry_numbers, draw=draws)
def test_delay_is_full_jitter_under_a_capped_exponential(
    base: float, cap: float, retry: int, draw: float
) -> None:
    slept: list[float] = []
    backoff = Backoff(base, cap, retries=3, sleep=slept.append, random=lambda: draw)
    ceiling = backoff.ceiling(retry)
    assert ceiling == min(cap, base * 2.0 ** min(retry - 1, 62))
    waited = backoff.wait(retry)
    assert waited == draw * ceiling
    assert 0 <= waited <= ceiling <= cap
    assert slept == ([waited] if waited > 0 else [])


@given(base=bases, cap=caps, retry=retry_numbers, draw=draws)
def test_the_wait_never_shrinks_for_the_same_draw(
    base: float, cap: float, retry: int, draw: float
) -> None:
    backoff = Backoff(base, cap, random=lambda: draw)
    assert backoff.ceiling(retry + 1) >= backoff.ceiling(retry)
    assert backoff.delay(retry + 1) >= backoff.delay(retry)


@given(base=st.floats(0.001, 2.0), cap=st.floats(0.001, 60.0), retry=st.integers(1, 40))
def test_the_ceiling_doubles_until_the_cap(base: float, cap: float, retry: int) -> None:
    backoff = Backoff(base, cap)
    assert backoff.ceiling(1) == min(cap, base)
    # Doubling by a power of two is exact in floating point, so equality is the right test.
    assert backoff.ceiling(retry + 1) == min(cap, 2 * backoff.ceiling(retry))


@given(retries=st.integers(0, 50))
def test_the_budget_is_the_first_try_plus_the_retries(retries: int) -> None:
    assert Backoff(retries=retries).tries == retries + 1
    quiet = no_wait(retries)
    assert quiet.tries == retries + 1
    assert all(quiet.wait(n) == 0.0 for n in range(1, retries + 2))


def test_nonsense_is_refused_naming_what() -> None:
    with pytest.raises(ValueError, match="retries must be >= 0"):
        Backoff(retries=-1)
    with pytest.raises(ValueError, match="times must be >= 0"):
        Backoff(base_seconds=-0.1)
    with pytest.raises(ValueError, match="start at 1"):
        Backoff().delay(0)
