"""The emulator in a process of its own, with its pid: its CPU is measured apart
(benchmarks.measure.tree_cpu_seconds) and left out of the benchmark's (cpu_snapshot(exclude=...)).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from benchmarks.measure import descendants
from local.emulator import EmulatorProcess


@contextmanager
def emulator_process(**options: bool) -> Iterator[tuple[EmulatorProcess, int]]:
    """The running emulator and its pid. Take every snapshot inside the block: once the
    emulator is reaped, its CPU joins RUSAGE_CHILDREN and would count as the benchmark's."""
    before = set(descendants(os.getpid()))
    with EmulatorProcess(**options) as emulator:
        started = [pid for pid in descendants(os.getpid()) if pid not in before]
        if len(started) != 1:
            raise RuntimeError(f"expected one emulator process, found {started}")
        yield emulator, started[0]
