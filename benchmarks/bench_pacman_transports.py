"""Where a Pacman call's CPU goes, client and server apart: POST /passwords against FakePacman
answering after 20 ms, for each pairing of client (httpx from threads, the JsonHttpClient the
issuer used before; aiohttp on one event loop, HttpCodeIssuer now) and server (the tests'
threaded LocalHttpServer; the asyncio AsyncHttpServer), at `--concurrency` calls in flight.

    python -m benchmarks.bench_pacman_transports [--calls 5000] [--concurrency 64]

The server runs in a process of its own and reports its CPU seconds and requests served
before and after each run, so each side's CPU per call is its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from benchmarks.machine import machine

WARM = 100


def serve(kind: str, delay: float) -> None:
    from tests.support.async_http_server import AsyncHttpServer
    from tests.support.fake_code_services import FakePacman
    from tests.support.http_server import LocalHttpServer

    # Every request is answered by FakePacman (the threaded server's delay sleeps a thread; the
    # asyncio one's awaits), so its count is the requests served.
    if kind == "threaded":
        server = LocalHttpServer()
        pacman = FakePacman(server, delay=delay, keep=False)
        server.start()
        port, stop = server.port, server.stop
    else:
        pacman = FakePacman(keep=False)
        fast = AsyncHttpServer({("POST", "/passwords"): pacman.answer}, delay=delay).start()
        port, stop = fast.port, fast.stop
    print(port, flush=True)
    for _line in sys.stdin:
        print(json.dumps({"cpu": time.process_time(), "served": pacman.count}), flush=True)
    stop()


def run_httpx(url: str, calls: int, concurrency: int) -> None:
    from adapters.http.client import JsonHttpClient

    body = _body()
    client = JsonHttpClient("pacman", url, max_connections=concurrency, read_timeout=30.0)

    def one(i: int) -> None:
        client.post("/passwords", {**body, "globalUserId": f"g{i}"}).unwrap()

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(calls)))
    client.close()


def run_aiohttp(url: str, calls: int, concurrency: int) -> None:
    from adapters.http.async_client import AsyncJsonHttpClient
    from adapters.http.codes import HttpCodeIssuer
    from domain.codes import CodeRequest

    client = AsyncJsonHttpClient("pacman", url, max_connections=concurrency, read_timeout=30.0)
    issuer = HttpCodeIssuer(client, concurrency=concurrency)
    begin, end = datetime(2026, 7, 3, 18, tzinfo=UTC), datetime(2027, 7, 4, 18, tzinfo=UTC)
    for start in range(0, calls, 1_000):
        chunk = range(start, min(calls, start + 1_000))
        requests = [CodeRequest("p", "vf", begin, end, f"g{i}") for i in chunk]
        assert all(r.unwrap() for r in issuer.issue_many(requests))
    issuer.close()


def _figures(server: subprocess.Popen[str]) -> dict[str, float]:
    """The server process's CPU seconds and requests served so far."""
    assert server.stdin is not None and server.stdout is not None
    server.stdin.write("?\n")
    server.stdin.flush()
    answer: dict[str, float] = json.loads(server.stdout.readline())
    return answer


def _body() -> dict[str, str]:
    return {"productId": "p", "source": "vf", "beginDate": "2026-07-03T18:00:00.000Z",
            "endDate": "2027-07-04T18:00:00.000Z"}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--delay", type=float, default=0.02)
    parser.add_argument("--serve", nargs=2)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], float(args.serve[1]))
        return 0
    print(machine())
    print(f"Pacman answering in {args.delay * 1000:.0f} ms; {args.concurrency} calls in flight")
    print("| client | server | calls | calls/s | client CPU µs/call | server CPU µs/request |")
    print("|---|---|--:|--:|--:|--:|")
    clients = {"httpx, threads": run_httpx, "aiohttp, one event loop": run_aiohttp}
    for server_kind in ("threaded", "asyncio"):
        command = [sys.executable, "-m", "benchmarks.bench_pacman_transports", "--serve"]
        server = subprocess.Popen(
            [*command, server_kind, str(args.delay)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert server.stdin is not None and server.stdout is not None
        url = f"http://127.0.0.1:{server.stdout.readline().strip()}"

        try:
            for name, run in clients.items():
                run(url, WARM, args.concurrency)
                before = _figures(server)
                wall, cpu = time.perf_counter(), time.process_time()
                run(url, args.calls, args.concurrency)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                after = _figures(server)
                served = max(1, int(after["served"] - before["served"]))
                print(
                    f"| {name} | {server_kind} | {args.calls:,} | {args.calls / wall:,.0f} "
                    f"| {cpu / args.calls * 1e6:.0f} "
                    f"| {(after['cpu'] - before['cpu']) / served * 1e6:.0f} |",
                    flush=True,
                )
        finally:
            server.stdin.close()
            server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
