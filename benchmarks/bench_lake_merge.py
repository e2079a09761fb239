"""merge_avro_files on scenario 3's month: 500 files x 1,000 registration records, as
save_campaign_data writes them, against record-by-record streaming (fastavro's reader into
fastavro's writer, dedupe by a set of dedupeIds), in the same run.

    python -m benchmarks.bench_lake_merge [files ...]      # default: 500 1000
    python -m benchmarks.bench_lake_merge 500 2000 --lakes none --methods blocks \
        --baseline /tmp/main-export                        # before/after, runs alternated

Three lakes per size:
- `none`: no duplicate;
- `rerun`: 1 % duplicates the way a re-run file leaves them: the last 1 % of the objects hold
  one earlier run's records again (consecutive objects, whole blocks of duplicates);
- `spread`: 1 % duplicates spread over every block (one in each ~100 records, everywhere).

`blocks-warm`: the `blocks` merge as a warm merge Lambda runs it: one unmeasured merge first (a
container's first type or invocation), then WARM_MERGES more in the same process, each measured
(the figure is their median), with the merge function's environment from deploy/template.py
(glibc's tunables that keep freed memory for the next merge); `blocks-warm-default` the same
with glibc's defaults, its baseline in the same run.

Files live in a temporary directory (a directory ObjectStore), so the merge's memory is its
own: each run is a fresh process, and its peak RSS (ru_maxrss) is reported beside the figure;
"memory flat as the files double" compares 500 files with 1,000. Records/s counts the sources'
records (what a merge has to get through). CPU µs per record is the process's user+system time.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import fastavro

from benchmarks.machine import machine
from benchmarks.measure import cpu_snapshot, spread

RECORDS_PER_FILE = 1_000
DAY = "2024/05"
TYPE = "registration"
BUCKET = "lake"
RUNS = 3
WARM_METHODS = ("blocks-warm", "blocks-warm-default")
METHODS = ("blocks", *WARM_METHODS, "spill", "records")
WARM_MERGES = 3  # measured merges after the first in one process (`blocks-warm`)
# The production merge over S3 (S3ObjectStore, 8 sources fetched ahead) against the emulator in
# a process of its own: `s3` as production wires it (small sources read once and held),
# `s3-read-twice` with nothing held (each source's head, then the whole of it: two GETs).
S3_METHODS = ("s3", "s3-read-twice")


class DirectoryStore:
    """The ObjectStore calls a merge makes, over files in a directory (bucket/key paths)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, ref: Any) -> str:
        # os.path, not pathlib: the stand-in for S3 should not cost more than the merge it feeds
        # (two Path objects per source were ~10 % of a merge's CPU).
        return os.path.join(self.root, ref.bucket, ref.key)

    def iter_chunks(self, ref: Any, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        from domain.models import ObjectNotFound

        try:
            handle = open(self._path(ref), "rb")  # noqa: SIM115 (closed below, as it is streamed)
        except FileNotFoundError:
            raise ObjectNotFound(ref) from None
        with handle:
            # The bytes wanted, known from the file's size: no read past the end to find it (a
            # GET's body ends where its Content-Length says).
            size = os.fstat(handle.fileno()).st_size
            handle.seek(start)
            left = max(0, (size if end is None else min(end, size)) - start)
            while left and (chunk := handle.read(min(left, 1 << 20))):
                left -= len(chunk)
                yield chunk

    def read_bytes(self, ref: Any) -> bytes:
        """A whole object (a merged day's sidecar, in a month's merge)."""
        from domain.models import ObjectNotFound

        try:
            return Path(self._path(ref)).read_bytes()
        except FileNotFoundError:
            raise ObjectNotFound(ref) from None

    @contextmanager
    def open_writer(self, ref: Any, content_type: str = "") -> Iterator[Any]:
        path = Path(self._path(ref))
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        with partial.open("wb") as handle:
            yield handle
        partial.replace(path)

    def list_objects(self, bucket: str, prefix: str) -> Iterator[Any]:
        from domain.models import ObjectInfo, ObjectRef

        # os.walk, not Path.rglob: the stand-in for S3's listing should not cost more than the
        # merge it feeds (rglob and Path objects were ~15 % of a merge's CPU).
        # Keys cut from the paths, not os.path.relpath (its abspath calls were ~7 % of a merge).
        base = os.path.join(self.root, bucket)
        cut = len(base) + 1
        found = []
        for folder, _, names in os.walk(os.path.join(base, os.path.dirname(prefix))):
            for name in names:
                path = os.path.join(folder, name)
                key = path[cut:].replace(os.sep, "/")
                if key.startswith(prefix):
                    found.append((key, os.stat(path).st_size))
        for key, size in sorted(found):
            yield ObjectInfo(ObjectRef(bucket, key), size, etag=key)

    def head(self, ref: Any) -> Any:
        from domain.models import ObjectInfo

        path = Path(self._path(ref))
        return ObjectInfo(ref, path.stat().st_size) if path.exists() else None

    def delete(self, ref: Any) -> None:
        Path(self._path(ref)).unlink(missing_ok=True)


def write_lake(root: Path, files: int, kind: str) -> int:
    """`files` lake files of 1,000 registrations each; returns the duplicates they hold."""
    from adapters.avro import AvroSchemas
    from benchmarks.stream_records import registration
    from domain.records import canonical_json, with_dedupe_id

    schemas = AvroSchemas(compression_level=1)
    rng = random.Random(11)
    folder = root / BUCKET / "avro" / TYPE / DAY / "01"
    folder.mkdir(parents=True)
    arrived = __import__("datetime").datetime(2024, 5, 1, tzinfo=__import__("datetime").UTC)
    rerun_files = files // 100 if kind == "rerun" else 0
    duplicates = 0
    serial = 0
    for number in range(files):
        records = []
        for position in range(RECORDS_PER_FILE):
            if number >= files - rerun_files:
                # A re-run: the records of an earlier stretch of files again.
                i = (number - (files - rerun_files)) * RECORDS_PER_FILE + position
                duplicates += 1
            elif kind == "spread" and position % 100 == 50 and serial > 0:
                i = rng.randrange(serial)
                duplicates += 1
            else:
                i = serial
                serial += 1
            raw = with_dedupe_id(registration(random.Random(i), i), canonical_json)
            records.append(schemas.conform(TYPE, raw, arrived).unwrap())
        name = f"shardId-000000000000-{number:06d}.avro"
        (folder / name).write_bytes(schemas.encode(TYPE, records))
    return duplicates


# The `spill` method's MERGE_KEYS_IN_MEMORY: it spills at both sizes (the production default,
# 500,000, holds 500 files' keys in memory and spills 1,000's).
SPILL_KEYS = 100_000


def merge_blocks(root: Path, in_memory_keys: int | None = None) -> tuple[int, int]:
    counts = merge_prefix(root, DAY, in_memory_keys)
    return counts.records, counts.duplicates


def merge_prefix(root: Path, prefix: str, in_memory_keys: int | None = None) -> Any:
    """The merge of `prefix` as production wires it (entrypoints/lake.py): the spilling key
    index and the sidecar's key log, by default holding up to 500,000 keys in memory."""
    from adapters.lake_compactor import AvroLakeCompactor
    from adapters.lake_keys import SpillingKeyIndex
    from adapters.lake_sidecar import SpooledKeyLog
    from domain.lake import LakeLayout
    from domain.workers.merge_avro_files import MergeRequest, merge_avro_files

    class Queue:
        def send(self, request: Any) -> None:
            pass

    store = DirectoryStore(root)
    # read_ahead=0: the files are local, there is no GET latency for the read-ahead threads to
    # hide, only their GIL handoffs to pay (adapters/lake_compactor.py has both measured).
    compactor = AvroLakeCompactor(store, compression_level=1, read_ahead=0)  # type: ignore[arg-type]
    counts = merge_avro_files(
        MergeRequest(prefix, (TYPE,)),
        store=store,  # type: ignore[arg-type]
        compactor=compactor,
        manifests=compactor,
        queue=Queue(),
        layout=LakeLayout(BUCKET),
        new_index=(
            SpillingKeyIndex
            if in_memory_keys is None
            else partial(SpillingKeyIndex, in_memory_keys=in_memory_keys)
        ),
        # Production's key log for the sidecar, not the domain's in-memory default, so memory
        # and time are what a merge pays.
        new_key_log=(
            SpooledKeyLog
            if in_memory_keys is None
            else partial(SpooledKeyLog, in_memory_keys=in_memory_keys)
        ),
    )
    assert not counts.refusals, counts.refusals
    return counts


def s3_store(endpoint: str) -> Any:
    """The S3 store on the emulator, made before the clock (a client's creation, ~0.2 s of
    botocore's models, is paid once per Lambda container, not per merge)."""
    from adapters.aws.clients import ClientFactory, ClientOptions
    from adapters.aws.s3 import S3ObjectStore

    store = S3ObjectStore(ClientFactory(ClientOptions(endpoint_url=endpoint)).client("s3"))
    store.head(_lake_ref(DAY))  # the first request's one-off costs (endpoint, signer)
    return store


def _lake_ref(key: str) -> Any:
    from domain.models import ObjectRef

    return ObjectRef(BUCKET, key)


def merge_s3(store: Any, hold: bool) -> tuple[int, int]:
    """merge_prefix's merge over S3 (the emulator), production's wiring."""
    from adapters.lake_compactor import HOLD_BYTES, AvroLakeCompactor
    from adapters.lake_keys import SpillingKeyIndex
    from adapters.lake_sidecar import SpooledKeyLog
    from domain.lake import LakeLayout
    from domain.workers.merge_avro_files import MergeRequest, merge_avro_files

    class Queue:
        def send(self, request: Any) -> None:
            pass

    compactor = AvroLakeCompactor(
        store,
        compression_level=1,
        abort_uploads=store.abort_open_uploads,
        hold_bytes=HOLD_BYTES if hold else 0,
    )
    layout = LakeLayout(BUCKET)
    counts = merge_avro_files(
        MergeRequest(DAY, (TYPE,)),
        store=store,
        compactor=compactor,
        manifests=compactor,
        queue=Queue(),
        layout=layout,
        new_index=SpillingKeyIndex,
        new_key_log=SpooledKeyLog,
    )
    assert not counts.refusals, counts.refusals
    return counts.records, counts.duplicates


def delete_merged_s3(endpoint: str) -> None:
    from adapters.aws.clients import ClientFactory, ClientOptions
    from domain.lake import LakeLayout

    s3 = ClientFactory(ClientOptions(endpoint_url=endpoint)).client("s3")
    layout = LakeLayout(BUCKET)
    for ref in (layout.merged_ref(TYPE, DAY), layout.sidecar_ref(TYPE, DAY)):
        s3.delete_object(Bucket=ref.bucket, Key=ref.key)


def upload_lake(root: Path, endpoint: str) -> None:
    from adapters.aws.clients import ClientFactory, ClientOptions

    s3 = ClientFactory(ClientOptions(endpoint_url=endpoint)).client("s3")
    s3.create_bucket(Bucket=BUCKET)
    base = root / BUCKET
    for path in sorted(base.rglob("*.avro")):
        s3.put_object(Bucket=BUCKET, Key=path.relative_to(base).as_posix(), Body=path.read_bytes())


def merge_records(root: Path) -> tuple[int, int]:
    """The straightforward merge: every record decoded, checked against a set, encoded again."""
    sources = sorted((root / BUCKET / "avro" / TYPE / DAY).rglob("*.avro"))
    seen: set[str] = set()
    duplicates = 0
    out_path = root / "baseline.avro"

    def kept() -> Iterator[Any]:
        nonlocal duplicates
        for path in sources:
            with path.open("rb") as handle:
                for record in fastavro.reader(handle):
                    dedupe = record["dedupeId"]  # type: ignore[index,call-overload]
                    if dedupe in seen:
                        duplicates += 1
                        continue
                    seen.add(dedupe)
                    yield record

    with sources[0].open("rb") as first:
        schema = fastavro.reader(first).writer_schema
    with out_path.open("wb") as out:
        fastavro.writer(out, schema, kept(), codec="deflate", codec_compression_level=1)
    out_path.unlink()
    return len(seen), duplicates


def _run(method: str, root: str, answer: Any) -> None:
    # Imports before the clock: a merge is measured, not a cold start (numpy and fastavro take
    # ~0.1 s to import, paid once per Lambda container).
    import adapters.lake_compactor
    import adapters.lake_keys  # noqa: F401
    import domain.workers.merge_avro_files  # noqa: F401

    # What the process holds before merging (the interpreter, numpy, fastavro, boto3's models):
    # the peak minus this is what the merge itself took.
    with open("/proc/self/statm") as statm:
        before_mib = int(statm.read().split()[1]) * resource.getpagesize() / 2**20
    # The merging process's tree (threads and any child it starts): clock ticks of 10 ms,
    # against merges of 0.1-1 s.
    store = s3_store(root) if method in S3_METHODS else None
    started, tree = time.perf_counter(), cpu_snapshot()
    if method in WARM_METHODS:
        answer.send(_warm_merges(Path(root), before_mib))
        return
    if method == "records":
        records, duplicates = merge_records(Path(root))
    elif method in S3_METHODS:
        records, duplicates = merge_s3(store, hold=method == "s3")
    else:
        records, duplicates = merge_blocks(Path(root), SPILL_KEYS if method == "spill" else None)
    wall, cpu = time.perf_counter() - started, cpu_snapshot().total - tree.total
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if method in S3_METHODS:
        delete_merged_s3(root)  # after the clock: the next run merges the month again
    answer.send((wall, cpu, records, duplicates, peak_mib, before_mib))


def _warm_merges(root: Path, before_mib: float) -> tuple[float, float, int, int, float, float]:
    """The first merge unmeasured, then WARM_MERGES measured ones (median wall and CPU), the
    merged output removed after each outside the clock."""
    merged = root / BUCKET / "avro" / TYPE / "merged"
    merge_blocks(root)
    shutil.rmtree(merged, ignore_errors=True)
    runs = []
    for _ in range(WARM_MERGES):
        started, tree = time.perf_counter(), cpu_snapshot()
        records, duplicates = merge_blocks(root)
        runs.append((time.perf_counter() - started, cpu_snapshot().total - tree.total))
        shutil.rmtree(merged, ignore_errors=True)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    wall = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[1] for r in runs)
    return wall, cpu, records, duplicates, peak_mib, before_mib


