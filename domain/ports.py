"""The ports: what the domain needs from the outside world, named by need, not by AWS service.

Each is a `typing.Protocol`; adapters/ implements them with boto3 and HTTP clients,
adapters/memory.py with in-process fakes for unit tests and dry runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from returns.result import Result

from domain.models import (
    Campaign,
    LookupFailure,
    Notification,
    ObjectInfo,
    ObjectRef,
    PutOutcome,
    StreamRecord,
)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class ObjectWriter(Protocol):
    def write(self, data: bytes) -> int: ...


class ObjectStore(Protocol):
    """Blobs by bucket and key. Reads stream; writes are complete-or-nothing."""

    def iter_lines(self, ref: ObjectRef) -> Iterator[bytes]:
        """The object's lines, streamed, each with its line ending removed (LF or CRLF)."""
        ...

    def iter_chunks(self, ref: ObjectRef) -> Iterator[bytes]:
        """The object's bytes, streamed in chunks."""
        ...

    def read_bytes(self, ref: ObjectRef) -> bytes:
        """A whole (small) object. Raises ObjectNotFound."""
        ...

    def put_bytes(self, ref: ObjectRef, data: bytes, content_type: str = ...) -> None: ...

    def open_writer(
        self, ref: ObjectRef, content_type: str = ...
    ) -> AbstractContextManager[ObjectWriter]:
        """A streaming writer; the object appears only when the block exits without error."""
        ...

    def head(self, ref: ObjectRef) -> ObjectInfo | None: ...

    def list_objects(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]: ...

    def copy(self, source: ObjectRef, target: ObjectRef) -> None: ...

    def delete(self, ref: ObjectRef) -> None: ...


class RecordStream(Protocol):
    """A Kinesis-like stream. `put_records` consumes an iterable lazily, in batches within the
    stream's limits, resends entries that failed, and reports what could not be delivered."""

    max_record_bytes: int

    def put_records(self, records: Iterable[StreamRecord]) -> PutOutcome: ...


class RecordEncoder(Protocol):
    """Serialises a record to bytes (JSON). Injected so the domain stays free of orjson."""

    def __call__(self, record: Mapping[str, Any]) -> bytes: ...


class CampaignDirectory(Protocol):
    def get_campaign(self, campaign_id: str) -> Result[Campaign, LookupFailure]: ...

    def campaign_ids_for_categories(
        self, category_ids: Sequence[str]
    ) -> Result[Mapping[str, str], LookupFailure]:
        """categoryId -> campaignId for the ids that are known; unknown ids are left out."""
        ...


class Notifier(Protocol):
    """Posts a human-readable summary (Slack). Failing to notify never fails the work."""

    def notify(self, notification: Notification) -> Result[None, str]: ...


# --- Stream consumers (issue 3): code assignment look-ups and selection -----------------------


class UserDirectory(Protocol):
    def user_ids_for(
        self, global_user_ids: Sequence[str]
    ) -> Result[Mapping[str, str], LookupFailure]:
        """globalUserId -> userId for the ids that are known; unknown ids are left out."""
        ...
