"""Assigning a wave's codes through the DynamoDB inventory on the embedded emulator:
`DynamoCodeInventory.assign` in batches of 2,500 (process_scheduled_wave's), `--concurrency`
conditional UpdateItems in flight, against one at a time (the baseline) in the same run; then
the same codes assigned again (the idempotent re-run: every update's condition fails, and a
GetItem tells "already ours" from "another campaign's").

    python -m benchmarks.bench_dynamo_assign [--codes 1000] [--serial-codes 300]
        [--concurrency 8] [--runs 3]

The emulator runs in a process of its own (local.emulator.EmulatorProcess): its CPU is measured
apart; the client CPU per code is this process tree's (benchmarks.measure). Each variant runs
`--runs` times on a fresh table, interleaved; medians with the spread.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from typing import Any

from benchmarks.machine import machine
from benchmarks.measure import cpu_snapshot, spread, tree_cpu_seconds

BATCH = 2_500


def assign_all(inventory: Any, campaign: str, codes: list[str]) -> tuple[int, int]:
    updated = received = 0
    for start in range(0, len(codes), BATCH):
        count = inventory.assign(campaign, codes[start : start + BATCH]).unwrap()
        updated += count.updated
        received += count.received
    return received, updated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_dynamo_assign", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--codes", type=int, default=1_000)
    parser.add_argument("--serial-codes", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)

    from adapters.aws.clients import ClientFactory, ClientOptions
    from adapters.aws.dynamo_codes import DynamoCodeInventory, create_codes_table
    from local.emulator import EmulatorProcess

    print(f"machine: {machine()}")
    c = args.concurrency
    variants = (
        ("baseline: one at a time", args.serial_codes, 1),
        (f"{c} in flight", args.serial_codes, c),
        (f"{c} in flight", args.codes, c),
    )
    rows: dict[str, list[tuple[float, float, float, int]]] = {}
    sizes: dict[str, int] = {}
    # Every snapshot inside the block: once reaped, the emulator's CPU would join
    # RUSAGE_CHILDREN and count as the benchmark's.
    with EmulatorProcess() as emulator:
        server = emulator.pid
        aws = ClientFactory(
            ClientOptions(endpoint_url=emulator.endpoint_url, max_pool_connections=32)
        )
        db = aws.client("dynamodb")
        for _ in range(args.runs):
            for name, count, concurrency in variants:
                table = f"codes-{uuid.uuid4().hex[:8]}"
                create_codes_table(db, table)
                inventory = DynamoCodeInventory(db, table, concurrency=concurrency)
                codes = [f"B{i:09d}" for i in range(count)]
                # The re-run (two calls per code) only at the smaller size: the same per code.
                again = [(f"{name}, again", "camp-1")] if count == args.serial_codes else []
                for label, campaign in ((name, "camp-1"), *again):
                    label = f"{label} ({count:,})"
                    before, served = cpu_snapshot(exclude=[server]), tree_cpu_seconds(server)
                    started = time.perf_counter()
                    received, updated = assign_all(inventory, campaign, codes)
                    wall = time.perf_counter() - started
                    client = cpu_snapshot(exclude=[server]).total - before.total
                    emulated = tree_cpu_seconds(server) - served
                    assert received == count
                    sizes[label] = count
                    rows.setdefault(label, []).append(
                        (count / wall, client / count * 1e6, emulated / count * 1e6, updated)
                    )
                db.delete_table(TableName=table)
    print(f"median of {args.runs} runs (low-high)")
    print("| variant | codes | codes/s | client CPU µs/code | emulator CPU µs/code | updated |")
    print("|---|--:|--:|--:|--:|--:|")
    for label, runs in rows.items():
        print(
            f"| {label} | {sizes[label]:,} | {spread([r[0] for r in runs]).show(0)} "
            f"| {spread([r[1] for r in runs]).show(0)} | {spread([r[2] for r in runs]).show(0)} "
            f"| {runs[0][3]:,} |"
        )
    print(f"machine after: {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
