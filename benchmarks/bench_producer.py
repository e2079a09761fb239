"""The Kinesis producer in one process against an endpoint answering PutRecords in 30 ms (real
Kinesis answers in 20-50 ms): records/s and CPU µs/record with 1 (serial), 4 and 8 calls in
flight, for botocore's request (the baseline) and the lean one (adapters/aws/kinesis_lean.py),
in the same run. Targets: issue 6, >= 4x the serial rate at <= 15 % more CPU a record; issue
21, less CPU a record on the put path.

The endpoint is a small HTTP server speaking enough of Kinesis' JSON PutRecords (every entry
succeeds) in a process of its own; the producer's CPU is its process tree's
(benchmarks/measure.py), the server's apart. Medians of the runs, with the range.

Then what KPL-style aggregation (the aws-kinesis-agg record format, which every consumer here
de-aggregates: streams/kinesis_records.py) would do to the producer's CPU: the request bodies
for the same records built as plain entries (the lean request's body) and as aggregates of
~1 MiB (a hand-written protobuf encoder, and aws-kinesis-agg's own RecordAggregator), in
process, CPU µs/record, medians of the runs with the range.

    python -m benchmarks.bench_producer [records] [runs]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import statistics
import sys
import time
from base64 import b64encode
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import orjson
from botocore.config import Config

from adapters.aws.kinesis import KinesisRecordStream
from adapters.aws.kinesis_lean import LeanPutRecords
from benchmarks.machine import machine
from benchmarks.measure import cpu_snapshot, spread, tree_cpu_seconds
from domain.backoff import Backoff
from domain.models import StreamRecord

LATENCY_SECONDS = 0.030


class _PutRecords(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        count = len(json.loads(body)["Records"])
        time.sleep(LATENCY_SECONDS)
        answer = json.dumps(
            {
                "FailedRecordCount": 0,
                "Records": [{"SequenceNumber": "1", "ShardId": "shardId-000000000000"}] * count,
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        return None


def _serve(port_out: Any) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PutRecords)
    port_out.send(server.server_address[1])
    server.serve_forever()


def records(count: int) -> list[StreamRecord]:
    # ~450 B, like a scored fan's record.
    return [
        StreamRecord(f"gu{i:09d}", (b'{"fan":%d,' % i).ljust(440, b"x") + b"}")
        for i in range(count)
    ]


REQUESTS = ("botocore", "lean")


KPL_MAGIC = b"\xf3\x89\x9a\xc2"
AGGREGATE_BYTES = 1_000_000  # the KPL's default: an aggregate stays under the 1 MiB record limit


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def kpl_aggregates(data: list[StreamRecord]) -> list[tuple[str, bytes]]:
    """(partition key, aggregate) of ~AGGREGATE_BYTES each: AggregatedRecord with the keys'
    table (field 1) and the records (field 3: key index 1, data 3), magic, MD5 (the format
    streams/kinesis_records.py reads). The aggregate's key is its first record's."""
    out: list[tuple[str, bytes]] = []
    keys: list[bytes] = []
    body: list[bytes] = []
    size = 0
    for record in data:
        key = record.partition_key.encode()
        entry = b"\x08" + _varint(len(keys)) + b"\x1a" + _varint(len(record.data)) + record.data
        keys.append(b"\x0a" + _varint(len(key)) + key)
        body.append(b"\x1a" + _varint(len(entry)) + entry)
        size += len(keys[-1]) + len(body[-1])
        if size >= AGGREGATE_BYTES:
            message = b"".join(keys) + b"".join(body)
            out.append((data[0].partition_key, KPL_MAGIC + message + hashlib.md5(message).digest()))
            keys, body, size = [], [], 0
    if keys:
        message = b"".join(keys) + b"".join(body)
        out.append((data[0].partition_key, KPL_MAGIC + message + hashlib.md5(message).digest()))
    return out


def library_aggregates(data: list[StreamRecord]) -> list[tuple[str, bytes]]:
    from aws_kinesis_agg.aggregator import RecordAggregator

    aggregator = RecordAggregator(max_size=AGGREGATE_BYTES)
    out: list[tuple[str, bytes]] = []
    for record in data:
        done = aggregator.add_user_record(record.partition_key, record.data)
        if done is not None:
            key, _, blob = done.get_contents()
            out.append((key, blob))
    last = aggregator.clear_and_get()
    if last is not None:
        key, _, blob = last.get_contents()
        out.append((key, blob))
    return out


def _bodies(entries: list[tuple[str, bytes]]) -> int:
    """The lean request's bodies for these entries (500 entries / 5 MiB a call, roughly)."""
    size = 0
    step = 500 if len(entries) > 1_000 else 5
    for start in range(0, len(entries), step):
        chunk = entries[start : start + step]
        size += len(
            orjson.dumps(
                {
                    "Records": [
                        {"Data": b64encode(d).decode("ascii"), "PartitionKey": k} for k, d in chunk
                    ],
                    "StreamName": "bench",
                }
            )
        )
    return size


