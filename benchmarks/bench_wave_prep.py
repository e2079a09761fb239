"""Wave prep at scenario 1's shape: eligible fans -> 50 markets, total capacity 100,000, read
through the production read paths from input generated BEFORE the clock starts.

Each variant runs `--runs` times, each run in a child process of its own (its peak memory,
VmHWM, is its own; its CPU is the child's, every thread included); the figure is the median
with the range:
- `lake N`: process_sms_wave_files over LakeEligibleFans, reading Avro `scoring` files (100,000
  records each, deflate, as the lake writes them) pre-generated into `--data-dir`; the object
  store reads them from disk in 1 MiB chunks (what S3ObjectStore.iter_chunks hands over; S3's
  GET latency is not in the figure), everything the worker writes goes to memory; decoded by
  the compiled kernel (adapters/avro_fans.py; decoder "rust": the run fails where it is not built);
- `lake-fastavro N`: the same files decoded by fastavro + `fan_from_scoring` (the reference,
  and the path without the kernel): the same-run baseline of `lake`;
- `athena N`: over AthenaEligibleFans and AthenaQueryEngine with a real boto3 Athena client
  (SigV4, botocore's JSON parsing) against a local server (a process of its own, its CPU
  reported apart) answering GetQueryResults with pre-generated pages of 1,000 rows after
  `--page-delay` seconds; the next page fetched ahead (adapters/aws/athena_engine.py);
- `athena-serial N`: the same, pages fetched one after another (the engine before read-ahead):
  the same-run baseline of the read-ahead;
- `athena-s3 N`: the same engine reading the query's result file instead of pages (what it
  does in production unless S3 refuses the read): the CSV, written as Athena writes it before
  the clock, is served by the same local server as S3's GetObject (path-style, one stream) and
  read through a real boto3 S3 client (SigV4, urllib3), parsed by adapters/aws/athena_csv.py;
- `generated N`: the old figure: fans made by a Python generator as they are read (its cost
  inside the measurement; 46 % of it at 2 M);
- `baseline N`: the straightforward selection (hold every eligible fan, sort all claims, walk
  them greedily; tests/property/test_wave_selection.py's reference), generator included, no
  files.

    python -m benchmarks.bench_wave_prep [--fans 2000000] [--variants lake,athena,...]
        [--runs 3] [--page-delay 0.02] [--data-dir /tmp/bench_wave_prep]

`athena` and `athena-serial` measure GetQueryResults (the engine's fallback where the results
bucket refuses reads; `results_from_s3=False`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.machine import machine
from benchmarks.measure import spread, tree_cpu_seconds
from domain.wave_prep.fans import EligibleFan

MARKETS = 50
FILE_RECORDS = 100_000  # scoring records per lake file
PAGE = 1_000  # Athena's rows per GetQueryResults page
TOTAL_CAPACITY = 100_000
CAMPAIGN = "bench-wave"
DATE_KEY = "2026-12-01"


def fans(n: int, seed: int = 7) -> Iterator[EligibleFan]:
    """`n` fans: a primary market (some markets far more popular than others), 0-2 later
    preferences, a phone for 90 %, an email for 95 %, 3 % verdict false, 2 % already coded."""
    rnd = random.Random(seed)
    weights = [1 / (i + 1) for i in range(MARKETS)]
    market_ids = [f"m{i:02d}" for i in range(MARKETS)]
    primaries = rnd.choices(market_ids, weights, k=n)
    for i in range(n):
        later = tuple(rnd.sample(market_ids, rnd.randint(0, 2)))
        yield EligibleFan(
            global_user_id=f"g{i:08d}",
            score=rnd.random(),
            market_ids=(primaries[i], *later),
            verdict=rnd.random() > 0.03,
            has_codes=rnd.random() < 0.02,
            user_id=f"u{i:08d}",
            first_name="Fan",
            last_name=f"Number{i}",
            email=f"fan{i}@example.com" if rnd.random() < 0.95 else "",
            phone=f"+1212{i % 10_000_000:07d}" if rnd.random() < 0.9 else "",
            locale="en-US",
        )


def capacities() -> dict[str, int]:
    return {f"m{i:02d}": TOTAL_CAPACITY // MARKETS for i in range(MARKETS)}


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- input, generated before any clock starts ------------------------------------------------


def _scoring(fan: EligibleFan) -> dict[str, Any]:
    """The lake's record of a fan (the lake keeps the primary market only)."""
    return {
        "type": "scoring", "dedupeId": f"d{fan.global_user_id}", "receivedAt": None,
        "campaignId": CAMPAIGN, "globalUserId": fan.global_user_id, "memberId": fan.user_id,
        "email": fan.email or None, "phone": fan.phone or None, "phoneConfirmed": None,
        "firstName": fan.first_name, "lastName": fan.last_name, "marketId": fan.market_ids[0],
        "locale": fan.locale, "score": fan.score, "band": None, "band_score": fan.score,
        "tags": [], "verdict": fan.verdict, "__meta": None, "extra": {},
    }  # fmt: skip


