"""read_ahead: every item once, in order, with its own value or error, never more than `ahead`
fetched in advance, and nothing left running when the caller stops early."""

from __future__ import annotations

import threading
import time
from contextlib import closing

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.read_ahead import read_ahead


class Boom(Exception):
    pass


@given(st.lists(st.integers(-5, 50), max_size=30), st.integers(0, 6))
def test_each_item_comes_once_in_order_with_its_value_or_its_error(
    items: list[int], ahead: int
) -> None:
    def fetch(item: int) -> int:
        if item < 0:
            raise Boom(item)
        return item * 2

    got: list[object] = []
    for item, value in read_ahead(fetch, items, ahead=ahead):
        try:
            got.append((item, value()))
        except Boom as error:
            got.append((item, f"boom {error}"))

    assert got == [(i, i * 2) if i >= 0 else (i, f"boom {i}") for i in items]


@pytest.mark.parametrize("ahead", [1, 2, 4])
def test_no_more_than_ahead_items_are_fetched_before_they_are_asked_for(ahead: int) -> None:
    started: list[int] = []
    lock = threading.Lock()

    def fetch(item: int) -> int:
        with lock:
            started.append(item)
        return item

    for position, (item, value) in enumerate(read_ahead(fetch, range(20), ahead=ahead)):
        assert value() == item
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(started) < min(20, position + 1 + ahead):
            time.sleep(0.001)  # the pool may not have started the next fetch yet
        with lock:
            assert len(started) <= position + 1 + ahead


def test_a_caller_that_stops_early_leaves_no_fetch_running() -> None:
    running = threading.Event()
    finished: list[int] = []

    def fetch(item: int) -> int:
        running.set()
        time.sleep(0.05)
        finished.append(item)
        return item

    before = threading.active_count()
    items = read_ahead(fetch, range(100), ahead=3)
    with closing(items):
        next(items)

    assert len(finished) <= 4  # the one asked for and at most `ahead` in flight; no more
    assert threading.active_count() == before