def aggregation_cost(data: list[StreamRecord], runs: int) -> None:
    from streams.kinesis_records import deaggregate

    sample = kpl_aggregates(data[:3])
    assert deaggregate(sample[0][1]) == [(r.partition_key, r.data) for r in data[:3]]
    ways: dict[str, Callable[[], int]] = {
        "plain entries (the lean request's body)": lambda: _bodies(
            [(r.partition_key, r.data) for r in data]
        ),
        "KPL aggregates, hand-written encoder + body": lambda: _bodies(kpl_aggregates(data)),
        "KPL aggregates, aws-kinesis-agg + body": lambda: _bodies(library_aggregates(data)),
    }
    samples: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(runs):
        for name, build in ways.items():
            cpu = time.process_time()
            build()
            samples[name].append((time.process_time() - cpu) / len(data) * 1e6)
    print("| request body | CPU µs/record (median, range) |")
    print("|---|---:|")
    for name, values in samples.items():
        print(f"| {name} | {spread(values).show(2)} |")


def run(
    endpoint: str, request: str, in_flight: int, data: list[StreamRecord], server_pid: int
) -> tuple[float, float, float]:
    """(wall s, producer CPU s, server CPU s) of one put_records of `data`."""
    client: Any = boto3.client(
        "kinesis",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, max_pool_connections=16),
    )
    if request == "lean":
        client = LeanPutRecords(client)
    stream = KinesisRecordStream(client, "bench", backoff=Backoff(), max_in_flight=in_flight)
    stream.put_records(data[:500])  # warm the connection pool and botocore's caches
    server = tree_cpu_seconds(server_pid)
    before, wall = cpu_snapshot(exclude=[server_pid]), time.perf_counter()
    outcome = stream.put_records(data)
    wall, after = time.perf_counter() - wall, cpu_snapshot(exclude=[server_pid])
    assert outcome.sent == len(data), outcome
    return wall, after.total - before.total, tree_cpu_seconds(server_pid) - server


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_producer", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("records", type=int, nargs="?", default=40_000)
    parser.add_argument("runs", type=int, nargs="?", default=3)
    args = parser.parse_args(argv)
    count, runs = args.records, args.runs
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(child,), daemon=True)
    server.start()
    endpoint = f"http://127.0.0.1:{parent.recv()}"
    data = records(count)
    print(f"machine: {machine()}")
    print(f"{count:,} records of ~450 B, endpoint answering in {LATENCY_SECONDS * 1000:.0f} ms")
    variants = [(request, n) for request in REQUESTS for n in (1, 4, 8)]
    results: dict[tuple[str, int], list[tuple[float, float, float]]] = {v: [] for v in variants}
    try:
        for _ in range(runs):  # alternate, so machine load hits every variant alike
            for request, in_flight in variants:
                results[request, in_flight].append(
                    run(endpoint, request, in_flight, data, server.pid or 0)
                )
    finally:
        print(f"load after: {os.getloadavg()[0]:.2f}")
        server.terminate()
    print(
        "| request | calls in flight | records/s | CPU µs/record (median, range) "
        "| server CPU µs/record | CPU vs botocore serial |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    base = 0.0
    for (request, in_flight), samples in results.items():
        rate = count / statistics.median(w for w, _, _ in samples)
        cpu = spread([c / count * 1e6 for _, c, _ in samples])
        server_us = statistics.median(s / count * 1e6 for _, _, s in samples)
        base = base or cpu.median
        print(
            f"| {request} | {in_flight} | {rate:,.0f} | {cpu.show()} | {server_us:.1f} "
            f"| {100 * (cpu.median / base - 1):+.0f} % |"
        )
    print()
    aggregation_cost(data, max(runs, 3))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
