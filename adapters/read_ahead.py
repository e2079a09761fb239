"""Fetching the next few objects on a small thread pool while the current one is worked on.

Why: a merge reads its sources one after another, and on S3 each read is a GET of ~20-50 ms
latency before the first byte; with 500 sources that waiting is most of a day's merge. Locally
the file reads and writes release the GIL too, so they overlap the merge's own Python work.

Memory: at most `ahead` fetched objects besides the one being worked on; objects larger than
`max_bytes` are not fetched ahead but streamed when their turn comes (a month's merge reads the
days' merged files, tens of MB each).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def read_ahead(
    fetch: Callable[[T], R], items: Iterable[T], *, ahead: int
) -> Generator[tuple[T, Callable[[], R]], None, None]:
    """Each item with a call that returns its fetched value (raising what the fetch raised, at
    the point the caller asks: inside its own error handling), `ahead` items fetched in advance.
    With `ahead` 0, each fetch runs when asked for, in the caller's thread."""
    if ahead < 1:
        for item in items:
            yield item, _now(fetch, item)
        return
    pool = ThreadPoolExecutor(max_workers=ahead, thread_name_prefix="read-ahead")
    pending: deque[tuple[T, Future[R]]] = deque()
    upcoming = iter(items)
    try:
        for item in upcoming:
            pending.append((item, pool.submit(fetch, item)))
            if len(pending) >= ahead:
                break
        while pending:
            item, future = pending.popleft()
            for following in upcoming:
                pending.append((following, pool.submit(fetch, following)))
                break
            yield item, future.result
    finally:
        # A caller that stops early (a refusal) leaves no fetch running behind it.
        pool.shutdown(wait=True, cancel_futures=True)


def _now(fetch: Callable[[T], R], item: T) -> Callable[[], R]:
    return lambda: fetch(item)
