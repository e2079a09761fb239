"""End to end: a scored file through process_scored_files into the embedded emulator, all in.

The emulator runs in its own process (EmulatorProcess) and so does the worker (a child of this
script). Measured per run: rows/s; the CPU µs/row of the worker's whole process tree (the
worker, its forkserver and pool processes, the producer's threads: benchmarks/measure.py, read
in the worker before it exits, pool processes reaped by the forkserver included); the
emulator's CPU µs/row apart; the worker's peak memory (VmHWM) and its pool processes' largest.

Variants, alternating run by run so machine load hits both alike:
- before: KINESIS_PUT_REQUEST=botocore into an emulator storing through moto's put_records
  (`--moto-put-store`): the put path as it was (issue 21's baseline);
- lean: the lean request into the emulator as it is, the Python transform;
- after: the same with the compiled kernel where built (SCORING_KERNEL=auto: docs/kernel.md).
Every run uploads a file under a key of its own into a stream of its own (a reused key is found
processed and measures nothing). Medians of --runs with the range, per size; sizes can double
(--rows 500000,1000000,2000000) to show memory flat while time grows linearly.

    python -m benchmarks.bench_end_to_end [--rows 150000] [--runs 3] [--processes 2]
        [--chunk-rows 2000] [--checkpoint-rows 1,10000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

import orjson

from adapters.aws.clients import ClientFactory, ClientOptions
from adapters.aws.s3 import S3ObjectStore
from benchmarks.machine import machine
from benchmarks.measure import spread, tree_cpu_seconds
from domain.models import ObjectRef
from entrypoints.settings import Settings
from local.emulator import EmulatorProcess
from local.sample_data import blacklist_lines, scored_file_bytes

CAMPAIGN = "bench-presale"
ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "SCORING_BUCKET": "bench-scoring",
    "BAND_SECRET": "bench-secret",
    "LOG_LEVEL": "WARNING",
}


def _vm_hwm_mib() -> float:
    with open("/proc/self/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _status_kib(pid: str, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as status:
            for line in status:
                if line.startswith(field):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _parent(pid: str) -> str:
    return str(_status_kib(pid, "PPid:"))


class DescendantPeak:
    """The largest VmHWM among this process's descendants (pool workers are forkserver's
    children, not ours, so getrusage(RUSAGE_CHILDREN) never sees them): sampled twice a
    second while the worker runs."""

    def __init__(self) -> None:
        self.peak_kib = 0
        self.cpu_seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = str(os.getpid())
        started = time.thread_time()
        try:
            self._walk(me)
        finally:
            # The sampler is the benchmark's, not the worker's: its CPU is taken out.
            self.cpu_seconds = time.thread_time() - started

    def _walk(self, me: str) -> None:
        while not self._stop.wait(0.5):
            pids = [p for p in os.listdir("/proc") if p.isdigit()]
            parents = {pid: _parent(pid) for pid in pids}
            for pid in pids:
                ancestor = parents.get(pid)
                while ancestor and ancestor not in (me, "0", "1"):
                    ancestor = parents.get(ancestor)
                if ancestor == me:
                    self.peak_kib = max(self.peak_kib, _status_kib(pid, "VmHWM:"))

    def __enter__(self) -> DescendantPeak:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def child(uri: str, processes: int) -> int:
    """The worker process: runs the file, prints one JSON line of figures."""
    from entrypoints import bootstrap, registry
    from entrypoints.settings import Settings

    settings = Settings.from_env()
    bootstrap.configure_logging(settings)
    me = os.getpid()
    with DescendantPeak() as pool:
        cpu = tree_cpu_seconds(me, reaped=True)
        started = time.perf_counter()
        outcome = registry.run_of("process_scored_files", settings)(
            ObjectRef.parse(uri), processes=processes
        )
        seconds = time.perf_counter() - started
        # Before exit: the forkserver is still live, holding its reaped pool processes' CPU.
        cpu = tree_cpu_seconds(me, reaped=True) - cpu
    cpu -= pool.cpu_seconds
    counts = outcome.unwrap()
    if counts.already_processed:  # a measurement of nothing done (issue 21): never reported
        raise SystemExit(f"{uri} was processed already: each run needs a key of its own")
    pool_kib = pool.peak_kib
    print(
        json.dumps(
            {
                "rows": counts.rows_in,
                "out": counts.rows_out,
                "seconds": seconds,
                # The worker's process tree (pool, forkserver, threads); not the emulator.
                "worker_cpu_us_per_row": cpu * 1e6 / max(counts.rows_in, 1),
                "worker_peak_mib": _vm_hwm_mib(),
                "pool_process_peak_mib": pool_kib / 1024,
            }
        ),
        flush=True,
    )
    return 0


def _prepare(factory: ClientFactory, rows: int, stream: str, run: int) -> ObjectRef:
    s3, kinesis = factory.client("s3"), factory.client("kinesis")
    bucket = ENV["SCORING_BUCKET"]
    if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=bucket)
        store = S3ObjectStore(s3)
        blacklist = "\n".join(blacklist_lines(5_000)) + "\n"
        store.put_bytes(ObjectRef(bucket, "blacklist/emails.txt"), blacklist.encode())
        config = {"id": CAMPAIGN, "name": "Bench", "options": {"allowIntlPhones": False}}
        store.put_bytes(ObjectRef(bucket, f"campaigns/{CAMPAIGN}.json"), orjson.dumps(config))
    kinesis.create_stream(StreamName=stream, ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName=stream)
    # A key per run: the baseline and the first size used to share one, so the second run found
    # the file done and reported 221,535 rows/s for doing nothing.
    ref = ObjectRef(bucket, f"scored/{CAMPAIGN}.run{run}-rows{rows}.txt")
    with S3ObjectStore(s3).open_writer(ref) as writer:
        for chunk in scored_file_bytes(rows, seed=rows):
            writer.write(chunk)
    return ref


def _run(
    endpoint: str,
    ref: ObjectRef,
    stream: str,
    processes: int,
    request: str,
    kernel: str,
    chunk_rows: int,
    checkpoint_rows: int,
) -> dict[str, Any]:
    env = {
        **os.environ,
        **ENV,
        "AWS_ENDPOINT_URL": endpoint,
        "SCORED_OUTPUT_STREAM": stream,
        "KINESIS_PUT_REQUEST": request,
        "SCORING_KERNEL": kernel,
        "SCORED_FILE_CHUNK_ROWS": str(chunk_rows),
        "SCORED_FILE_CHECKPOINT_ROWS": str(checkpoint_rows),
    }
    command = [
        sys.executable,
        "-m",
        "benchmarks.bench_end_to_end",
        "--child",
        ref.uri,
        "--processes",
        str(processes),
    ]
    answer = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if answer.returncode != 0:
        raise RuntimeError(f"worker process failed:\n{answer.stderr[-3000:]}")
    return dict(json.loads(answer.stdout.strip().splitlines()[-1]))


# name -> (KINESIS_PUT_REQUEST, emulator storing through moto's put_records, SCORING_KERNEL)
VARIANTS = {
    "before": ("botocore", True, "python"),
    "lean": ("lean", False, "python"),
    "after": ("lean", False, "auto"),
}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_end_to_end",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--rows", default="150000", help="sizes, comma-separated")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--variants", default="before,lean,after")
    parser.add_argument(
        "--chunk-rows",
        default=str(Settings().scored_file_chunk_rows),
        help="SCORED_FILE_CHUNK_ROWS values, comma-separated: each variant runs with each",
    )
    parser.add_argument(
        "--checkpoint-rows",
        default=str(Settings().scored_file_checkpoint_rows),
        help="SCORED_FILE_CHECKPOINT_ROWS values, comma-separated (1: a checkpoint a chunk, "
        "as before); each variant runs with each",
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        sys.exit(child(args.child, args.processes))
    sizes = [int(n) for n in args.rows.split(",")]
    variants = [v for v in args.variants.split(",") if v]
    chunk_sizes = [int(n) for n in args.chunk_rows.split(",")]
    checkpoint_sizes = [int(n) for n in args.checkpoint_rows.split(",")]
    combos = [(v, c, k) for v in variants for c in chunk_sizes for k in checkpoint_sizes]
    print(f"machine: {machine()}; {args.processes} pool processes")
    print(f"load before: {os.getloadavg()[0]:.2f}", flush=True)
    results: dict[tuple[int, str], list[dict[str, Any]]] = {}
    emulators = {
        name: EmulatorProcess(moto_put_store=VARIANTS[name][1]).start() for name in variants
    }
    try:
        index = 0
        for rows in sizes:
            for _ in range(args.runs):
                for name, chunk_rows, checkpoint_rows in combos:
                    label = name + (f"/{chunk_rows}" if len(chunk_sizes) > 1 else "")
                    label += f"/ckpt{checkpoint_rows}" if len(checkpoint_sizes) > 1 else ""
                    emulator = emulators[name]
                    factory = ClientFactory(ClientOptions(endpoint_url=emulator.endpoint_url))
                    stream = f"bench-out-{index}"
                    ref = _prepare(factory, rows, stream, index)
                    index += 1
                    server = tree_cpu_seconds(emulator.pid)
                    request, _, kernel = VARIANTS[name]
                    figures = _run(
                        emulator.endpoint_url,
                        ref,
                        stream,
                        args.processes,
                        request,
                        kernel,
                        chunk_rows,
                        checkpoint_rows,
                    )
                    figures["emulator_cpu_us_per_row"] = (
                        (tree_cpu_seconds(emulator.pid) - server) * 1e6 / figures["rows"]
                    )
                    results.setdefault((rows, label), []).append(figures)
                    print(
                        f"  {label:<16} {figures['rows']:>9,} rows {figures['seconds']:6.1f} s "
                        f"worker tree {figures['worker_cpu_us_per_row']:5.1f} µs/row "
                        f"emulator {figures['emulator_cpu_us_per_row']:5.1f} µs/row",
                        flush=True,
                    )
    finally:
        for emulator in emulators.values():
            emulator.stop()
    print(f"load after: {os.getloadavg()[0]:.2f}")
    print(
        "| variant | rows | rows/s | worker tree CPU µs/row | emulator CPU µs/row "
        "| worker peak MiB | pool process peak MiB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for (rows, name), runs in results.items():
        rate = spread([r["rows"] / r["seconds"] for r in runs])
        worker = spread([r["worker_cpu_us_per_row"] for r in runs])
        emulator_cpu = spread([r["emulator_cpu_us_per_row"] for r in runs])
        print(
            f"| {name} | {rows:,} | {rate.show(0)} | {worker.show()} | {emulator_cpu.show()} "
            f"| {max(r['worker_peak_mib'] for r in runs):.0f} "
            f"| {max(r['pool_process_peak_mib'] for r in runs):.0f} |"
        )
    return {"machine": machine(), "runs": {f"{k[0]}:{k[1]}": v for k, v in results.items()}}


if __name__ == "__main__":
    main()
