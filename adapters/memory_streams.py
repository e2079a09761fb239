"""In-process fakes for the stream workers' ports (tests, dry runs). No I/O, no mocks.

Each fake keeps what it was given where a test can read it, and can be told to fail its next
`fail_next` calls transiently (raising DependencyUnavailable, or returning a LookupFailure of
kind "unavailable" where the port returns Results), to exercise replays.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from returns.result import Failure, Result, Success

from domain.models import (
    Campaign,
    LookupFailure,
    ObjectRef,
    PutOutcome,
    RejectedRecord,
    StreamRecord,
)
from domain.records import (
    RECORD_TYPES,
    AssignedCodes,
    CodeAssignment,
    LakeBatch,
    LakeKey,
    Verdict,
)
from domain.streaming import DeadLetter, DependencyUnavailable


@dataclass
class _Faults:
    fail_next: int = 0
    calls: int = 0

    def tripped(self) -> bool:
        self.calls += 1
        if self.fail_next > 0:
            self.fail_next -= 1
            return True
        return False


class MemoryLake:
    """RecordArchive: objects by key, each the tuple of archival records it holds."""

    def __init__(self, bucket: str = "campaign-data") -> None:
        self.bucket = bucket
        self.objects: dict[str, tuple[Mapping[str, Any], ...]] = {}
        self.puts = 0
        self.faults = _Faults()

    def replace_batch(self, batch: LakeBatch) -> tuple[ObjectRef, ...]:
        if self.faults.tripped():
            raise DependencyUnavailable("memory lake", "told to fail")
        refs = []
        for lake_key in batch.lake_keys():
            self.objects[lake_key.key] = tuple(batch.parts[lake_key.record_type])
            self.puts += 1
            refs.append(ObjectRef(self.bucket, lake_key.key))
        for record_type in RECORD_TYPES - set(batch.parts):
            self.objects.pop(LakeKey(record_type, batch.day, batch.name).key, None)
        return tuple(refs)

    def records(self, record_type: str | None = None) -> list[Mapping[str, Any]]:
        """Every archived record (of one type), in key order."""
        prefix = f"avro/{record_type}/" if record_type else "avro/"
        keys = [key for key in sorted(self.objects) if key.startswith(prefix)]
        return [record for key in keys for record in self.objects[key]]


class MemoryDeadLetters:
    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []
        self.faults = _Faults()

    def send(self, letters: Sequence[DeadLetter]) -> None:
        if self.faults.tripped():
            raise DependencyUnavailable("memory dead letters", "told to fail")
        self.letters.extend(letters)

    def reasons(self) -> list[str]:
        return [letter.reason for letter in self.letters]


class MemoryUserDirectory:
    """UserDirectory: globalUserId -> userId; records each call's ids (to check chunking)."""

    def __init__(self, users: Mapping[str, str] | None = None) -> None:
        self.users = dict(users or {})
        self.requests: list[tuple[str, ...]] = []
        self.faults = _Faults()

    def user_ids_for(
        self, global_user_ids: Sequence[str]
    ) -> Result[Mapping[str, str], LookupFailure]:
        self.requests.append(tuple(global_user_ids))
        if self.faults.tripped():
            return Failure(LookupFailure("users", "unavailable", "told to fail"))
        return Success({g: self.users[g] for g in global_user_ids if g in self.users})


class MemoryCategoryDirectory:
    """CampaignDirectory answering categoryId -> campaignId (and bare campaigns by id)."""

    def __init__(self, categories: Mapping[str, str] | None = None) -> None:
        self.categories = dict(categories or {})
        self.requests: list[tuple[str, ...]] = []
        self.faults = _Faults()

    def get_campaign(self, campaign_id: str) -> Result[Campaign, LookupFailure]:
        if campaign_id in self.categories.values():
            return Success(Campaign(campaign_id))
        return Failure(LookupFailure(f"campaign {campaign_id}", "not_found"))

    def campaign_ids_for_categories(
        self, category_ids: Sequence[str]
    ) -> Result[Mapping[str, str], LookupFailure]:
        self.requests.append(tuple(category_ids))
        if self.faults.tripped():
            return Failure(LookupFailure("campaigns", "unavailable", "told to fail"))
        return Success({c: self.categories[c] for c in category_ids if c in self.categories})


