"""Embedded emulator: Kinesis puts through KinesisRecordStream, with the linear fix and stock.

Each variant runs the emulator in its own process (the fix patches moto process-wide, and the
producer should not share a GIL with the server), on a one-shard stream (the worst case: the
stock shard's cost grows with the records already in that shard). Records are ~300 B JSON.
Prints medians of --runs runs and the per-record cost.

    python -m benchmarks.bench_emulator                       # 100,000 fixed; 25k/50k stock
    python -m benchmarks.bench_emulator --stock-records 25000,50000,100000
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from collections.abc import Iterator

from adapters.aws.clients import ClientFactory, ClientOptions
from adapters.aws.kinesis import KinesisRecordStream
from benchmarks.machine import machine
from domain.backoff import Backoff
from domain.models import StreamRecord
from local.emulator import EmulatorProcess


def records(count: int) -> Iterator[StreamRecord]:
    for i in range(count):
        fan = f"fan-{i:09d}"
        body = {
            "type": "scoring",
            "globalUserId": fan,
            "email": f"{fan}@example.com",
            "phone": "+14155550123",
            "score": 0.9,
            "band_score": 0.912345,
            "tags": ["unconfirmed_phone"],
            "dedupe_id": uuid.UUID(int=i).hex,
            "campaignId": "benchmark-campaign",
            "pad": "x" * 40,
        }
        yield StreamRecord(fan, json.dumps(body, separators=(",", ":")).encode())


def one_run(endpoint: str, count: int) -> float:
    kinesis = ClientFactory(ClientOptions(endpoint_url=endpoint, read_timeout=300.0)).client(
        "kinesis", max_attempts=1
    )
    name = f"bench-{uuid.uuid4().hex[:8]}"
    kinesis.create_stream(StreamName=name, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})
    stream = KinesisRecordStream(kinesis, name, backoff=Backoff())
    started = time.perf_counter()
    outcome = stream.put_records(records(count))
    elapsed = time.perf_counter() - started
    if outcome.sent != count:
        raise SystemExit(f"only {outcome.sent} of {count} records sent: {outcome}")
    kinesis.delete_stream(StreamName=name)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", default="25000,50000,100000", help="counts with the fix")
    parser.add_argument("--stock-records", default="25000,50000", help="counts with stock moto")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    fixed_counts = [int(c) for c in args.records.split(",") if c]
    stock_counts = [int(c) for c in args.stock_records.split(",") if c]
    print(f"machine: {machine()}; record size ~{len(next(records(1)).data)} B; 1 shard")
    print(f"{'variant':<8} {'records':>8} {'median s':>9} {'us/record':>10} {'records/s':>10}")
    # Both emulators stay up and the variants' runs alternate, so load from anything else on
    # the machine hits both alike and the ratio stays meaningful.
    with EmulatorProcess(kinesis_fix=True) as fixed, EmulatorProcess(kinesis_fix=False) as stock:
        for count in sorted(set(fixed_counts) | set(stock_counts)):
            variants = [("fixed", fixed.endpoint_url)] if count in fixed_counts else []
            if count in stock_counts:
                variants.append(("stock", stock.endpoint_url))
            timings: dict[str, list[float]] = {label: [] for label, _ in variants}
            for _ in range(args.runs):
                for label, endpoint in variants:
                    timings[label].append(one_run(endpoint, count))
            for label, _ in variants:
                seconds = statistics.median(timings[label])
                print(
                    f"{label:<8} {count:>8} {seconds:>9.2f} {seconds / count * 1e6:>10.1f} "
                    f"{count / seconds:>10.0f}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
