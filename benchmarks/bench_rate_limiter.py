"""The rate limiter (`TokenBucketLimiter`) at 500 units/s on the real clock: callers in threads
and in asyncio tasks acquiring as fast as they can for `--seconds` (30 for the issue's figure;
5 by default, the machine is shared). Reports the measured rate (units given in [0, T) / T, the
first second's burst included), the worst one-second window as the callers saw it (the times
their acquire returned: a late wake-up can put two callers' returns closer than the schedule
had them), and the CPU per acquire.

    python -m benchmarks.bench_rate_limiter [--seconds 5] [--rate 500] [--callers 4]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import random
import sys
import threading
import time
from collections.abc import Callable

from benchmarks.machine import machine


def report(name: str, rate: float, seconds: float, stamps: list[tuple[float, int]]) -> None:
    stamps.sort()
    times = [t for t, _ in stamps]
    units = [u for _, u in stamps]
    prefix = [0]
    for u in units:
        prefix.append(prefix[-1] + u)
    in_run = prefix[bisect.bisect_left(times, seconds)]
    worst = max(prefix[bisect.bisect_left(times, t + 1.0)] - prefix[i] for i, t in enumerate(times))
    print(
        f"| {name} | {seconds:.0f} | {in_run:,} | {in_run / seconds:,.1f} | "
        f"{(in_run / seconds / rate - 1) * 100:+.2f} % | {worst:,} |",
        flush=True,
    )


def run_threads(
    rate: float, seconds: float, callers: int, weight: Callable[[], int], burst: float | None
) -> tuple[list[tuple[float, int]], float]:
    from adapters.rate_limiter import TokenBucketLimiter

    limiter = TokenBucketLimiter(rate, burst=burst)
    stamps: list[tuple[float, int]] = []
    lock = threading.Lock()
    start = time.monotonic()

    def work() -> None:
        while True:
            units = weight()
            limiter.acquire(units)
            now = time.monotonic() - start
            with lock:
                stamps.append((now, units))
            if now >= seconds + 1:
                return

    cpu = time.process_time()
    threads = [threading.Thread(target=work) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return stamps, (time.process_time() - cpu) / len(stamps) * 1e6


def run_tasks(rate: float, seconds: float, callers: int) -> tuple[list[tuple[float, int]], float]:
    from adapters.rate_limiter import TokenBucketLimiter

    limiter = TokenBucketLimiter(rate)
    stamps: list[tuple[float, int]] = []

    async def main() -> None:
        start = time.monotonic()

        async def work() -> None:
            while True:
                await limiter.acquire_async(1)
                now = time.monotonic() - start
                stamps.append((now, 1))
                if now >= seconds + 1:
                    return

        await asyncio.gather(*(work() for _ in range(callers)))

    cpu = time.process_time()
    asyncio.run(main())
    return stamps, (time.process_time() - cpu) / len(stamps) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--callers", type=int, default=4)
    args = parser.parse_args()
    print(machine())
    print(
        "| variant | s | units in [0, s) | units/s | vs rate | worst 1 s window (returns) |\n"
        "|---|--:|--:|--:|--:|--:|"
    )
    cpus = {}
    stamps, cpus["threads"] = run_threads(args.rate, args.seconds, args.callers, lambda: 1, None)
    report(f"{args.callers} threads, weight 1", args.rate, args.seconds, stamps)
    stamps, cpus["tasks"] = run_tasks(args.rate, args.seconds, args.callers)
    report(f"{args.callers} asyncio tasks, weight 1", args.rate, args.seconds, stamps)
    rng = random.Random(7)
    stamps, cpus["weighted"] = run_threads(
        args.rate, args.seconds, args.callers, lambda: rng.randint(1, 3), 10
    )
    report(f"{args.callers} threads, weight 1-3, burst 10", args.rate, args.seconds, stamps)
    print("CPU µs per acquire: " + ", ".join(f"{k} {v:.0f}" for k, v in cpus.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
