"""Sending a wave: sms_wave_send against a local SMS server (the TM SMS contract) answering in
50 ms, in a process of its own (aiohttp; its CPU is not the sender's).

1. No rate limit, 200 in flight: sends/s and the sender's CPU µs per send (process time of this
   process / texts), with its RSS as the wave goes (after each `--fans`/5 rows).
2. A limit of 500 parts/s (1-part texts): the measured rate (texts whose call started in the
   first T whole seconds / T) against it.

The ledger is a counting one that keeps nothing (the sender's memory, not a fake's dict), the
email queue a no-op: what is measured is the sender, the pacer, the threads and the HTTP client.

Both runners in the same run (`--runners threads,asyncio`): ThreadTaskRunner with the TM
gateway's http.client per thread, AsyncTaskRunner with its aiohttp `send_async`.

    python -m benchmarks.bench_sms_send [--fans 20000] [--rated 5000] [--in-flight 200]
        [--runners threads,asyncio]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.machine import machine
from benchmarks.measure import cpu_snapshot, spread, tree_cpu_seconds


def serve(delay: float) -> None:
    from tests.support.async_http_server import AsyncHttpServer
    from tests.support.http_server import Request, Response

    def answer(request: Request) -> Response:
        return Response.json({"messageId": "tm"})

    with AsyncHttpServer({("POST", "/sms"): answer}, delay=delay) as server:
        print(server.url, flush=True)
        sys.stdin.read()  # until the benchmark closes it


class NullLedger:
    """Claims everything, remembers nothing: O(1) memory whatever the wave."""

    def __init__(self) -> None:
        self.finished = 0
        self._lock = threading.Lock()

    def claim(
        self,
        keys: Sequence[str],
        owner: str,
        ttl: timedelta,
        dead_owners: frozenset[str] = frozenset(),
    ) -> Mapping[str, Any]:
        from domain.once import Entry, EntryState

        until = datetime.now(UTC) + ttl
        return {k: Entry(k, EntryState.CLAIMED, owner, until, 1) for k in keys}

    def start(self, entry: Any) -> Any:
        from domain.once import EntryState

        return replace(entry, state=EntryState.STARTED, version=2)

    def start_many(self, entries: Sequence[Any]) -> Mapping[str, Any]:
        return {e.key: self.start(e) for e in entries}

    def finish(self, settlements: Sequence[tuple[Any, Any]]) -> Mapping[str, Any]:
        with self._lock:
            self.finished += len(settlements)
        return {}

    def release(self, entry: Any) -> None: ...

    def record(self, results: Mapping[str, Any], owner: str) -> Mapping[str, Any]:
        raise NotImplementedError  # the send claims and starts; it never records

    def resolve(self, key: str, resolution: Any) -> Any:
        raise NotImplementedError

    def read(self, keys: Sequence[str]) -> Mapping[str, Any]:
        return {}


class NoEmails:
    max_batch = 10

    def send(self, requests: Sequence[Any]) -> Mapping[str, str | None]:
        return {r.dedupe_id: "q" for r in requests}


def rss_mib() -> float:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


def reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
        refs.write("5")  # Linux: VmHWM starts again from the current RSS


def peak_rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Measured:
    wall: float
    cpu: float  # this process tree's, the SMS server and the emulator apart (measure.py)
    sent: int
    measured_rate: float | None
    memory: str

    @property
    def sends_per_second(self) -> float:
        return self.sent / self.wall

    @property
    def cpu_us(self) -> float:
        return self.cpu / self.sent * 1e6


def run(
    url: str,
    fans: int,
    in_flight: int,
    rate: float | None,
    runner_kind: str,
    ledger: Any = None,
    step_threads: int = 0,
    servers: Sequence[int] = (),
) -> Measured:
    from adapters.clock import SystemClock
    from adapters.rate_limiter import SystemMonotonicClock
    from adapters.sms.gateways import AsyncTmSmsGateway, LeanTmSmsGateway
    from adapters.sms.pacer import ThrottlePacer
    from domain.sms import SendCounts, SmsMessage
    from domain.workers.sms_wave_send import SendInput, SendOptions, SendPorts, sms_wave_send
    from tests.support.memory_leases import MemoryLeases
    from tests.support.memory_objects import InMemoryObjectStore
    from tests.support.sms_fakes import BUCKET, fan, put_wave

    store = InMemoryObjectStore()
    areas = ("212", "213", "312", "415", "617", "646", "718", "917", "202", "305")
    rows = (  # a generator: 1M rows as dicts would be ~1 GB before the send starts
        fan(n, email="", mobileNumber=f"+1{areas[n // 10_000 % 10]}555{n % 10_000:04d}")
        for n in range(fans)
    )
    wave = f"bench-{runner_kind}-{rate or 0:.0f}-{time.time_ns()}"  # its own ledger entries
    put_wave(store, wave, rows)  # type: ignore[arg-type]  # iterated once
    del rows
    # send: http.client (threads); send_async: aiohttp, or httptools for the `httptools` runners
    tm = (LeanTmSmsGateway if "httptools" in runner_kind else AsyncTmSmsGateway)(url)
    stamps: list[float] = []

    class Stamped:
        # Call times only for the rated run: a float a text would grow with the wave (32 MB
        # at 1M), which the memory column must not count.
        def send(self, message: SmsMessage) -> Any:
            if rate:
                stamps.append(time.monotonic())
            return tm.send(message)

        async def send_async(self, message: SmsMessage) -> Any:
            if rate:
                stamps.append(time.monotonic())
            return await tm.send_async(message)

        async def aclose(self) -> None:
            await tm.aclose()

    clock = SystemMonotonicClock()
    memory: list[str] = []
    step = max(1, fans // 5)
    mark = [step]

    def progress(counts: SendCounts) -> None:
        if counts.total >= mark[0]:
            memory.append(f"{counts.total:,}: {rss_mib():.0f}")
            mark[0] += step

    ports = SendPorts(
        store=store,
        ledger=ledger or NullLedger(),
        gateway=Stamped(),
        emails=NoEmails(),
        runner=runner_of(runner_kind, step_threads),
        pacer=ThrottlePacer(rate, in_flight, clock),
        leases=MemoryLeases(SystemClock()),
        monotonic=clock,
        progress=progress,
    )
    options = SendOptions(bucket=BUCKET, owner="bench", in_flight=in_flight)
    gc.collect()
    before = rss_mib()
    reset_peak_rss()
    cpu, wall = cpu_snapshot(servers), time.perf_counter()
    result = sms_wave_send(SendInput(wave), ports=ports, options=options)
    cpu_used, wall = cpu_snapshot(servers).total - cpu.total, time.perf_counter() - wall
    sent = result.unwrap().counts.sms["sent"]
    assert sent == fans, result
    measured = None
    if rate:
        first = stamps[0]
        whole = int(stamps[-1] - first)
        measured = sum(1 for t in stamps if t - first < whole) / whole
    # The peak during the send (VmHWM, reset before it) over the RSS when it started: the wave
    # file is in both (the in-memory store holds the whole CSV), the difference is the sender's.
    rss = "; ".join(memory) + f" | {before:.0f} -> {peak_rss_mib():.0f}"
    return Measured(wall, cpu_used, sent, measured, rss)


def row(kind: str, fans: int, in_flight: int, rate: float | None, runs: Sequence[Measured]) -> str:
    """Medians of the runs with their range; the RSS column is the last run's."""
    line = f"| {kind} | {fans:,} | {in_flight} | {rate or 'none'} | "
    line += f"{spread([r.wall for r in runs]).show(1)} s | "
    line += f"{spread([r.sends_per_second for r in runs]).show(0)} | "
    line += f"{spread([r.cpu_us for r in runs]).show(0)} | "
    if rate:
        measured = spread([r.measured_rate or 0.0 for r in runs])
        line += f"{measured.show(1)}/s ({(measured.median / rate - 1) * 100:+.2f} %) | "
    else:
        line += "- | "
    return line + runs[-1].memory + " |"


