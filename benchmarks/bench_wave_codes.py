"""generate_sms_wave_codes against a local Pacman answering in 20 ms: codes/s, CPU and peak
memory, concurrent issuing (HttpCodeIssuer, `--concurrency` calls in flight) against
one-at-a-time issuing in the same run; and memory as the wave doubles.

    python -m benchmarks.bench_wave_codes [--fans 50000,100000] [--serial-fans 500]
        [--concurrency 100] [--sweep 32,64] [--delay 0.02] [--runs 3]

Pacman (tests/support/fake_code_services.FakePacman, the tests' fake, served by the asyncio
server of tests/support/async_http_server.py: ~100 µs of CPU per request against ~240 for the
threaded test server) runs in a process of its own, so its work does not share this process's
GIL; its CPU per request is reported beside the client's. Each measured run is a fresh
child process, so its peak RSS (ru_maxrss) is its own. The wave is generated as the worker reads
it and the new CSV is counted, not kept (a streaming store, below): what is measured is the
worker's memory, not the test data's. The issued-code ledger is an in-process one that keeps
nothing (in production it is DynamoDB: TransactWriteItems of up to 100 conditional puts per
chunk, measured apart in benchmarks/README.md): the figure is the issuing path's.
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
from benchmarks.measure import spread

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


def child(url: str, fans: int, concurrency: int) -> None:
    from adapters.clock import SystemClock
    from adapters.http.async_client import AsyncJsonHttpClient
    from adapters.http.codes import HttpCodeIssuer
    from domain.workers.generate_sms_wave_codes import GenerateInput, generate_sms_wave_codes
    from tests.support.memory_leases import MemoryLeases

    config = {"generateOfferCode": True, "notifyDate": "2026-07-04T18:00:00Z",
              "productId": "p", "source": "vf"}  # fmt: skip
    request = GenerateInput.parse({"waveFilePrefix": "bench_w", "config": config}).unwrap()
    client = AsyncJsonHttpClient("pacman", url, max_connections=concurrency, read_timeout=30.0)
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


def measure(url: str, fans: int, concurrency: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.bench_wave_codes", "--child", url]
    out = subprocess.run(
        [*command, str(fans), str(concurrency)], check=True, capture_output=True, text=True
    )
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fans", default="50000,100000")
    parser.add_argument("--runs", type=int, default=3, help="runs per variant (median, range)")
    parser.add_argument("--serial-fans", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument(
        "--sweep", default="32,64", help="other concurrencies, at the first wave size"
    )
    parser.add_argument("--delay", type=float, default=0.02)
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--child", nargs=3)
    args = parser.parse_args()
    if args.serve:
        serve(args.delay)
        return 0
    if args.child:
        child(args.child[0], int(args.child[1]), int(args.child[2]))
        return 0
    print(machine())
    serve_command = [sys.executable, "-m", "benchmarks.bench_wave_codes", "--serve"]
    pacman = subprocess.Popen(
        [*serve_command, "--delay", str(args.delay)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert pacman.stdout is not None and pacman.stdin is not None
    url = f"http://127.0.0.1:{pacman.stdout.readline().strip()}"

    def server_figures() -> dict[str, Any]:
        assert pacman.stdin is not None and pacman.stdout is not None
        pacman.stdin.write("?\n")
        pacman.stdin.flush()
        figures: dict[str, Any] = json.loads(pacman.stdout.readline())
        return figures

    try:
        runs = [("one at a time", args.serial_fans, 1)]
        sizes = [int(n) for n in args.fans.split(",")]
        sweep = [int(c) for c in args.sweep.split(",") if c]
        runs += [(f"{c} in flight", sizes[0], c) for c in sweep]
        runs += [(f"{args.concurrency} in flight", n, args.concurrency) for n in sizes]
        print(f"Pacman answering in {args.delay * 1000:.0f} ms; chunks of 1,000 rows")
        print(
            "| variant | fans | codes/s | x one at a time | client CPU µs/code "
            "| server CPU µs/request | peak RSS MB (before run) | load |"
        )
        print("|---|--:|--:|--:|--:|--:|--:|--:|")
        baseline = None
        for name, fans, concurrency in runs:
            rates, client_us, server_us, rss, loads = [], [], [], [], []
            for _ in range(args.runs):
                before = server_figures()
                f = measure(url, fans, concurrency)
                after = server_figures()
                served = after["served"] - before["served"]
                rates.append(fans / f["seconds"])
                client_us.append(f["cpu"] / fans * 1e6)
                server_us.append((after["cpu"] - before["cpu"]) / max(1, served) * 1e6)
                rss.append(f"{f['rss_mb']:.0f} ({f['rss_before_mb']:.0f})")
                loads.append(os.getloadavg()[0])
            rate = spread(rates)
            baseline = baseline or rate.median
            print(
                f"| {name} | {fans:,} | {rate.show(0)} | {rate.median / baseline:.1f} "
                f"| {spread(client_us).show(0)} | {spread(server_us).show(0)} "
                f"| {max(rss)} | {min(loads):.1f}-{max(loads):.1f} |",
                flush=True,
            )
    finally:
        pacman.stdin.close()
        pacman.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
