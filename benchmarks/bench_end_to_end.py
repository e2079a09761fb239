"""End to end: a scored file through process_scored_files into the embedded emulator.

The emulator runs in its own process (EmulatorProcess) and so does the worker (a child of this
script), so the worker's peak memory is its own: VmHWM of the worker process, and the largest VmHWM
of its pool processes. Sizes double (default 500k, 1M, 2M rows) to show memory stays flat while
time grows linearly. A one-process run at the first size is the baseline in the same run.

    python -m benchmarks.bench_end_to_end [--rows 500000,1000000,2000000] [--baseline-rows N]
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
from domain.models import ObjectRef
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
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = str(os.getpid())
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
    with DescendantPeak() as pool:
        cpu = time.process_time()
        started = time.perf_counter()
        outcome = registry.run_of("process_scored_files", settings)(
            ObjectRef.parse(uri), processes=processes
        )
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
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
                # The worker process's own CPU (pool processes and the emulator not included).
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


def _run(endpoint: str, ref: ObjectRef, stream: str, processes: int) -> dict[str, Any]:
    env = {**os.environ, **ENV, "AWS_ENDPOINT_URL": endpoint, "SCORED_OUTPUT_STREAM": stream}
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


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_end_to_end")
    parser.add_argument("--rows", default="500000,1000000,2000000")
    parser.add_argument("--baseline-rows", type=int, default=None)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        sys.exit(child(args.child, args.processes))
    sizes = [int(n) for n in args.rows.split(",")]
    baseline_rows = args.baseline_rows or sizes[0]
    print(f"machine: {machine()}")
    results: list[dict[str, Any]] = []
    with EmulatorProcess() as emulator:
        factory = ClientFactory(ClientOptions(endpoint_url=emulator.endpoint_url))
        plan = [(baseline_rows, 1)] + [(rows, args.processes) for rows in sizes]
        for index, (rows, processes) in enumerate(plan):
            stream = f"bench-out-{index}"
            ref = _prepare(factory, rows, stream, index)
            figures = _run(emulator.endpoint_url, ref, stream, processes)
            figures["processes"] = processes
            results.append(figures)
            print(
                f"{figures['rows']:>10,} rows  {processes} proc  {figures['seconds']:8.1f} s  "
                f"{figures['rows'] / figures['seconds']:9,.0f} rows/s  "
                f"worker CPU {figures['worker_cpu_us_per_row']:5.1f} µs/row  "
                f"worker peak {figures['worker_peak_mib']:7.1f} MiB  "
                f"pool peak {figures['pool_process_peak_mib']:7.1f} MiB  out {figures['out']:,}",
                flush=True,
            )
    return {"machine": machine(), "runs": results}


if __name__ == "__main__":
    main()