def runner_of(kind: str, step_threads: int) -> Any:
    """threads (http.client per thread); else AsyncTaskRunner with aiohttp (`asyncio`) or
    httptools (`httptools`: LeanTmSmsGateway) for the HTTP."""
    from adapters.sms.runner import AsyncTaskRunner, ThreadTaskRunner

    if kind == "threads":
        return ThreadTaskRunner()
    return AsyncTaskRunner(step_threads)


def dynamo_ledger(stack: contextlib.ExitStack) -> tuple[Any, int]:
    """The ledger on the emulator in a process of its own, and that process's id."""
    from adapters.aws.clients import ClientFactory, ClientOptions
    from adapters.aws.dynamo_ledger import DynamoOnceLedger, create_ledger_table
    from local.emulator import EmulatorProcess

    emulator = stack.enter_context(EmulatorProcess())
    db = ClientFactory(ClientOptions(endpoint_url=emulator.endpoint_url)).client("dynamodb")
    create_ledger_table(db, "ledger")
    return DynamoOnceLedger(db, "ledger"), emulator.pid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", type=float)
    parser.add_argument("--fans", type=int, default=20_000)
    parser.add_argument("--rated", type=int, default=5_000)
    parser.add_argument("--in-flight", type=int, default=200)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--delay", type=float, default=0.05)
    # compared in the same run: threads, asyncio (aiohttp), httptools
    parser.add_argument("--runners", default="threads,asyncio,httptools")
    parser.add_argument("--step-threads", type=int, default=0)  # AsyncTaskRunner's ledger steps
    # `dynamo`: DynamoOnceLedger on the emulator (a process of its own): two writes a text
    parser.add_argument("--ledger", choices=("null", "dynamo"), default="null")
    parser.add_argument("--runs", type=int, default=3, help="runs of each; medians and range")
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return
    print(machine(), flush=True)
    kept = "DynamoDB on the emulator" if args.ledger == "dynamo" else "a counting one, no record"
    print(
        "fakes: the wave file in an in-memory store (fake S3), in-memory leases, the email queue "
        f"a no-op; the ledger: {kept}",
        flush=True,
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench_sms_send", "--serve", str(args.delay)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        print(
            "| runner | texts | in flight | rate (parts/s) | wall | sends/s | sender CPU µs/send "
            "(tree) | "
            "measured rate | RSS MiB as the wave goes (rows: MiB) | RSS MiB at start -> peak |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        with contextlib.ExitStack() as stack:
            ledger, servers = None, [server.pid]
            if args.ledger == "dynamo":
                ledger, emulator = dynamo_ledger(stack)
                servers.append(emulator)
            for runner in args.runners.split(","):
                steps = args.step_threads and runner == "asyncio"
                kind = runner + (f" ({args.step_threads} step threads)" if steps else "")
                kind += ", DynamoDB ledger" if ledger is not None else ""
                free = [
                    run(
                        url,
                        args.fans,
                        args.in_flight,
                        None,
                        runner,
                        ledger,
                        args.step_threads,
                        servers,
                    )
                    for _ in range(args.runs)
                ]
                print(row(kind, args.fans, args.in_flight, None, free), flush=True)
                if args.rated:
                    rated = [
                        run(url, args.rated, args.in_flight, args.rate, runner, ledger, 0, servers)
                        for _ in range(args.runs)
                    ]
                    print(row(kind, args.rated, args.in_flight, args.rate, rated), flush=True)
            server_cpu = tree_cpu_seconds(server.pid)
            print(f"SMS server process CPU over all runs: {server_cpu:.1f} s", flush=True)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
