"""save_campaign_data: the worker's own CPU per record, its memory, and all in (the KCL
MultiLangDaemon's JVM and its Python record processors writing the lake to S3 on the emulator).

    python -m benchmarks.bench_stream_consumer                   # all four parts
    python -m benchmarks.bench_stream_consumer --skip-memory --skip-daemon   # 1 and 2 only
    python -m benchmarks.bench_stream_consumer --before REV      # + an earlier commit's Avro

1. The worker (decode, trim, dedupe id, schema check, Avro encode, container, "write") with the
   real AvroSchemas and S3Lake over a FAKE S3 client that only keeps the bytes in memory (no
   HTTP, no S3: production's PutObject is not in these figures; part 4 has it), on --records
   mixed records (benchmarks/stream_records.py) in batches of --batch, against the pre-speed-up
   path (benchmarks/baseline_save_campaign_data.py) in the same run. CPU µs per record of this
   process tree (benchmarks.measure) and records per wall-second, median of --runs with the
   spread, variants interleaved.
2. The same worker behind streams.kcl's record processor, driven in-process by the daemon's
   JSON-lines messages (processRecords with base64 data, checkpoint answers); same fake S3.
3. A consumer process (a child) through the KCL protocol over --memory-records records in
   batches of --batch: its peak resident memory (VmHWM) at the start, after 1/4, 1/2 and all.
   Not ru_maxrss: Linux carries it across exec, so a child would report its parent's peak.
4. All in: the real MultiLangDaemon (java, the jars `make kcl` installs) with its record
   processors (entrypoints.kcl_main save_campaign_data, one per shard) against the emulator in a
   process of its own (Kinesis through its h2c door, leases in DynamoDB, the lake in S3, dead
   letters in SQS), started once: --daemon-runs rounds of --daemon-records records put once
   the children are up, each until every shard is checkpointed at its last record; CPU of the
   JVM and of its children per record, the emulator's apart; start-up (JVM + children until
   initialized) apart.
"""

from __future__ import annotations

import argparse
import base64
import gc
import importlib
import io
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from adapters.avro import SCHEMA_DIR, AvroSchemas
from adapters.aws.lake import S3Lake
from adapters.canonical_json import orjson_canonical
from adapters.clock import FixedClock
from adapters.json_codec import exact_loads
from benchmarks.baseline_save_campaign_data import BaselineSaveCampaignData
from benchmarks.machine import machine
from benchmarks.measure import (
    cpu_snapshot,
    descendants,
    process_cpu_seconds,
    spread,
    tree_cpu_seconds,
)
from benchmarks.stream_records import batches, record_data
from domain.records import JsonLoads, canonical_json
from domain.streaming import DeadLetter, IncomingRecord
from domain.workers.save_campaign_data import SaveCampaignData

CLOCK = FixedClock(datetime(2026, 3, 14, tzinfo=UTC))
SHARD = "shardId-000000000000"


FAKE = "S3 is a fake here (bytes kept in memory, no HTTP): see the all-in part for S3"


class BytesS3:
    """A fake: the two S3 calls S3Lake makes, keeping the objects' bytes in memory (no network)."""

    def __init__(self, keep: bool = True) -> None:
        self.objects: dict[str, bytes] = {}
        self.keep = keep
        self.bytes_put = 0

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        self.bytes_put += len(Body)
        if self.keep:
            self.objects[Key] = Body
        return {}

    def delete_objects(self, **_: Any) -> dict[str, Any]:
        return {}


class CountingDeadLetters:
    def __init__(self) -> None:
        self.count = 0

    def send(self, letters: Sequence[DeadLetter]) -> None:
        self.count += len(letters)


def save_campaign_data(
    s3: BytesS3,
    *,
    loads: JsonLoads = exact_loads,
    canonical: Callable[[Any], bytes] = orjson_canonical,
    codec: str = "deflate",
    level: int | None = None,
    schemas_class: Callable[..., Any] = AvroSchemas,
) -> SaveCampaignData:
    schemas = schemas_class(schema_dir=SCHEMA_DIR, codec=codec, compression_level=level)
    return SaveCampaignData(
        archive=S3Lake(s3, "campaign-data", schemas),
        schemas=schemas,
        dead_letters=CountingDeadLetters(),
        clock=CLOCK,
        loads=loads,
        canonical=canonical,
    )


@dataclass
class Figure:
    label: str
    records: int
    cpu: list[float]
    wall: list[float]
    avro_bytes: int = 0

    def us_per_record(self) -> list[float]:
        return [cpu / self.records * 1e6 for cpu in self.cpu]

    def per_wall_second(self) -> list[float]:
        return [self.records / wall for wall in self.wall]


