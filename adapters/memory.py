"""In-memory fakes of the scored-file ports: ObjectStore, RecordStream, CampaignDirectory,
Notifier. For unit tests, dry runs and benchmarks. No I/O, no mocks: each fake keeps what it was
given where a test can read it. Other helpers may append fakes below; keep one class per port.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from returns.result import Failure, Result, Success

from domain.models import (
    Campaign,
    LookupFailure,
    Notification,
    ObjectInfo,
    ObjectNotFound,
    ObjectRef,
    PutOutcome,
    RejectedRecord,
    StreamRecord,
)

MIB = 1024 * 1024


class _Writer:
    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.writes = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.writes += 1
        return len(data)


class InMemoryObjectStore:
    """Objects in a dict. Writers publish only when their block exits without an error, like a
    completed multipart upload. `writes` counts write() calls per key (streaming evidence)."""

    def __init__(self, objects: Mapping[ObjectRef, bytes] | None = None) -> None:
        self.objects: dict[ObjectRef, bytes] = dict(objects or {})
        self.writes: dict[ObjectRef, int] = {}

    def _get(self, ref: ObjectRef) -> bytes:
        try:
            return self.objects[ref]
        except KeyError:
            raise ObjectNotFound(ref) from None

    def iter_lines(self, ref: ObjectRef) -> Iterator[bytes]:
        data = self._get(ref)
        if not data:
            return
        lines = data.split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        for line in lines:
            yield line[:-1] if line.endswith(b"\r") else line

    def iter_chunks(self, ref: ObjectRef) -> Iterator[bytes]:
        data = self._get(ref)
        for start in range(0, len(data), MIB):
            yield data[start : start + MIB]

    def read_bytes(self, ref: ObjectRef) -> bytes:
        return self._get(ref)

    def put_bytes(self, ref: ObjectRef, data: bytes, content_type: str = "") -> None:
        self.objects[ref] = bytes(data)

    @contextmanager
    def open_writer(self, ref: ObjectRef, content_type: str = "") -> Iterator[_Writer]:
        writer = _Writer()
        yield writer
        self.objects[ref] = b"".join(writer.parts)
        self.writes[ref] = writer.writes

    def head(self, ref: ObjectRef) -> ObjectInfo | None:
        data = self.objects.get(ref)
        return None if data is None else ObjectInfo(ref, len(data), datetime.now(UTC))

    def list_objects(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        for ref in sorted(self.objects, key=lambda r: r.key):
            if ref.bucket == bucket and ref.key.startswith(prefix):
                yield ObjectInfo(ref, len(self.objects[ref]))

    def copy(self, source: ObjectRef, target: ObjectRef) -> None:
        self.objects[target] = self._get(source)

    def delete(self, ref: ObjectRef) -> None:
        self.objects.pop(ref, None)


@dataclass
class InMemoryRecordStream:
    """A RecordStream that keeps what it is given.

    - records longer than `max_record_bytes`, or with an empty partition key, are rejected with a
      reason, as the real producer does;
    - `strand(record)` returning True makes that record "still failing after retries";
    - `keep=False` only counts (for benchmarks with millions of records);
    - `batch_size` is how many records one simulated PutRecords call takes.
    """

    max_record_bytes: int = MIB
    strand: Callable[[StreamRecord], bool] | None = None
    keep: bool = True
    batch_size: int = 500
    records: list[StreamRecord] = field(default_factory=list)
    sent: int = 0
    calls: int = 0

    def put_records(self, records: Iterable[StreamRecord]) -> PutOutcome:
        sent = stranded = received = 0
        rejected: list[RejectedRecord] = []
        for record in records:
            received += 1
            if not record.partition_key:
                rejected.append(RejectedRecord(record.partition_key, "empty partition key"))
            elif len(record.data) > self.max_record_bytes:
                rejected.append(
                    RejectedRecord(
                        record.partition_key,
                        f"{len(record.data)} bytes > {self.max_record_bytes}",
                    )
                )
            elif self.strand is not None and self.strand(record):
                stranded += 1
            else:
                sent += 1
                if self.keep:
                    self.records.append(record)
        calls = -(-(received - len(rejected)) // self.batch_size)
        self.sent += sent
        self.calls += calls
        return PutOutcome(sent=sent, rejected=tuple(rejected), stranded=stranded, calls=calls)


class InMemoryCampaignDirectory:
    """Campaigns by id; `unavailable=True` answers every call with kind 'unavailable'."""

    def __init__(self, campaigns: Iterable[Campaign] = (), unavailable: bool = False) -> None:
        self.campaigns = {c.campaign_id: c for c in campaigns}
        self.unavailable = unavailable

    def get_campaign(self, campaign_id: str) -> Result[Campaign, LookupFailure]:
        if self.unavailable:
            return Failure(LookupFailure(f"campaign {campaign_id}", "unavailable", "fake down"))
        campaign = self.campaigns.get(campaign_id)
        if campaign is None:
            return Failure(LookupFailure(f"campaign {campaign_id}", "not_found"))
        return Success(campaign)

    def campaign_ids_for_categories(
        self, category_ids: Sequence[str]
    ) -> Result[Mapping[str, str], LookupFailure]:
        if self.unavailable:
            return Failure(LookupFailure("categories", "unavailable", "fake down"))
        wanted = set(category_ids)
        return Success(
            {
                category: campaign.campaign_id
                for campaign in self.campaigns.values()
                for category in campaign.category_ids
                if category in wanted
            }
        )


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
