"""A month's merge over merged days, with the days' sidecars and without (docs/data-lake.md,
"Sidecars"), in the same run.

    python -m benchmarks.bench_lake_month [days files_per_day] [--runs 3]    # default: 10 20

The lake: `days` days of `files_per_day` files x 1,000 registrations as save_campaign_data
writes them (header keys), each day's last file replaying the previous day's first (a re-run
across midnight: 1,000 duplicates a day that only the month's merge can see). Each day is
merged (measured too: that merge now also writes its sidecar) and its sources removed as the
day's move would. Then the month's merge, whose sources are the days' merged files, runs:
- `sidecars`: the days' keys read from their sidecars (16 B a record);
- `projection`: the same merged files with their sidecars deleted, so their keys are decoded
  from the records (`dedupeId` by the projection), as for every merged day before sidecars.

Each merge runs in a fresh process (its peak RSS is its own), over files in a temporary directory
(benchmarks/bench_lake_merge.DirectoryStore), as production wires it (entrypoints/lake.py).
Records/s counts the merge's source records; CPU µs per record is the merge process's
(benchmarks.measure.cpu_snapshot in the child, around the merge: imports excluded). Medians with
the spread: the days' merges over the days, the month's over `--runs`. Baseline in the same run:
the month's merge with its keys decoded (no sidecars). The store is a local directory standing
in for S3 (production's reads and writes go over HTTP: not measured here).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.bench_lake_merge import BUCKET, RECORDS_PER_FILE, TYPE, merge_prefix
from benchmarks.machine import machine
from benchmarks.measure import cpu_snapshot, spread

MONTH = "2024/05"


def write_days(root: Path, days: int, files: int) -> int:
    """The days' source files; returns the duplicates the month's merge must drop."""
    from adapters.avro import AvroSchemas
    from benchmarks.stream_records import registration
    from domain.records import canonical_json, with_dedupe_id

    schemas = AvroSchemas(compression_level=1)
    serial = 0
    first_of_day: list[int] = []
    for day in range(1, days + 1):
        folder = root / BUCKET / "avro" / TYPE / MONTH / f"{day:02d}"
        folder.mkdir(parents=True)
        arrived = datetime(2024, 5, day, tzinfo=UTC)
        first_of_day.append(serial)
        for number in range(files):
            if number == files - 1 and day > 1:
                ids = range(first_of_day[-2], first_of_day[-2] + RECORDS_PER_FILE)
            else:
                ids = range(serial, serial + RECORDS_PER_FILE)
                serial += RECORDS_PER_FILE
            records = [
                schemas.conform(
                    TYPE, with_dedupe_id(registration(random.Random(i), i), canonical_json), arrived
                ).unwrap()
                for i in ids
            ]
            name = f"shardId-000000000000-{number:06d}.avro"
            (folder / name).write_bytes(schemas.encode(TYPE, records))
    return (days - 1) * RECORDS_PER_FILE


def _run(root: str, prefix: str, answer: Any) -> None:
    # Imports before the clock: a merge is measured, not a cold start.
    import adapters.lake_compactor
    import adapters.lake_keys
    import adapters.lake_sidecar  # noqa: F401
    import domain.workers.merge_avro_files  # noqa: F401

    with open("/proc/self/statm") as statm:
        before_mib = int(statm.read().split()[1]) * resource.getpagesize() / 2**20
    started, snapshot = time.perf_counter(), cpu_snapshot()
    counts = merge_prefix(Path(root), prefix)
    wall, cpu = time.perf_counter() - started, cpu_snapshot().total - snapshot.total
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    (merged,) = counts.types
    answer.send(
        (
            wall,
            cpu,
            merged.records + merged.duplicates,
            merged.duplicates,
            merged.keys_from_sidecars,
            merged.keys_decoded,
            peak_mib - before_mib,
        )
    )


def measure(root: Path, prefix: str) -> tuple[float, float, int, int, int, int, float]:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=_run, args=(str(root), prefix, theirs))
    process.start()
    result = ours.recv()
    process.join()
    return result  # type: ignore[no-any-return]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_lake_month", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("days", type=int, nargs="?", default=10)
    parser.add_argument("files_per_day", type=int, nargs="?", default=20)
    parser.add_argument("--runs", type=int, default=3, help="runs of each month's merge")
    args = parser.parse_args(argv)
    days, files = args.days, args.files_per_day
    print(f"machine: {machine()}")
    print("the lake is a local directory standing in for S3 (a fake: S3's I/O is not measured)")
    root = Path(tempfile.mkdtemp(prefix="bench-lake-month-"))
    rows = []
    try:
        expected = write_days(root, days, files)
        os.sync()  # the days' dirty pages written out before the clock (bench_lake_merge.py)
        daily = []
        for day in range(1, days + 1):
            prefix = f"{MONTH}/{day:02d}"
            daily.append(measure(root, prefix))
            # The day's move: its sources go; its merged file and sidecar stay.
            shutil.rmtree(root / BUCKET / "avro" / TYPE / prefix)
        rows.append(("each day (writes its sidecar)", daily, False))
        month_merged = root / BUCKET / "avro" / TYPE / "merged" / f"{MONTH}.avro"
        month_sidecar = root / BUCKET / "avro" / "merged-keys" / TYPE / f"{MONTH}.keys"
        with_sidecars = []
        for _ in range(args.runs):
            with_sidecars.append(measure(root, MONTH))
            month_merged.unlink()
            month_sidecar.unlink()
        rows.append(("month, keys from sidecars", with_sidecars, True))
        shutil.rmtree(root / BUCKET / "avro" / "merged-keys" / TYPE / MONTH)
        decoded = []
        for _ in range(args.runs):
            decoded.append(measure(root, MONTH))
            month_merged.unlink()
            month_sidecar.unlink()
        rows.append(("baseline: month, keys decoded (no sidecars)", decoded, True))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("median (low-high) over the runs")
    print(
        "| merge | runs | records in | duplicates | from sidecars / decoded | s | "
        "records/s | CPU µs/record | merge's own MiB (max) | vs decoded |"
    )
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    decoded_wall = spread([r[0] for r in rows[-1][1]]).median
    for name, runs, month in rows:
        records = runs[0][2]
        if month:
            assert all(r[3] == expected for r in runs), (name, [r[3] for r in runs], expected)
        wall = spread([r[0] for r in runs])
        rate = spread([r[2] / r[0] for r in runs])
        cpu = spread([r[1] / r[2] * 1e6 for r in runs])
        own = max(r[6] for r in runs)
        sources = f"{runs[0][4]} / {runs[0][5]}" if month else "-"
        ratio = f"{decoded_wall / wall.median:.1f}x" if month else "-"
        print(
            f"| {name} | {len(runs)} | {records:,} | {runs[0][3]:,} | {sources} | {wall.show(3)} "
            f"| {rate.show(0)} | {cpu.show(2)} | {own:.0f} | {ratio} |",
            flush=True,
        )
    print(f"machine after: {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
