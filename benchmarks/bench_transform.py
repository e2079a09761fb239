"""Rows per second of the scored-file domain transform, against a straightforward baseline.

    python -m benchmarks.bench_transform [--rows 1000000] [--baseline-rows 100000] [--repeats 3]

One realistic generated file (local/sample_data.py, the demo's), in memory, in one run:

  baseline  the reference transform (`transform_rows`, domain/scoring/reference.py): row by
            row, asking phonenumbers.parse + is_valid_number and email_validator.validate_email
            for every row, one core, in this process
  ours-1    the production transform (`transform_chunk`, domain/scoring/transform.py): a
            column at a time, one core, in this process
  kernel-1  the compiled kernel (adapters/row_kernel.py, docs/kernel.md) with the Python
            transform for the rows it hands back, one core, in this process (absent where the
            kernel is not built)
  ours-N    the same through adapters/parallel.py's ProcessPoolChunkMapper on N processes
            (pool start-up included), results consumed in order as the worker does
  worker-N  the whole worker (process_scored_files) with in-memory fakes and the N-process
            mapper: header, blacklist, chunking, CSV writes, stream puts included

The baseline and ours-1 run on the first --baseline-rows rows (the baseline is slow;
rows/s does not depend on the length); ours-N and worker-N on all rows. Each figure is the
median of --repeats runs; the CPU column's range is the spread of those runs. Wall-clock
time; other load on the machine slows every variant alike.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson

from adapters.clock import FixedClock
from adapters.parallel import ProcessPoolChunkMapper
from adapters.row_kernel import build_kernel, kernel_transform_chunk, load_kernel, run_kernel
from benchmarks.machine import cpu_model, machine
from benchmarks.measure import cpu_snapshot, spread
from domain.models import DEFAULT_BAND_TIERS, Campaign, ObjectRef
from domain.scoring.bands import BandScale
from domain.scoring.chunks import DEFAULT_CHUNK_ROWS, SequentialMapper, chunk_lines
from domain.scoring.columns import parse_header
from domain.scoring.reference import transform_rows
from domain.scoring.transform import Chunk, TransformContext, transform_chunk
from domain.workers.process_scored_files import process_scored_files
from local.sample_data import generate
from tests.support.memory_objects import InMemoryObjectStore
from tests.support.memory_scored_files import (
    InMemoryCampaignDirectory,
    InMemoryRecordStream,
    RecordingNotifier,
)

SOURCE = ObjectRef("bench", "scored/bench1.20260101T000000.txt")
BLACKLIST = ObjectRef("bench", "blacklist.txt")


def _context(header: bytes, blacklist: frozenset[str]) -> TransformContext:
    return TransformContext.for_campaign(
        Campaign("bench1"),
        source_uri=SOURCE.uri,
        layout=parse_header(header).unwrap(),
        bands=BandScale.build("bench1", DEFAULT_BAND_TIERS, b"bench-salt").unwrap(),
        blacklist=blacklist,
        encode=orjson.dumps,
        max_record_bytes=1024 * 1024,
    )


def _chunks(lines: list[bytes], rows_per_chunk: int = DEFAULT_CHUNK_ROWS) -> Iterator[Chunk]:
    return chunk_lines(iter(lines), 2, rows_per_chunk)


def timed_transform(ctx: TransformContext, chunk: Chunk) -> tuple[Any, float]:
    """transform_chunk plus the CPU seconds it took in whichever process ran it."""
    started = time.process_time()
    result = transform_chunk(ctx, chunk)
    return result, time.process_time() - started


class _Cpu:
    """CPU seconds spent in worker processes, reported back with each chunk."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def consume(self, results: Iterator[tuple[Any, float]]) -> int:
        rows = 0
        for result, cpu in results:
            rows += result.rows
            self.seconds += cpu
            _ = len(result.csv), len(result.payloads)
        return rows


def _consume(results: Iterator[Any]) -> int:
    rows = 0
    for result in results:
        rows += result.rows
        _ = len(result.csv), len(result.payloads)
    return rows


