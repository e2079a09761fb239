"""The TaskRunner port: sends (domain/sms.py SendExchange) with a bounded number in flight,
pulled lazily.

Each runner keeps at most `in_flight` exchanges going; the calling thread pulls the next one
(which may claim a chunk's ledger entries) only when a slot is free, so memory holds about
`in_flight` of them whatever the wave's size. An exception an exchange raises stops the run:
nothing more is started, the calls in flight finish (each records its own outcome), and the
exception is raised.

- ThreadTaskRunner: a thread per exchange in flight, each blocked in the gateway's call.
- AsyncTaskRunner: one asyncio loop in the calling thread; a gateway with `send_async`
  (AsyncTmSmsGateway: aiohttp) is awaited, any other is called in a thread pool. Cheaper per
  send: no thread hand-offs, no GIL contention between 200 threads, aiohttp's C parser
  (benchmarks/README.md, "SMS send"). The exchanges' own steps (ledger start and finish) run
  on the loop, or in `step_threads` threads when the ledger's calls wait on the network.
- SerialTaskRunner: one after the other in the calling thread (fake-clock tests, where the
  order must be deterministic).
"""

from __future__ import annotations

import asyncio
import queue
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeVar, runtime_checkable

from domain.ports import SendPacer, SmsGateway
from domain.sms import SendExchange, SmsAnswer, SmsMessage

T = TypeVar("T")


def _drive(exchange: SendExchange[T], gateway: SmsGateway, pacer: SendPacer) -> T:
    try:
        message = exchange.send(None)  # type: ignore[arg-type]  # a generator starts on None
        while True:
            with pacer.slot(message.parts):
                answer = gateway.send(message)
            message = exchange.send(answer)
    except StopIteration as stop:
        result: T = stop.value
        return result


class ThreadTaskRunner:
    def run(
        self,
        tasks: Iterable[SendExchange[T]],
        in_flight: int,
        gateway: SmsGateway,
        pacer: SendPacer,
    ) -> Iterator[T]:
        if in_flight < 1:
            raise ValueError(f"in_flight must be at least 1, got {in_flight}")
        # Each finished call lands on a queue (a done-callback): O(1) per result. Not
        # concurrent.futures.wait(FIRST_COMPLETED), which installs a waiter on every pending
        # future at each call: O(in_flight) per result, ~4.8 ms of CPU a text at 200 in flight.
        finished: queue.SimpleQueue[Future[T]] = queue.SimpleQueue()
        pending = 0
        source = iter(tasks)
        exhausted = False
        # The pool's exit (a task raised, or the consumer stopped) lets the calls in flight
        # finish and record their outcomes; nothing more is submitted.
        with ThreadPoolExecutor(in_flight, thread_name_prefix="send") as pool:
            while True:
                while not exhausted and pending < in_flight:
                    task = next(source, None)
                    if task is None:
                        exhausted = True
                    else:
                        future = pool.submit(_drive, task, gateway, pacer)
                        future.add_done_callback(finished.put)
                        pending += 1
                if not pending:
                    return
                done = finished.get()
                pending -= 1
                yield done.result()


class SerialTaskRunner:
    def run(
        self,
        tasks: Iterable[SendExchange[T]],
        in_flight: int,
        gateway: SmsGateway,
        pacer: SendPacer,
    ) -> Iterator[T]:
        for task in tasks:
            yield _drive(task, gateway, pacer)


@runtime_checkable
class AsyncSmsGateway(Protocol):
    async def send_async(self, message: SmsMessage) -> SmsAnswer: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class AsyncPacer(Protocol):
    def slot_async(self, parts: int) -> AbstractAsyncContextManager[None]: ...


