"""Lambda cold start: importing each handler from the deployment zip, the way Lambda does.

    python -m benchmarks.bench_cold_start [--zip dist/campaign-workers-lambda.zip] [--runs 5]

Unpacks the zip (`make package`; built first when missing) into a temporary directory and, per
handler (`{job}_handler` for every registered job, and `stream_worker_handler`), starts fresh
interpreters (the base Python, `-S`: no site-packages, only the unpacked zip on the path, no
bytecode written, as Lambda's read-only /var/task) that import entrypoints.lambda_handlers and
resolve the handler under `-X importtime`. Reports the median and spread of `runs` runs, in ms
of import time (the sum of `-X importtime`'s top-level cumulative figures), and which
third-party top-level packages the handler pulled in. Baseline in the same run: `pass`.
Goal (issue 21): each handler <= 400 ms here.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from benchmarks.machine import machine

ROOT = Path(__file__).resolve().parent.parent
OURS = {"domain", "adapters", "streams", "entrypoints"}
# -X importtime's lines: "import time: self [us] | cumulative | imported package"
LINE = re.compile(r"import time:\s+\d+ \|\s+(\d+) \| (\s*)(\S+)")


def handlers() -> list[str]:
    from entrypoints import registry

    return [*(f"{w.name}_handler" for w in registry.JOBS), "stream_worker_handler"]


def base_python() -> str:
    # The interpreter the venv was made from: the venv's own site-packages must not be on the path.
    return getattr(sys, "_base_executable", sys.executable)


def measure(python: str, task: Path, handler: str | None) -> tuple[float, set[str]]:
    """One fresh interpreter: ms of import time, and the top-level packages it imported."""
    code = "pass"
    if handler:
        code = f"import entrypoints.lambda_handlers as h; h.{handler}"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(task), "PYTHONDONTWRITEBYTECODE": "1"}
    env["AWS_REGION"] = "us-east-1"
    done = subprocess.run(
        [python, "-S", "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=task,
        check=True,
    )
    total_us = 0
    tops: set[str] = set()
    for line in done.stderr.splitlines():
        match = LINE.match(line)
        if match is None:
            continue
        cumulative, indent, name = int(match[1]), match[2], match[3]
        if not indent:  # top level: its cumulative figure holds its children's
            total_us += cumulative
        top = name.split(".", 1)[0]
        if (task / top).exists() or (task / f"{top}.py").exists():
            tops.add(top)
    return total_us / 1000, tops


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_cold_start", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--zip", type=Path, default=ROOT / "dist" / "campaign-workers-lambda.zip")
    parser.add_argument("--runs", type=int, default=5, help="fresh interpreters per handler")
    parser.add_argument("--handler", action="append", help="only this handler (repeatable)")
    args = parser.parse_args(argv)
    if not args.zip.exists():
        subprocess.run([sys.executable, ".ci/package_lambda.py", "--quiet"], cwd=ROOT, check=True)
    python = base_python()
    print(machine())
    print(f"{args.zip.name}: {args.zip.stat().st_size / 2**20:.1f} MiB; {python}")
    with tempfile.TemporaryDirectory(prefix="cold-start-") as scratch:
        task = Path(scratch)
        with zipfile.ZipFile(args.zip) as archive:
            archive.extractall(task)
            compiled = sum(name.endswith(".pyc") for name in archive.namelist())
        print(f"unpacked, {compiled} .pyc files; median of {args.runs} fresh interpreters each")
        print(f"{'handler':<44} {'ms':>7} {'spread':>13}  third-party packages imported")
        for handler in [None, *(args.handler or handlers())]:
            runs = [measure(python, task, handler) for _ in range(args.runs)]
            times = sorted(ms for ms, _ in runs)
            tops = sorted(runs[0][1] - OURS)
            name = handler or "(python -S -c pass)"
            spread = f"{times[0]:.0f}-{times[-1]:.0f}"
            print(f"{name:<44} {statistics.median(times):7.0f} {spread:>13}  {' '.join(tops)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