class _Variant:
    """One variant: how to run it once, and its samples (wall rows/s, CPU µs per row)."""

    def __init__(
        self,
        label: str,
        rows: int,
        run: Callable[[], int],
        worker_cpu: _Cpu | None = None,
        cores: int = 1,
    ) -> None:
        self.label, self.rows, self.run = label, rows, run
        self.worker_cpu, self.cores = worker_cpu, cores
        self.rates: list[float] = []
        self.cpu_per_row: list[float] = []
        self.own_per_row: list[float] = []

    def sample(self) -> None:
        if self.worker_cpu is not None:
            self.worker_cpu.seconds = 0.0
        started, cpu_started = time.perf_counter(), time.process_time()
        tree = cpu_snapshot()
        done = self.run()
        elapsed = time.perf_counter() - started
        own = time.process_time() - cpu_started
        # The whole process tree (pool processes and their start-up, pickling, IPC), not only
        # the CPU the pool reports per chunk: that left out the cost of getting chunks there.
        cpu = cpu_snapshot().total - tree.total
        assert done == self.rows, f"{self.label}: {done} rows done, {self.rows} expected"
        self.rates.append(self.rows / elapsed)
        self.cpu_per_row.append(cpu / self.rows * 1e6)
        self.own_per_row.append(own / self.rows * 1e6)

    def summary(self) -> dict[str, Any]:
        """Median wall rows/s, and median CPU µs per row over this process and (when the variant
        reports it) its worker processes: CPU time is what other load distorts least."""
        cpu = spread(self.cpu_per_row).median
        return {
            "variant": self.label,
            "rows": self.rows,
            "rows_per_s": statistics.median(self.rates),
            "cpu_us_per_row": cpu,
            # This process alone: for ours-N, the parent's share (results, pool, chunking).
            "own_cpu_us_per_row": statistics.median(self.own_per_row),
            # What `cores` idle cores would do at this CPU cost per row (the load-free figure).
            "idle_capacity": self.cores * 1e6 / cpu,
            "runs": self.rates,
            "cpu_range": (min(self.cpu_per_row), max(self.cpu_per_row)),
        }


def _interleaved(variants: list[_Variant], repeats: int) -> list[dict[str, Any]]:
    """Each round runs every variant once, so that load coming and going on the shared machine
    hits all of them alike; the figures are medians over the rounds."""
    for _ in range(repeats):
        for variant in variants:
            variant.sample()
    return [variant.summary() for variant in variants]


def run(
    rows: int = 1_000_000,
    baseline_rows: int = 100_000,
    repeats: int = 3,
    processes: int = 2,
    rows_per_chunk: int = DEFAULT_CHUNK_ROWS,
) -> dict[str, Any]:
    started = time.perf_counter()
    generated = generate(rows)
    generated_s = time.perf_counter() - started
    all_lines = generated.data.split(b"\n")
    header, lines = all_lines[0], all_lines[1:-1]
    ctx = _context(header, generated.blacklist)
    sample = lines[: min(baseline_rows, rows)]
    mapper = ProcessPoolChunkMapper(processes)
    pool_cpu = _Cpu()
    load_before = os.getloadavg()

    def sequential(fn: Callable[[TransformContext, Chunk], Any], c: TransformContext) -> int:
        return _consume(SequentialMapper().map(fn, c, _chunks(sample, rows_per_chunk)))

    one_core = [
        _Variant("baseline", len(sample), lambda: sequential(transform_rows, ctx)),
        _Variant("ours-1", len(sample), lambda: sequential(transform_chunk, ctx)),
    ]
    kernel = load_kernel()
    if kernel is not None:
        one_core.append(
            _Variant("kernel-1", len(sample), lambda: sequential(kernel_transform_chunk, ctx))
        )
    pooled = [
        _Variant(
            f"ours-{processes}",
            len(lines),
            lambda: pool_cpu.consume(
                mapper.map(timed_transform, ctx, _chunks(lines, rows_per_chunk))
            ),
            worker_cpu=pool_cpu,
            cores=processes,
        ),
        _Variant(
            f"worker-{processes}", len(lines), lambda: _worker(generated, mapper, rows_per_chunk)
        ),
    ]
    results = _interleaved(one_core, repeats) + _interleaved(pooled, repeats)
    baseline = results[0]["rows_per_s"]
    for result in results:
        result["vs_baseline"] = result["rows_per_s"] / baseline
    return {
        "rows": rows,
        "generated_s": generated_s,
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "rows_per_chunk": rows_per_chunk,
        "load_before": load_before,
        "load_average": os.getloadavg(),
        "machine": machine(),
        "kernel_handed_back": None if kernel is None else _handed_back(kernel, ctx, sample),
        "results": results,
    }


