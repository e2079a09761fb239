"""The SendPacer port: a cap on calls in flight, then a brake while the provider throttles, then
a rate in message parts a second (TokenBucketLimiter; the order of adapters/rate_limiter.Throttle
with the brake between).

A throttling answer means the provider counts faster than our limiter thinks (another sender
on the same origination identity, a lower quota than configured): every caller pauses before
its next call, `base` seconds after the first throttle in a row, doubling up to `ceiling`
(or the provider's Retry-After when it is longer); an accepted call ends the streak. The pause
is waited out after the cap and *before* the rate's time is taken: waiting after it would call
later than the time the limiter gave, and two calls could land in one second above the rate
(the property test found 7 parts in a 6 parts/s second that way).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from adapters.rate_limiter import TokenBucketLimiter
from domain.ports import MonotonicClock


class ThrottlePacer:
    def __init__(
        self,
        rate_parts_per_second: float | None,
        max_in_flight: int,
        clock: MonotonicClock,
        *,
        burst: float | None = None,
        base: float = 0.25,
        ceiling: float = 20.0,
    ) -> None:
        self.clock = clock
        self.limiter: TokenBucketLimiter | None = None
        if rate_parts_per_second is not None:
            self.limiter = TokenBucketLimiter(rate_parts_per_second, burst=burst, clock=clock)
        self._cap = threading.BoundedSemaphore(max_in_flight)
        self.max_in_flight = max_in_flight
        self._tasks: asyncio.Semaphore | None = None  # the cap on one event loop (AsyncTaskRunner)
        self.base, self.ceiling = base, ceiling
        self._lock = threading.Lock()
        self._streak = 0
        self._paused_until = 0.0
        self.throttles = 0

    @contextmanager
    def slot(self, parts: int) -> Iterator[None]:
        with self._cap:
            self._wait_out_pause()
            if self.limiter is not None:
                self.limiter.acquire(parts)
            yield

    @asynccontextmanager
    async def slot_async(self, parts: int) -> AsyncIterator[None]:
        """slot() for coroutines on one event loop: the same cap, pause and rate."""
        if self._tasks is None:  # made in the loop that uses it
            self._tasks = asyncio.Semaphore(self.max_in_flight)
        async with self._tasks:
            while (wait := self._pause_left()) > 0:
                await self.clock.sleep_async(wait)
            if self.limiter is not None:
                await self.limiter.acquire_async(parts)
            yield

    def _pause_left(self) -> float:
        with self._lock:
            return self._paused_until - self.clock.monotonic()

    def _wait_out_pause(self) -> None:
        while True:
            with self._lock:
                wait = self._paused_until - self.clock.monotonic()
            if wait <= 0:
                return
            self.clock.sleep(wait)

    def throttled(self, retry_after: float | None) -> None:
        with self._lock:
            self.throttles += 1
            pause = min(self.ceiling, self.base * 2**self._streak)
            pause = max(pause, retry_after or 0.0)
            self._streak += 1
            self._paused_until = max(self._paused_until, self.clock.monotonic() + pause)

    def accepted(self) -> None:
        if self._streak:
            with self._lock:
                self._streak = 0
