"""The TaskRunner port: calls with a bounded number in flight, pulled lazily.

ThreadTaskRunner keeps at most `in_flight` calls submitted to a thread pool of that size; the
calling thread pulls the next task (which may claim a chunk's ledger entries) only when a slot
is free, so memory holds about `in_flight` tasks whatever the wave's size. A task's exception
stops the run: nothing more is submitted, the calls in flight finish (each records its own
outcome), and the exception is raised. SerialTaskRunner runs them one after the other in the
calling thread (fake-clock tests, where the order must be deterministic).
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class ThreadTaskRunner:
    def run(self, tasks: Iterable[Callable[[], T]], in_flight: int) -> Iterator[T]:
        if in_flight < 1:
            raise ValueError(f"in_flight must be at least 1, got {in_flight}")
        # Each finished call lands on a queue (a done-callback): O(1) per result. Not
        # concurrent.futures.wait(FIRST_COMPLETED), which installs a waiter on every pending
        # future at each call: O(in_flight) per result, ~4.8 ms of CPU a text at 200 in flight.
        finished: queue.SimpleQueue[Future[T]] = queue.SimpleQueue()
        pending = 0
        source = iter(tasks)
        exhausted = False
        with ThreadPoolExecutor(in_flight, thread_name_prefix="send") as pool:
            try:
                while True:
                    while not exhausted and pending < in_flight:
                        task = next(source, None)
                        if task is None:
                            exhausted = True
                        else:
                            pool.submit(task).add_done_callback(finished.put)
                            pending += 1
                    if not pending:
                        return
                    future = finished.get()
                    pending -= 1
                    yield future.result()
            finally:
                # Stopping (a task raised, or the consumer stopped): the pool's exit lets the
                # calls in flight finish and record their outcomes; nothing more is submitted.
                pass


class SerialTaskRunner:
    def run(self, tasks: Iterable[Callable[[], T]], in_flight: int) -> Iterator[T]:
        for task in tasks:
            yield task()
