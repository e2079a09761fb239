"""One way to measure for every benchmark: CPU of a process tree (with servers apart), and the
median of several runs with its spread.

Why not `time.process_time()` alone: a worker that maps chunks onto a process pool, or a KCL
daemon that starts a Python child, spends most of its CPU outside the measuring process; a
figure that leaves them out under-reports by 2-5x (issue 21). Why not psutil: /proc holds the
same counters and the benchmarks only run on Linux.
"""

from __future__ import annotations

import os
import resource
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as children:
                found.extend(int(child) for child in children.read().split())
    except OSError:  # the process ended while we looked
        pass
    return found


def descendants(pid: int) -> list[int]:
    """Every live process below `pid`, children first."""
    out: list[int] = []
    pending = _children(pid)
    while pending:
        child = pending.pop()
        out.append(child)
        pending.extend(_children(child))
    return out


def process_cpu_seconds(pid: int, *, reaped: bool = False) -> float:
    """User + system CPU of one live process (its threads included); with `reaped`, also the
    children it has waited for (a forkserver's pool processes, gone by the time one looks)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # Fields after the command name: state is [0], utime [11], stime [12], cutime [13],
    # cstime [14].
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _TICKS


def tree_cpu_seconds(pid: int, exclude: Iterable[int] = (), *, reaped: bool = False) -> float:
    """CPU of `pid` and every live descendant, except the trees rooted at `exclude`; with
    `reaped`, the descendants they have waited for too (each counted once: a reaped process
    is no longer live)."""
    skipped = set(exclude)
    for root in list(skipped):
        skipped.update(descendants(root))
    return sum(
        process_cpu_seconds(p, reaped=reaped) for p in [pid, *descendants(pid)] if p not in skipped
    )


@dataclass(frozen=True)
class CpuSnapshot:
    """This process, its reaped children and its live descendants (servers excluded)."""

    own_and_live: float
    reaped: float

    @property
    def total(self) -> float:
        return self.own_and_live + self.reaped


def cpu_snapshot(exclude: Iterable[int] = ()) -> CpuSnapshot:
    """Take one before and one after the measured work; the difference of `total` is the CPU of
    everything the benchmark started, the servers in `exclude` left out (measure them apart with
    `tree_cpu_seconds(server_pid)`). A live child's CPU is read from /proc; once reaped it moves
    to RUSAGE_CHILDREN, so the two never count the same second twice."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    # An excluded server must stay up until the last snapshot: once reaped, its CPU would
    # join RUSAGE_CHILDREN and be counted as the benchmark's.
    reaped = children.ru_utime + children.ru_stime
    skipped = set(exclude)
    for root in list(skipped):
        skipped.update(descendants(root))
    # A live descendant's own reaped children count too: a process pool's forkserver waits for
    # the pool's workers, so their CPU ends in its counters, never in ours (ours-2 in
    # bench_transform read 1.4 µs/row without them, against 8 for one core doing the same).
    live = sum(
        process_cpu_seconds(p, reaped=True) for p in descendants(os.getpid()) if p not in skipped
    )
    return CpuSnapshot(process_cpu_seconds(os.getpid()) + live, reaped)


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float
    runs: int

    def show(self, digits: int = 1) -> str:
        return (
            f"{self.median:,.{digits}f} ({self.low:,.{digits}f}-{self.high:,.{digits}f}, "
            f"n={self.runs})"
        )


def spread(values: Sequence[float]) -> Spread:
    """Median and range of repeated runs: the figure to write down, and how far to trust it."""
    if not values:
        raise ValueError("spread of no runs")
    return Spread(statistics.median(values), min(values), max(values), len(values))