def lake_dir(data_dir: Path, n: int) -> Path:
    """Avro scoring files of `n` fans, written once and reused (`done` marks a complete set)."""
    from adapters.avro import AvroSchemas

    target = data_dir / f"lake-{n}"
    if (target / "done").exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    schemas, source = AvroSchemas(), fans(n)
    for part in range(0, n, FILE_RECORDS):
        records = [_scoring(next(source)) for _ in range(min(FILE_RECORDS, n - part))]
        with open(target / f"part-{part // FILE_RECORDS:04d}.avro", "wb") as out:
            schemas.write(out, "scoring", records)
    (target / "done").touch()
    return target


def athena_pages(data_dir: Path, n: int) -> Path:
    """GetQueryResults bodies of `n` fans' rows (the header first), one page a line."""
    from adapters.aws.athena_fans import COLUMNS

    target = data_dir / f"athena-{n}.jsonl"
    if target.exists():
        return target

    def row(values: list[str | None]) -> dict[str, Any]:
        return {"Data": [{} if v is None else {"VarCharValue": v} for v in values]}

    def values(f: EligibleFan) -> list[str | None]:
        return [f.global_user_id, f.user_id, f.first_name, f.last_name, f.email or None,
                f.phone or None, f.locale, f.market_ids[0], repr(f.score),
                "true" if f.verdict else "false", "true" if f.has_codes else "false"]  # fmt: skip

    columns = {"ColumnInfo": [{"Name": c, "Label": c, "Type": "varchar"} for c in COLUMNS]}
    rows: list[dict[str, Any]] = [row(list(COLUMNS))]
    partial = target.with_suffix(".partial")
    with open(partial, "w", encoding="utf-8") as out:
        page = 0
        for fan in fans(n):
            rows.append(row(values(fan)))
            if len(rows) == PAGE:
                page += 1
                body = {"ResultSet": {"Rows": rows, "ResultSetMetadata": columns}}
                out.write(json.dumps(body | {"NextToken": f"p{page}"}) + "\n")
                rows = []
        out.write(json.dumps({"ResultSet": {"Rows": rows, "ResultSetMetadata": columns}}) + "\n")
    partial.rename(target)
    return target


def athena_csv(data_dir: Path, n: int) -> Path:
    """The query's result file of `n` fans as Athena writes it: a header, every value quoted
    (quotes doubled), NULL an empty unquoted field (no email or phone)."""
    from adapters.aws.athena_fans import COLUMNS

    target = data_dir / f"athena-{n}.csv"
    if target.exists():
        return target

    def line(values: list[str | None]) -> str:
        return ",".join("" if v is None else '"' + v.replace('"', '""') + '"' for v in values)

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".csv-partial")
    with open(partial, "w", encoding="utf-8", newline="") as out:
        out.write(line(list(COLUMNS)) + "\n")
        for f in fans(n):
            out.write(line([f.global_user_id, f.user_id, f.first_name, f.last_name,
                            f.email or None, f.phone or None, f.locale, f.market_ids[0],
                            repr(f.score), "true" if f.verdict else "false",
                            "true" if f.has_codes else "false"]) + "\n")  # fmt: skip
    partial.rename(target)
    return target


# --- the local Athena ------------------------------------------------------------------------


