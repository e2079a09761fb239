"""The once-ledger (`DynamoOnceLedger`) on the emulator's DynamoDB: claims in calls of 100 keys
(TransactWriteItems of 100 conditional Puts), starts (one conditional PutItem each, as a sender
makes them, right before each call), finishes in calls of 100 (transactions again), and the
same keys claimed again by another owner (all held: the cancellations bring the entries);
against one plain PutItem per entry in the same run. Medians of `--runs`.

    python -m benchmarks.bench_once_ledger [--entries 5000] [--single 1000] [--runs 3]

The emulator runs in a process of its own (local.emulator.EmulatorProcess): the rates are
moto's, the client CPU per entry is this process's, which is what production pays (DynamoDB
answers in a few ms; botocore's CPU per call does not change).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from benchmarks.machine import machine
from benchmarks.measure import cpu_snapshot, spread, tree_cpu_seconds

BATCH = 100
TTL = timedelta(minutes=5)
Measure = Callable[[str, int, Callable[[], object]], None]


def one_run(ledger: Any, db: Any, run: int, entries: int, single: int, measure: Measure) -> None:
    from domain.once import Done

    keys = [f"sms#r{run}#fan-{i}" for i in range(entries)]
    batches = [keys[i : i + BATCH] for i in range(0, len(keys), BATCH)]
    claimed = {}

    def claim() -> None:
        for batch in batches:
            claimed.update(ledger.claim(batch, "owner-a", TTL))

    measure("claim, transactions of 100", entries, claim)
    started = {}

    def start() -> None:
        for key in keys[:single]:
            started[key] = ledger.start(claimed[key])

    measure("start, one conditional PutItem each", single, start)
    done = [(started[k], Done(f"msg-{k}")) for k in keys[:single]]

    def finish() -> None:
        for i in range(0, len(done), BATCH):
            ledger.finish(done[i : i + BATCH])

    measure("done, transactions of 100", single, finish)

    def claim_again() -> None:
        for batch in batches:
            ledger.claim(batch, "owner-b", TTL)

    measure("claim again, all held (answered)", entries, claim_again)

    def plain_put() -> None:
        for i in range(single):
            db.put_item(
                TableName="ledger",
                Item={"pk": {"S": f"plain#r{run}#{i}"}, "state": {"S": "done"}},
            )

    measure("baseline: one plain PutItem per entry", single, plain_put)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=5_000)
    parser.add_argument("--single", type=int, default=1_000, help="entries for one-call-each")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from adapters.aws.clients import ClientFactory, ClientOptions
    from adapters.aws.dynamo_ledger import DynamoOnceLedger, create_ledger_table
    from local.emulator import EmulatorProcess

    print(machine())
    results: dict[str, list[tuple[float, float]]] = {}

    servers: list[int] = []
    emulator_cpu: dict[str, list[float]] = {}

    def measure(name: str, entries: int, work: Callable[[], object]) -> None:
        # The client's process tree, the emulator (a process of its own) measured apart.
        server = tree_cpu_seconds(servers[0])
        wall, cpu = time.perf_counter(), cpu_snapshot(exclude=servers)
        work()
        wall = time.perf_counter() - wall
        client = cpu_snapshot(exclude=servers).total - cpu.total
        results.setdefault(name, []).append((entries / wall, client / entries * 1e6))
        server = tree_cpu_seconds(servers[0]) - server
        emulator_cpu.setdefault(name, []).append(server / entries * 1e6)

    with EmulatorProcess() as emulator:
        servers.append(emulator.pid)
        options = ClientOptions(endpoint_url=emulator.endpoint_url)
        db = ClientFactory(options).client("dynamodb")
        create_ledger_table(db, "ledger")
        ledger = DynamoOnceLedger(db, "ledger")
        for run in range(args.runs):
            one_run(ledger, db, run, args.entries, args.single, measure)

    print(
        f"| variant | entries/s (median, range of {args.runs}) | client CPU µs/entry "
        "| emulator CPU µs/entry |"
    )
    print("|---|--:|--:|--:|")
    for name, figures in results.items():
        rate = spread([r for r, _ in figures])
        cpu = spread([c for _, c in figures])
        server = spread(emulator_cpu[name])
        print(f"| {name} | {rate.show(0)} | {cpu.show(0)} | {server.show(0)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