class CollectingStream:
    """RecordStream that keeps what it is given; `strand_next` records of the next call are
    reported stranded, `reject_keys` partition keys are rejected for good."""

    def __init__(self, max_record_bytes: int = 1024 * 1024) -> None:
        self.max_record_bytes = max_record_bytes
        self.records: list[StreamRecord] = []
        self.strand_next = 0
        self.reject_keys: set[str] = set()

    def put_records(self, records: Iterable[StreamRecord]) -> PutOutcome:
        given = list(records)
        rejected = tuple(
            RejectedRecord(r.partition_key, "rejected by the test")
            for r in given
            if r.partition_key in self.reject_keys
        )
        accepted = [r for r in given if r.partition_key not in self.reject_keys]
        stranded = min(self.strand_next, len(accepted))
        self.strand_next = 0
        delivered = accepted[stranded:]
        self.records.extend(delivered)
        return PutOutcome(sent=len(delivered), rejected=rejected, stranded=stranded, calls=1)


@dataclass
class MemoryEntryDirectory:
    """EntryDirectory: (campaign, globalUserId) -> codes; at most once per fan and code."""

    max_assignments_per_call: int = 1000
    known_campaigns: set[str] | None = None  # None: every campaign is known
    codes: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    call_sizes: list[int] = field(default_factory=list)
    faults: _Faults = field(default_factory=_Faults)

    def assign_codes(
        self, campaign_id: str, assignments: Sequence[CodeAssignment]
    ) -> Result[AssignedCodes, LookupFailure]:
        self.call_sizes.append(len(assignments))
        if len(assignments) > self.max_assignments_per_call:
            return Failure(LookupFailure("entries", "invalid", "too many in one call"))
        if self.faults.tripped():
            return Failure(LookupFailure("entries", "unavailable", "told to fail"))
        if self.known_campaigns is not None and campaign_id not in self.known_campaigns:
            return Failure(LookupFailure(f"campaign {campaign_id}", "not_found"))
        assigned = already = 0
        for a in assignments:
            held = self.codes.setdefault((campaign_id, a.global_user_id), set())
            if a.code in held:
                already += 1
            else:
                held.add(a.code)
                assigned += 1
        return Success(AssignedCodes(assigned=assigned, already=already))

    def total_codes(self) -> int:
        return sum(len(codes) for codes in self.codes.values())


@dataclass
class MemorySelectionLedger:
    selected: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    faults: _Faults = field(default_factory=_Faults)

    def record_selections(
        self, campaign_id: str, assignments: Sequence[CodeAssignment]
    ) -> Result[int, LookupFailure]:
        if self.faults.tripped():
            return Failure(LookupFailure("selections", "unavailable", "told to fail"))
        for a in assignments:
            markets = self.selected.setdefault((campaign_id, a.global_user_id), set())
            if a.market_id:
                markets.add(a.market_id)
        return Success(len(assignments))


@dataclass
class MemoryVerdictQueue:
    """VerdictQueue; `fifo=True` drops a verdict whose dedupe id it has seen (as SQS FIFO)."""

    fifo: bool = False
    verdicts: list[Verdict] = field(default_factory=list)
    faults: _Faults = field(default_factory=_Faults)

    def send(self, verdict: Verdict) -> None:
        if self.faults.tripped():
            raise DependencyUnavailable("memory verdict queue", "told to fail")
        if self.fifo and any(v.dedupe_id == verdict.dedupe_id for v in self.verdicts):
            return
        self.verdicts.append(verdict)
