"""save_campaign_data through the local shard poller against the embedded emulator.

Records (the realistic mix of benchmarks/stream_records.py) are put on a 2-shard stream of an
emulator running in its own process; then the poller (GetRecords, the worker, the Avro lake on
S3, checkpoints in a file) drains the stream. Reports records/s of the drain, and the same run
with a worker that does nothing, so the share of the emulator's GetRecords is visible.

    python -m benchmarks.bench_poller [--records 50000]
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
from benchmarks.stream_records import record_data
from domain.streaming import BatchCounts, IncomingRecord
from entrypoints import registry
from entrypoints.settings import Settings
from local.emulator import EmulatorProcess
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


def _drain(factory: ClientFactory, stream: str, worker: Any) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as scratch:
        poller = ShardPoller(
            factory.client("kinesis"),
            stream,
            worker,
            FileCheckpoints(Path(scratch) / "checkpoints.json"),
            limit=1000,
        )
        started = time.perf_counter()
        polled = poller.run(until_caught_up=True)
        return time.perf_counter() - started, polled.counts.received


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_poller")
    parser.add_argument("--records", type=int, default=50_000)
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    with EmulatorProcess() as emulator:
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
        for label, worker in (
            ("GetRecords only (worker does nothing)", NothingWorker()),
            ("save_campaign_data -> S3 Avro lake", None),
        ):
            stream = f"bench-{worker.name if worker else 'lake'}"
            _fill(kinesis, stream, args.records)
            real = worker or registry.stream_worker("save_campaign_data", settings)
            seconds, received = _drain(factory, stream, real)
            print(
                f"{label:40} {received:>8,} records {seconds:7.1f} s {received / seconds:9,.0f}/s"
            )


if __name__ == "__main__":
    main()
