"""The lake compaction's MoveQueue in memory, for the merge's unit tests: the requests a merge
queued, in order; it can be told to fail its next sends (memory_faults.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.lake import MoveRequest
from domain.streaming import DependencyUnavailable
from tests.support.memory_faults import Faults


@dataclass
class MemoryMoveQueue:
    """MoveQueue: the requests a merge queued, in order."""

    requests: list[MoveRequest] = field(default_factory=list)
    faults: Faults = field(default_factory=Faults)

    def send(self, request: MoveRequest) -> None:
        if self.faults.tripped():
            raise DependencyUnavailable("memory move queue", "told to fail")
        self.requests.append(request)
