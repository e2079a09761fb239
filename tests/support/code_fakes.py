"""An in-memory CodeInventory for wave prep's tests (the codes helper owns the real adapters).

Like the HTTP code service it cannot look a reservation up by key: the same key twice reserves
twice, which is what the wave's reservation ledger exists to prevent. `fail_calls` are the
(1-based) reserve calls that answer 'unavailable' (a timeout past the client's retries).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from returns.result import Failure, Result, Success

from domain.codes import AssignCount, CodeType, Reservation
from domain.models import FailureKind, LookupFailure


@dataclass
class MemoryCodeInventory:
    available: int = 1_000_000
    fail_calls: set[int] = field(default_factory=set)
    calls: int = 0
    reserved: list[str] = field(default_factory=list)  # every code handed out, in order
    keys: list[str] = field(default_factory=list)
    assigned: set[str] = field(default_factory=set)

    def reserve(
        self, campaign_id: str, count: int, code_type: CodeType, key: str
    ) -> Result[Reservation, LookupFailure]:
        self.calls += 1
        if self.calls in self.fail_calls:
            return Failure(LookupFailure("code service", FailureKind.UNAVAILABLE, "timed out"))
        start = len(self.reserved)
        n = max(0, min(count, self.available - start))
        codes = tuple(f"{campaign_id}-X{start + i:07d}" for i in range(n))
        self.reserved.extend(codes)
        self.keys.append(key)
        return Success(Reservation(key=key, reserve_id=f"r{self.calls}", codes=codes))

    def assign(self, campaign_id: str, codes: Sequence[str]) -> Result[AssignCount, LookupFailure]:
        new = set(codes) - self.assigned
        self.assigned |= new
        return Success(AssignCount(received=len(codes), updated=len(new)))

    def lookup(
        self, campaign_id: str, codes: Sequence[str]
    ) -> Result[Mapping[str, str], LookupFailure]:
        held = set(self.reserved)
        return Success(
            {c: "assigned" if c in self.assigned else "reserved" for c in codes if c in held}
        )
