"""Where a Pacman call's CPU goes, client and server apart: POST /passwords against FakePacman
answering after 20 ms, for each pairing of client (httpx from threads, the JsonHttpClient the
issuer used before; aiohttp on one event loop, HttpCodeIssuer now) and server (the tests'
threaded LocalHttpServer; the asyncio AsyncHttpServer), at `--concurrency` calls in flight.

    python -m benchmarks.bench_pacman_transports [--calls 3000] [--concurrency 64] [--runs 3]

The server runs in a process of its own and reports the requests served before and after each
run; its CPU is read from /proc (benchmarks.measure.tree_cpu_seconds) and the client's is this
process tree's with the server left out, so each side's CPU per call is its own. Each pairing
runs `--runs` times, interleaved; medians with the spread. Baseline: httpx from threads (the
client the issuer used before) against the threaded server (the tests' before).
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
from benchmarks.measure import cpu_snapshot, spread, tree_cpu_seconds

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_pacman_transports", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--calls", type=int, default=3_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--delay", type=float, default=0.02)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve[0], float(args.serve[1]))
        return 0
    print(f"machine: {machine()}")
    print(f"Pacman answering in {args.delay * 1000:.0f} ms; {args.concurrency} calls in flight")
    clients = {"httpx, threads": run_httpx, "aiohttp, one event loop": run_aiohttp}
    servers: dict[str, subprocess.Popen[str]] = {}
    urls: dict[str, str] = {}
    results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    command = [sys.executable, "-m", "benchmarks.bench_pacman_transports", "--serve"]
    try:
        for kind in ("threaded", "asyncio"):
            server = subprocess.Popen(
                [*command, kind, str(args.delay)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            servers[kind] = server
            assert server.stdout is not None
            urls[kind] = f"http://127.0.0.1:{server.stdout.readline().strip()}"
        pids = [s.pid for s in servers.values()]
        for run in clients.values():
            for kind in servers:
                run(urls[kind], WARM, args.concurrency)
        for _ in range(args.runs):
            for kind, server in servers.items():
                for name, run in clients.items():
                    before, served = _figures(server), tree_cpu_seconds(server.pid)
                    snapshot, wall = cpu_snapshot(exclude=pids), time.perf_counter()
                    run(urls[kind], args.calls, args.concurrency)
                    wall = time.perf_counter() - wall
                    client = cpu_snapshot(exclude=pids).total - snapshot.total
                    server_cpu = tree_cpu_seconds(server.pid) - served
                    count = max(1, int(_figures(server)["served"] - before["served"]))
                    results.setdefault((name, kind), []).append(
                        (args.calls / wall, client / args.calls * 1e6, server_cpu / count * 1e6)
                    )
    finally:
        for server in servers.values():
            assert server.stdin is not None
            server.stdin.close()
            server.wait(timeout=30)
    print(f"median of {args.runs} runs (low-high)")
    print("| client | server | calls | calls/s | client CPU µs/call | server CPU µs/request |")
    print("|---|---|--:|--:|--:|--:|")
    for (name, kind), runs in results.items():
        label = f"baseline: {name}" if (name, kind) == ("httpx, threads", "threaded") else name
        print(
            f"| {label} | {kind} | {args.calls:,} | {spread([r[0] for r in runs]).show(0)} "
            f"| {spread([r[1] for r in runs]).show(0)} | {spread([r[2] for r in runs]).show(0)} |"
        )
    print(f"machine after: {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
