"""save_campaign_data's own work: records per second on one core, and memory over 1,000,000.

    python -m benchmarks.bench_stream_consumer                  # all three parts
    python -m benchmarks.bench_stream_consumer --skip-memory    # throughput only
    python -m benchmarks.bench_stream_consumer --before REV     # + an earlier commit's Avro

1. The worker (decode, trim, dedupe id, schema check, Avro encode, container, "write") with the
   real AvroSchemas and S3Lake over an S3 client that only keeps the bytes in memory, on
   --records mixed records (benchmarks/stream_records.py) in batches of --batch, against the
   pre-speed-up path (benchmarks/baseline_save_campaign_data.py) in the same run. Figures are
   records per CPU-second of this process (time.process_time: the machine is shared, so wall
   time would measure the neighbours too) and per wall-second, median of --runs.
2. The same worker behind streams.kcl's record processor, driven in-process by the daemon's
   JSON-lines messages (processRecords with base64 data, checkpoint answers).
3. A consumer process (a child) through the KCL protocol over 1,000,000 records in batches of
   1,000: its peak resident memory (VmHWM) at the start, after 250k, 500k and 1M records.
   Not ru_maxrss: Linux carries it across exec, so a child would report its parent's peak.
"""

from __future__ import annotations

import argparse
import base64
import gc
import importlib
import io
import json
import resource
import statistics
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
from benchmarks.stream_records import batches, record_data
from domain.records import JsonLoads, canonical_json
from domain.streaming import DeadLetter, IncomingRecord
from domain.workers.save_campaign_data import SaveCampaignData

CLOCK = FixedClock(datetime(2026, 3, 14, tzinfo=UTC))
SHARD = "shardId-000000000000"


class BytesS3:
    """The two S3 calls S3Lake makes, keeping the objects' bytes in memory (no network)."""

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

    def per_cpu_second(self) -> float:
        return self.records / statistics.median(self.cpu)

    def per_wall_second(self) -> float:
        return self.records / statistics.median(self.wall)


def timed(run: Callable[[], Any]) -> tuple[float, float]:
    gc.collect()
    c0, w0 = time.process_time(), time.perf_counter()
    run()
    return time.process_time() - c0, time.perf_counter() - w0


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
    marks = {total // 4: "after_250k", total // 2: "after_500k"}
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
    seen["after_1m"] = peak_rss_kib()
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--memory-records", type=int, default=1_000_000)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument(
        "--before", metavar="GIT_REV", help="also run the AvroSchemas of this commit, same run"
    )
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_records, args.batch)
        return

    print(f"machine: {machine()}; sum(range(1000)) = {calibration():.1f} µs")
    print(f"{args.records:,} mixed records in batches of {args.batch:,}, median of {args.runs}")
    figures = throughput(args.records, args.batch, args.runs, args.before)
    base = figures[0].per_cpu_second()
    print(
        f"{'path':40s} {'rec/CPU-s':>10s} {'rec/wall-s':>10s} {'µs/rec':>7s} "
        f"{'vs base':>7s} {'B/rec':>6s}"
    )
    for f in figures:
        print(
            f"{f.label:40s} {f.per_cpu_second():10,.0f} {f.per_wall_second():10,.0f} "
            f"{1e6 / f.per_cpu_second():7.1f} {f.per_cpu_second() / base:6.1f}x "
            f"{f.avro_bytes / f.records:6.1f}"
        )
    if not args.skip_memory:
        mem = memory(args.memory_records, args.batch)
        print(
            f"memory, {args.memory_records:,} records through the KCL protocol (peak RSS, MiB): "
            + ", ".join(f"{k} {v / 1024:.1f}" for k, v in mem.items() if k != "cpu_seconds")
            + f"; {mem['cpu_seconds']} CPU-s"
        )


if __name__ == "__main__":
    main()
