"""save_campaign_data through the local shard poller against the embedded emulator.

Records (the realistic mix of benchmarks/stream_records.py) are put on a 2-shard stream of an
emulator running in its own process; then the poller (GetRecords, the worker, the Avro lake on
S3, checkpoints in a file) drains the stream. Reports records/s of the drain and CPU µs per
record of this process tree and, apart, of the emulator; and the same run with a worker that
does nothing (the baseline: GetRecords and checkpoints alone). Each drain runs `--runs` times on
a fresh stream (filled before the clock), interleaved; medians with the spread.

    python -m benchmarks.bench_poller [--records 20000] [--runs 3]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adapters.aws.clients import ClientFactory, ClientOptions
from benchmarks.machine import machine
from benchmarks.measure import cpu_snapshot, spread, tree_cpu_seconds
from benchmarks.stream_records import record_data
from domain.streaming import BatchCounts, IncomingRecord
from entrypoints import registry
from entrypoints.settings import Settings
from streams.poller import FileCheckpoints, ShardPoller


class NothingWorker:
    name = "nothing"

    def __call__(self, batch: Sequence[IncomingRecord]) -> BatchCounts:
        return BatchCounts(received=len(batch), handled=len(batch))


def _fill(kinesis: Any, stream: str, records: int) -> None:
    kinesis.create_stream(StreamName=stream, ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName=stream)
    data = itertools.islice(record_data(), records)
    while batch := list(itertools.islice(data, 500)):
        entries = [{"Data": d, "PartitionKey": str(i)} for i, d in enumerate(batch)]
        kinesis.put_records(StreamName=stream, Records=entries)


def _drain(factory: ClientFactory, stream: str, worker: Any) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        poller = ShardPoller(
            factory.client("kinesis"),
            stream,
            worker,
            FileCheckpoints(Path(scratch) / "checkpoints.json"),
            limit=1000,
        )
        return poller.run(until_caught_up=True).counts.received


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_poller", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    from local.emulator import EmulatorProcess

    labels = ("baseline: GetRecords only (worker does nothing)", "save_campaign_data -> S3 lake")
    rows: dict[str, list[tuple[float, float, float]]] = {label: [] for label in labels}
    # Every snapshot inside the block: once reaped, the emulator's CPU would join
    # RUSAGE_CHILDREN and count as the benchmark's.
    with EmulatorProcess() as emulator:
        server = emulator.pid
        settings = Settings.from_env(
            {
                "AWS_ENDPOINT_URL": emulator.endpoint_url,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "CAMPAIGN_DATA_BUCKET": "bench-lake",
                "DEAD_LETTER_QUEUE": "bench-dlq",
            }
        )
        factory = ClientFactory(ClientOptions(endpoint_url=emulator.endpoint_url))
        factory.client("s3").create_bucket(Bucket="bench-lake")
        factory.client("sqs").create_queue(QueueName="bench-dlq")
        kinesis = factory.client("kinesis")
        lake = registry.stream_worker("save_campaign_data", settings)
        for run in range(args.runs):
            for label, worker in zip(labels, (NothingWorker(), lake), strict=True):
                stream = f"bench-{run}-{'nothing' if isinstance(worker, NothingWorker) else 'lake'}"
                _fill(kinesis, stream, args.records)
                before, served = cpu_snapshot(exclude=[server]), tree_cpu_seconds(server)
                started = time.perf_counter()
                received = _drain(factory, stream, worker)
                wall = time.perf_counter() - started
                client = cpu_snapshot(exclude=[server]).total - before.total
                emulated = tree_cpu_seconds(server) - served
                assert received == args.records, (received, args.records)
                rows[label].append(
                    (received / wall, client / received * 1e6, emulated / received * 1e6)
                )
                kinesis.delete_stream(StreamName=stream)
    print(f"{args.records:,} records, 2 shards; median of {args.runs} runs (low-high)")
    print("| drain | records/s | poller CPU µs/record | emulator CPU µs/record |")
    print("|---|--:|--:|--:|")
    for label, runs in rows.items():
        print(
            f"| {label} | {spread([r[0] for r in runs]).show(0)} "
            f"| {spread([r[1] for r in runs]).show(0)} | {spread([r[2] for r in runs]).show(0)} |"
        )
    print(f"machine after: {machine()}")


if __name__ == "__main__":
    main()
