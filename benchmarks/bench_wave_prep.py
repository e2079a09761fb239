"""Wave prep at scenario 1's shape: eligible fans -> 50 markets, total capacity 100,000.

Each variant runs in a child process of its own, so its peak memory (VmHWM) is its own:
- `worker N`: the whole process_sms_wave_files over in-memory ports (fans generated as they
  are read, reservations from an in-memory inventory, the real zip package in a temporary
  file, uploaded to an in-memory store): selection, codes, files, zip;
- `baseline N`: the straightforward selection: hold every eligible fan in a list, sort all
  their claims, walk them greedily (tests/property/test_wave_selection.py's reference), no
  files; the same fans from the same generator.
The generator's own cost (building EligibleFan values) is inside every variant.

    python -m benchmarks.bench_wave_prep [--fans 1000000,2000000] [--baseline-fans 2000000]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from benchmarks.machine import machine
from domain.wave_prep.fans import EligibleFan

MARKETS = 50
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


def run_worker(n: int) -> dict[str, Any]:
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

    store = InMemoryObjectStore()
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
        fans=MemoryEligibleFans(fans(n)),
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
        "variant": "worker",
        "fans": n,
        "wall_s": wall,
        "cpu_us_per_fan": cpu / n * 1e6,
        "peak_mib": _peak_mib(),
        "peak_before_mib": before,
        "selected": counts.selected,
        "eligible": counts.eligible,
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
        "variant": "baseline",
        "fans": n,
        "wall_s": wall,
        "cpu_us_per_fan": cpu / n * 1e6,
        "peak_mib": _peak_mib(),
        "peak_before_mib": before,
        "selected": len(placed),
    }


def _child(variant: str, n: int) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_wave_prep", "--child", variant, str(n)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fans", default="1000000,2000000")
    parser.add_argument("--baseline-fans", default="2000000")
    parser.add_argument("--child", nargs=2)
    args = parser.parse_args(argv)
    if args.child:
        variant, n = args.child[0], int(args.child[1])
        print(json.dumps(run_worker(n) if variant == "worker" else run_baseline(n)))
        return 0
    print(machine(), flush=True)
    plan = [("worker", int(n)) for n in args.fans.split(",")]
    plan += [("baseline", int(n)) for n in args.baseline_fans.split(",") if n]
    print("| variant | fans | wall s | CPU µs/fan | peak MiB | selected | zip MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for variant, n in plan:
        r = _child(variant, n)
        zip_mib = f"{r['zip_mib']:.1f}" if "zip_mib" in r else "-"
        print(
            f"| {variant} | {n:,} | {r['wall_s']:.1f} | {r['cpu_us_per_fan']:.2f} | "
            f"{r['peak_mib']:.0f} | {r['selected']:,} | {zip_mib} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
