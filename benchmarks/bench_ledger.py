"""The issued-code ledger of generate_sms_wave_codes on the emulator: `OnceIssuedCodes` over
`DynamoOnceLedger` (the once-ledger's `record`, in the codes table, as bootstrap wires it)
recording chunks of 1,000 fans (TransactWriteItems of 100 conditional puts, `--concurrency` at
a time), recording them again (every fan held already: the cancellations bring the records),
against one conditional PutItem per fan (the ledger before, the baseline) in the same run.

    python -m benchmarks.bench_ledger [--fans 10000] [--put-fans 1000] [--concurrency 8] [--runs 3]

The emulator runs in a process of its own (local.emulator.EmulatorProcess): the rates are
moto's; the client CPU per fan is this process tree's (benchmarks.measure), the emulator's is
measured apart. Client CPU is what production pays at 2,000 codes/s (DynamoDB answers in a few
ms; botocore's CPU per call does not change). Each variant runs `--runs` times on fresh fan ids,
interleaved; medians with the spread.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from benchmarks.machine import machine
from benchmarks.measure import cpu_snapshot, spread, tree_cpu_seconds

CHUNK = 1_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_ledger", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--fans", type=int, default=10_000)
    parser.add_argument("--put-fans", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)

    from adapters.aws.clients import ClientFactory, ClientOptions
    from adapters.aws.dynamo_codes import create_codes_table
    from adapters.aws.dynamo_ledger import DynamoOnceLedger
    from domain.codes import IssuedCode
    from domain.issued_codes import OnceIssuedCodes
    from local.emulator import EmulatorProcess

    print(f"machine: {machine()}")
    # Every snapshot inside the block: once reaped, the emulator's CPU would join
    # RUSAGE_CHILDREN and count as the benchmark's.
    with EmulatorProcess() as emulator:
        server = emulator.pid
        options = ClientOptions(endpoint_url=emulator.endpoint_url, max_pool_connections=32)
        db = ClientFactory(options).client("dynamodb")
        create_codes_table(db, "codes")
        once = DynamoOnceLedger(db, "codes", concurrency=args.concurrency)
        ledger = OnceIssuedCodes(once, "bench")

        def transactions(run: int, wave: str, code: str) -> Callable[[], None]:
            def go() -> None:
                for start in range(0, args.fans, CHUNK):
                    chunk = range(start, min(args.fans, start + CHUNK))
                    fans = {f"r{run}g{i}": IssuedCode(f"{code}{i}", i) for i in chunk}
                    ledger.record(wave, fans)

            return go

        def puts(run: int) -> Callable[[], None]:
            def go() -> None:
                for i in range(args.put_fans):
                    db.put_item(
                        TableName="codes",
                        Item={
                            "pk": {"S": f"issued#p#r{run}g{i}"},
                            "code": {"S": f"A{i}"},
                            "row": {"N": str(i)},
                        },
                        ConditionExpression="attribute_not_exists(pk)",
                    )

            return go

        c = args.concurrency
        variants = [
            (f"transactions of 100, {c} at a time, new fans", args.fans, "new"),
            (f"transactions of 100, {c} at a time, new fans, 2nd wave", args.fans, "w2"),
            (f"transactions of 100, {c} at a time, again, all held", args.fans, "again"),
            ("baseline: one conditional PutItem per fan, one at a time", args.put_fans, "put"),
        ]
        figures: dict[str, list[tuple[float, float, float]]] = {v[0]: [] for v in variants}
        for run in range(args.runs):
            for label, fans, kind in variants:
                work = {
                    "new": transactions(run, "w1", "A"),
                    "w2": transactions(run, "w2", "A"),
                    "again": transactions(run, "w1", "B"),
                    "put": puts(run),
                }[kind]
                before, served = cpu_snapshot(exclude=[server]), tree_cpu_seconds(server)
                started = time.perf_counter()
                work()
                wall = time.perf_counter() - started
                client = cpu_snapshot(exclude=[server]).total - before.total
                emulator_cpu = tree_cpu_seconds(server) - served
                figures[label].append((fans / wall, client / fans * 1e6, emulator_cpu / fans * 1e6))
        print(f"median of {args.runs} runs (low-high)")
        print("| variant | fans | fans/s | client CPU µs/fan | emulator CPU µs/fan |")
        print("|---|--:|--:|--:|--:|")
        for label, fans, _ in variants:
            rows = figures[label]
            print(
                f"| {label} | {fans:,} | {spread([r[0] for r in rows]).show(0)} "
                f"| {spread([r[1] for r in rows]).show(0)} "
                f"| {spread([r[2] for r in rows]).show(0)} |",
                flush=True,
            )
    print(f"machine after: {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
