"""Scored rows into a 4-shard stream on the embedded emulator with its per-shard limit on
(1,000 records/s and 1 MiB/s a shard): wall time against the shards' limit (the accepted
records / 4,000 per second) and the entries the emulator throttled. Target (issue 6): within
10 % of the limit, under 1 % of entries throttled.

The worker is the real one (process_scored_files) with the real producer, paced
(KINESIS_PACING's ShardPacer at 0.95 of the limits); the scored file, its campaign and the
notifier are in-memory fakes (tests/support: production reads S3 and DynamoDB) so that only the
stream is measured. The emulator runs in this process (its per-shard limit and throttle count
are process-wide switches of local.kinesis_put_path), so the CPU figure is the worker's and the
emulator's together. Each run (`--runs`, default 3) uses a fresh stream; medians with the spread.
Baseline: the shards' limit itself (what a perfect pacer would take).

    python -m benchmarks.bench_paced_stream [rows] [--runs 3]      # rows default 40,000
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from functools import partial

import orjson

from adapters.aws.clients import ClientFactory, ClientOptions
from adapters.aws.kinesis import KinesisRecordStream
from adapters.aws.kinesis_pacing import ShardMap, ShardPacer
from adapters.clock import FixedClock
from benchmarks.machine import machine
from benchmarks.measure import cpu_snapshot, spread
from domain.backoff import Backoff
from domain.models import Campaign, ObjectRef
from domain.workers.process_scored_files import process_scored_files
from local import kinesis_put_path
from local.emulator import EmbeddedEmulator
from local.sample_data import blacklist_lines, scored_lines
from tests.support.memory_objects import InMemoryObjectStore
from tests.support.memory_scored_files import InMemoryCampaignDirectory, RecordingNotifier

SHARDS = 4
FAKES = (
    "fakes: the scored file, campaign and notifier are in memory (production: S3, DynamoDB); "
    "CPU is the worker's and the in-process emulator's together"
)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_paced_stream", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("rows", type=int, nargs="?", default=40_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    rows = args.rows
    print(f"machine: {machine()}")
    print(FAKES)
    source, blacklist = ObjectRef("b", "scored/c1.bench.txt"), ObjectRef("b", "blacklist")
    scored = ("\n".join(scored_lines(rows)) + "\n").encode()
    blacklisted = ("\n".join(blacklist_lines(40)) + "\n").encode()
    results: list[tuple[float, float, float, int, int, int, float, int]] = []
    with EmbeddedEmulator(shard_limits=True) as emulator:
        kinesis = ClientFactory(ClientOptions(endpoint_url=emulator.endpoint_url)).client(
            "kinesis", max_attempts=1
        )
        for run in range(args.runs):
            name = f"paced-{run}"
            kinesis.create_stream(StreamName=name, ShardCount=SHARDS)
            kinesis.get_waiter("stream_exists").wait(StreamName=name)
            pacer = ShardPacer(partial(ShardMap.from_client, kinesis, name), headroom=0.95)
            stream = KinesisRecordStream(kinesis, name, backoff=Backoff(), pacer=pacer)
            # A fresh store each run: the file's done marker would make a second run a no-op.
            store = InMemoryObjectStore({source: scored, blacklist: blacklisted})
            kinesis_put_path.enable_shard_limits()
            before, started = cpu_snapshot(), time.perf_counter()
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
            cpu = cpu_snapshot().total - before.total
            assert not counts.already_processed and counts.rows_out > 0, counts
            limit = counts.rows_out / (SHARDS * 1_000)
            results.append(
                (
                    wall,
                    limit,
                    cpu / counts.rows_out * 1e6,
                    counts.rows_out,
                    kinesis_put_path.throttled_entries,
                    counts.stream_calls,
                    pacer.waited_seconds,
                    counts.stream_retries,
                )
            )
            kinesis_put_path.disable_shard_limits()
    out = results[0][3]
    print(f"{rows:,} rows, {out:,} records on {SHARDS} shards; median of {args.runs} (low-high)")
    print("| wall s | shards' limit s (baseline) | vs limit | throttled entries | "
          "CPU µs/record | calls | retries | paced waits s |")  # fmt: skip
    print("|--:|--:|--:|--:|--:|--:|--:|--:|")
    print(
        f"| {spread([r[0] for r in results]).show(1)} | {results[0][1]:.1f} "
        f"| {spread([100 * (r[0] / r[1] - 1) for r in results]).show(1)} % "
        f"| {spread([float(r[4]) for r in results]).show(0)} "
        f"| {spread([r[2] for r in results]).show(1)} | {results[0][5]:,} "
        f"| {max(r[7] for r in results):,} | {spread([r[6] for r in results]).show(1)} |"
    )
    print(f"machine after: {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