def _merge_function_variables() -> dict[str, str]:
    """The merge Lambda's own environment variables beyond the settings (deploy/template.py)."""
    from deploy.template import PROFILES

    return dict(PROFILES["merge_avro_files"].variables)


def measure(
    method: str, root: Path | str, code: str | None = None
) -> tuple[float, float, int, int, float, float]:
    """One merge in a fresh process (so its peak RSS is its own); then the merged file goes.
    `code`: a directory holding another checkout (the baseline), imported by the child first."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=_run, args=(method, str(root), theirs))
    # A spawned child starts with the parent's sys.path: the baseline's directory first makes
    # it import that checkout's adapters/ and domain/ (and its copy of this harness).
    if code is not None:
        sys.path.insert(0, code)
    # A spawned child's environment is the parent's at its start: glibc reads its tunables
    # before any Python runs, so they go in here, not in the child.
    extra = _merge_function_variables() if method == "blocks-warm" else {}
    saved = {name: os.environ.get(name) for name in extra}
    os.environ.update(extra)
    try:
        process.start()
    finally:
        if code is not None:
            sys.path.remove(code)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    try:
        result = _answer(ours, process)
    finally:
        process.join()
    if isinstance(root, Path):  # (an S3 run's child deletes its outputs itself)
        shutil.rmtree(root / BUCKET / "avro" / TYPE / "merged", ignore_errors=True)
    return result  # type: ignore[no-any-return]


class ChildDied(RuntimeError):
    """A measuring child ended without sending its figures (killed, out of memory, an error)."""


def _answer(ours: Connection, process: Any) -> Any:
    """The child's figures, or ChildDied once it has ended without them: a bare recv() waited
    forever for a child that had died (an OOM kill, an error before its send)."""
    wait([ours, process.sentinel])
    if ours.poll():  # sent, whether or not it has exited since
        return ours.recv()
    process.join()
    raise ChildDied(
        f"the measuring process died (exit code {process.exitcode}) before sending its figures"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_lake_merge", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("files", type=int, nargs="*", help="lake sizes in files (500 1000)")
    parser.add_argument("--lakes", default="none,rerun,spread", help="which lakes, comma-separated")
    parser.add_argument(
        "--methods", default=",".join(METHODS), help="which methods, comma-separated"
    )
    parser.add_argument("--runs", type=int, default=RUNS, help="runs of each (median, range)")
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="also run each method but `records` with the code of another checkout (e.g. a "
        "`git archive` of main), its runs alternated with this tree's",
    )
    args = parser.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    unknown = set(methods) - set(METHODS) - set(S3_METHODS)
    if unknown:
        choices = ", ".join(METHODS + S3_METHODS)
        parser.error(f"unknown methods {sorted(unknown)}: choose from {choices}")
    # (label, method, code directory or None for this tree)
    variants = [(m, m, None) for m in methods]
    if args.baseline:
        # Each block-level method with the other checkout's code too (its own copy of this
        # harness runs it), its runs alternated with this tree's.
        # (Not the warm ones: an older harness would run them as a first merge.)
        variants[:0] = [
            (f"{m} (baseline)", m, args.baseline)
            for m in methods
            if m != "records" and m not in WARM_METHODS
        ]
    sizes = args.files or [500, 1000]
    print(f"machine: {machine()}")
    print(
        "| files | lake | method | records in | duplicates | median s | records/s | "
        "CPU µs/record | peak RSS MiB | merge's own MiB | vs records | load |"
    )
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for files in sizes:
        for kind in args.lakes.split(","):
            root = Path(tempfile.mkdtemp(prefix="bench-lake-"))
            try:
                expected = write_lake(root, files, kind)
                # The lake's dirty pages written out before the clock: the kernel's writeback
                # of them had the first method measured ~25 % slower than a rerun of it.
                os.sync()
                total = files * RECORDS_PER_FILE
                emulator = None
                if any(m in S3_METHODS for m in methods):
                    from local.emulator import EmulatorProcess

                    # Its own process: the merging child's CPU is the client's alone.
                    emulator = EmulatorProcess().start()
                    upload_lake(root, emulator.endpoint_url)
                figures: dict[str, tuple[Any, ...]] = {}
                # Runs alternated between the variants: a change in the machine's load weighs
                # on all of them alike.
                measured: dict[str, list[Any]] = {label: [] for label, _, _ in variants}
                try:
                    for _ in range(args.runs):
                        for label, method, code in variants:
                            where: Path | str = root
                            if emulator is not None and method in S3_METHODS:
                                where = emulator.endpoint_url
                            measured[label].append(measure(method, where, code))
                except ChildDied as died:
                    print(f"{label}, {files} files, {kind}: {died}", file=sys.stderr)
                    return 1
                finally:
                    if emulator is not None:
                        emulator.stop()
                for label, method, _ in variants:
                    runs = measured[label]
                    for _, _, records, duplicates, _, _ in runs:
                        assert duplicates == expected and records == total - expected, (
                            method,
                            kind,
                            records,
                            duplicates,
                            expected,
                        )
                    wall = statistics.median(r[0] for r in runs)
                    rates = spread([total / r[0] for r in runs])
                    cpu = spread([r[1] / total * 1e6 for r in runs])
                    peak = max(r[4] for r in runs)
                    own = max(r[4] - r[5] for r in runs)
                    figures[label] = (wall, rates, cpu, peak, own, os.getloadavg()[0])
                for label, _, _ in variants:
                    wall, rates, cpu, peak, own, load = figures[label]
                    ratio = f"{figures['records'][0] / wall:.1f}x" if "records" in figures else "-"
                    print(
                        f"| {files} | {kind} | {label} | {total:,} | {expected:,} | {wall:.3f} | "
                        f"{rates.show(0)} | {cpu.show(2)} | {peak:.0f} | {own:.0f} | "
                        f"{ratio} | {load:.1f} |",
                        flush=True,
                    )
            finally:
                shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
