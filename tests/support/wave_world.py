"""A wave prep world of in-memory fakes (and the real zip package over an in-memory store)."""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from returns.result import Result

from adapters.wave_package import ZipPackage
from adapters.wave_selections import StoredWaveSelections
from domain.models import Campaign, ObjectRef
from domain.wave_prep.fans import EligibleFan
from domain.wave_prep.markets import CampaignMarket
from domain.wave_prep.request import WavePrepRequest
from domain.wave_prep.turns import SelectionTurns
from domain.workers.process_sms_wave_files import (
    WavePrepCounts,
    WavePrepFailure,
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

BUCKET = "vf-scoring"
CAMPAIGN = "camp-1"
DATE_KEY = "2026-12-01"


class StepClock:
    def __init__(self) -> None:
        self.at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        self.at += timedelta(seconds=1)
        return self.at

    def sleep(self, seconds: float) -> None:
        """A wait that passes on this clock, not in the test's time."""
        self.at += timedelta(seconds=seconds)


def market_csv(rows: list[tuple[str, str, int, str]]) -> bytes:
    lines = ["marketId,name,capacity,selectionTime,codeType"]
    lines += [f"{m},{n},{c},2026-12-02T15:00:00Z,{t}" for m, n, c, t in rows]
    return ("\n".join(lines) + "\n").encode()


@dataclass
class WaveWorld:
    markets: list[tuple[str, str, int, str]]
    fans: list[EligibleFan | str]
    store: InMemoryObjectStore = field(default_factory=InMemoryObjectStore)
    inventory: MemoryCodeInventory = field(default_factory=MemoryCodeInventory)
    ledger: MemoryReservationLedger = field(default_factory=MemoryReservationLedger)
    status: MemoryWaveStatusStore = field(default_factory=MemoryWaveStatusStore)
    clock: StepClock = field(default_factory=StepClock)
    campaign: Campaign = field(default_factory=lambda: Campaign(CAMPAIGN, band_salt=b"salt"))

    def __post_init__(self) -> None:
        self.leases = MemoryLeases(self.clock)
        self.source = MemoryEligibleFans(self.fans)
        self.campaign_markets = MemoryCampaignMarkets(
            {CAMPAIGN: [CampaignMarket(m, n) for m, n, _c, _t in self.markets]}
        )
        self.store.put_bytes(
            market_details_ref(BUCKET, CAMPAIGN, DATE_KEY), market_csv(self.markets)
        )

    def run(self, **options: Any) -> Result[WavePrepCounts, WavePrepFailure]:
        reserve_batch = options.pop("reserve_batch", 20_000)
        date_key = options.pop("date_key", DATE_KEY)
        details = market_details_ref(BUCKET, CAMPAIGN, date_key)
        if date_key != DATE_KEY and details not in self.store.objects:
            self.store.put_bytes(details, market_csv(self.markets))
        request = WavePrepRequest(CAMPAIGN, date_key, **options)
        return process_sms_wave_files(
            request,
            bucket=BUCKET,
            store=self.store,
            campaigns=InMemoryCampaignDirectory([self.campaign]),
            markets=self.campaign_markets,
            fans=self.source,
            codes=self.inventory,
            ledger=self.ledger,
            status=self.status,
            package=ZipPackage(self.store),
            selections=StoredWaveSelections(self.store, BUCKET),
            turns=SelectionTurns(self.leases.sharing(f"wave {date_key}"), self.clock.sleep),
            clock=self.clock,
            reserve_batch=reserve_batch,
        )

    @property
    def zip_ref(self) -> ObjectRef:
        return package_ref(BUCKET, CAMPAIGN, DATE_KEY)

    def zip_files(self, date_key: str = DATE_KEY) -> dict[str, list[dict[str, str]]]:
        """name -> rows (as dicts) of every CSV in the published zip."""
        ref = package_ref(BUCKET, CAMPAIGN, date_key)
        with zipfile.ZipFile(io.BytesIO(self.store.objects[ref])) as archive:
            return {
                name: list(csv.DictReader(io.StringIO(archive.read(name).decode())))
                for name in archive.namelist()
            }
