"""The S3 writer's multipart upload: parts in the writer's own thread against parts uploading in
the background (1, 2 and 4 in flight), in the same run, on S3-like latency.

    python -m benchmarks.bench_s3_upload [--mib 32] [--latency 0.15] [--work-ms 5] [--runs 3]

`--mib` MiB are written in 64 KiB pieces (a merge writes blocks of about that size) through
`S3ObjectStore.open_writer` with its default 8 MiB parts, over HTTP to the emulator in a process
of its own (local.emulator.EmulatorProcess), so this process's CPU is the writer's. S3's upload
time is simulated the way the lake merge's read-ahead measurement simulates GET latency: a sleep,
here `--latency` seconds before each UploadPart is sent (a botocore before-send handler in this
benchmark; ~0.1-0.3 s is an 8 MiB part's time on Lambda). Two producers:
- `idle`: the pieces are ready; the writer's own cost, and the latency alone;
- `merge`: `--work-ms` of CPU-bound Python per MiB before it is written (the GIL held, as the
  merge holds it: ~5 ms/MiB is its 2 M records/s of ~90 bytes), the work the uploads overlap.

Each variant runs `--runs` times (interleaved), each in a fresh process (spawn): wall seconds,
the writer process's CPU (user+system, every thread: benchmarks.measure.cpu_snapshot in the
child, around the write only) per MiB, the emulator's CPU per MiB apart, the peak RSS over
what the process held before writing, and (idle only,
a second untimed write under tracemalloc) the peak Python allocation: the writer's bound is
(uploads in flight + 1) x 8 MiB. The object is checked after each run (size, part count) and
deleted. Medians with the spread; baseline: the parts in the writer's own thread (in-thread).
The latency is simulated (a sleep): the uploads' overlap is measured, not S3's network.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import time
import tracemalloc
from typing import Any

from benchmarks.machine import machine
from benchmarks.measure import cpu_snapshot, spread, tree_cpu_seconds

PIECE = 64 * 1024
MIB = 1024 * 1024
BUCKET = "bench-upload"
VARIANTS = (0, 1, 2, 4)  # uploads in flight; 0 = each part in the writer's thread


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / MIB


def _busy(seconds: float) -> None:
    """CPU-bound Python holding the GIL (a merge's block copying and key checks)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _run(endpoint: str, key: str, options: dict[str, Any], answer: Any) -> None:
    from adapters.aws.clients import ClientFactory, ClientOptions
    from adapters.aws.s3 import S3ObjectStore
    from domain.models import ObjectRef

    client = ClientFactory(ClientOptions(endpoint_url=endpoint)).client("s3")
    latency = options["latency"]

    def s3_latency(**_: Any) -> None:
        time.sleep(latency)  # returning None: the request is then sent as usual

    client.meta.events.register("before-send.s3.UploadPart", s3_latency)
    store = S3ObjectStore(client, uploads_in_flight=options["in_flight"])
    piece = os.urandom(PIECE)
    work = options["work_ms"] / 1000 * PIECE / MIB
    pieces = options["mib"] * MIB // PIECE
    before = _rss_mib()
    started, snapshot = time.perf_counter(), cpu_snapshot()
    served = tree_cpu_seconds(options["server"])
    with store.open_writer(ObjectRef(BUCKET, key)) as out:
        for _ in range(pieces):
            if work:
                _busy(work)
            out.write(piece)
    wall, cpu = time.perf_counter() - started, cpu_snapshot().total - snapshot.total
    emulated = tree_cpu_seconds(options["server"]) - served  # the timed write's alone
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    traced = None
    if not work:
        # Once more under tracemalloc (untimed): what Python holds at most, the bound itself;
        # RSS adds the allocator's slack (freed parts not handed back at once).
        tracemalloc.start()
        with store.open_writer(ObjectRef(BUCKET, key)) as out:
            for _ in range(pieces):
                out.write(piece)
        traced = tracemalloc.get_traced_memory()[1] / MIB
        tracemalloc.stop()
    answer.send((wall, cpu, emulated, peak - before, traced))


def measure(
    endpoint: str, options: dict[str, Any]
) -> tuple[float, float, float, float, float | None]:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    key = f"upload-{options['in_flight']}-{options['work_ms']}.bin"
    process = context.Process(target=_run, args=(endpoint, key, options, theirs))
    process.start()
    result = ours.recv()
    process.join()
    return result  # type: ignore[no-any-return]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_s3_upload", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--mib", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.15)
    parser.add_argument("--work-ms", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)

    from adapters.aws.clients import ClientFactory, ClientOptions
    from local.emulator import EmulatorProcess

    print(f"machine: {machine()}")
    print(
        f"{args.mib} MiB in 64 KiB writes, 8 MiB parts, {args.latency * 1000:.0f} ms per part "
        f"(simulated: a sleep before each UploadPart); median of {args.runs} runs (low-high)"
    )
    variants = [(p, w, n) for p, w in (("idle", 0.0), ("merge", args.work_ms)) for n in VARIANTS]
    rows: dict[tuple[str, int], list[tuple[float, float, float, float, float | None]]] = {}
    # Every snapshot inside the block: once reaped, the emulator's CPU would join
    # RUSAGE_CHILDREN and count as the benchmark's.
    with EmulatorProcess() as emulator:
        server = emulator.pid
        s3 = ClientFactory(ClientOptions(endpoint_url=emulator.endpoint_url)).client("s3")
        s3.create_bucket(Bucket=BUCKET)
        for _ in range(args.runs):
            for producer, work_ms, in_flight in variants:
                options = {
                    "mib": args.mib,
                    "latency": args.latency,
                    "work_ms": work_ms,
                    "in_flight": in_flight,
                    "server": server,
                }
                wall, cpu, emulated, own, traced = measure(emulator.endpoint_url, options)
                key = f"upload-{in_flight}-{work_ms}.bin"
                head = s3.head_object(Bucket=BUCKET, Key=key)
                parts = -(-args.mib * MIB // (8 * MIB))
                assert head["ContentLength"] == args.mib * MIB, head
                assert head["ETag"].strip('"').endswith(f"-{parts}"), head["ETag"]
                s3.delete_object(Bucket=BUCKET, Key=key)
                rows.setdefault((producer, in_flight), []).append(
                    (wall, cpu / args.mib * 1e6, emulated / args.mib * 1e6, own, traced)
                )
    print(
        "| producer | uploads in flight | wall s | writer CPU µs/MiB | emulator CPU µs/MiB "
        "| RSS over start MiB (max) | traced peak MiB | wall vs in-thread |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for (producer, in_flight), runs in rows.items():
        walls = spread([r[0] for r in runs])
        base = spread([r[0] for r in rows[(producer, 0)]]).median
        peaks = [r[4] for r in runs if r[4] is not None]
        label = "baseline: in-thread" if in_flight == 0 else str(in_flight)
        print(
            f"| {producer} | {label} | {walls.show(2)} | {spread([r[1] for r in runs]).show(0)} "
            f"| {spread([r[2] for r in runs]).show(0)} | {max(r[3] for r in runs):.0f} "
            f"| {f'{max(peaks):.1f}' if peaks else '-'} | {base / walls.median:.2f}x |",
            flush=True,
        )
    print(f"machine after: {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