class AsyncTaskRunner:
    def __init__(self, step_threads: int = 0) -> None:
        self.step_threads = step_threads

    def run(
        self,
        tasks: Iterable[SendExchange[T]],
        in_flight: int,
        gateway: SmsGateway,
        pacer: SendPacer,
    ) -> Iterator[T]:
        if in_flight < 1:
            raise ValueError(f"in_flight must be at least 1, got {in_flight}")
        if not isinstance(pacer, AsyncPacer):
            raise TypeError(f"{type(pacer).__name__} has no slot_async: not for AsyncTaskRunner")
        loop = asyncio.new_event_loop()
        steps = ThreadPoolExecutor(self.step_threads) if self.step_threads else None
        calls = None if isinstance(gateway, AsyncSmsGateway) else ThreadPoolExecutor(in_flight)
        drive = _AsyncDrive(loop, gateway, pacer, steps, calls)
        try:
            yield from drive.run(iter(tasks), in_flight)
        finally:
            try:
                drive.settle()
                if isinstance(gateway, AsyncSmsGateway):
                    loop.run_until_complete(gateway.aclose())
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                for pool in (steps, calls):
                    if pool is not None:
                        pool.shutdown()


class _AsyncDrive:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        gateway: SmsGateway,
        pacer: AsyncPacer,
        steps: ThreadPoolExecutor | None,
        calls: ThreadPoolExecutor | None,
    ) -> None:
        self.loop, self.gateway, self.pacer = loop, gateway, pacer
        self.steps, self.calls = steps, calls
        self.pending: set[asyncio.Task[Any]] = set()
        # Finished tasks land here (a done-callback) and wake the waiter: O(1) per result, not
        # asyncio.wait's callback on every pending task at each wake.
        self.finished: deque[asyncio.Task[Any]] = deque()
        self.wake: asyncio.Event | None = None

    def run(self, source: Iterator[SendExchange[T]], in_flight: int) -> Iterator[T]:
        exhausted = False
        while True:
            while not exhausted and len(self.pending) < in_flight:
                task = next(source, None)  # outside the loop: a chunk's claim is a sync call
                if task is None:
                    exhausted = True
                else:
                    running = self.loop.create_task(self._exchange(task))
                    running.add_done_callback(self._finished)
                    self.pending.add(running)
            if not self.pending and not self.finished:
                return
            if not self.finished:
                self.loop.run_until_complete(self._woken())
            while self.finished:
                yield self.finished.popleft().result()

    def settle(self) -> None:
        """Lets the calls in flight finish (each records its outcome) before the loop closes."""
        if self.pending:
            self.loop.run_until_complete(asyncio.gather(*self.pending, return_exceptions=True))

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self.pending.discard(task)
        self.finished.append(task)
        if self.wake is not None:
            self.wake.set()

    async def _woken(self) -> None:
        if self.wake is None:
            self.wake = asyncio.Event()
        await self.wake.wait()
        self.wake.clear()

    async def _step(self, exchange: SendExchange[T], answer: SmsAnswer | None) -> Any:
        """The exchange's next message, or _Result(its result) when it is over."""
        if self.steps is None:
            return _advance(exchange, answer)
        return await self.loop.run_in_executor(self.steps, _advance, exchange, answer)

    async def _send(self, message: SmsMessage) -> SmsAnswer:
        if self.calls is None:
            return await self.gateway.send_async(message)  # type: ignore[attr-defined, no-any-return]
        return await self.loop.run_in_executor(self.calls, self.gateway.send, message)

    async def _exchange(self, exchange: SendExchange[T]) -> T:
        step = await self._step(exchange, None)
        while not isinstance(step, _Result):
            async with self.pacer.slot_async(step.parts):
                answer = await self._send(step)
            step = await self._step(exchange, answer)
        result: T = step.value
        return result


class _Result:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _advance(exchange: SendExchange[Any], answer: SmsAnswer | None) -> SmsMessage | _Result:
    # StopIteration cannot cross a future (asyncio turns it into a TypeError): wrapped here.
    try:
        return exchange.send(answer)  # type: ignore[arg-type]
    except StopIteration as stop:
        return _Result(stop.value)
