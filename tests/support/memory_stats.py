"""In-memory fakes for the stats workers: the lake's records by key, and open campaigns."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from returns.result import Failure, Result, Success

from domain.models import Campaign, FailureKind, LookupFailure, ObjectRef


class MemoryLakeRecords:
    """Records per object key; `read` lists the keys in the order they were read."""

    def __init__(self, files: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
        self.files = dict(files)
        self.read: list[str] = []

    def records(self, ref: ObjectRef) -> Iterator[Mapping[str, Any]]:
        self.read.append(ref.key)
        yield from self.files.get(ref.key, ())


class MemoryOpenCampaigns:
    def __init__(self, campaigns: Sequence[Campaign] = (), unavailable: bool = False) -> None:
        self.campaigns, self.unavailable = list(campaigns), unavailable

    def open_campaigns(self) -> Result[Sequence[Campaign], LookupFailure]:
        if self.unavailable:
            return Failure(LookupFailure("open campaigns", FailureKind.UNAVAILABLE, "down"))
        return Success(self.campaigns)
