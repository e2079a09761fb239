"""Assigning a wave's codes through the DynamoDB inventory on the embedded emulator:
`DynamoCodeInventory.assign` in batches of 2,500 (process_scheduled_wave's), `--concurrency`
conditional UpdateItems in flight, against one at a time in the same run; then the same codes
assigned again (the idempotent re-run: every update's condition fails, and a GetItem tells
"already ours" from "another campaign's").

    python -m benchmarks.bench_dynamo_assign [--codes 100000] [--serial-codes 5000]
        [--concurrency 8]

The emulator runs in a process of its own (local.emulator.EmulatorProcess), so its CPU is not
this process's; figures are wall time and this process's CPU per code.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from typing import Any

from benchmarks.machine import machine

BATCH = 2_500


def run(inventory: Any, campaign: str, codes: list[str]) -> tuple[float, float, int, int]:
    cpu, wall = time.process_time(), time.perf_counter()
    updated = received = 0
    for start in range(0, len(codes), BATCH):
        count = inventory.assign(campaign, codes[start : start + BATCH]).unwrap()
        updated += count.updated
        received += count.received
    return time.perf_counter() - wall, time.process_time() - cpu, received, updated


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--codes", type=int, default=100_000)
    parser.add_argument("--serial-codes", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    from adapters.aws.clients import ClientFactory, ClientOptions
    from adapters.aws.dynamo_codes import DynamoCodeInventory, create_codes_table
    from local.emulator import EmulatorProcess

    print(machine())
    with EmulatorProcess() as emulator:
        aws = ClientFactory(
            ClientOptions(endpoint_url=emulator.endpoint_url, max_pool_connections=32)
        )
        db = aws.client("dynamodb")
        print("| variant | codes | s | codes/s | client CPU µs/code | updated |")
        print("|---|--:|--:|--:|--:|--:|")
        for name, count, concurrency in (
            ("one at a time", args.serial_codes, 1),
            (f"{args.concurrency} in flight", args.serial_codes, args.concurrency),
            (f"{args.concurrency} in flight", args.codes, args.concurrency),
        ):
            table = f"codes-{uuid.uuid4().hex[:8]}"
            create_codes_table(db, table)
            inventory = DynamoCodeInventory(db, table, concurrency=concurrency)
            codes = [f"B{i:09d}" for i in range(count)]
            # The re-run (two calls per code) only at the smaller size: it says the same per code.
            again = [(f"{name}, again", "camp-1")] if count == args.serial_codes else []
            for label, campaign in ((name, "camp-1"), *again):
                wall, cpu, received, updated = run(inventory, campaign, codes)
                assert received == count
                print(
                    f"| {label} | {count:,} | {wall:.1f} | {count / wall:,.0f} | "
                    f"{cpu / count * 1e6:.0f} | {updated:,} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
