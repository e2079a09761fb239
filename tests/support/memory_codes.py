"""In-memory fakes of the access-code ports (CodeIssuer, CodeInventory), for
unit tests and benchmarks. No I/O, no mocks; beside the other ports' fakes
(tests/support/memory_*.py) so the code workers' fakes stay in one small module.

MemoryCodeInventory stores what the DynamoDB inventory stores, on dicts, and decides with the
same rules, domain/inventory.py's (holds expire after 24 h unless assigned, an unseen code counts
as assigned, a code of another campaign is a conflict), so the workers' unit tests see the same
behaviour as the integration tests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from returns.result import Failure, Result, Success

from domain.codes import AssignCount, CodeRequest, CodeType, Reservation
from domain.inventory import AssignOutcome, assign_outcome, hold_until, is_free, seen_status
from domain.models import FailureKind, LookupFailure


@dataclass
class IssuerFaults:
    """`unavailable_after`: every call from that many on fails 'unavailable' (an outage mid-
    file); `rejected`: fans whose requests the issuer refuses ('invalid')."""

    unavailable_after: int | None = None
    rejected: set[str] = field(default_factory=set)
    # Called with the call's number (1-based) before it issues: a test's crash (kill -9) hook.
    before_call: Callable[[int], None] | None = None


class MemoryCodeIssuer:
    """Issues `CODE{n}` codes, counting calls; thread-safe like the real adapters. Keeps issue
    keys like the DynamoDB issuer: a request with a key it has seen gets that key's code."""

    def __init__(self, faults: IssuerFaults | None = None, prefix: str = "CODE") -> None:
        self.faults = faults or IssuerFaults()
        self.prefix = prefix
        self.calls = 0
        self.issued: list[tuple[CodeRequest, str]] = []
        self.by_key: dict[str, str] = {}
        self.deadlines: list[float | None] = []  # each issue_many's deadline_seconds
        self._lock = threading.Lock()

    def issue(self, request: CodeRequest) -> Result[str, LookupFailure]:
        what = f"code for fan {request.global_user_id!r}"
        with self._lock:
            self.calls += 1
            if self.faults.before_call is not None:
                self.faults.before_call(self.calls)
            after = self.faults.unavailable_after
            if after is not None and self.calls > after:
                return Failure(
                    LookupFailure(what, FailureKind.UNAVAILABLE, "issuer told to be down")
                )
            if request.global_user_id in self.faults.rejected:
                return Failure(LookupFailure(what, FailureKind.INVALID, "issuer refused the fan"))
            if request.issue_key in self.by_key:
                return Success(self.by_key[request.issue_key])
            code = f"{self.prefix}{len(self.issued) + 1:08d}"
            self.issued.append((request, code))
            if request.issue_key:
                self.by_key[request.issue_key] = code
            return Success(code)

    def issue_many(
        self, requests: Sequence[CodeRequest], *, deadline_seconds: float | None = None
    ) -> Sequence[Result[str, LookupFailure]]:
        """Instant, so the deadline is only recorded (a test's slow issuer is its before_call)."""
        self.deadlines.append(deadline_seconds)
        return [self.issue(r) for r in requests]


@dataclass
class _Code:
    campaign_id: str | None
    code_type: CodeType
    status: str  # available | reserved | assigned | issued
    slot: str | None = None
    free_at: datetime | None = None  # None: free now (or never reservable once assigned)


class MemoryCodeInventory:
    """CodeInventory with the DynamoDB inventory's rules (module docstring); `clock` decides
    when holds expire; `unavailable` makes every call fail 'unavailable'."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.clock = clock
        self.codes: dict[str, _Code] = {}
        self.slots: dict[str, str] = {}
        self.assign_calls: list[int] = []
        self.unavailable = False
        self._lock = threading.Lock()

    def stock(self, campaign_id: str, code_type: CodeType, codes: Sequence[str]) -> int:
        with self._lock:
            added = 0
            for code in codes:
                if code not in self.codes:
                    self.codes[code] = _Code(campaign_id, code_type, "available")
                    added += 1
            return added

    def _free(self, item: _Code, now: datetime) -> bool:
        return is_free(item.status, item.free_at, now)

    def reserve(
        self, campaign_id: str, count: int, code_type: CodeType, key: str
    ) -> Result[Reservation, LookupFailure]:
        what = f"reserve {count} {code_type} codes for campaign {campaign_id!r}"
        if self.unavailable:
            return Failure(LookupFailure(what, FailureKind.UNAVAILABLE, "told to be down"))
        if count < 1:
            return Failure(LookupFailure(what, FailureKind.INVALID, "count must be at least 1"))
        with self._lock:
            now = self.clock()
            until = hold_until(now)
            held: list[str] = []
            for i in range(count):
                slot = f"{campaign_id}#{code_type}#{key}#{i}"
                code = self.slots.get(slot)
                item = self.codes.get(code) if code else None
                if item is not None and item.slot == slot:
                    if item.status == "reserved":
                        item.free_at = until
                    held.append(code)  # type: ignore[arg-type]
                    continue
                fresh = next(
                    (
                        c
                        for c, it in self.codes.items()
                        if it.campaign_id == campaign_id
                        and it.code_type == code_type
                        and self._free(it, now)
                    ),
                    None,
                )
                if fresh is None:
                    break
                self.codes[fresh] = _Code(campaign_id, code_type, "reserved", slot, until)
                self.slots[slot] = fresh
                held.append(fresh)
            return Success(Reservation(key, f"{campaign_id}#{key}", tuple(held), until))

    def assign(self, campaign_id: str, codes: Sequence[str]) -> Result[AssignCount, LookupFailure]:
        self.assign_calls.append(len(codes))
        if self.unavailable:
            return Failure(LookupFailure("assign", FailureKind.UNAVAILABLE, "told to be down"))
        with self._lock:
            updated = conflicts = 0
            for code in codes:
                item = self.codes.get(code)
                outcome = assign_outcome(
                    item.campaign_id if item else None,
                    item.status if item else None,
                    campaign_id,
                    seen=item is not None,
                )
                if outcome is AssignOutcome.CONFLICT:
                    conflicts += 1
                elif outcome is AssignOutcome.UPDATED:
                    if item is None:
                        item = self.codes[code] = _Code(campaign_id, CodeType.EXTERNAL, "assigned")
                    item.campaign_id, item.status, item.free_at = campaign_id, "assigned", None
                    updated += 1
            return Success(AssignCount(len(codes), updated, conflicts))

    def lookup(
        self, campaign_id: str, codes: Sequence[str]
    ) -> Result[Mapping[str, str], LookupFailure]:
        now = self.clock()
        return Success(
            {
                c: seen_status(self.codes[c].status, self.codes[c].free_at, now)
                for c in codes
                if c in self.codes and self.codes[c].campaign_id == campaign_id
            }
        )

    def assigned_to(self, campaign_id: str) -> set[str]:
        return {
            c
            for c, it in self.codes.items()
            if it.campaign_id == campaign_id and it.status == "assigned"
        }
