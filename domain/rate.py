"""No faster than allowed: when each use of a rate-limited resource may go (pure; time is given).

A `RateSchedule` gives each caller, in the order they ask, the earliest time its `weight` units
(a text's message parts, a batch's records) may go, under two rules at once:

1. A token bucket of `rate` units a second holding at most `burst` units (GCRA's arithmetic:
   one "theoretical arrival time" instead of a token count): the long-run rate and the
   smoothness.
2. A one-second window: the units given in any half-open second [t, t + 1) never add up to more
   than `rate`. A bucket alone lets `burst + rate` through in a second (it starts full, then
   refills while it drains: aiolimiter at 100/s let 198 through its first second), which a
   provider counting per second throttles; the window is what makes "500 parts/s" true of every
   second, the first included.

Times are only handed out in order (a caller never goes before one who asked earlier: FIFO by
construction), so a caller that was given a time and then gave up (a cancelled task) leaves
that room unused: the rate is never exceeded, only under-used.

A weight above `burst` can never fit: `reserve` refuses it (ValueError naming both), unless
the schedule was made with `oversize="debt"` (the Kinesis pacer: a batch larger than a
second's worth waits for a full bucket and an empty window, then goes whole, and the bucket
pays it back before anything else goes).
"""

from __future__ import annotations

from collections import deque
from typing import Literal

# Float rounding: a time computed as `t + 1.0` must not land a hair before the window ends.
_EPSILON = 1e-9


class RateSchedule:
    """Not thread-safe: its users hold a lock around `reserve` (adapters/rate_limiter.py)."""

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        period: float = 1.0,
        oversize: Literal["refuse", "debt"] = "refuse",
    ) -> None:
        if rate <= 0 or period <= 0:
            raise ValueError(f"a rate limit needs a positive rate and period, got {rate}/{period}")
        self.rate = rate  # units per period
        self.period = period
        self.burst = rate if burst is None else burst
        if not 0 < self.burst <= rate:
            raise ValueError(f"burst must be in (0, rate={rate}], got {self.burst}")
        self.oversize = oversize
        self._per_unit = period / rate  # seconds a unit occupies
        self._tolerance = self.burst * self._per_unit
        self._tat = float("-inf")  # the bucket's theoretical arrival time
        self._last = float("-inf")  # the latest time handed out
        self._window: deque[tuple[float, float]] = deque()  # (time, weight) in the last period
        self._in_window = 0.0

    def _check(self, weight: float) -> float:
        """The weight the rules must find room for."""
        if weight <= 0:
            raise ValueError(f"a weight must be positive, got {weight}")
        if weight <= self.burst:
            return weight
        if self.oversize == "debt":
            return self.burst
        raise ValueError(
            f"a weight of {weight} units can never go: the limiter holds at most {self.burst} "
            f"units (rate {self.rate} per {self.period} s); split it, or raise the burst"
        )

    def earliest(self, weight: float, now: float) -> float:
        """When `weight` could go, asking at `now` (nothing is taken)."""
        need = self._check(weight)
        at = max(now, self._last, self._tat + need * self._per_unit - self._tolerance)
        held = self._in_window
        for stamp, units in self._window:  # oldest first
            if stamp + self.period <= at:
                held -= units  # out of the window ending at `at`
                continue
            if held + need <= self.rate + _EPSILON:
                break
            at = stamp + self.period  # wait for the oldest to leave the window
            held -= units
        return at

    def take(self, weight: float, at: float) -> None:
        """Records that `weight` goes at `at` (a time `earliest` gave, or later)."""
        self._check(weight)
        while self._window and self._window[0][0] + self.period <= at:
            self._in_window -= self._window.popleft()[1]
        self._window.append((at, weight))
        self._in_window += weight
        self._tat = max(self._tat, at) + weight * self._per_unit
        self._last = at

    def reserve(self, weight: float, now: float) -> float:
        """The time `weight` may go, asking at `now`, taken: the caller waits until then."""
        at = self.earliest(weight, now)
        self.take(weight, at)
        return at
