"""save_stats over a campaign of N registrations (default 2,000,000): time and peak memory.

The lake file is written to a temporary directory (deflate, as save_campaign_data writes) and
read through AvroLakeRecords by a file-backed store, so the figure is the stats worker's
(fastavro decoding, counting), not an emulator's. Peak memory by tracemalloc (Python
allocations) and the process's max RSS growth.

    .venv/bin/python -m benchmarks.bench_stats [--fans N] [--trace]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import fastavro

from adapters.clock import FixedClock
from adapters.lake_records import AvroLakeRecords
from domain.models import Campaign, ObjectInfo, ObjectRef
from domain.workers.save_stats import save_stats
from tests.support.memory_objects import InMemoryObjectStore
from tests.support.memory_stats import MemoryOpenCampaigns

KEY = "avro/registration/2026/02/01/big.avro"
SCHEMA = json.loads(Path("adapters/schemas/registration.avsc").read_text())


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fans", type=int, default=2_000_000)
    parser.add_argument("--trace", action="store_true", help="tracemalloc (slows it ~3x)")
    args = parser.parse_args()
    fans = args.fans
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.avro"
        started = time.monotonic()
        with path.open("wb") as out:
            fastavro.writer(out, fastavro.parse_schema(SCHEMA), records(fans), codec="deflate")
        written = time.monotonic() - started
        store = FileLake(path)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if args.trace:
            tracemalloc.start()
        run = save_stats(
            {}, campaigns=MemoryOpenCampaigns([Campaign("c1"), Campaign("c2")]),
            lake=AvroLakeRecords(store), store=store, lake_bucket="lake", scoring_bucket="scoring",
            prefix="stats/", clock=FixedClock(datetime.now(UTC)), monotonic=time.monotonic,
        ).unwrap()  # fmt: skip
        peak = tracemalloc.get_traced_memory()[1] if args.trace else 0
        tracemalloc.stop()
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        doc = json.loads(store.read_bytes(ObjectRef("scoring", "stats/c1.json")))
        print(
            json.dumps(
                {
                    "fans": fans,
                    "fileMiB": round(path.stat().st_size / 2**20, 1),
                    "writeSeconds": round(written, 1),
                    "statsSeconds": run.to_json()["tookSeconds"],
                    "recordsPerSecond": round(run.records / run.took_seconds),
                    "c1Registrations": doc["registrations"],
                    "tracemallocPeakMiB": round(peak / 2**20, 1) if args.trace else None,
                    "maxRssGrowthMiB": round((rss_after - rss_before) / 1024, 1),
                }
            )
        )


if __name__ == "__main__":
    main()
