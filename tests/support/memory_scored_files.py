"""The scored-file worker's other ports in memory (RecordStream, CampaignDirectory, Notifier),
for unit tests and benchmarks; the stream workers share the RecordStream and CampaignDirectory.
Each keeps what it was given where a test can read it; the directory can be told to fail."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from returns.result import Failure, Result, Success

from domain.models import (
    Campaign,
    FailureKind,
    LookupFailure,
    Notification,
    PutOutcome,
    RejectedRecord,
    StreamRecord,
)
from tests.support.memory_faults import Faults

MIB = 1024 * 1024


@dataclass
class InMemoryRecordStream:
    """A RecordStream that keeps what it is given.

    - records longer than `max_record_bytes`, or with an empty partition key, are rejected with a
      reason, as the real producer does;
    - `strand(record)` returning True makes that record "still failing after retries";
    - `strand_next = n` strands the first n accepted records of the next call only;
    - partition keys in `reject_keys` are rejected for good (as an invalid record would be);
    - `keep=False` only counts (for benchmarks with millions of records);
    - `batch_size` is how many records one simulated PutRecords call takes.
    """

    max_record_bytes: int = MIB
    strand: Callable[[StreamRecord], bool] | None = None
    keep: bool = True
    batch_size: int = 500
    strand_next: int = 0
    reject_keys: set[str] = field(default_factory=set)
    records: list[StreamRecord] = field(default_factory=list)
    sent: int = 0
    calls: int = 0

    def put_records(self, records: Iterable[StreamRecord]) -> PutOutcome:
        sent = received = 0
        stranded_at: list[int] = []
        rejected: list[RejectedRecord] = []
        to_strand, self.strand_next = self.strand_next, 0
        for position, record in enumerate(records):
            received += 1
            if not record.partition_key:
                rejected.append(RejectedRecord(record.partition_key, "empty partition key"))
            elif record.partition_key in self.reject_keys:
                rejected.append(RejectedRecord(record.partition_key, "rejected by the test"))
            elif len(record.data) > self.max_record_bytes:
                rejected.append(
                    RejectedRecord(
                        record.partition_key,
                        f"{len(record.data)} bytes > {self.max_record_bytes}",
                    )
                )
            elif to_strand > 0:
                to_strand -= 1
                stranded_at.append(position)
            elif self.strand is not None and self.strand(record):
                stranded_at.append(position)
            else:
                sent += 1
                if self.keep:
                    self.records.append(record)
        calls = -(-(received - len(rejected)) // self.batch_size)
        self.sent += sent
        self.calls += calls
        return PutOutcome(
            sent=sent,
            rejected=tuple(rejected),
            stranded=len(stranded_at),
            calls=calls,
            stranded_at=tuple(stranded_at),
        )


class InMemoryCampaignDirectory:
    """Campaigns by id, and categoryId -> campaignId from each campaign's `category_ids`.

    `unavailable=True` answers every call with kind 'unavailable' (a lasting outage);
    `faults.fail_next = n` fails only the next n calls (a blip, to exercise replays).
    `requests` keeps the ids of each category look-up (to check chunking)."""

    def __init__(self, campaigns: Iterable[Campaign] = (), unavailable: bool = False) -> None:
        self.campaigns = {c.campaign_id: c for c in campaigns}
        self.unavailable = unavailable
        self.requests: list[tuple[str, ...]] = []
        self.faults = Faults()

    @classmethod
    def from_categories(cls, categories: Mapping[str, str]) -> InMemoryCampaignDirectory:
        """Bare campaigns holding the given categoryId -> campaignId pairs."""
        by_campaign: dict[str, list[str]] = {}
        for category_id, campaign_id in categories.items():
            by_campaign.setdefault(campaign_id, []).append(category_id)
        return cls(
            Campaign(campaign_id, category_ids=tuple(category_ids))
            for campaign_id, category_ids in by_campaign.items()
        )

    def _down(self) -> bool:
        # Trip the faults first: every call counts, even while `unavailable` is set.
        return self.faults.tripped() or self.unavailable

    def get_campaign(self, campaign_id: str) -> Result[Campaign, LookupFailure]:
        if self._down():
            return Failure(
                LookupFailure(f"campaign {campaign_id}", FailureKind.UNAVAILABLE, "told to fail")
            )
        campaign = self.campaigns.get(campaign_id)
        if campaign is None:
            return Failure(LookupFailure(f"campaign {campaign_id}", FailureKind.NOT_FOUND))
        return Success(campaign)

    def campaign_ids_for_categories(
        self, category_ids: Sequence[str]
    ) -> Result[Mapping[str, str], LookupFailure]:
        self.requests.append(tuple(category_ids))
        if self._down():
            return Failure(LookupFailure("categories", FailureKind.UNAVAILABLE, "told to fail"))
        owner = {
            category_id: campaign.campaign_id
            for campaign in self.campaigns.values()
            for category_id in campaign.category_ids
        }
        return Success({c: owner[c] for c in category_ids if c in owner})


class RecordingNotifier:
    """Keeps every notification; `fail_with` makes notify() return that error instead."""

    def __init__(self, fail_with: str | None = None) -> None:
        self.notifications: list[Notification] = []
        self.fail_with = fail_with

    def notify(self, notification: Notification) -> Result[None, str]:
        if self.fail_with is not None:
            return Failure(self.fail_with)
        self.notifications.append(notification)
        return Success(None)
