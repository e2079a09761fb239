"""CodeInventory on the codes table (adapters/aws/dynamo_table.py describes its items): stock,
reserve (slots filled by two conditional writes, no transaction), assign, lookup. DynamoDB is
storage here: the rules (the 24 h hold, an unseen code counts as assigned, what a conflict is)
are domain/inventory.py's, shared with the in-memory inventory; the condition expressions below
are those rules as DynamoDB evaluates them, and a failed condition is classified by the same
functions from the item it returns.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from returns.result import Failure, Result, Success

from adapters.aws.dynamo_table import (
    DEFAULT_CONCURRENCY,
    DEFAULT_UNPROCESSED_BACKOFF,
    POOL_INDEX,
    Clock,
    _batch_get,
    _conditional,
    _n,
    _s,
    _Unavailable,
    _unavailable,
    _written_or_current,
    code_pk,
    now_utc,
)
from adapters.aws.errors import AWS_ERRORS, as_missing, lookup_failure
from domain.backoff import Backoff
from domain.codes import AssignCount, CodeType, Reservation
from domain.inventory import AssignOutcome, assign_outcome, hold_until, seen_status
from domain.models import FailureKind, LookupFailure


@dataclass(frozen=True, slots=True)
class StockCount:
    """What `stock` did: added = new codes; already = in this campaign's pool before;
    conflicts = codes that exist for another campaign or purpose (left alone)."""

    added: int = 0
    already: int = 0
    conflicts: int = 0


class _Candidates:
    """Free codes of one pool, fetched a page at a time and handed out once each (threads)."""

    def __init__(self, db: Any, table: str, pool: str, now: int, page: int) -> None:
        self._db, self._table, self._pool, self._now, self._page = db, table, pool, now, page
        self._lock = threading.Lock()
        self._buffer: list[str] = []
        self._start: dict[str, Any] | None = None
        self._exhausted = False

    def next(self) -> str | None:
        with self._lock:
            while not self._buffer and not self._exhausted:
                self._fetch()
            return self._buffer.pop() if self._buffer else None

    def give_back(self, code: str) -> None:
        """A candidate not used (its slot named another code first): still free for the others;
        dropping it would make a call with the same key come back short while stock is left."""
        with self._lock:
            self._buffer.append(code)

    def _fetch(self) -> None:
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": POOL_INDEX,
            "KeyConditionExpression": "#pool = :pool AND freeAt <= :now",
            "ExpressionAttributeNames": {"#pool": "pool"},
            "ExpressionAttributeValues": {":pool": _s(self._pool), ":now": _n(self._now)},
            "Limit": self._page,
        }
        if self._start:
            query["ExclusiveStartKey"] = self._start
        try:
            answer = self._db.query(**query)
        except AWS_ERRORS as error:
            raise _Unavailable(lookup_failure(f"free codes of pool {self._pool}", error)) from error
        # Kept reversed so that pop() hands out the oldest free code first.
        fetched = [item["pk"]["S"].removeprefix("code#") for item in answer["Items"]]
        self._buffer[:0] = reversed(fetched)
        self._start = answer.get("LastEvaluatedKey")
        if not self._start:
            self._exhausted = True


class DynamoCodeInventory:
    """CodeInventory on the codes table (module docstring)."""

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        *,
        clock: Clock = now_utc,
        concurrency: int = DEFAULT_CONCURRENCY,
        backoff: Backoff = DEFAULT_UNPROCESSED_BACKOFF,
    ) -> None:
        self._db = dynamodb
        self.table = table
        self._clock = clock
        self._pool = ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="codes")
        self._backoff = backoff

    # --- stock -----------------------------------------------------------------------------

    def stock(self, campaign_id: str, code_type: CodeType, codes: Sequence[str]) -> StockCount:
        """Adds codes to the campaign's pool as available: one conditional put per code (a code
        exists once). For local runs, tests and loading a campaign's external codes; botocore
        errors other than the condition raise _Unavailable (broken infrastructure)."""
        pool = f"{campaign_id}#{code_type}"

        def put(code: str) -> str:
            added = _conditional(
                self._db.put_item,
                _unavailable(f"stock code for campaign {campaign_id!r}"),
                TableName=self.table,
                Item={
                    "pk": _s(code_pk(code)),
                    "code": _s(code),
                    "campaignId": _s(campaign_id),
                    "type": _s(str(code_type)),
                    "status": _s("available"),
                    "pool": _s(pool),
                    "freeAt": _n(0),
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
            return "added" if added else "exists"

        outcomes = list(self._pool.map(put, dict.fromkeys(codes)))
        existing = [c for c, o in zip(dict.fromkeys(codes), outcomes, strict=True) if o == "exists"]
        items = _batch_get(
            self._db, self.table, [code_pk(c) for c in existing], self._backoff, "stock"
        )
        already = sum(
            1
            for c in existing
            if items.get(code_pk(c), {}).get("campaignId", {}).get("S") == campaign_id
            and items.get(code_pk(c), {}).get("type", {}).get("S") == str(code_type)
        )
        return StockCount(
            added=outcomes.count("added"),
            already=already + (len(codes) - len(outcomes)),
            conflicts=len(existing) - already,
        )

    # --- reserve ---------------------------------------------------------------------------

    def reserve(
        self, campaign_id: str, count: int, code_type: CodeType, key: str
    ) -> Result[Reservation, LookupFailure]:
        what = f"reserve {count} {code_type} codes for campaign {campaign_id!r} under {key!r}"
        if count < 1 or not campaign_id or not key:
            return Failure(
                LookupFailure(what, FailureKind.INVALID, "count >= 1, campaign and key needed")
            )
        now = self._clock()
        now_s, until_s = int(now.timestamp()), int(hold_until(now).timestamp())
        pool = f"{campaign_id}#{code_type}"
        reserve_id = hashlib.sha256(f"{pool}#{key}".encode()).hexdigest()[:24]
        slots = [f"slot#{pool}#{key}#{i}" for i in range(count)]
        try:
            held, to_fill = self._read_slots(slots, now_s, until_s, what)
            candidates = _Candidates(self._db, self.table, pool, now_s, max(100, len(to_fill)))
            fill = _Fill(self._db, self.table, pool, reserve_id, key, now_s, until_s, candidates)
            for slot, code in zip(
                [s for s, _ in to_fill], self._pool.map(fill.fill, to_fill), strict=True
            ):
                if code is not None:
                    held[slot] = code
        except _Unavailable as problem:
            # No codes table is the deployment's fault: wave prep must not retry it as an outage.
            return Failure(as_missing(problem.failure))
        return Success(
            Reservation(
                key=key,
                reserve_id=reserve_id,
                codes=tuple(held[s] for s in slots if s in held),
                expires_at=datetime.fromtimestamp(until_s, UTC),
            )
        )

    def _read_slots(
        self, slots: Sequence[str], now_s: int, until_s: int, what: str
    ) -> tuple[dict[str, str], list[tuple[str, str | None]]]:
        """Codes still held by their slot (holds renewed), and the slots to fill."""
        slot_items = _batch_get(self._db, self.table, slots, self._backoff, what)
        named = {s: item["code"]["S"] for s, item in slot_items.items()}
        codes = _batch_get(
            self._db, self.table, [code_pk(c) for c in named.values()], self._backoff, what
        )
        held: dict[str, str] = {}
        to_fill: list[tuple[str, str | None]] = []
        renew: list[tuple[str, str]] = []
        for slot in slots:
            code = named.get(slot)
            item = codes.get(code_pk(code)) if code else None
            if code is None or item is None or item.get("slot", {}).get("S") != slot:
                to_fill.append((slot, code))
            elif item["status"]["S"] == "assigned":
                held[slot] = code
            else:
                renew.append((slot, code))
        renewed = list(self._pool.map(lambda sc: self._renew(sc[0], sc[1], until_s, what), renew))
        for (slot, code), ok in zip(renew, renewed, strict=True):
            if ok:
                held[slot] = code
            else:
                to_fill.append((slot, code))
        return held, to_fill

    def _renew(self, slot: str, code: str, until_s: int, what: str) -> bool:
        return _conditional(
            self._db.update_item,
            _unavailable(what),
            TableName=self.table,
            Key={"pk": _s(code_pk(code))},
            UpdateExpression="SET freeAt = :until",
            ConditionExpression="slot = :slot AND #status = :reserved",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":until": _n(until_s),
                ":slot": _s(slot),
                ":reserved": _s("reserved"),
            },
        )

    # --- assign ----------------------------------------------------------------------------

    def assign(self, campaign_id: str, codes: Sequence[str]) -> Result[AssignCount, LookupFailure]:
        what = f"assign {len(codes)} codes to campaign {campaign_id!r}"
        if not campaign_id:
            return Failure(LookupFailure(what, FailureKind.INVALID, "empty campaign id"))
        now = self._clock().isoformat()
        outcomes = list(self._pool.map(lambda c: self._assign_one(campaign_id, c, now), codes))
        failures = [o for o in outcomes if isinstance(o, LookupFailure)]
        if failures:
            # Codes updated before the failure stay assigned; a re-run counts them as done.
            return Failure(LookupFailure(what, failures[0].kind, failures[0].detail))
        return Success(
            AssignCount(
                received=len(codes),
                updated=outcomes.count("updated"),
                conflicts=outcomes.count("conflict"),
            )
        )

    def _assign_one(self, campaign_id: str, code: str, now: str) -> str | LookupFailure:
        if not code:
            return "conflict"
        try:
            current = _written_or_current(
                self._db.update_item,
                _unavailable("code"),
                TableName=self.table,
                Key={"pk": _s(code_pk(code))},
                UpdateExpression=(
                    "SET campaignId = :c, #status = :assigned, code = :code, "
                    "assignedAt = if_not_exists(assignedAt, :now) REMOVE #pool, freeAt"
                ),
                ConditionExpression=(
                    "(attribute_not_exists(campaignId) OR campaignId = :c) "
                    "AND (attribute_not_exists(#status) OR #status <> :assigned)"
                ),
                ExpressionAttributeNames={"#status": "status", "#pool": "pool"},
                ExpressionAttributeValues={
                    ":c": _s(campaign_id),
                    ":assigned": _s("assigned"),
                    ":code": _s(code),
                    ":now": _s(now),
                },
            )
        except _Unavailable as problem:
            return problem.failure
        if current is None:
            return AssignOutcome.UPDATED
        # The failed condition (the rule as an expression) brought the code's item: the rule
        # says which refusal it was, another campaign's or ours already (not updated, so never
        # "updated", even for an item changed since the condition was evaluated).
        owner, status = current.get("campaignId", {}).get("S"), current.get("status", {}).get("S")
        refused = assign_outcome(owner, status, campaign_id)
        return AssignOutcome.ALREADY if refused is AssignOutcome.UPDATED else refused

    # --- lookup ----------------------------------------------------------------------------

    def lookup(
        self, campaign_id: str, codes: Sequence[str]
    ) -> Result[Mapping[str, str], LookupFailure]:
        what = f"look up {len(codes)} codes of campaign {campaign_id!r}"
        try:
            items = _batch_get(
                self._db, self.table, [code_pk(c) for c in codes], self._backoff, what
            )
        except _Unavailable as problem:
            return Failure(problem.failure)
        now = self._clock()
        answer: dict[str, str] = {}
        for item in items.values():
            if item.get("campaignId", {}).get("S") != campaign_id:
                continue
            free_at = datetime.fromtimestamp(int(item.get("freeAt", {}).get("N", "0")), UTC)
            answer[item["code"]["S"]] = seen_status(item["status"]["S"], free_at, now)
        return Success(answer)


@dataclass(frozen=True)
class _Fill:
    """Fills one reservation slot with a free code, without a transaction (module docstring).

    The slot names its code first (a conditional put: only if the slot does not exist, or
    still names the code it named), then the code is taken for the slot (a conditional update:
    only if free, or already taken for this very slot). A crash between the two leaves a slot
    naming a code it does not hold, which the next call with the key fills afresh: no code is
    ever taken without a slot naming it, so none leaks. Two calls with the same key meet on
    the slot's condition and end up taking the same code for it.
    """

    db: Any
    table: str
    pool: str
    reserve_id: str
    key: str
    now_s: int
    until_s: int
    candidates: _Candidates

    def fill(self, slot_and_old: tuple[str, str | None]) -> str | None:
        slot, current = slot_and_old
        if current is None:
            candidate = self.candidates.next()
            if candidate is None:
                return None
            current = self._name(slot, None, candidate)
        while True:
            if self._take(slot, current):
                return current
            candidate = self.candidates.next()
            if candidate is None:
                return None
            current = self._name(slot, current, candidate)

    def _name(self, slot: str, old: str | None, code: str) -> str:
        """Makes the slot name `code` unless it changed since we read `old`; the slot's code."""
        update: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"pk": _s(slot)},
            "UpdateExpression": "SET code = :code",
            "ExpressionAttributeValues": {":code": _s(code)},
        }
        if old is None:
            update["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            update["ConditionExpression"] = "code = :old"
            update["ExpressionAttributeValues"][":old"] = _s(old)
        current = _written_or_current(
            self.db.update_item, _unavailable(f"reservation slot {slot}"), **update
        )
        if current is None:
            return code
        self.candidates.give_back(code)
        # A concurrent call with the same key got there first: the failed condition brought the
        # slot as it is, naming that call's code.
        return str(current["code"]["S"])

    def _take(self, slot: str, code: str) -> bool:
        """False: taken by another reservation (or assigned); the caller tries the next one."""
        return _conditional(
            self.db.update_item,
            _unavailable(f"code for slot {slot}"),
            TableName=self.table,
            Key={"pk": _s(code_pk(code))},
            UpdateExpression=(
                "SET #status = :reserved, freeAt = :until, slot = :slot, "
                "reserveId = :rid, reserveKey = :key"
            ),
            ConditionExpression=(
                "(#pool = :pool AND freeAt <= :now) "
                "OR (slot = :slot AND #status = :reserved AND attribute_exists(#pool))"
            ),
            ExpressionAttributeNames={"#status": "status", "#pool": "pool"},
            ExpressionAttributeValues={
                ":reserved": _s("reserved"),
                ":until": _n(self.until_s),
                ":slot": _s(slot),
                ":rid": _s(self.reserve_id),
                ":key": _s(self.key),
                ":pool": _s(self.pool),
                ":now": _n(self.now_s),
            },
        )
