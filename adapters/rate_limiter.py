"""The rate limiter (RateLimiter) and the concurrency cap beside it.

`TokenBucketLimiter` hands out times from domain/rate.py's RateSchedule under a lock (a few
microseconds, never held while waiting), then waits for its time outside the lock, with
time.sleep in threads or asyncio.sleep in a loop: one limiter serves both at once, and callers
are served in the order they asked. Not aiolimiter: it is asyncio only (the Kinesis pacer and
the thread-pooled senders need threads) and lets `2 x rate` through its first second
(docs/once.md, "Rate limiter").

`Throttle` puts a concurrency cap (calls in flight) in front of a limiter: the cap first, then
the rate, so a caller that waited for a free slot does not then call at a time it was given
before that wait (two such callers could land in the same second and exceed the rate).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from domain.ports import MonotonicClock, RateLimiter
from domain.rate import RateSchedule


class SystemMonotonicClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    async def sleep_async(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class TokenBucketLimiter:
    """`rate` units a `period` (default one second), at most `burst` (default: `rate`) at
    once, and never more than `rate` in any window of one period (domain/rate.py).
    Thread-safe."""

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        period: float = 1.0,
        clock: MonotonicClock | None = None,
    ) -> None:
        self.schedule = RateSchedule(rate, burst=burst, period=period)
        self.clock: MonotonicClock = clock or SystemMonotonicClock()
        self._lock = threading.Lock()
        self.waited_seconds = 0.0

    def _delay(self, weight: float) -> float:
        with self._lock:
            now = self.clock.monotonic()
            delay = self.schedule.reserve(weight, now) - now
            if delay > 0:
                self.waited_seconds += delay
            return delay

    def acquire(self, weight: float = 1) -> None:
        delay = self._delay(weight)
        if delay > 0:
            self.clock.sleep(delay)

    async def acquire_async(self, weight: float = 1) -> None:
        delay = self._delay(weight)
        if delay > 0:
            await self.clock.sleep_async(delay)


class Throttle:
    """A cap on calls in flight, then a rate: `with throttle.slot(parts): call()`. The cap is
    a semaphore per runtime (threads; one asyncio loop), both FIFO for waiters."""

    def __init__(self, limiter: RateLimiter, max_in_flight: int) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        self.limiter = limiter
        self.max_in_flight = max_in_flight
        self._threads = threading.BoundedSemaphore(max_in_flight)
        self._tasks: asyncio.Semaphore | None = None

    @contextmanager
    def slot(self, weight: float = 1) -> Iterator[None]:
        with self._threads:
            self.limiter.acquire(weight)
            yield

    @asynccontextmanager
    async def slot_async(self, weight: float = 1) -> AsyncIterator[None]:
        if self._tasks is None:  # made in the loop that uses it
            self._tasks = asyncio.Semaphore(self.max_in_flight)
        async with self._tasks:
            await self.limiter.acquire_async(weight)
            yield
