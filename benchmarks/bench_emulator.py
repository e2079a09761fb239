"""Embedded emulator: Kinesis puts through KinesisRecordStream (the lean request, 8 calls in
flight) into one shard: the emulator as it is ("fixed": linear shard, one-loop store), with
moto's own store behind the same fixes ("moto-store", the baseline of issue 21's 30K goal) and
stock moto ("stock", quadratic; off unless --stock-records).

Each variant runs the emulator in its own process (the fixes patch moto process-wide, and the
producer should not share a GIL with the server), on a one-shard stream (the worst case: the
stock shard's cost grows with the records already in that shard). Records are ~300 B JSON.
Records/s and the emulator's CPU µs/record (its process tree, benchmarks/measure.py) with the
producer's apart: medians of --runs runs with the range, variants alternating.

    python -m benchmarks.bench_emulator                       # 100,000 a run
    python -m benchmarks.bench_emulator --stock-records 25000,50000
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from collections.abc import Iterator

from adapters.aws.clients import ClientFactory, ClientOptions
from adapters.aws.kinesis import KinesisRecordStream
from adapters.aws.kinesis_lean import LeanPutRecords
from benchmarks.machine import machine
from benchmarks.measure import cpu_snapshot, spread, tree_cpu_seconds
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


def one_run(emulator: EmulatorProcess, count: int) -> tuple[float, float, float]:
    """(seconds, emulator CPU s, producer CPU s) of putting `count` records into a new stream."""
    kinesis = ClientFactory(
        ClientOptions(endpoint_url=emulator.endpoint_url, read_timeout=300.0)
    ).client("kinesis", max_attempts=1)
    name = f"bench-{uuid.uuid4().hex[:8]}"
    kinesis.create_stream(StreamName=name, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})
    stream = KinesisRecordStream(LeanPutRecords(kinesis), name, backoff=Backoff())
    data = list(records(count))
    server_cpu, own = tree_cpu_seconds(emulator.pid), cpu_snapshot(exclude=[emulator.pid])
    started = time.perf_counter()
    outcome = stream.put_records(data)
    elapsed = time.perf_counter() - started
    server_cpu = tree_cpu_seconds(emulator.pid) - server_cpu
    own_cpu = cpu_snapshot(exclude=[emulator.pid]).total - own.total
    if outcome.sent != count:
        raise SystemExit(f"only {outcome.sent} of {count} records sent: {outcome}")
    kinesis.delete_stream(StreamName=name)
    return elapsed, server_cpu, own_cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_emulator",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--records", default="100000", help="counts for fixed and moto-store")
    parser.add_argument("--stock-records", default="", help="counts with stock moto (slow)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    fixed_counts = [int(c) for c in args.records.split(",") if c]
    stock_counts = [int(c) for c in args.stock_records.split(",") if c]
    print(f"machine: {machine()}; record size ~{len(next(records(1)).data)} B; 1 shard")
    print(
        "| variant | records | records/s (median, range) | emulator CPU µs/record "
        "| producer CPU µs/record |"
    )
    print("|---|---:|---:|---:|---:|")
    # Every emulator stays up and the variants' runs alternate, so load from anything else on
    # the machine hits all alike and the ratios stay meaningful.
    with (
        EmulatorProcess() as fixed,
        EmulatorProcess(moto_put_store=True) as moto_store,
        EmulatorProcess(kinesis_fix=False) as stock,
    ):
        for count in sorted(set(fixed_counts) | set(stock_counts)):
            variants: list[tuple[str, EmulatorProcess]] = []
            if count in fixed_counts:
                variants += [("fixed", fixed), ("moto-store", moto_store)]
            if count in stock_counts:
                variants.append(("stock", stock))
            timings: dict[str, list[tuple[float, float, float]]] = {v: [] for v, _ in variants}
            for _ in range(args.runs):
                for label, emulator in variants:
                    timings[label].append(one_run(emulator, count))
            for label, _ in variants:
                runs = timings[label]
                rate = spread([count / seconds for seconds, _, _ in runs])
                server = spread([cpu / count * 1e6 for _, cpu, _ in runs])
                own = spread([cpu / count * 1e6 for _, _, cpu in runs])
                print(
                    f"| {label} | {count:,} | {rate.show(0)} | {server.show()} | {own.show()} |",
                    flush=True,
                )
    print(f"load after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
