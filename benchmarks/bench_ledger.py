"""The issued-code ledger of generate_sms_wave_codes on the emulator: `OnceIssuedCodes` over
`DynamoOnceLedger` (the once-ledger's `record`, in the codes table, as bootstrap wires it)
recording chunks of 1,000 fans (TransactWriteItems of 100 conditional puts, `--concurrency` at
a time), recording them again (every fan held already: the cancellations bring the records),
against one conditional PutItem per fan (the ledger before) in the same run.

    python -m benchmarks.bench_ledger [--fans 20000] [--put-fans 2000] [--concurrency 8]

The emulator runs in a process of its own (local.emulator.EmulatorProcess): the rates are
moto's, the client CPU per fan is this process's, which is what production pays at 2,000
codes/s (DynamoDB answers in a few ms; botocore's CPU per call does not change).
"""

from __future__ import annotations

import argparse
import sys
import time

from benchmarks.machine import machine

CHUNK = 1_000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fans", type=int, default=20_000)
    parser.add_argument("--put-fans", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    from adapters.aws.clients import ClientFactory, ClientOptions
    from adapters.aws.dynamo_codes import create_codes_table
    from adapters.aws.dynamo_ledger import DynamoOnceLedger
    from domain.codes import IssuedCode
    from domain.issued_codes import OnceIssuedCodes
    from local.emulator import EmulatorProcess

    print(machine())
    with EmulatorProcess() as emulator:
        options = ClientOptions(endpoint_url=emulator.endpoint_url, max_pool_connections=32)
        db = ClientFactory(options).client("dynamodb")
        create_codes_table(db, "codes")
        once = DynamoOnceLedger(db, "codes", concurrency=args.concurrency)
        ledger = OnceIssuedCodes(once, "bench")
        print("| variant | fans | s | fans/s | client CPU µs/fan |")
        print("|---|--:|--:|--:|--:|")

        def report(name: str, fans: int, started: tuple[float, float]) -> None:
            wall, cpu = time.perf_counter() - started[0], time.process_time() - started[1]
            print(
                f"| {name} | {fans:,} | {wall:.1f} | {fans / wall:,.0f} | {cpu / fans * 1e6:.0f} |"
            )

        for wave, code in (("w1", "A"), ("w2", "A"), ("w1", "B")):
            started = time.perf_counter(), time.process_time()
            for start in range(0, args.fans, CHUNK):
                chunk = range(start, min(args.fans, start + CHUNK))
                ledger.record(wave, {f"g{i}": IssuedCode(f"{code}{i}", i) for i in chunk})
            held = "again, all held" if code == "B" else "new fans"
            report(f"transactions of 100, {args.concurrency} at a time, {held}", args.fans, started)
        started = time.perf_counter(), time.process_time()
        for i in range(args.put_fans):
            db.put_item(
                TableName="codes",
                Item={"pk": {"S": f"issued#p#g{i}"}, "code": {"S": f"A{i}"}, "row": {"N": str(i)}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        report("one conditional PutItem per fan, one at a time", args.put_fans, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
