"""The AWS-native code inventory, code issuer and issued-code ledger: one DynamoDB table.

One table (`CODES_TABLE`), string key `pk`, three kinds of item:

- `code#{CODE}`: one per code (so a code string exists once: it can belong to one campaign).
  `code`, `campaignId`, `type` (tm | external), `status` (available | reserved | assigned |
  issued), `globalUserId` (issued codes: the one fan it was made for), `slot` (the reservation
  slot holding it), `reserveId`, `assignedAt`. While the code can still be reserved it carries
  `pool` = "{campaignId}#{type}" and `freeAt` (epoch seconds: 0 when available, the end of its
  24 h hold when reserved), which put it in the sparse GSI `pool-freeAt`: a Query for
  `freeAt <= now` finds available codes and expired holds alike, and assigning removes both
  attributes, so an assigned code is never found again.
- `slot#{campaignId}#{type}#{key}#{i}`: the i-th code of the reservation under the caller's key,
  `code`. A reservation is `count` slots. A slot is filled in two conditional writes: the slot
  names a candidate (only if it did not exist, or still names what it named), then the code is
  taken for the slot (only if free: `pool = :pool AND freeAt <= :now`, or already taken for this
  slot). Two reservations can never hold the same code (the take's condition), a code is held
  by one slot, and two concurrent calls with the same key meet on the slot's condition and
  return the same codes. A crash between the writes leaves a slot naming a code it does not
  hold, refilled by the next call: no code is ever held without a slot naming it, none leaks.
  (No TransactWriteItems here: two writes per slot are cheaper than a transaction, which
  DynamoDB bills twice, and need no rollback.)
  The same key again returns the slots' codes, renewing their 24 h (a conditional update that the
  code is still held by that slot); a slot whose code expired and was taken by someone else is
  filled afresh.
- `issued#{wave}#{globalUserId}`: the ledger of generate_sms_wave_codes (code, row), written
  conditionally 100 to a TransactWriteItems (`DynamoIssuedCodeLedger.record` says why).
- `issuing#{issueKey}`: the issuer's intent, the code it is issuing for that key (a wave's fan),
  written before the code (`DynamoCodeIssuer.issue` says why).

Reserve retries on conflicts (a candidate taken by a concurrent reservation: the next candidate,
then a fresh Query) as the code service does, with no limit but the supply: when the pool has no
free code left, the reservation comes back short.

Assign is one conditional UpdateItem per code, `concurrency` in flight:
`(attribute_not_exists(campaignId) OR campaignId = :c) AND status <> assigned`. A code assigned
to the campaign already is not updated again (idempotent: a re-run updates 0); one that belongs
to another campaign is left alone and counted in `conflicts`; which of the two comes with the
failed condition (`ReturnValuesOnConditionCheckFailure=ALL_OLD`), so a re-run makes one call per
code, not two. A code the table has never seen
(issued by an HTTP Pacman) is recorded as assigned to the campaign, so it can never go to
another.

Throttling and 5xx are botocore's to retry (standard mode); what outlasts them comes back as a
LookupFailure of kind 'unavailable'. BatchGetItem's UnprocessedKeys are resent with the domain's
jittered backoff (the adapter's only retry loop: partial-batch resends).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from returns.result import Failure, Result, Success

from adapters import deadline as deadlines
from adapters.aws.errors import AWS_ERRORS, as_missing, error_code, lookup_failure, unavailable
from domain.backoff import Backoff
from domain.codes import AssignCount, CodeRequest, CodeType, IssuedCode, Reservation
from domain.models import FailureKind, LookupFailure
from domain.streaming import DependencyUnavailable

POOL_INDEX = "pool-freeAt"
HOLD = timedelta(hours=24)
BATCH_GET_LIMIT = 100
DEFAULT_CONCURRENCY = 8
# A fresh draw from 2**60 colliding five times in a row means the generator is broken.
MAX_DRAWS = 5
DEFAULT_UNPROCESSED_BACKOFF = Backoff(base_seconds=0.05, cap_seconds=2.0, retries=6)
_CONDITION_FAILED = "ConditionalCheckFailedException"
_CANCELLED = "TransactionCanceledException"
# Items of a cancelled transaction that were not at fault ("None"), or whose fault passes: sent
# again in the next transaction.
_RESEND_REASONS = frozenset(
    {"None", "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
)
# DynamoDB's limit of items per TransactWriteItems.
TRANSACT_WRITE_LIMIT = 100

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


def create_codes_table(dynamodb: Any, name: str) -> None:
    """The table and its GSI (on-demand), for local runs and tests; waits until ACTIVE."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "pool", "AttributeType": "S"},
            {"AttributeName": "freeAt", "AttributeType": "N"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": POOL_INDEX,
                "KeySchema": [
                    {"AttributeName": "pool", "KeyType": "HASH"},
                    {"AttributeName": "freeAt", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.get_waiter("table_exists").wait(
        TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )


def code_pk(code: str) -> str:
    return f"code#{code}"


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


class _Unavailable(Exception):
    def __init__(self, failure: LookupFailure) -> None:
        super().__init__(str(failure))
        self.failure = failure


def _unavailable(what: str) -> Callable[[Exception], _Unavailable]:
    return lambda error: _Unavailable(lookup_failure(what, error))


def _conditional(
    write: Callable[..., object], failed: Callable[[Exception], Exception], **request: Any
) -> bool:
    """Makes one conditional write: True when it was made, False when its condition failed
    (an answer, not an error: the item exists, or is held or owned by another). Any other AWS
    error, which botocore has already retried, raises `failed(error)`."""
    return _written_or_current(write, failed, **request) is None


def _written_or_current(
    write: Callable[..., object], failed: Callable[[Exception], Exception], **request: Any
) -> Mapping[str, Any] | None:
    """`_conditional`, telling more: None when the write was made; when its condition failed,
    the item as it is ({} if there is none). DynamoDB (and the emulator) send that item with the
    failure when asked (`ReturnValuesOnConditionCheckFailure=ALL_OLD`), so whoever lost learns
    what won without a second read."""
    try:
        write(**request, ReturnValuesOnConditionCheckFailure="ALL_OLD")
    except AWS_ERRORS as error:
        if error_code(error) == _CONDITION_FAILED:
            item = getattr(error, "response", {}).get("Item")
            return dict(item) if isinstance(item, Mapping) else {}
        raise failed(error) from error
    return None


def _batch_get(
    db: Any, table: str, pks: Sequence[str], backoff: Backoff, what: str
) -> dict[str, dict[str, Any]]:
    """pk -> item for the keys that exist (consistent reads). Raises _Unavailable."""
    found: dict[str, dict[str, Any]] = {}
    unique = list(dict.fromkeys(pks))
    for start in range(0, len(unique), BATCH_GET_LIMIT):
        request: dict[str, Any] = {
            table: {
                "Keys": [{"pk": _s(pk)} for pk in unique[start : start + BATCH_GET_LIMIT]],
                "ConsistentRead": True,
            }
        }
        for _ in backoff.attempts(deadlines.current()):
            try:
                answer = db.batch_get_item(RequestItems=request)
            except AWS_ERRORS as error:
                raise _Unavailable(lookup_failure(what, error)) from error
            for item in answer.get("Responses", {}).get(table, []):
                found[item["pk"]["S"]] = item
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                break
        if request:
            raise _Unavailable(
                LookupFailure(what, FailureKind.UNAVAILABLE, "unprocessed keys after retries")
            )
    return found


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
        clock: Clock = _now,
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
        now_s, until_s = int(now.timestamp()), int((now + HOLD).timestamp())
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
            return "updated"
        # The failed condition brought the code's item: ours already, or another campaign's.
        owner = current.get("campaignId", {}).get("S")
        return "already" if owner == campaign_id else "conflict"

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
        now_s = int(self._clock().timestamp())
        answer: dict[str, str] = {}
        for item in items.values():
            if item.get("campaignId", {}).get("S") != campaign_id:
                continue
            status = item["status"]["S"]
            if status == "reserved" and int(item.get("freeAt", {}).get("N", "0")) <= now_s:
                status = "available"  # the hold expired
            answer[item["code"]["S"]] = status
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


class DynamoCodeIssuer:
    """CodeIssuer without Pacman: a fresh code from `generate`, written once (conditional put
    on `code#{CODE}`), recorded as issued to the fan with its product, source and window."""

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        generate: Callable[[], str],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        clock: Clock = _now,
    ) -> None:
        self._db = dynamodb
        self.table = table
        self._generate = generate
        self._clock = clock
        self._pool = ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="issuer")

    def issue(self, request: CodeRequest) -> Result[str, LookupFailure]:
        """With an `issue_key`, idempotent: the intent item `issuing#{key}` names the candidate
        code BEFORE the code is written (first writer wins), so a request killed anywhere is
        finished by the next request with that key with the same code: a kill between issuing
        and the caller's record leaves no code issued and held by nobody (QA found 602 after a
        SIGKILL when the code came first). One more PutItem per code."""
        what = f"code for fan {request.global_user_id!r}"
        key = request.issue_key
        named: str | None = None  # the code the intent names, once it names one
        try:
            for _ in range(MAX_DRAWS):
                code = self._generate()
                if key:
                    code = named = self._intend(key, code, named, what)
                current = _written_or_current(
                    self._db.put_item,
                    _unavailable(what),
                    TableName=self.table,
                    Item=self._item(code, request),
                    ConditionExpression="attribute_not_exists(pk)",
                )
                if current is None:
                    return Success(code)
                if key and current.get("issueKey", {}).get("S") == key:
                    return Success(code)  # an earlier (killed) request wrote it for this fan
                # the code exists for another: draw again
        except _Unavailable as problem:
            return Failure(problem.failure)
        return Failure(LookupFailure(what, FailureKind.INVALID, f"{MAX_DRAWS} draws all collided"))

    def _intend(self, key: str, candidate: str, named: str | None, what: str) -> str:
        """Points `issuing#{key}` at `candidate` (if it names nothing yet, or still `named`, a
        code that collided); returns the code it names afterwards."""
        condition = (
            ("attribute_not_exists(pk)", {})
            if named is None
            else ("code = :named", {"ExpressionAttributeValues": {":named": _s(named)}})
        )
        current = _written_or_current(
            self._db.put_item,
            _unavailable(what),
            TableName=self.table,
            Item={"pk": _s(f"issuing#{key}"), "code": _s(candidate)},
            ConditionExpression=condition[0],
            **condition[1],
        )
        if current is None:
            return candidate
        code = current.get("code", {}).get("S")
        return code if isinstance(code, str) and code else candidate

    def _item(self, code: str, request: CodeRequest) -> dict[str, Any]:
        return {
            "pk": _s(code_pk(code)),
            "code": _s(code),
            "type": _s(str(CodeType.EXTERNAL)),
            "status": _s("issued"),
            "globalUserId": _s(request.global_user_id),
            "productId": _s(request.product_id),
            "source": _s(request.source),
            "validFrom": _s(request.begin.isoformat()),
            "validTo": _s(request.end.isoformat()),
            "issuedAt": _s(self._clock().isoformat()),
            **({"issueKey": _s(request.issue_key)} if request.issue_key else {}),
        }

    def issue_many(
        self, requests: Sequence[CodeRequest], *, deadline_seconds: float | None = None
    ) -> Sequence[Result[str, LookupFailure]]:
        """A request not started by the deadline comes back 'unavailable' (the worker stops and
        a re-run issues it); one started finishes (its key makes the re-run get the same code)."""
        if deadline_seconds is None:
            return list(self._pool.map(self.issue, requests))
        end = time.monotonic() + deadline_seconds

        def issue_in_time(request: CodeRequest) -> Result[str, LookupFailure]:
            if time.monotonic() >= end:
                return Failure(
                    LookupFailure(
                        f"code for fan {request.global_user_id!r}",
                        FailureKind.UNAVAILABLE,
                        f"not started within the deadline of {deadline_seconds:g} s",
                    )
                )
            return self.issue(request)

        return list(self._pool.map(issue_in_time, requests))


class DynamoIssuedCodeLedger:
    """IssuedCodeLedger on the codes table: `issued#{wave}#{globalUserId}` -> code, row."""

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        backoff: Backoff = DEFAULT_UNPROCESSED_BACKOFF,
    ) -> None:
        self._db = dynamodb
        self.table = table
        self._pool = ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="ledger")
        self._backoff = backoff

    @staticmethod
    def _pk(wave: str, global_user_id: str) -> str:
        return f"issued#{wave}#{global_user_id}"

    def recall(self, wave: str, global_user_ids: Sequence[str]) -> Mapping[str, IssuedCode]:
        """Raises DependencyUnavailable when DynamoDB cannot answer (after botocore's retries)."""
        pks = {self._pk(wave, g): g for g in global_user_ids}
        try:
            items = _batch_get(self._db, self.table, list(pks), self._backoff, f"ledger of {wave}")
        except _Unavailable as problem:
            raise DependencyUnavailable(self.table, str(problem.failure)) from problem
        return {pks[pk]: _issued(item) for pk, item in items.items()}

    def record(self, wave: str, issued: Mapping[str, IssuedCode]) -> Mapping[str, IssuedCode]:
        """Conditional puts (`attribute_not_exists(pk)`), 100 to a TransactWriteItems, those
        transactions `concurrency` at a time. Why transactions: one PutItem per fan cost ~1.2 ms
        of client CPU in botocore, 2.4 cores at 2,000 codes/s; a transaction of 100 costs ~60 µs
        a fan (benchmarks/README.md, "Wave codes"). BatchWriteItem is cheaper still but takes no
        condition: a concurrent run's record would be overwritten, and the fan could be sent a
        code the ledger no longer holds. The price: DynamoDB bills a transactional write twice.

        A transaction is all or nothing. One cancelled because some fans hold a record already
        names them, each with its record (ReturnValuesOnConditionCheckFailure=ALL_OLD): those
        keep it (the first record wins) and the others are sent again in a new transaction; so
        are all of one cancelled by a conflicting transaction or throttling, after the backoff
        (the adapter's only retry loop: partial-batch resends). Raises DependencyUnavailable
        when DynamoDB cannot answer, or the resends run out."""
        entries = list(issued.items())
        groups = [
            entries[i : i + TRANSACT_WRITE_LIMIT]
            for i in range(0, len(entries), TRANSACT_WRITE_LIMIT)
        ]
        held: dict[str, IssuedCode] = {}
        for part in self._pool.map(lambda group: self._record_group(wave, group), groups):
            held.update(part)
        return held

    def _record_group(
        self, wave: str, group: list[tuple[str, IssuedCode]]
    ) -> dict[str, IssuedCode]:
        held: dict[str, IssuedCode] = {}
        pending = dict(group)
        for _ in self._backoff.attempts(deadlines.current()):
            order = list(pending)
            try:
                self._db.transact_write_items(
                    TransactItems=[self._put(wave, gid, pending[gid]) for gid in order]
                )
            except AWS_ERRORS as error:
                if error_code(error) != _CANCELLED:
                    raise unavailable(self.table, error) from error
                reasons = getattr(error, "response", {}).get("CancellationReasons") or []
                if len(reasons) != len(order):
                    raise unavailable(self.table, error) from error
                for gid, reason in zip(order, reasons, strict=True):
                    code = reason.get("Code")
                    if code == "ConditionalCheckFailed" and isinstance(reason.get("Item"), Mapping):
                        held[gid] = _issued(reason["Item"])  # recorded first: that one holds
                        del pending[gid]
                    elif code not in _RESEND_REASONS:
                        raise unavailable(self.table, error) from error
                if not pending:
                    return held
                continue
            return {**held, **pending}
        raise DependencyUnavailable(
            self.table,
            f"ledger of {wave}: {len(pending)} records still cancelled after "
            f"{self._backoff.tries} transactions",
        )

    def _put(self, wave: str, gid: str, code: IssuedCode) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table,
                "Item": {"pk": _s(self._pk(wave, gid)), "code": _s(code.code), "row": _n(code.row)},
                "ConditionExpression": "attribute_not_exists(pk)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }


def _issued(item: Mapping[str, Any]) -> IssuedCode:
    return IssuedCode(code=item["code"]["S"], row=int(item["row"]["N"]))


def iter_table_codes(db: Any, table: str) -> Iterator[dict[str, Any]]:
    """Every code item (a Scan): for tests and audits, not for workers."""
    start: dict[str, Any] | None = None
    while True:
        page = db.scan(TableName=table, **({"ExclusiveStartKey": start} if start else {}))
        yield from (i for i in page["Items"] if i["pk"]["S"].startswith("code#"))
        start = page.get("LastEvaluatedKey")
        if not start:
            return
