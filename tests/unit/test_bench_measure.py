"""The benchmarks' CPU meter counts children it started and leaves excluded servers out."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from benchmarks.measure import cpu_snapshot, spread, tree_cpu_seconds

_BURN = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"


def test_a_live_childs_cpu_counts_and_an_excluded_one_does_not() -> None:
    counted = subprocess.Popen([sys.executable, "-c", _BURN + "import time; time.sleep(30)"])
    server = subprocess.Popen([sys.executable, "-c", _BURN + "import time; time.sleep(30)"])
    try:
        own, child = time.process_time(), tree_cpu_seconds(counted.pid)
        before = cpu_snapshot(exclude=[server.pid])
        # Wait until both children burned their CPU (read from /proc, not slept on).
        while tree_cpu_seconds(counted.pid) < 0.3 or tree_cpu_seconds(server.pid) < 0.3:
            pass
        after = cpu_snapshot(exclude=[server.pid])
        own, child = time.process_time() - own, tree_cpu_seconds(counted.pid) - child
        measured = after.total - before.total
        # The counted child and our own polling, and not the server's 0.3 s (clock ticks: 10 ms).
        assert child > 0.1
        assert abs(measured - (own + child)) < 0.05
    finally:
        counted.kill()
        server.kill()
        counted.wait()
        server.wait()


def test_a_reaped_childs_cpu_counts() -> None:
    before = cpu_snapshot()
    subprocess.run([sys.executable, "-c", _BURN], check=True)
    assert cpu_snapshot().total - before.total >= 0.3


def test_a_grandchild_reaped_by_a_live_child_counts_with_reaped() -> None:
    # A forkserver's pool processes are reaped by the forkserver, not by the benchmark.
    parent_code = (
        "import subprocess, sys, time\n"
        f"subprocess.run([sys.executable, '-c', {_BURN!r}], check=True)\n"
        "print('reaped', flush=True)\n"
        "time.sleep(30)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "reaped\n"
        assert tree_cpu_seconds(child.pid, reaped=True) >= 0.3
        assert tree_cpu_seconds(child.pid) < 0.3
    finally:
        child.kill()
        child.wait()


def test_spread_is_the_median_and_range() -> None:
    shown = spread([3.0, 1.0, 2.0])
    assert (shown.median, shown.low, shown.high, shown.runs) == (2.0, 1.0, 3.0, 3)
    assert shown.show() == "2.0 (1.0-3.0, n=3)"
    with pytest.raises(ValueError, match="no runs"):
        spread([])
