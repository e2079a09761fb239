"""In-memory fakes of the wave prep ports, for unit tests and benchmarks. No I/O.

MemoryEligibleFans streams what it was given (optionally failing part-way, to exercise a run
that dies mid-stream); MemoryCampaignMarkets answers per campaign; MemoryReservationLedger and
MemoryWaveStatusStore keep what was written, with the same write-once / compare-and-set rules
as the S3 adapters (adapters/aws/wave_prep.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from returns.result import Failure, Result, Success

from domain.codes import Reservation
from domain.models import FailureKind, LookupFailure
from domain.streaming import DependencyUnavailable
from domain.wave_prep.fans import EligibilityQuery, EligibleFan
from domain.wave_prep.markets import CampaignMarket
from domain.wave_prep.status import WaveStatus


@dataclass
class MemoryEligibleFans:
    """Every fan given, unfiltered (the domain applies the rules); `fail_after = n` raises
    DependencyUnavailable after n fans, once. `queries` keeps what each call asked."""

    fans: Iterable[EligibleFan | str] = ()
    fail_after: int | None = None
    queries: list[EligibilityQuery] = field(default_factory=list)

    def eligible_fans(
        self, campaign_id: str, query: EligibilityQuery
    ) -> Iterator[Result[EligibleFan, str]]:
        self.queries.append(query)
        limit, self.fail_after = self.fail_after, None
        if limit == 0:
            raise DependencyUnavailable("memory fans", "told to fail")
        for index, fan in enumerate(self.fans):
            if limit is not None and index == limit:
                raise DependencyUnavailable("memory fans", "told to fail")
            yield Failure(fan) if isinstance(fan, str) else Success(fan)


class MemoryCampaignMarkets:
    def __init__(self, markets: Mapping[str, Iterable[CampaignMarket]] | None = None) -> None:
        self.by_campaign = {k: tuple(v) for k, v in (markets or {}).items()}
        self.unavailable = False

    def markets(self, campaign_id: str) -> Result[tuple[CampaignMarket, ...], LookupFailure]:
        if self.unavailable:
            return Failure(
                LookupFailure(f"markets of {campaign_id}", FailureKind.UNAVAILABLE, "told to")
            )
        found = self.by_campaign.get(campaign_id)
        if found is None:
            return Failure(LookupFailure(f"markets of {campaign_id}", FailureKind.NOT_FOUND))
        return Success(found)


@dataclass
class MemoryReservationLedger:
    reservations: dict[str, Reservation] = field(default_factory=dict)

    def recorded(self, key: str) -> Reservation | None:
        return self.reservations.get(key)

    def record(self, reservation: Reservation) -> Reservation:
        return self.reservations.setdefault(reservation.key, reservation)


@dataclass
class MemoryWaveStatusStore:
    """Status per (campaign, date key) with a version counter (compare-and-set)."""

    statuses: dict[tuple[str, str], tuple[WaveStatus, str]] = field(default_factory=dict)
    history: list[WaveStatus] = field(default_factory=list)

    def read(self, campaign_id: str, date_key: str) -> tuple[WaveStatus, str] | None:
        return self.statuses.get((campaign_id, date_key))

    def write(self, status: WaveStatus, expected_version: str | None) -> str | None:
        key = (status.campaign_id, status.date_key)
        current = self.statuses.get(key)
        if (current[1] if current else None) != expected_version:
            return None
        version = str(len(self.history) + 1)
        self.statuses[key] = (status, version)
        self.history.append(status)
        return version

    def current(self, campaign_id: str, date_key: str) -> WaveStatus | None:
        found = self.statuses.get((campaign_id, date_key))
        return found[0] if found else None
