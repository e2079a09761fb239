"""`make bench`: every benchmark in turn, each in its own process, output kept in benchmarks/out/.

The figures to record go into benchmarks/README.md by hand, with the machine they ran on: these
2-core machines are shared and noisy, so read medians and same-run ratios, not absolutes.

    python -m benchmarks.run [name ...]     # default: all of them
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCHMARKS = {
    "transform": "benchmarks.bench_transform",
    "stream_consumer": "benchmarks.bench_stream_consumer",
    "emulator": "benchmarks.bench_emulator",
    "producer": "benchmarks.bench_producer",
    "paced_stream": "benchmarks.bench_paced_stream",
    "poller": "benchmarks.bench_poller",
    "end_to_end": "benchmarks.bench_end_to_end",
    "lake_merge": "benchmarks.bench_lake_merge",
    "s3_upload": "benchmarks.bench_s3_upload",
    "lake_month": "benchmarks.bench_lake_month",
    "wave_prep": "benchmarks.bench_wave_prep",
    "wave_codes": "benchmarks.bench_wave_codes",
    "dynamo_assign": "benchmarks.bench_dynamo_assign",
    "ledger": "benchmarks.bench_ledger",
    "once_ledger": "benchmarks.bench_once_ledger",
    "rate_limiter": "benchmarks.bench_rate_limiter",
    "pacman_transports": "benchmarks.bench_pacman_transports",
    "sms_send": "benchmarks.bench_sms_send",
    "cold_start": "benchmarks.bench_cold_start",
    "stats": "benchmarks.bench_stats",
}
OUT = Path(__file__).parent / "out"


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    OUT.mkdir(exist_ok=True)
    failed = []
    for name in names:
        print(f"== {name} ({BENCHMARKS[name]})", flush=True)
        started = time.perf_counter()
        with (OUT / f"{name}.txt").open("w", encoding="utf-8") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", BENCHMARKS[name]],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            assert process.stdout is not None
            for line in process.stdout:
                sys.stdout.write(line)
                log.write(line)
            if process.wait() != 0:
                failed.append(name)
        print(f"== {name}: {time.perf_counter() - started:.0f} s", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