def serve_athena(pages_path: Path, delay: float) -> None:
    """Athena's JSON protocol for the calls the engine makes; GetQueryResults answers page
    `NextToken` from the file; S3's GetObject of `s3://out/athena/q1.csv` (path-style) answers
    the result file beside it (`.csv` for `.jsonl`), held in memory. Prints its port, then
    answers each stdin line with its CPU."""
    from tests.support.async_http_server import AsyncHttpServer
    from tests.support.http_server import Request, Response

    offsets, position = [], 0
    if pages_path.exists():  # no pages for athena-s3
        with open(pages_path, "rb") as f:
            for line in f:
                offsets.append((position, len(line) - 1))
                position += len(line)
            fd = os.open(pages_path, os.O_RDONLY)
    csv_path = pages_path.with_suffix(".csv")
    result_file = csv_path.read_bytes() if csv_path.exists() else b""
    deleted = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></DeleteResult>'
    )

    def get_object(_request: Request) -> Response:
        return Response(200, result_file, (("Content-Type", "text/csv"),))

    def delete_objects(_request: Request) -> Response:
        return Response(200, deleted, (("Content-Type", "application/xml"),))

    amz = (("Content-Type", "application/x-amz-json-1.1"),)

    def answer(request: Request) -> Response:
        target = request.headers.get("x-amz-target", "").rsplit(".", 1)[-1]
        if target == "StartQueryExecution":
            return Response(200, b'{"QueryExecutionId":"q1"}', amz)
        if target == "GetQueryExecution":
            status = {"QueryExecution": {"QueryExecutionId": "q1", "Status": {
                "State": "SUCCEEDED"}, "ResultConfiguration": {
                "OutputLocation": "s3://out/athena/q1.csv"}}}  # fmt: skip
            return Response(200, json.dumps(status).encode(), amz)
        if target == "GetQueryResults":
            token = request.json().get("NextToken", "p0")
            offset, length = offsets[int(token[1:])]
            return Response(200, os.pread(fd, length, offset), amz)
        return Response(200, b"{}", amz)

    routes = {
        ("POST", "/"): answer,
        ("GET", "/out/athena/q1.csv"): get_object,
        ("POST", "/out"): delete_objects,
    }
    with AsyncHttpServer(routes, delay=delay) as server:
        print(server.port, flush=True)
        for _line in sys.stdin:
            print(json.dumps({"cpu": time.process_time()}), flush=True)


class _NoS3:
    """The query's result objects are removed with one DeleteObjects: not the read path."""

    def delete_objects(self, **_kwargs: Any) -> None:
        return None


def _athena_fans(url: str, variant: str) -> Any:
    import boto3
    from botocore.config import Config

    from adapters.aws.athena_engine import PAGE_ROWS, AthenaQueryEngine
    from adapters.aws.athena_fans import AthenaEligibleFans
    from adapters.aws.errors import AWS_ERRORS, unavailable

    class SerialPages(AthenaQueryEngine):
        """The engine before read-ahead (67a3a8f^): each page fetched when the last is read."""

        def rows(
            self, execution_id: str, *, header: Any = None
        ) -> Iterator[tuple[str | None, ...]]:
            token, first = None, True
            while True:
                kwargs: dict[str, Any] = {"QueryExecutionId": execution_id, "MaxResults": PAGE_ROWS}
                if token:
                    kwargs["NextToken"] = token
                try:
                    page = self._athena.get_query_results(**kwargs)
                except AWS_ERRORS as error:
                    raise unavailable("athena", error) from error
                for index, row in enumerate(page["ResultSet"]["Rows"]):
                    values = tuple(cell.get("VarCharValue") for cell in row["Data"])
                    if first and index == 0:
                        continue
                    yield values
                first = False
                token = page.get("NextToken")
                if not token:
                    return

    def client(service: str, **options: Any) -> Any:
        return boto3.client(
            service, endpoint_url=url, region_name="us-east-1",
            aws_access_key_id="bench", aws_secret_access_key="bench", **options,
        )  # fmt: skip

    athena = client("athena")
    if variant == "athena-s3":
        s3 = client("s3", config=Config(s3={"addressing_style": "path"}))
        engine = AthenaQueryEngine(athena, s3, database="lake", output_location="s3://out/athena")
    else:
        engine = (AthenaQueryEngine if variant == "athena" else SerialPages)(
            athena, _NoS3(), database="lake", output_location="s3://out/athena",
            results_from_s3=False,
        )  # fmt: skip
    return AthenaEligibleFans(engine)


