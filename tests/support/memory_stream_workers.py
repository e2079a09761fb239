"""The stream workers' ports in memory (RecordArchive, DeadLetters, UserDirectory,
EntryDirectory, SelectionLedger, VerdictQueue), for unit tests and benchmarks. One class per
port; each keeps what it was given and can be told to fail its next calls (memory_faults.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from returns.result import Failure, Result, Success

from domain.models import FailureKind, LookupFailure, ObjectRef
from domain.records import RECORD_TYPES, AssignedCodes, CodeAssignment, LakeBatch, LakeKey, Verdict
from domain.streaming import DeadLetter, DependencyUnavailable
from tests.support.memory_faults import Faults


class MemoryLake:
    """RecordArchive: objects by key, each the tuple of archival records it holds."""

    def __init__(self, bucket: str = "campaign-data") -> None:
        self.bucket = bucket
        self.objects: dict[str, tuple[Mapping[str, Any], ...]] = {}
        self.puts = 0
        self.faults = Faults()

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
        self.faults = Faults()

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
        self.faults = Faults()

    def user_ids_for(
        self, global_user_ids: Sequence[str]
    ) -> Result[Mapping[str, str], LookupFailure]:
        self.requests.append(tuple(global_user_ids))
        if self.faults.tripped():
            return Failure(LookupFailure("users", FailureKind.UNAVAILABLE, "told to fail"))
        return Success({g: self.users[g] for g in global_user_ids if g in self.users})


@dataclass
class MemoryEntryDirectory:
    """EntryDirectory: (campaign, globalUserId) -> codes; at most once per fan and code."""

    max_assignments_per_call: int = 1000
    known_campaigns: set[str] | None = None  # None: every campaign is known
    codes: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    call_sizes: list[int] = field(default_factory=list)
    faults: Faults = field(default_factory=Faults)

    def assign_codes(
        self, campaign_id: str, assignments: Sequence[CodeAssignment]
    ) -> Result[AssignedCodes, LookupFailure]:
        self.call_sizes.append(len(assignments))
        if len(assignments) > self.max_assignments_per_call:
            return Failure(LookupFailure("entries", FailureKind.INVALID, "too many in one call"))
        if self.faults.tripped():
            return Failure(LookupFailure("entries", FailureKind.UNAVAILABLE, "told to fail"))
        if self.known_campaigns is not None and campaign_id not in self.known_campaigns:
            return Failure(LookupFailure(f"campaign {campaign_id}", FailureKind.NOT_FOUND))
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
    faults: Faults = field(default_factory=Faults)

    def record_selections(
        self, campaign_id: str, assignments: Sequence[CodeAssignment]
    ) -> Result[int, LookupFailure]:
        if self.faults.tripped():
            return Failure(LookupFailure("selections", FailureKind.UNAVAILABLE, "told to fail"))
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
    faults: Faults = field(default_factory=Faults)
    _seen: set[str] = field(default_factory=set, repr=False)

    def send(self, verdicts: Sequence[Verdict]) -> None:
        if self.faults.tripped():
            raise DependencyUnavailable("memory verdict queue", "told to fail")
        for verdict in verdicts:
            if self.fifo and verdict.dedupe_id in self._seen:
                continue
            self._seen.add(verdict.dedupe_id)
            self.verdicts.append(verdict)

    def counts(self) -> Counter[str]:
        """campaignId -> the sum of its verdicts' counts (what the reporter would add up)."""
        totals: Counter[str] = Counter()
        for verdict in self.verdicts:
            totals[verdict.campaign_id] += verdict.count
        return totals
