"""Lambda cold start: importing each handler from the deployment zip, the way Lambda does.

    python -m benchmarks.bench_cold_start [--zip dist/campaign-workers-lambda.zip] [--runs 5]

Unpacks the zip (`make package`; built first when missing) into a temporary directory and, per
handler (`{job}_handler` for every registered job, and `stream_worker_handler`), starts fresh
interpreters (the base Python, `-S`: no site-packages, only the unpacked zip on the path, no
bytecode written, as Lambda's read-only /var/task) that import entrypoints.lambda_handlers and
resolve the handler under `-X importtime`. Reports the median and spread of `runs` runs, in ms
of import time (the sum of `-X importtime`'s top-level cumulative figures), the interpreter's
CPU ms (user + system of the whole child, start-up and exit included: benchmarks.measure), and
which third-party top-level packages the handler pulled in. Baseline in the same run: `pass`.
Goal (issue 21): each handler <= 400 ms here.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from benchmarks.machine import machine
from benchmarks.measure import cpu_snapshot, spread

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


def measure(python: str, task: Path, handler: str | None) -> tuple[float, float, set[str]]:
    """One fresh interpreter: ms of import time, its CPU ms, the top-level packages imported."""
    code = "pass"
    if handler:
        code = f"import entrypoints.lambda_handlers as h; h.{handler}"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(task), "PYTHONDONTWRITEBYTECODE": "1"}
    env["AWS_REGION"] = "us-east-1"
    before = cpu_snapshot()
    done = subprocess.run(
        [python, "-S", "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=task,
        check=True,
    )
    cpu_ms = (cpu_snapshot().total - before.total) * 1000
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
    return total_us / 1000, cpu_ms, tops


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
    print(f"machine: {machine()}")
    print(f"{args.zip.name}: {args.zip.stat().st_size / 2**20:.1f} MiB; {python}")
    with tempfile.TemporaryDirectory(prefix="cold-start-") as scratch:
        task = Path(scratch)
        with zipfile.ZipFile(args.zip) as archive:
            archive.extractall(task)
            compiled = sum(name.endswith(".pyc") for name in archive.namelist())
        print(f"unpacked, {compiled} .pyc files; median of {args.runs} fresh interpreters each")
        print("| handler | import ms (low-high) | CPU ms (low-high) | third-party packages |")
        print("|---|--:|--:|---|")
        for handler in [None, *(args.handler or handlers())]:
            runs = [measure(python, task, handler) for _ in range(args.runs)]
            tops = " ".join(sorted(runs[0][2] - OURS))
            name = handler or "baseline: python -S -c pass"
            imports, cpu = spread([r[0] for r in runs]), spread([r[1] for r in runs])
            print(f"| {name} | {imports.show(0)} | {cpu.show(0)} | {tops} |", flush=True)
    print(f"machine after: {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
