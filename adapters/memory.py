"""In-memory fakes of every port, for unit tests, dry runs and benchmarks. No I/O, no mocks.

Scored files: ObjectStore, RecordStream, CampaignDirectory, Notifier. Stream workers:
RecordArchive (MemoryLake), DeadLetters, UserDirectory, EntryDirectory, SelectionLedger,
VerdictQueue; they share the RecordStream and CampaignDirectory fakes. One class per port.

Each fake keeps what it was given where a test can read it. The stream workers' fakes (and the
campaign directory) can be told to fail their next `faults.fail_next` calls transiently (raising
DependencyUnavailable, or returning a LookupFailure of kind "unavailable" where the port returns
Results), to exercise replays.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from returns.result import Failure, Result, Success

from domain.lake import MoveRequest
from domain.models import (
    Campaign,
    FailureKind,
    LookupFailure,
    Notification,
    ObjectInfo,
    ObjectNotFound,
    ObjectRef,
    OverlongLine,
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

MIB = 1024 * 1024


def _etag(data: bytes) -> str:
    """S3's ETag of a single-part object: the MD5 of its bytes, in hex."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


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


class _Writer:
    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.writes = 0

    def write(self, data: bytes | memoryview) -> int:
        self.parts.append(bytes(data))
        self.writes += 1
        return len(data)


class InMemoryObjectStore:
    """Objects in a dict. Writers publish only when their block exits without an error, like a
    completed multipart upload. `writes` counts write() calls per key (streaming evidence).
    Lines longer than `max_line_bytes` come back as OverlongLine, as from the S3 store; `head`
    reports a modification time that changes only when the object is written again."""

    def __init__(
        self, objects: Mapping[ObjectRef, bytes] | None = None, *, max_line_bytes: int = 64 * MIB
    ) -> None:
        self.objects: dict[ObjectRef, bytes] = dict(objects or {})
        self.writes: dict[ObjectRef, int] = {}
        self.max_line_bytes = max_line_bytes
        self._versions: dict[ObjectRef, int] = {}

    def _get(self, ref: ObjectRef) -> bytes:
        try:
            return self.objects[ref]
        except KeyError:
            raise ObjectNotFound(ref) from None

    def iter_lines(self, ref: ObjectRef) -> Iterator[bytes | OverlongLine]:
        data = self._get(ref)
        if not data:
            return
        lines = data.split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        for line in lines:
            line = line[:-1] if line.endswith(b"\r") else line
            yield OverlongLine(len(line)) if len(line) > self.max_line_bytes else line

    def iter_chunks(
        self, ref: ObjectRef, start: int = 0, end: int | None = None
    ) -> Iterator[bytes]:
        data = self._get(ref)[start:end]
        for first in range(0, len(data), MIB):
            yield data[first : first + MIB]

    def read_bytes(self, ref: ObjectRef) -> bytes:
        return self._get(ref)

    def put_bytes(self, ref: ObjectRef, data: bytes, content_type: str = "") -> None:
        self._store(ref, bytes(data))

    def _store(self, ref: ObjectRef, data: bytes) -> None:
        self.objects[ref] = data
        self._versions[ref] = self._versions.get(ref, 0) + 1

    @contextmanager
    def open_writer(self, ref: ObjectRef, content_type: str = "") -> Iterator[_Writer]:
        writer = _Writer()
        yield writer
        self._store(ref, b"".join(writer.parts))
        self.writes[ref] = writer.writes

    def head(self, ref: ObjectRef) -> ObjectInfo | None:
        data = self.objects.get(ref)
        if data is None:
            return None
        # A stable time per version: what S3's LastModified tells a reader; the ETag is S3's
        # for a single-part object, the MD5 of the bytes (a copy has its source's).
        version = self._versions.get(ref, 0)
        return ObjectInfo(ref, len(data), datetime.fromtimestamp(version, UTC), _etag(data))

    def read_versioned(self, ref: ObjectRef) -> tuple[bytes, str] | None:
        data = self.objects.get(ref)
        return None if data is None else (data, _etag(data))

    def put_versioned(
        self, ref: ObjectRef, data: bytes, expected_version: str | None
    ) -> str | None:
        """As S3's conditional PutObject: the version is the ETag (the MD5 of the bytes)."""
        current = self.objects.get(ref)
        if (current is None) != (expected_version is None):
            return None
        if current is not None and _etag(current) != str(expected_version).strip('"'):
            return None
        self._store(ref, bytes(data))
        return _etag(data)

    def list_objects(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        for ref in sorted(self.objects, key=lambda r: r.key):
            if ref.bucket == bucket and ref.key.startswith(prefix):
                data = self.objects[ref]
                yield ObjectInfo(ref, len(data), etag=_etag(data))

    def copy(self, source: ObjectRef, target: ObjectRef) -> None:
        self._store(target, self._get(source))

    def delete(self, ref: ObjectRef) -> None:
        self.objects.pop(ref, None)


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
        self.faults = _Faults()

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
            return Failure(LookupFailure("users", FailureKind.UNAVAILABLE, "told to fail"))
        return Success({g: self.users[g] for g in global_user_ids if g in self.users})


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
    faults: _Faults = field(default_factory=_Faults)

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
    faults: _Faults = field(default_factory=_Faults)
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


@dataclass
class MemoryMoveQueue:
    """MoveQueue: the requests a merge queued, in order."""

    requests: list[MoveRequest] = field(default_factory=list)
    faults: _Faults = field(default_factory=_Faults)

    def send(self, request: MoveRequest) -> None:
        if self.faults.tripped():
            raise DependencyUnavailable("memory move queue", "told to fail")
        self.requests.append(request)
