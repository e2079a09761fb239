"""A deadline that travels: the time a piece of work has left, handed down to every call in it.

Made from what bounds the work: a Lambda invocation's remaining time, a stream batch's deadline,
a lease's half-term. A call inside takes a `child` (never later than its parent) and shrinks its
own timeouts and retries to fit `remaining()`. Without it a botocore call could take 3 x 35 s
and an HTTP call 4 x 13 s inside a Lambda with 60 s left, or past the half-term after which
another run may take a leased file over (issue 18).

A value: the clock is injected (time.monotonic in production, a fake in tests), so it holds no
mutable state and does no I/O.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

Monotonic = Callable[[], float]


class DeadlinePassed(Exception):
    """A call would start (or retry) after its deadline: what it waited on is named in the text."""


@dataclass(frozen=True, slots=True)
class Deadline:
    """The instant (on `clock`, seconds) by which the work must be done; `at=inf`: unbounded."""

    at: float
    clock: Monotonic = field(default=time.monotonic, repr=False, compare=False)

    @classmethod
    def after(cls, seconds: float, clock: Monotonic = time.monotonic) -> Deadline:
        """`seconds` from now on `clock` (negative counts as 0: already passed)."""
        if math.isnan(seconds):
            raise ValueError("a deadline needs a number of seconds, got NaN")
        return cls(clock() + max(0.0, seconds), clock)

    @classmethod
    def never(cls, clock: Monotonic = time.monotonic) -> Deadline:
        """No bound: calls keep their own timeouts and retry budgets."""
        return cls(math.inf, clock)

    @property
    def bounded(self) -> bool:
        return not math.isinf(self.at)

    def remaining(self) -> float:
        """Seconds left, never negative (inf when unbounded)."""
        return max(0.0, self.at - self.clock())

    @property
    def passed(self) -> bool:
        return self.remaining() <= 0.0

    def child(self, seconds: float) -> Deadline:
        """A deadline `seconds` from now, or this one if that is sooner: a call inside never gets
        more time than the work around it."""
        return Deadline(min(self.at, Deadline.after(seconds, self.clock).at), self.clock)

    def fraction(self, share: float) -> Deadline:
        """A child holding `share` (0..1] of the time left: room for what comes after a call."""
        if not 0.0 < share <= 1.0:
            raise ValueError(f"a deadline's share must be in (0, 1], got {share}")
        if not self.bounded:
            return self
        return self.child(self.remaining() * share)

    def cap(self, seconds: float) -> float:
        """`seconds`, or the time left if that is shorter: a timeout that fits."""
        return min(seconds, self.remaining())

    def check(self, what: str) -> None:
        """Raises DeadlinePassed naming `what` when no time is left."""
        if self.passed:
            raise DeadlinePassed(f"{what}: deadline passed before the call")


# Puts a deadline in force for the calls made inside (adapters/deadline.py `within`): handed to
# a runtime (streams/) by its entry point, since a runtime may not import the adapters.
DeadlineScope = Callable[["Deadline | None"], AbstractContextManager[object]]


def unscoped(_deadline: Deadline | None) -> AbstractContextManager[object]:
    """The scope of a runtime given none: calls keep their own timeouts (tests, scripts)."""
    return contextlib.nullcontext()
