"""Every benchmark script answers `--help` with its usage (issue 21: four crashed or ran the
whole benchmark instead), so none rots unnoticed between the runs that record its figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SCRIPTS = sorted(p.stem for p in BENCHMARKS.glob("bench_*.py"))


def test_the_runner_lists_every_benchmark_script() -> None:
    from benchmarks.run import BENCHMARKS as LISTED

    assert sorted(m.rpartition(".")[2] for m in LISTED.values()) == SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_benchmark_prints_its_usage_on_help(script: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{script}", "--help"],
        capture_output=True,
        text=True,
        timeout=60,  # one that ignores --help runs the benchmark: minutes, not seconds
        cwd=BENCHMARKS.parent,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: "), done.stdout[:200]