def _lake_fans(directory: Path, decoder: str = "auto") -> tuple[Any, Any]:
    """LakeEligibleFans over a store that reads the pre-generated files from disk in 1 MiB
    chunks and keeps what the worker writes in memory."""
    from adapters.aws.lake_fans import LakeEligibleFans
    from domain.models import ObjectInfo, ObjectRef
    from tests.support.memory_objects import InMemoryObjectStore

    class DiskLake(InMemoryObjectStore):
        def list_objects(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
            if not prefix.startswith("avro/"):
                yield from super().list_objects(bucket, prefix)
                return
            if prefix.startswith("avro/scoring/"):
                for path in sorted(directory.glob("*.avro")):
                    key = f"avro/scoring/2026/12/01/{path.name}"
                    yield ObjectInfo(ObjectRef(bucket, key), path.stat().st_size)

        def iter_chunks(
            self, ref: ObjectRef, start: int = 0, end: int | None = None
        ) -> Iterator[bytes]:
            if not ref.key.startswith("avro/scoring/"):
                yield from super().iter_chunks(ref, start, end)
                return
            with open(directory / ref.key.rsplit("/", 1)[1], "rb") as f:
                while chunk := f.read(1 << 20):
                    yield chunk

    store = DiskLake()
    return store, LakeEligibleFans(store, "b", decoder=decoder)


def run_worker(variant: str, n: int, source: str) -> dict[str, Any]:
    from adapters.clock import SystemClock
    from adapters.wave_package import ZipPackage
    from adapters.wave_selections import StoredWaveSelections
    from domain.models import Campaign
    from domain.wave_prep.markets import CampaignMarket
    from domain.wave_prep.request import WavePrepRequest
    from domain.wave_prep.turns import SelectionTurns
    from domain.workers.process_sms_wave_files import (
        market_details_ref,
        package_ref,
        process_sms_wave_files,
    )
    from tests.support.code_fakes import MemoryCodeInventory
    from tests.support.memory_leases import MemoryLeases
    from tests.support.memory_objects import InMemoryObjectStore
    from tests.support.memory_scored_files import InMemoryCampaignDirectory
    from tests.support.memory_wave import (
        MemoryCampaignMarkets,
        MemoryEligibleFans,
        MemoryReservationLedger,
        MemoryWaveStatusStore,
    )
    from tests.support.wave_world import StepClock, market_csv

    eligible: Any
    if variant.startswith("lake"):
        decoder = "python" if variant == "lake-fastavro" else "rust"
        store, eligible = _lake_fans(Path(source), decoder)
    elif variant.startswith("athena"):
        store, eligible = InMemoryObjectStore(), _athena_fans(source, variant)
    else:
        store, eligible = InMemoryObjectStore(), MemoryEligibleFans(fans(n))
    caps = capacities()
    # Every fifth market TM-managed, the others with codes reserved from the inventory.
    rows = [
        (m, f"Market {m}", c, "TM" if i % 5 == 0 else "external")
        for i, (m, c) in enumerate(caps.items())
    ]
    store.put_bytes(market_details_ref("b", CAMPAIGN, DATE_KEY), market_csv(rows))
    before = _peak_mib()
    started, cpu = time.perf_counter(), time.process_time()
    result = process_sms_wave_files(
        WavePrepRequest(CAMPAIGN, DATE_KEY, order_by_preference=True),
        bucket="b",
        store=store,
        campaigns=InMemoryCampaignDirectory([Campaign(CAMPAIGN, band_salt=b"s")]),
        markets=MemoryCampaignMarkets({CAMPAIGN: [CampaignMarket(m) for m in caps]}),
        fans=eligible,
        codes=MemoryCodeInventory(),
        ledger=MemoryReservationLedger(),
        status=MemoryWaveStatusStore(),
        package=ZipPackage(store),
        selections=StoredWaveSelections(store, "b"),
        # The lease is renewed at every fan: its cost is in the figures.
        turns=SelectionTurns(MemoryLeases(SystemClock()), time.sleep),
        clock=StepClock(),
    )
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    counts = result.unwrap()
    zip_bytes = len(store.objects[package_ref("b", CAMPAIGN, DATE_KEY)])
    return {
        "wall_s": wall,
        "cpu_us_per_fan": cpu / n * 1e6,
        "peak_mib": _peak_mib(),
        "peak_before_mib": before,
        "read": counts.fans_read,
        "selected": counts.selected,
        "zip_mib": zip_bytes / 2**20,
    }


def run_baseline(n: int) -> dict[str, Any]:
    from domain.wave_prep.fans import EligibilityQuery, ineligibility
    from domain.wave_prep.selection import SelectionRules

    rules = SelectionRules(order_by_preference=True)
    caps = capacities()
    query = EligibilityQuery()
    before = _peak_mib()
    started, cpu = time.perf_counter(), time.process_time()
    claims = []
    for fan in fans(n):
        if ineligibility(fan, query) is not None:
            continue
        order = rules.fan_order(fan)
        for market_id, rank in rules.claims(fan, caps):
            claims.append(((rank, *order), fan, market_id))
    claims.sort(key=lambda c: c[0])
    placed: set[str] = set()
    taken = dict.fromkeys(caps, 0)
    for _priority, fan, market_id in claims:
        if fan.global_user_id not in placed and taken[market_id] < caps[market_id]:
            placed.add(fan.global_user_id)
            taken[market_id] += 1
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "wall_s": wall,
        "cpu_us_per_fan": cpu / n * 1e6,
        "peak_mib": _peak_mib(),
        "peak_before_mib": before,
        "read": n,
        "selected": len(placed),
    }


