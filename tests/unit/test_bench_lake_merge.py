"""bench_lake_merge's parent process and its measuring children."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_measuring_child_that_dies_ends_the_run_non_zero_naming_it(tmp_path: Path) -> None:
    # A "baseline" checkout whose harness dies before it sends its figures (as an OOM kill
    # would): the parent used to wait on recv() forever.
    harness = tmp_path / "benchmarks"
    harness.mkdir()
    (harness / "__init__.py").write_text("")
    (harness / "bench_lake_merge.py").write_text(
        "import os\n\ndef _run(method, root, answer):\n    os._exit(3)\n"
    )
    done = subprocess.run(
        [
            *(sys.executable, "-m", "benchmarks.bench_lake_merge", "1", "--lakes", "none"),
            *("--methods", "blocks", "--runs", "1", "--baseline", str(tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=300,  # a hang guard, not a measurement: before the fix this never returned
        cwd=ROOT,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert "died (exit code 3)" in done.stderr
