"""The deadline of the work in progress, as every adapter call sees it.

The runtime that bounds a piece of work (a Lambda handler from the invocation's remaining
time, a stream runtime from the batch deadline, a leased run from its half-term) opens
`within(deadline)`; every adapter call made inside (HTTP clients, boto3 clients from
adapters/aws/clients.py) reads `current()` and shrinks its timeouts and retries to fit. A
contextvar, like the correlation id (adapters/logging.py): it reaches every call the work makes
without a parameter on every port, and concurrent tasks and threads each see their own. A thread
pool's threads do not inherit it: a call submitted to a pool runs under the adapter's own
timeouts unless submitted through `contextvars.copy_context().run`. `within` only ever
tightens: an inner scope cannot outlive the one around it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from domain.deadline import Deadline, DeadlinePassed

__all__ = ["Deadline", "DeadlinePassed", "current", "fit", "within"]

_CURRENT: ContextVar[Deadline | None] = ContextVar("deadline", default=None)


def current() -> Deadline | None:
    """The innermost deadline in force, or None when nothing bounds the work."""
    return _CURRENT.get()


@contextlib.contextmanager
def within(deadline: Deadline | None) -> Iterator[Deadline | None]:
    """Calls inside see `deadline`, or the one around it if that is sooner."""
    outer = _CURRENT.get()
    if deadline is None:
        effective = outer
    elif outer is None or deadline.at < outer.at:
        effective = deadline
    else:
        effective = outer
    token = _CURRENT.set(effective)
    try:
        yield effective
    finally:
        _CURRENT.reset(token)


def fit(seconds: float, deadline: Deadline | None, floor: float = 0.05) -> float:
    """A call's timeout cut to the time left (at least `floor`: 0 means "no timeout" to some
    clients)."""
    if deadline is None:
        return seconds
    return max(floor, min(seconds, deadline.remaining()))
