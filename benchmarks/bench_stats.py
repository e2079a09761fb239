"""save_stats over a campaign of N registrations (default 300,000): CPU per record and memory.

The lake file is written to a temporary directory (deflate, as save_campaign_data writes) and
read through AvroLakeRecords by a file-backed fake store (production reads S3 over HTTP: that
I/O is not measured), so the figure is the stats worker's (fastavro decoding, counting), not an
emulator's. Baseline in the same run: fastavro.reader decoding the same file and doing nothing
with the records (the floor the worker's decoding cannot go under). CPU µs per record of this
process tree (benchmarks.measure), median of `--runs` with the spread; peak memory by
tracemalloc (`--trace`, Python allocations) and the process's max RSS growth.

    python -m benchmarks.bench_stats [--fans N] [--runs 3] [--trace]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import fastavro

from adapters.clock import FixedClock
from adapters.lake_records import AvroLakeRecords
from benchmarks.machine import machine
from benchmarks.measure import cpu_snapshot, spread
from domain.models import Campaign, ObjectInfo, ObjectRef
from domain.workers.save_stats import save_stats
from tests.support.memory_objects import InMemoryObjectStore
from tests.support.memory_stats import MemoryOpenCampaigns

KEY = "avro/registration/2026/02/01/big.avro"
SCHEMA = json.loads(
    (Path(__file__).resolve().parents[1] / "adapters/schemas/registration.avsc").read_text()
)
FAKE = "the lake file is read from local disk by a fake store (production: S3 over HTTP)"


class FileLake(InMemoryObjectStore):
    """The one big lake file from disk, in 1 MiB chunks; everything else in memory."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def list_objects(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        if KEY.startswith(prefix):
            yield ObjectInfo(ObjectRef(bucket, KEY), self.path.stat().st_size)
        yield from super().list_objects(bucket, prefix)

    def iter_chunks(
        self, ref: ObjectRef, start: int = 0, end: int | None = None
    ) -> Iterator[bytes]:
        with self.path.open("rb") as f:
            while chunk := f.read(1 << 20):
                yield chunk


def records(n: int) -> Iterator[dict[str, object]]:
    for i in range(n):
        yield {
            "type": "registration", "dedupeId": f"{i:032x}", "campaignId": "c1" if i % 10 else "c2",
            "globalUserId": f"g{i}", "email": f"fan{i}@example.com", "marketId": f"m{i % 50}",
        }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_stats", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--fans", type=int, default=300_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--trace", action="store_true", help="tracemalloc (slows it ~3x)")
    args = parser.parse_args(argv)
    fans = args.fans
    print(f"machine: {machine()}")
    print(f"{fans:,} registrations; {FAKE}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.avro"
        with path.open("wb") as out:
            fastavro.writer(out, fastavro.parse_schema(SCHEMA), records(fans), codec="deflate")
        store = FileLake(path)

        def decode_only() -> int:
            with path.open("rb") as f:
                return sum(1 for _ in fastavro.reader(f))

        def stats() -> int:
            run = save_stats(
                {}, campaigns=MemoryOpenCampaigns([Campaign("c1"), Campaign("c2")]),
                lake=AvroLakeRecords(store), store=store, lake_bucket="lake",
                scoring_bucket="scoring", prefix="stats/", clock=FixedClock(datetime.now(UTC)),
                monotonic=time.monotonic,
            ).unwrap()  # fmt: skip
            return int(run.records)

        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        cpu: dict[str, list[float]] = {
            "baseline: fastavro.reader, decode only": [],
            "save_stats": [],
        }
        walls: dict[str, list[float]] = {name: [] for name in cpu}
        for _ in range(args.runs):
            for name, work in zip(cpu, (decode_only, stats), strict=True):
                before, started = cpu_snapshot(), time.perf_counter()
                count = work()
                walls[name].append(fans / (time.perf_counter() - started))
                cpu[name].append((cpu_snapshot().total - before.total) / fans * 1e6)
                assert count == fans, (name, count)
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = 0
        if args.trace:
            tracemalloc.start()
            stats()
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        doc = json.loads(store.read_bytes(ObjectRef("scoring", "stats/c1.json")))
        assert doc["registrations"] == fans - -(-fans // 10), doc  # c2: every 10th
        print(f"file {path.stat().st_size / 2**20:.1f} MiB; median of {args.runs} runs (low-high)")
        print("| pass | records/s | CPU µs/record |\n|---|--:|--:|")
        for name in cpu:
            print(f"| {name} | {spread(walls[name]).show(0)} | {spread(cpu[name]).show(2)} |")
        print(
            f"max RSS growth {(rss_after - rss_before) / 1024:.1f} MiB"
            + (f"; tracemalloc peak {peak / 2**20:.1f} MiB" if args.trace else "")
        )
    print(f"machine after: {machine()}")


if __name__ == "__main__":
    main(sys.argv[1:])
