"""Exponential backoff with full jitter: the one retry policy of every runtime and adapter.

The wait before retry n (1-based) is a uniform draw in [0, min(cap, base * 2**(n-1))]. Full
jitter is AWS's recommendation for throttled clients: it spreads the retries of many producers
that failed together over the whole window, so a throttled shard, queue or service is not hit
again by a synchronised wave, and it does the least total waiting of the jitter schemes.

`retries` counts the tries after the first, so a call is made at most `tries` = retries + 1
times. A contract that says how long to wait (HTTP Retry-After) is honoured by its adapter on
top of this draw, not here.

This is a value: the delays are a computation over the injected `random`, and `wait` sleeps
through the injected `sleep`, so tests run retries instantly and check every delay.

`attempts` (and `attempts_async`) is the one retry loop of the code base: every adapter that
retries a call and every runtime that replays a batch iterates it, so the budget, the jittered
waits and the deadline are decided here once. It stops early when the next wait would reach the
call's Deadline (domain/deadline.py): a retry is never started with no time left. It is a
generator, not tenacity: ~0.7 µs a call that succeeds first time against tenacity's 12.6 µs
(`Retrying(...)(f)`) or 22.5 µs (its `for attempt in Retrying(...)` form), measured on this
machine; the asyncio Pacman path spends ~150-200 µs of CPU a call in all, and the partial-batch
resends (a loop body that keeps what succeeded) fit a loop better than a wrapped function
(docs/design-notes.md, "One retry loop").
"""

from __future__ import annotations

import asyncio
import random as _random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from domain.deadline import Deadline

# 2**62 * any sane base is far beyond any cap; clamping the exponent keeps huge retry numbers
# from overflowing the float before min() can cap them.
_MAX_EXPONENT = 62


@dataclass(frozen=True, slots=True)
class Backoff:
    """A retry budget (`retries` after the first try) and the jittered waits between tries."""

    base_seconds: float = 0.05
    cap_seconds: float = 5.0
    retries: int = 10
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    random: Callable[[], float] = field(default=_random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.base_seconds < 0 or self.cap_seconds < 0:
            raise ValueError(
                f"backoff times must be >= 0, got base={self.base_seconds} cap={self.cap_seconds}"
            )
        if self.retries < 0:
            raise ValueError(f"backoff retries must be >= 0, got {self.retries}")

    @property
    def tries(self) -> int:
        """How many times a call is made at most: the first try and every retry."""
        return self.retries + 1

    def ceiling(self, retry: int) -> float:
        """The longest wait before retry number `retry` (1-based)."""
        return min(self.cap_seconds, self.base_seconds * 2.0 ** min(retry - 1, _MAX_EXPONENT))

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

    def attempts(
        self,
        deadline: Deadline | None = None,
        *,
        delay: Callable[[int], float] | None = None,
    ) -> Iterator[int]:
        """The try numbers of one call, 0 first: before each retry it sleeps the jittered wait
        (or `delay(retry)`, e.g. a Retry-After floor). It stops after `tries`, or when the wait
        would end at or past `deadline` (no retry starts with no time left). The caller's body
        `return`s on success and `continue`s on a retryable failure; after the loop it raises,
        naming what it waited on."""
        for attempt in range(self.tries):
            if attempt:
                seconds = self.delay(attempt) if delay is None else delay(attempt)
                if deadline is not None and seconds >= deadline.remaining():
                    return
                if seconds > 0:
                    self.sleep(seconds)
            elif deadline is not None and deadline.passed:
                return
            yield attempt

    async def attempts_async(
        self,
        deadline: Deadline | None = None,
        *,
        delay: Callable[[int], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> AsyncIterator[int]:
        """`attempts` on an event loop: the waits are `await sleep(...)`."""
        for attempt in range(self.tries):
            if attempt:
                seconds = self.delay(attempt) if delay is None else delay(attempt)
                if deadline is not None and seconds >= deadline.remaining():
                    return
                if seconds > 0:
                    await sleep(seconds)
            elif deadline is not None and deadline.passed:
                return
            yield attempt


def no_wait(retries: int = 10) -> Backoff:
    """A backoff that never sleeps: for tests and dry runs."""
    return Backoff(base_seconds=0.0, cap_seconds=0.0, retries=retries, sleep=_no_sleep)


def _no_sleep(_seconds: float) -> None:
    return None