def _handed_back(kernel: Any, ctx: TransformContext, lines: list[bytes]) -> float:
    """The share of rows the kernel hands back to the Python transform."""
    made: Any = build_kernel(kernel, ctx)
    back = 0
    for chunk in _chunks(lines):
        cuts = run_kernel(made, chunk)[1]
        back += sum(end - start for _, start, end, _, _ in cuts)
    return back / len(lines)


def _worker(generated: Any, mapper: ProcessPoolChunkMapper, rows_per_chunk: int) -> int:
    store = InMemoryObjectStore(
        {SOURCE: generated.data, BLACKLIST: "\n".join(sorted(generated.blacklist)).encode()}
    )
    counts = process_scored_files(
        SOURCE,
        store=store,
        stream=InMemoryRecordStream(keep=False),
        campaigns=InMemoryCampaignDirectory([Campaign("bench1", band_salt=b"bench-salt")]),
        notifier=RecordingNotifier(),
        clock=FixedClock(datetime(2026, 1, 1, tzinfo=UTC)),
        encode=orjson.dumps,
        blacklist=BLACKLIST,
        mapper=mapper,
        rows_per_chunk=rows_per_chunk,
    ).unwrap()
    return counts.rows_in


def print_table(report: dict[str, Any]) -> None:
    print(
        f"{report['rows']:,} generated rows ({report['generated_s']:.1f} s to generate); "
        f"{report['cpus']} CPUs ({report['cpu_model']}), Python {report['python']}, "
        f"{report['rows_per_chunk']:,} rows a chunk; load average before "
        f"{', '.join(f'{x:.1f}' for x in report['load_before'])}, after "
        f"{', '.join(f'{x:.1f}' for x in report['load_average'])}"
    )
    print(
        f"{'variant':10} {'rows':>10} {'rows/s':>9} {'x base':>7} {'CPU us/row':>11} "
        f"{'parent':>7} {'idle cap.':>10}  runs (rows/s)"
    )
    for r in report["results"]:
        runs = ", ".join(f"{x:,.0f}" for x in r["runs"])
        low, high = r["cpu_range"]
        cpu = "-" if r["cpu_us_per_row"] is None else f"{r['cpu_us_per_row']:.1f}"
        runs += "" if r["cpu_us_per_row"] is None else f"; CPU {low:.2f}-{high:.2f} us/row"
        capacity = "-" if r["idle_capacity"] is None else f"{r['idle_capacity']:,.0f}"
        print(
            f"{r['variant']:10} {r['rows']:>10,} {r['rows_per_s']:>9,.0f} "
            f"{r['vs_baseline']:>6.1f}x {cpu:>11} {r['own_cpu_us_per_row']:>7.1f} {capacity:>10}  "
            f"{runs}"
        )
    print(
        "CPU us/row: the whole process tree (pool processes included, clock ticks of 10 ms); "
        "parent: this process alone. "
        "idle cap.: rows/s that CPU cost allows on idle cores (1 core; N for ours-N)."
    )
    back = report["kernel_handed_back"]
    print(
        "kernel: not built (no Rust toolchain)"
        if back is None
        else f"kernel-1: {back:.2%} of the rows handed back to the Python transform"
    )
    print(
        "fakes: worker-N streams into an in-memory record stream and writes to an in-memory "
        "object store (production does S3 and Kinesis I/O: bench_end_to_end measures that)"
    )
    print(report["machine"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline-rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--rows-per-chunk", type=int, default=DEFAULT_CHUNK_ROWS)
    args = parser.parse_args()
    print_table(
        run(args.rows, args.baseline_rows, args.repeats, args.processes, args.rows_per_chunk)
    )


if __name__ == "__main__":
    main()
