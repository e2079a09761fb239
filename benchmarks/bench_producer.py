"""The Kinesis producer in one process against an endpoint answering PutRecords in 30 ms (real
Kinesis answers in 20-50 ms): records/s and CPU µs/record with 1 (serial), 4 and 8 calls in
flight, for botocore's request (the baseline) and the lean one (adapters/aws/kinesis_lean.py),
in the same run. Targets: issue 6, >= 4x the serial rate at <= 15 % more CPU a record; issue
21, less CPU a record on the put path.

The endpoint is a small HTTP server speaking enough of Kinesis' JSON PutRecords (every entry
succeeds) in a process of its own; the producer's CPU is its process tree's
(benchmarks/measure.py), the server's apart. Medians of the runs, with the range.

    python -m benchmarks.bench_producer [records] [runs]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
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
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
