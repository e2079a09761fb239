"""Exponential backoff with full jitter, as AWS recommends for throttled clients.

Full jitter (a uniform draw in [0, min(cap, base * 2**attempt)]) spreads retries from many
producers over the whole window, so a throttled shard is not hit again by a synchronised wave.
`sleep` and `random` are injected so tests run instantly and deterministically.
"""

from __future__ import annotations

import random as _random
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Backoff:
    """A retry budget (`attempts` retries after the first try) and the waits between tries."""

    base_seconds: float = 0.05
    cap_seconds: float = 5.0
    attempts: int = 10
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    random: Callable[[], float] = field(default=_random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.base_seconds < 0 or self.cap_seconds < 0:
            raise ValueError(
                f"backoff times must be >= 0, got base={self.base_seconds} cap={self.cap_seconds}"
            )
        if self.attempts < 0:
            raise ValueError(f"retry attempts must be >= 0, got {self.attempts}")

    def ceiling(self, retry: int) -> float:
        """The longest wait before retry number `retry` (1-based)."""
        # min() before the power would still overflow for huge retry numbers: clamp the exponent.
        return min(self.cap_seconds, self.base_seconds * 2.0 ** min(retry - 1, 62))

    def delay(self, retry: int) -> float:
        """A full-jitter wait before retry number `retry` (1-based)."""
        if retry < 1:
            raise ValueError(f"retry numbers start at 1, got {retry}")
        return self.random() * self.ceiling(retry)

    def wait(self, retry: int) -> float:
        """Sleeps the jittered delay before retry number `retry`; returns the time slept."""
        seconds = self.delay(retry)
        if seconds > 0:
            self.sleep(seconds)
        return seconds


def no_wait(attempts: int = 10) -> Backoff:
    """A backoff that never sleeps: for tests and dry runs."""
    return Backoff(base_seconds=0.0, cap_seconds=0.0, attempts=attempts, sleep=lambda _s: None)
