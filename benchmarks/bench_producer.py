"""The Kinesis producer in one process against an endpoint answering PutRecords in 30 ms (real
Kinesis answers in 20-50 ms): records/s and CPU µs/record with 1 (serial), 4 and 8 calls in
flight, in the same run. Target (issue 6): >= 4x the serial rate at <= 15 % more CPU a record.

The endpoint is a small HTTP server speaking enough of Kinesis' JSON PutRecords (every entry
succeeds) in a process of its own, so the producer's CPU time (time.process_time) is its own.

    python -m benchmarks.bench_producer [records] [runs]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
from botocore.config import Config

from adapters.aws.kinesis import KinesisRecordStream
from benchmarks.machine import machine
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


def run(endpoint: str, in_flight: int, data: list[StreamRecord]) -> tuple[float, float]:
    client = boto3.client(
        "kinesis",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, max_pool_connections=16),
    )
    stream = KinesisRecordStream(client, "bench", backoff=Backoff(), max_in_flight=in_flight)
    stream.put_records(data[:500])  # warm the connection pool and botocore's caches
    wall, cpu = time.perf_counter(), time.process_time()
    outcome = stream.put_records(data)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert outcome.sent == len(data), outcome
    return wall, cpu


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
    results: dict[int, list[tuple[float, float]]] = {1: [], 4: [], 8: []}
    try:
        for _ in range(runs):  # alternate, so machine load hits every variant alike
            for in_flight in results:
                results[in_flight].append(run(endpoint, in_flight, data))
    finally:
        server.terminate()
    serial_rate = serial_cpu = 0.0
    print("| calls in flight | records/s | CPU µs/record | rate vs serial | CPU vs serial |")
    print("|---:|---:|---:|---:|---:|")
    for in_flight, samples in results.items():
        wall = statistics.median(w for w, _ in samples)
        cpu = statistics.median(c for _, c in samples)
        rate, cpu_us = count / wall, cpu / count * 1e6
        if in_flight == 1:
            serial_rate, serial_cpu = rate, cpu_us
        print(
            f"| {in_flight} | {rate:,.0f} | {cpu_us:.1f} | {rate / serial_rate:.2f}x "
            f"| {100 * (cpu_us / serial_cpu - 1):+.0f} % |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