def _child(variant: str, n: int, source: str) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_wave_prep", "--child", variant, str(n), source],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


VARIANTS = (
    "lake",
    "lake-fastavro",
    "athena-s3",
    "athena",
    "athena-serial",
    "generated",
    "baseline",
)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fans", default="2000000", help="wave sizes, comma-separated")
    parser.add_argument(
        "--variants",
        default="lake,lake-fastavro,athena-s3,athena,athena-serial,generated,baseline",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per variant and size")
    parser.add_argument("--page-delay", type=float, default=0.02, help="seconds per page")
    parser.add_argument("--data-dir", default="/tmp/bench_wave_prep")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--serve-athena", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_athena:
        serve_athena(Path(args.serve_athena[0]), float(args.serve_athena[1]))
        return 0
    if args.child:
        variant, n, source = args.child[0], int(args.child[1]), args.child[2]
        result = run_baseline(n) if variant == "baseline" else run_worker(variant, n, source)
        print(json.dumps(result))
        return 0
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}; known: {', '.join(VARIANTS)}")
    data_dir = Path(args.data_dir)
    print(machine(), flush=True)
    print(
        "fakes: campaigns, markets, the code inventory, the reservation ledger, the wave status "
        "and the leases are in memory, the output store too (production: DynamoDB, S3); the "
        "read paths measured are production's: the lake's Avro files (from disk) and Athena "
        "over boto3 (a local server)",
        flush=True,
    )
    print(f"Athena pages of {PAGE:,} rows answered after {args.page_delay * 1000:.0f} ms")
    print(
        "| variant | fans | wall s | CPU µs/fan (client) | server CPU µs/fan | peak MiB "
        "(before) | selected | load |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for n in [int(x) for x in args.fans.split(",")]:
        for variant in variants:
            server = None
            source = "-"
            if variant.startswith("lake"):
                source = str(lake_dir(data_dir, n))
            elif variant.startswith("athena"):
                if variant == "athena-s3":
                    pages = athena_csv(data_dir, n).with_suffix(".jsonl")  # the server's key
                else:
                    pages = athena_pages(data_dir, n)
                server = subprocess.Popen(
                    [sys.executable, "-m", "benchmarks.bench_wave_prep", "--serve-athena",
                     str(pages), str(args.page_delay)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                )  # fmt: skip
                assert server.stdout is not None
                source = f"http://127.0.0.1:{server.stdout.readline().strip()}"
            runs, loads = [], []
            try:
                for _ in range(args.runs):
                    server_cpu = tree_cpu_seconds(server.pid) if server else 0.0
                    r = _child(variant, n, source)
                    r["server_cpu"] = (tree_cpu_seconds(server.pid) - server_cpu) if server else 0
                    runs.append(r)
                    loads.append(os.getloadavg()[0])
            finally:
                if server is not None:
                    assert server.stdin is not None
                    server.stdin.close()
                    server.wait(timeout=30)
            wall = spread([r["wall_s"] for r in runs])
            cpu = spread([r["cpu_us_per_fan"] for r in runs])
            server_us = spread([r["server_cpu"] / n * 1e6 for r in runs])
            peak = max(r["peak_mib"] for r in runs)
            before = max(r["peak_before_mib"] for r in runs)
            print(
                f"| {variant} | {n:,} | {wall.show(1)} | {cpu.show(1)} | "
                f"{server_us.show(1) if server else '-'} | {peak:.0f} ({before:.0f}) | "
                f"{runs[0]['selected']:,} | {min(loads):.1f}-{max(loads):.1f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
