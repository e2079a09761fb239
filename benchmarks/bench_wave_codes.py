"""generate_sms_wave_codes against a local Pacman answering in 20 ms: codes/s, client CPU per
code and peak memory, for each Pacman transport in the same run: `lean` (LeanJsonHttpClient,
httptools under an asyncio Protocol, the default) against `aiohttp` (AsyncJsonHttpClient, the
fallback and the baseline), `--concurrency` calls in flight.

    python -m benchmarks.bench_wave_codes [--fans 20000] [--transports aiohttp,lean]
        [--concurrency 100] [--sweep ""] [--delay 0.02] [--runs 3]

What is a fake here (printed too): Pacman is tests/support/fake_code_services.FakePacman, served
by the asyncio server of tests/support/async_http_server.py in a process of its own (its CPU is
read from /proc and reported apart, per request); the run's lease is an in-memory one
(tests/support/memory_leases); the issued-code ledger keeps nothing (in production it is
DynamoDB, measured apart in benchmarks/README.md); the wave CSV is generated as the worker reads
it and the new CSV is counted, not kept. What is measured is the issuing path's.

CPU: benchmarks.measure.cpu_snapshot around each run's child process (a fresh interpreter, so
its peak RSS is its own), the fake Pacman left out: "tree" is all of it (start-up and imports
included), "in run" the child's own CPU during generate_sms_wave_codes. Runs of the variants
are interleaved; medians of `--runs` with the range; the load average beside each row.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from benchmarks.machine import machine
from benchmarks.measure import cpu_snapshot, spread, tree_cpu_seconds

CHUNK = 1 << 16


class StreamingWaveStore:
    """An ObjectStore whose wave CSV is generated on read and whose writes are counted only."""

    def __init__(self, fans: int) -> None:
        self.fans = fans
        self.small: dict[Any, bytes] = {}
        self.written = 0

    def iter_chunks(self, ref: Any, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        from tests.support.wave_files import HEADER, fan, wave_csv

        if not ref.key.startswith("smsWaves/csv/"):
            raise KeyError(ref)
        yield wave_csv([], header=HEADER)
        batch = 2_000
        for start in range(0, self.fans, batch):
            rows = [fan(i) for i in range(start, min(self.fans, start + batch))]
            yield wave_csv(rows).split(b"\r\n", 1)[1]

    def iter_lines(self, ref: Any) -> Iterator[bytes]:
        raise NotImplementedError("the wave CSV is read in chunks")

    def list_objects(self, bucket: str, prefix: str) -> Iterator[Any]:
        return iter(())

    def read_bytes(self, ref: Any) -> bytes:
        from domain.models import ObjectNotFound

        if ref not in self.small:
            raise ObjectNotFound(ref)
        return self.small[ref]

    def head(self, ref: Any) -> Any:
        from domain.models import ObjectInfo

        if ref.key.startswith("smsWaves/csv/"):  # the generated wave: its size is not known
            return ObjectInfo(ref, 0)
        return ObjectInfo(ref, len(self.small[ref])) if ref in self.small else None

    def put_bytes(self, ref: Any, data: bytes, content_type: str = "") -> None:
        self.small[ref] = data

    @contextmanager
    def open_writer(self, ref: Any, content_type: str = "") -> Iterator[Any]:
        store = self

        class Counter:
            def write(self, data: bytes | memoryview) -> int:
                store.written += len(data)
                return len(data)

        yield Counter()

    def copy(self, source: Any, target: Any) -> None:
        pass

    def delete(self, ref: Any) -> None:
        self.small.pop(ref, None)


class NullLedger:
    def recall(self, wave: str, global_user_ids: Any) -> Mapping[str, Any]:
        return {}

    def record(self, wave: str, issued: Mapping[str, Any]) -> Mapping[str, Any]:
        return issued


def serve(delay: float) -> None:
    """Pacman on the asyncio server; each line read on stdin is answered with this process's
    CPU seconds and requests served so far (the parent's per-run server figures)."""
    from tests.support.async_http_server import AsyncHttpServer
    from tests.support.fake_code_services import FakePacman

    pacman = FakePacman(keep=False)
    with AsyncHttpServer({("POST", "/passwords"): pacman.answer}, delay=delay) as server:
        print(server.port, flush=True)
        for _line in sys.stdin:  # until the parent closes our stdin
            print(json.dumps({"cpu": time.process_time(), "served": server.served}), flush=True)


FAKES = (
    "fakes: Pacman is FakePacman (tests.support, its own process, CPU apart); the lease is "
    "in memory (tests.support.memory_leases); the ledger keeps nothing; the wave CSV is "
    "generated on read and its output counted (production: S3, DynamoDB)"
)


def child(url: str, fans: int, concurrency: int, transport: str) -> None:
    from adapters.clock import SystemClock
    from adapters.http.async_json import AsyncJsonClient, LeanJsonHttpClient
    from adapters.http.codes import HttpCodeIssuer
    from domain.workers.generate_sms_wave_codes import GenerateInput, generate_sms_wave_codes
    from tests.support.memory_leases import MemoryLeases

    client_class: type[AsyncJsonClient] = LeanJsonHttpClient
    if transport == "aiohttp":
        from adapters.http.async_client import AsyncJsonHttpClient

        client_class = AsyncJsonHttpClient
    config = {"generateOfferCode": True, "notifyDate": "2026-07-04T18:00:00Z",
              "productId": "p", "source": "vf"}  # fmt: skip
    request = GenerateInput.parse({"waveFilePrefix": "bench_w", "config": config}).unwrap()
    client = client_class("pacman", url, max_connections=concurrency, read_timeout=30.0)
    issuer = HttpCodeIssuer(client, concurrency=concurrency)
    store = StreamingWaveStore(fans)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu, wall = time.process_time(), time.perf_counter()
    result = generate_sms_wave_codes(
        request,
        store=store,
        issuer=issuer,
        ledger=NullLedger(),
        leases=MemoryLeases(SystemClock()),
        bucket="b",
    ).unwrap()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    issuer.close()
    assert result.rows_out == fans, result
    print(json.dumps({
        "fans": fans, "concurrency": concurrency, "seconds": wall, "cpu": cpu,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_mb": rss_before / 1024, "csv_bytes": store.written,
    }))  # fmt: skip


def measure(url: str, fans: int, concurrency: int, transport: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.bench_wave_codes", "--child", url]
    out = subprocess.run(
        [*command, str(fans), str(concurrency), transport],
        check=True,
        capture_output=True,
        text=True,
    )
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fans", default="20000", help="wave sizes, comma-separated")
    parser.add_argument("--runs", type=int, default=3, help="runs per variant (median, range)")
    parser.add_argument("--transports", default="aiohttp,lean", help="the first is the baseline")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--sweep", default="", help="other concurrencies, at the first wave size")
    parser.add_argument("--delay", type=float, default=0.02, help="Pacman's answer time, s")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.delay)
        return 0
    if args.child:
        url, fans, concurrency, transport = args.child
        child(url, int(fans), int(concurrency), transport)
        return 0
    print(machine())
    print(FAKES)
    serve_command = [sys.executable, "-m", "benchmarks.bench_wave_codes", "--serve"]
    pacman = subprocess.Popen(
        [*serve_command, "--delay", str(args.delay)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert pacman.stdout is not None and pacman.stdin is not None
    url = f"http://127.0.0.1:{pacman.stdout.readline().strip()}"

    def served() -> int:
        assert pacman.stdin is not None and pacman.stdout is not None
        pacman.stdin.write("?\n")
        pacman.stdin.flush()
        count: int = json.loads(pacman.stdout.readline())["served"]
        return count

    try:
        transports = args.transports.split(",")
        sizes = [int(n) for n in args.fans.split(",")]
        sweep = [int(c) for c in args.sweep.split(",") if c]
        variants = [(t, n, args.concurrency) for n in sizes for t in transports]
        variants += [(t, sizes[0], c) for c in sweep for t in transports]
        figures: dict[tuple[str, int, int], list[dict[str, float]]] = {v: [] for v in variants}
        for _ in range(args.runs):  # interleaved: a load change hits every variant alike
            for variant in variants:
                transport, fans, concurrency = variant
                server_before, count_before = tree_cpu_seconds(pacman.pid), served()
                before = cpu_snapshot(exclude=[pacman.pid])
                f = measure(url, fans, concurrency, transport)
                after = cpu_snapshot(exclude=[pacman.pid])
                requests = served() - count_before
                server_cpu = tree_cpu_seconds(pacman.pid) - server_before
                figures[variant].append({
                    "rate": fans / f["seconds"],
                    "tree_us": (after.total - before.total) / fans * 1e6,
                    "run_us": f["cpu"] / fans * 1e6,
                    "server_us": server_cpu / max(1, requests) * 1e6,
                    "rss": f["rss_mb"], "load": os.getloadavg()[0],
                })  # fmt: skip
        print(f"Pacman answering in {args.delay * 1000:.0f} ms; chunks of 1,000 rows")
        print(
            "| transport | fans | in flight | codes/s | x baseline | client CPU µs/code, tree "
            "| in run | fake Pacman CPU µs/request | peak RSS MB | load (1 min) |"
        )
        print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        baseline: dict[tuple[int, int], float] = {}
        for variant in variants:
            transport, fans, concurrency = variant
            runs = figures[variant]
            rate = spread([r["rate"] for r in runs])
            base = baseline.setdefault((fans, concurrency), rate.median)
            loads = [r["load"] for r in runs]
            print(
                f"| {transport} | {fans:,} | {concurrency} | {rate.show(0)} "
                f"| {rate.median / base:.2f} | {spread([r['tree_us'] for r in runs]).show(0)} "
                f"| {spread([r['run_us'] for r in runs]).show(0)} "
                f"| {spread([r['server_us'] for r in runs]).show(0)} "
                f"| {max(r['rss'] for r in runs):.0f} | {min(loads):.1f}-{max(loads):.1f} |",
                flush=True,
            )
    finally:
        pacman.stdin.close()
        pacman.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