def timed(run: Callable[[], Any]) -> tuple[float, float]:
    """CPU seconds of this process tree and wall seconds of one run."""
    gc.collect()
    before, w0 = cpu_snapshot(), time.perf_counter()
    run()
    return cpu_snapshot().total - before.total, time.perf_counter() - w0


def schemas_at(revision: str) -> Callable[..., Any]:
    """The AvroSchemas class of an earlier commit (e.g. the generated encoders fastavro's writer
    replaced), loaded from git into a package of its own, to compare in the same run."""
    package = Path(tempfile.mkdtemp(prefix="avro-before-")) / "avro_before"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("avro", "avro_binary"):
        source = subprocess.run(
            ["git", "show", f"{revision}:adapters/{name}.py"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        source = source.replace("from adapters.avro_binary", "from avro_before.avro_binary")
        (package / f"{name}.py").write_text(source)
    sys.path.insert(0, str(package.parent))
    schemas_class: Callable[..., Any] = importlib.import_module("avro_before.avro").AvroSchemas
    return schemas_class


def throughput(total: int, batch_size: int, runs: int, before: str | None = None) -> list[Figure]:
    inputs = batches(total, batch_size)
    lines = kcl_lines(inputs)
    # The pre-built input is the benchmark's, not the consumer's (which holds one batch): keep
    # the collector from scanning it over and over.
    gc.collect()
    gc.freeze()

    baseline_s3 = BytesS3()
    baseline = BaselineSaveCampaignData(
        lambda key, body: baseline_s3.put_object(Bucket="b", Key=key, Body=body)
    )
    expected = [0]

    def run_baseline() -> None:
        expected[0] = sum(baseline(batch) for batch in inputs)

    variants: list[tuple[str, BytesS3, Callable[[], Any]]] = [
        ("baseline: json + fastavro.writer", baseline_s3, run_baseline)
    ]
    options: list[tuple[str, dict[str, Any]]] = [
        ("worker, stdlib json + canonical", {"loads": json.loads, "canonical": canonical_json}),
        ("worker, orjson, deflate 6 (zlib default)", {}),
        ("worker, orjson, deflate 1", {"level": 1}),
        ("worker, plain orjson.loads, deflate 1", {"level": 1, "loads": orjson.loads}),
        ("worker, orjson, null codec", {"codec": "null"}),
    ]
    if before:
        options.insert(
            2,
            (
                f"before ({before}: generated encoders), deflate 1",
                {"level": 1, "schemas_class": schemas_at(before)},
            ),
        )
    for label, option in options:
        s3 = BytesS3()
        worker = save_campaign_data(s3, **option)

        def run_worker(worker: SaveCampaignData = worker, label: str = label) -> None:
            handled = sum(worker(batch).handled for batch in inputs)
            if handled != expected[0]:
                raise SystemExit(f"{label}: {handled} records archived, baseline {expected[0]}")

        variants.append((label, s3, run_worker))
    kcl_s3 = BytesS3()
    kcl_worker = save_campaign_data(kcl_s3, level=1)
    variants.append(
        (
            "KCL protocol + worker (orjson, deflate 1)",
            kcl_s3,
            lambda: run_kcl(kcl_worker, iter(lines)),
        )
    )

    # Interleaved (each run times every variant once): the machine is shared, and a neighbour's
    # burst then slows all variants alike instead of one.
    figures = {label: Figure(label, total, [], []) for label, _, _ in variants}
    for _ in range(runs):
        for label, _s3, run in variants:
            cpu, wall = timed(run)
            figures[label].cpu.append(cpu)
            figures[label].wall.append(wall)
    for label, s3, _ in variants:
        figures[label].avro_bytes = s3.bytes_put // runs
    gc.unfreeze()
    return list(figures.values())


# --- the KCL record processor, in-process --------------------------------------------------


def process_records_line(batch: Sequence[IncomingRecord]) -> str:
    millis = int(batch[0].arrived_at.timestamp() * 1000) if batch[0].arrived_at else None
    return json.dumps(
        {
            "action": "processRecords",
            "millisBehindLatest": 0,
            "records": [
                {
                    "action": "record",
                    "data": base64.b64encode(r.data).decode("ascii"),
                    "partitionKey": r.partition_key,
                    "sequenceNumber": r.sequence_number,
                    "subSequenceNumber": 0,
                    "approximateArrivalTimestamp": millis,
                }
                for r in batch
            ],
        }
    )


def checkpoint_answer(batch: Sequence[IncomingRecord]) -> str:
    return json.dumps(
        {
            "action": "checkpoint",
            "sequenceNumber": batch[-1].sequence_number,
            "subSequenceNumber": 0,
        }
    )


class DaemonLines:
    """The daemon's side, scripted: what the processor reads from stdin, line by line.

    After each processRecords the processor asks for a checkpoint and reads the answer; every
    checkpoint is accepted. `lines` may be lazy (the memory run builds each batch on demand).
    """

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines

    def readline(self) -> str:
        return next(self._lines, "")


class Discard(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


def kcl_lines(inputs: Sequence[Sequence[IncomingRecord]]) -> list[str]:
    init = {
        "action": "initialize",
        "shardId": SHARD,
        "sequenceNumber": "TRIM_HORIZON",
        "subSequenceNumber": 0,
    }
    lines = [json.dumps(init) + "\n"]
    for batch in inputs:
        lines.append(process_records_line(batch) + "\n")
        lines.append(checkpoint_answer(batch) + "\n")
    return lines


def run_kcl(worker: Any, lines: Iterator[str]) -> None:
    from streams.kcl import run_processor  # needs amazon_kclpy

    run_processor(
        worker,
        "vf1-input-stream",
        input_file=DaemonLines(lines),
        output_file=Discard(),
        error_file=io.StringIO(),
    )


# --- memory over 1,000,000 records (a child process) ---------------------------------------


def peak_rss_kib() -> int:
    """This process's peak resident set (VmHWM, KiB): reset on exec, unlike ru_maxrss."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux: best effort


def memory_child(total: int, batch_size: int) -> None:
    """Runs in its own process; prints one JSON line: peak RSS (KiB) at each mark."""
    pool = [data for data, _ in zip(record_data(11), range(20_000), strict=False)]
    marks = {
        total // 4 // batch_size * batch_size: "after 1/4",
        total // 2 // batch_size * batch_size: "after 1/2",
    }
    seen: dict[str, int] = {}
    arrived = datetime(2026, 3, 14, 12, tzinfo=UTC)

    def lines() -> Iterator[str]:
        init = {
            "action": "initialize",
            "shardId": SHARD,
            "sequenceNumber": "TRIM_HORIZON",
            "subSequenceNumber": 0,
        }
        yield json.dumps(init) + "\n"
        for start in range(0, total, batch_size):
            if start in marks:
                seen[marks[start]] = peak_rss_kib()
            batch = [
                IncomingRecord(
                    "vf1-input-stream",
                    SHARD,
                    str(49_000_000_000 + n),
                    f"pk-{n % 97}",
                    pool[n % len(pool)],
                    arrived,
                )
                for n in range(start, min(start + batch_size, total))
            ]
            yield process_records_line(batch) + "\n"
            yield checkpoint_answer(batch) + "\n"

    s3 = BytesS3(keep=False)  # a real lake does not keep the objects in the process either
    worker = save_campaign_data(s3, level=1)
    seen["start"] = peak_rss_kib()
    c0 = time.process_time()
    run_kcl(worker, lines())
    seen["after all"] = peak_rss_kib()
    seen["cpu_seconds"] = round(time.process_time() - c0, 1)  # type: ignore[assignment]
    print(json.dumps(seen))


def memory(total: int, batch_size: int) -> dict[str, int]:
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.bench_stream_consumer",
            "--memory-child",
            "--memory-records",
            str(total),
            "--batch",
            str(batch_size),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, int] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


# --- all in: the real MultiLangDaemon (JVM) and its Python children against the emulator --------


def serve_emulator() -> None:
    """Runs in its own process: the emulator and its h2c door; prints both URLs, serves until
    stdin closes (the KCL's Kinesis client speaks only HTTP/2)."""
    from local.emulator import EmbeddedEmulator
    from local.emulator_h2c import start_h2c_listener

    with EmbeddedEmulator() as emulator:
        h2c = start_h2c_listener(emulator.server)
        print(json.dumps({"http": emulator.endpoint_url, "h2c": h2c.url}), flush=True)
        sys.stdin.read()
        h2c.stop()


@dataclass
class DaemonRound:
    records: int
    jvm: float
    children: float
    emulator: float
    wall: float


@dataclass
class DaemonRuns:
    startup_jvm: float
    startup_children: float
    children: int
    rounds: list[DaemonRound]


def _checkpoints(dynamodb: Any, table: str) -> dict[str, str]:
    items = dynamodb.scan(TableName=table)["Items"]
    return {i["leaseKey"]["S"]: i.get("checkpoint", {}).get("S", "") for i in items}


def _wait(condition: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
    raise SystemExit(f"the daemon did not reach {what} within {timeout:.0f} s:\n{tail}")


def daemon_rounds(
    endpoints: dict[str, str], server: int, records: int, shards: int, rounds: int, scratch: Path
) -> DaemonRuns:
    """One daemon, started once (the JVM's start-up costs ~10 CPU-s: one per run would make the
    benchmark minutes long), then `rounds` measured rounds. Start-up: until every shard's
    child answered initialize, on an empty stream. A round: `records` records put, until every
    shard's lease is checkpointed at its last record. CPU is read from /proc per process: the
    JVM, and its children (the record processors) apart; the emulator's (Kinesis, DynamoDB
    leases, the S3 lake, SQS; serving this process's PutRecords too) apart again. The puts'
    client CPU is this process's and not counted."""
    from adapters.aws.clients import ClientFactory, ClientOptions
    from entrypoints.kcl.daemon import daemon_command, daemon_environment
    from entrypoints.kcl.leases import prime_lease_table
    from entrypoints.kcl.properties import daemon_config, write_properties
    from entrypoints.settings import Settings

    stream, bucket, queue = "bench-kcl", "bench-kcl-lake", "bench-kcl-dlq"
    aws = ClientFactory(ClientOptions(endpoint_url=endpoints["http"]))
    kinesis, dynamodb = aws.client("kinesis"), aws.client("dynamodb")
    kinesis.create_stream(StreamName=stream, ShardCount=shards)
    kinesis.get_waiter("stream_exists").wait(StreamName=stream)
    aws.client("s3").create_bucket(Bucket=bucket)
    queue_url = aws.client("sqs").create_queue(QueueName=queue)["QueueUrl"]
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoints["http"],
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "INPUT_STREAM": stream,
        "CAMPAIGN_DATA_BUCKET": bucket,
        "DEAD_LETTER_QUEUE": queue_url,
    }
    settings = Settings.from_env(env)
    config = daemon_config(
        "save_campaign_data",
        settings,
        kinesis_endpoint=endpoints["h2c"],
        application="bench-kcl",
        worker_id="bench-kcl-worker",
        shutdown_grace_millis=5_000,
        stream=stream,
    )
    command = daemon_command(write_properties(config, scratch / "kcl"))
    prime_lease_table(dynamodb, kinesis, application=config.application, stream=stream)
    log = scratch / "daemon.log"

    def tree() -> tuple[float, float, int]:
        kids = descendants(daemon.pid)
        return (
            process_cpu_seconds(daemon.pid),
            sum(process_cpu_seconds(k) for k in kids),
            len(kids),
        )

    measured: list[DaemonRound] = []
    with log.open("wb") as out:
        daemon = subprocess.Popen(
            command, env=daemon_environment(settings, env), stdout=out, stderr=subprocess.STDOUT
        )
        try:
            _wait(
                lambda: (
                    log.read_text(errors="replace").count('"responseFor":"initialize"') >= shards
                ),
                300,
                "every shard initialized",
                log,
            )
            start_jvm, start_children, count = tree()
            data = record_data(11)
            for round_ in range(rounds):
                served, started = tree_cpu_seconds(server), time.perf_counter()
                jvm0, children0, _ = tree()
                placed: dict[str, int] = {}
                pool = list(itertools.islice(data, records))
                for at in range(0, records, 500):
                    entries = [
                        {"Data": d, "PartitionKey": f"fan-{round_}-{at + i}"}
                        for i, d in enumerate(pool[at : at + 500])
                    ]
                    answer = kinesis.put_records(StreamName=stream, Records=entries)
                    assert answer["FailedRecordCount"] == 0, answer
                    for result in answer["Records"]:
                        shard, number = result["ShardId"], int(result["SequenceNumber"])
                        placed[shard] = max(placed.get(shard, 0), number)
                last = {shard: str(number) for shard, number in placed.items()}

                def done(last: dict[str, str] = last) -> bool:
                    points = _checkpoints(dynamodb, config.application)
                    return all(points.get(shard) == number for shard, number in last.items())

                _wait(done, 600, "every record checkpointed", log)
                jvm1, children1, now = tree()
                if now != count:
                    raise SystemExit(f"record processors changed ({count} -> {now}): see {log}")
                measured.append(
                    DaemonRound(
                        records,
                        jvm1 - jvm0,
                        children1 - children0,
                        tree_cpu_seconds(server) - served,
                        time.perf_counter() - started,
                    )
                )
        finally:
            daemon.terminate()
            try:
                daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
    return DaemonRuns(start_jvm, start_children, count, measured)


def all_in(records: int, shards: int, rounds: int) -> DaemonRuns | str:
    """The daemon's rounds against one emulator in a process of its own; a sentence instead
    when the daemon cannot run here."""
    if shutil.which("java") is None:
        return "not measured: no java on this machine"
    try:
        from entrypoints.kcl.daemon import jar_directory, kcl_version

        jar_directory()
        version = kcl_version()
    except RuntimeError as missing:
        return f"not measured: {missing}"
    print(f"KCL MultiLangDaemon {version} (java), {shards} shards", flush=True)
    emulator = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench_stream_consumer", "--serve-emulator"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert emulator.stdin is not None and emulator.stdout is not None
    try:
        endpoints = json.loads(emulator.stdout.readline())
        with tempfile.TemporaryDirectory(prefix="bench-kcl-") as scratch:
            return daemon_rounds(endpoints, emulator.pid, records, shards, rounds, Path(scratch))
    finally:
        emulator.stdin.close()
        emulator.wait(timeout=30)


# --- report ----------------------------------------------------------------------------------


def calibration() -> float:
    """µs for sum(range(1000)): to compare this machine's speed with another's."""
    best = min(_time_once(lambda: sum(range(1000)), 2000) for _ in range(5))
    return best * 1e6


def _time_once(run: Callable[[], Any], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        run()
    return (time.perf_counter() - t0) / n


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_stream_consumer", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--memory-records", type=int, default=100_000)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--daemon-records", type=int, default=10_000)
    parser.add_argument("--daemon-shards", type=int, default=2)
    parser.add_argument("--daemon-runs", type=int, default=3, help="measured rounds")
    parser.add_argument("--skip-daemon", action="store_true")
    parser.add_argument(
        "--before", metavar="GIT_REV", help="also run the AvroSchemas of this commit, same run"
    )
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-emulator", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_records, args.batch)
        return
    if args.serve_emulator:
        serve_emulator()
        return

    print(f"machine: {machine()}; sum(range(1000)) = {calibration():.1f} µs")
    print(f"{args.records:,} mixed records in batches of {args.batch:,}; {FAKE}")
    print(f"median of {args.runs} runs (low-high)")
    figures = throughput(args.records, args.batch, args.runs, args.before)
    base = spread(figures[0].us_per_record()).median
    print("| path | CPU µs/record | records/wall-s | CPU vs baseline | B/record |")
    print("|---|--:|--:|--:|--:|")
    for f in figures:
        us = spread(f.us_per_record())
        print(
            f"| {f.label} | {us.show(1)} | {spread(f.per_wall_second()).show(0)} "
            f"| {us.median / base:.2f}x | {f.avro_bytes / f.records:.1f} |",
            flush=True,
        )
    if not args.skip_memory:
        mem = memory(args.memory_records, args.batch)
        print(
            f"memory, {args.memory_records:,} records through the KCL protocol (peak RSS, MiB): "
            + ", ".join(f"{k} {v / 1024:.1f}" for k, v in mem.items() if k != "cpu_seconds")
            + f"; {mem['cpu_seconds']} CPU-s",
            flush=True,
        )
    if not args.skip_daemon:
        runs = all_in(args.daemon_records, args.daemon_shards, args.daemon_runs)
        if isinstance(runs, str):
            print(f"all in (KCL daemon + children + S3 on the emulator): {runs}")
        else:
            n = args.daemon_records
            done = runs.rounds
            print(
                f"all in: one daemon, {runs.children} record processors; {len(done)} rounds of "
                f"{n:,} records, median (low-high)"
            )
            rows = {
                "JVM (MultiLangDaemon) CPU µs/record": [r.jvm / n * 1e6 for r in done],
                "record processors CPU µs/record": [r.children / n * 1e6 for r in done],
                "all in (JVM + processors) CPU µs/record": [
                    (r.jvm + r.children) / n * 1e6 for r in done
                ],
                "emulator CPU µs/record (apart; serves the puts too)": [
                    r.emulator / n * 1e6 for r in done
                ],
                "records/wall-s (put to checkpointed)": [n / r.wall for r in done],
            }
            print("| all in | median (low-high) |\n|---|--:|")
            for label, values in rows.items():
                print(f"| {label} | {spread(values).show(1)} |")
            print(
                f"start-up, once: JVM {runs.startup_jvm:.1f} CPU-s, record processors "
                f"{runs.startup_children:.1f} CPU-s"
            )
    print(f"machine after: {machine()}")


if __name__ == "__main__":
    main()
