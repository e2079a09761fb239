"""200,000 scored rows into a 4-shard stream on the embedded emulator with its per-shard limit
on (1,000 records/s and 1 MiB/s a shard): wall time against the shards' limit (the accepted
records / 4,000 per second) and the entries the emulator throttled. Target (issue 6): within
10 % of the limit, under 1 % of entries throttled. Takes minutes: run it on its own.

The worker is the real one (process_scored_files) with the real producer, paced
(KINESIS_PACING's ShardPacer at 0.95 of the limits); the file and its CSV sit in memory so that
only the stream is measured.

    python -m benchmarks.bench_paced_stream [rows]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime

import orjson

from adapters.aws.clients import ClientFactory, ClientOptions
from adapters.aws.kinesis import KinesisRecordStream
from adapters.aws.kinesis_pacing import ShardMap, ShardPacer
from adapters.clock import FixedClock
from benchmarks.machine import machine
from domain.backoff import Backoff
from domain.models import Campaign, ObjectRef
from domain.workers.process_scored_files import process_scored_files
from local import kinesis_put_path
from local.emulator import EmbeddedEmulator
from local.sample_data import blacklist_lines, scored_lines
from tests.support.memory_objects import InMemoryObjectStore
from tests.support.memory_scored_files import InMemoryCampaignDirectory, RecordingNotifier

SHARDS = 4


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_paced_stream", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("rows", type=int, nargs="?", default=200_000)
    rows = parser.parse_args(argv).rows
    source, blacklist = ObjectRef("b", "scored/c1.bench.txt"), ObjectRef("b", "blacklist")
    store = InMemoryObjectStore(
        {
            source: ("\n".join(scored_lines(rows)) + "\n").encode(),
            blacklist: ("\n".join(blacklist_lines(40)) + "\n").encode(),
        }
    )
    with EmbeddedEmulator(shard_limits=True) as emulator:
        kinesis = ClientFactory(ClientOptions(endpoint_url=emulator.endpoint_url)).client(
            "kinesis", max_attempts=1
        )
        kinesis.create_stream(StreamName="paced", ShardCount=SHARDS)
        kinesis.get_waiter("stream_exists").wait(StreamName="paced")
        pacer = ShardPacer(lambda: ShardMap.from_client(kinesis, "paced"), headroom=0.95)
        stream = KinesisRecordStream(kinesis, "paced", backoff=Backoff(), pacer=pacer)
        kinesis_put_path.enable_shard_limits()
        started = time.perf_counter()
        counts = process_scored_files(
            source,
            store=store,
            stream=stream,
            campaigns=InMemoryCampaignDirectory([Campaign("c1", band_salt=b"bench")]),
            notifier=RecordingNotifier(),
            clock=FixedClock(datetime(2026, 12, 1, tzinfo=UTC)),
            encode=orjson.dumps,
            blacklist=blacklist,
        ).unwrap()
        wall = time.perf_counter() - started
    limit = counts.rows_out / (SHARDS * 1_000)
    throttled = kinesis_put_path.throttled_entries
    print(f"machine: {machine()}")
    print(f"{counts.rows_in:,} rows, {counts.rows_out:,} records on {SHARDS} shards")
    print(f"wall {wall:.1f} s; the shards' limit for these records {limit:.1f} s "
          f"({100 * (wall / limit - 1):+.1f} %)")  # fmt: skip
    print(f"throttled entries {throttled:,} ({100 * throttled / counts.rows_out:.2f} % of records)"
          f"; calls {counts.stream_calls:,}, retries {counts.stream_retries:,}; "
          f"paced waits {pacer.waited_seconds:.1f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
