"""The once-ledger (OnceLedger) on DynamoDB: one item per effect, keyed by its natural id.

Table: string key `pk` (the entry's key); `state`, `owner`, `expiresAt` (epoch milliseconds),
`version`, `detail`. The rules are domain/once.py's; this adapter only compares and sets: every
write is a whole-item Put (or a Delete) with `ConditionExpression` `attribute_not_exists(pk)` for
a new entry, `#v = :v` (the version read) otherwise, so of two writers from the same version one
wins and the other is told (`ReturnValuesOnConditionCheckFailure=ALL_OLD`) what won, without a
second read, and decides again from that.

Claims and finishes go 100 to a TransactWriteItems (each item with its own condition): one
PutItem per entry costs ~1 ms of botocore CPU, a transaction of 100 a fraction of it a entry
(benchmarks/README.md, "Once-ledger"); a transaction cancelled because some items' conditions
failed names each (CancellationReasons with their items): those are decided again, the rest
resent. BatchWriteItem would be cheaper but takes no condition: a concurrent claim would be
overwritten, which is the double send this ledger exists to prevent. DynamoDB bills a
transactional write twice; `start` is one conditional PutItem, `start_many` a group's starts
in transactions (a sender starts 100 right before their calls).

Throttling and 5xx are botocore's to retry; what outlasts them raises DependencyUnavailable.
Resends of cancelled transactions use the domain's jittered backoff (partial-batch resends, the
adapter's only retry loop).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters import deadline as deadlines
from adapters.aws.errors import AWS_ERRORS, error_code, unavailable
from domain.backoff import Backoff
from domain.once import (
    Done,
    Entry,
    EntryState,
    LedgerConflict,
    Outcome,
    Resolution,
    check_dead_owners,
    check_ttl,
    on_claim,
    on_finish,
    on_record,
    on_release,
    on_resolve,
    on_start,
)
from domain.streaming import DependencyUnavailable

TRANSACT_WRITE_LIMIT = 100
BATCH_GET_LIMIT = 100
DEFAULT_BACKOFF = Backoff(base_seconds=0.05, cap_seconds=2.0, retries=6)
_CONDITION_FAILED = "ConditionalCheckFailedException"
_CANCELLED = "TransactionCanceledException"
_RESEND_REASONS = frozenset(
    {"None", "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
)
# A decision: the entry to write (None: none to write) given the entry as it is.
_Rule = Callable[[Entry | None], Entry | None]


def _now() -> datetime:
    return datetime.now(UTC)


def create_ledger_table(dynamodb: Any, name: str) -> None:
    """The ledger's table (on-demand), for local runs and tests; waits until ACTIVE."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.get_waiter("table_exists").wait(
        TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )


def _item(entry: Entry) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": {"S": entry.key},
        "state": {"S": entry.state.value},
        "owner": {"S": entry.owner},
        "expiresAt": {"N": str(int(entry.expires_at.timestamp() * 1000))},
        "version": {"N": str(entry.version)},
    }
    if entry.detail:
        item["detail"] = {"S": entry.detail}
    return item


def _entry(item: Mapping[str, Any]) -> Entry:
    return Entry(
        key=item["pk"]["S"],
        state=EntryState(item["state"]["S"]),
        owner=item["owner"]["S"],
        expires_at=datetime.fromtimestamp(int(item["expiresAt"]["N"]) / 1000, UTC),
        version=int(item["version"]["N"]),
        detail=item.get("detail", {}).get("S", ""),
    )


def _condition(expected: int) -> dict[str, Any]:
    if expected == 0:
        return {"ConditionExpression": "attribute_not_exists(pk)"}
    return {
        "ConditionExpression": "#v = :v",
        "ExpressionAttributeNames": {"#v": "version"},
        "ExpressionAttributeValues": {":v": {"N": str(expected)}},
    }


class DynamoOnceLedger:
    """OnceLedger on one DynamoDB table (module docstring)."""

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        *,
        clock: Callable[[], datetime] = _now,
        backoff: Backoff = DEFAULT_BACKOFF,
        concurrency: int = 1,
    ) -> None:
        self._db = dynamodb
        self.table = table
        self._clock = clock
        self._backoff = backoff
        # Transactions of 100 in flight at once (a wave's chunk of 1,000 codes is ten).
        self._pool = (
            ThreadPoolExecutor(concurrency, thread_name_prefix="ledger")
            if concurrency > 1
            else None
        )

    # -- one entry: a conditional Put or Delete, decided again from what won ---------------------

    def _write(self, key: str, expected: int, new: Entry | None) -> tuple[bool, Entry | None]:
        """(True, None) when written; else (False, the entry as it is, None: there is none)."""
        request = {"TableName": self.table, **_condition(expected)}
        try:
            if new is None:
                self._db.delete_item(
                    Key={"pk": {"S": key}}, ReturnValuesOnConditionCheckFailure="ALL_OLD", **request
                )
            else:
                self._db.put_item(
                    Item=_item(new), ReturnValuesOnConditionCheckFailure="ALL_OLD", **request
                )
        except AWS_ERRORS as error:
            if error_code(error) != _CONDITION_FAILED:
                raise unavailable(self.table, error) from error
            item = getattr(error, "response", {}).get("Item")
            return False, _entry(item) if isinstance(item, Mapping) else None
        return True, None

    def start(self, entry: Entry) -> Entry:
        new = on_start(entry, entry.key, entry.owner, self._clock())
        written, current = self._write(entry.key, entry.version, new)
        if not written:
            raise LedgerConflict(entry.key, "start", current)
        return new

    def start_many(self, entries: Sequence[Entry]) -> Mapping[str, Entry]:
        """Starts in transactions of 100 (a sender's group about to be called): ~0.15 ms of
        client CPU an entry where one PutItem each cost ~2.4 ms. An entry whose condition
        failed (its claim lapsed and was taken) comes back as it is, not started."""
        now = self._clock()

        def rule(entry: Entry) -> _Rule:
            def decide(current: Entry | None) -> Entry | None:
                try:
                    return on_start(current, entry.key, entry.owner, now)
                except LedgerConflict:
                    return None  # not ours to start: answered as it is

            return decide

        return self._settle({e.key: (e, rule(e)) for e in entries})

    def release(self, entry: Entry) -> None:
        on_release(entry, entry.key, entry.owner)
        written, current = self._write(entry.key, entry.version, None)
        if not written:
            raise LedgerConflict(entry.key, "release", current)

    def resolve(self, key: str, resolution: Resolution) -> Entry:
        current = self.read([key]).get(key)
        while True:
            new = on_resolve(current, key, resolution)
            written, current = self._write(key, current.version if current else 0, new)
            if written:
                return new

    # -- many entries: transactions of 100 -------------------------------------------------------

    def claim(
        self,
        keys: Sequence[str],
        owner: str,
        ttl: timedelta,
        dead_owners: frozenset[str] = frozenset(),
    ) -> Mapping[str, Entry]:
        """Optimistic: each key is first written as a new claim, with no read; a key that
        exists comes back with its item in the cancellation, and is decided again from it.
        Taking over an expired entry, or one held by `dead_owners`, is the same Put on the
        condition `#v = :v` (the version that item had): the decision about its owner and
        expiry is made on exactly that version, so of two claimers only one write succeeds."""
        check_ttl(ttl)
        check_dead_owners(owner, dead_owners)

        def rule(key: str) -> _Rule:
            return lambda current: on_claim(current, key, owner, self._clock(), ttl, dead_owners)

        return self._settle({key: (None, rule(key)) for key in dict.fromkeys(keys)})

    def finish(self, settlements: Sequence[tuple[Entry, Outcome]]) -> Mapping[str, Entry]:
        def rule(entry: Entry, outcome: Outcome) -> _Rule:
            return lambda current: on_finish(current, entry.key, entry.owner, outcome)

        return self._settle({e.key: (e, rule(e, o)) for e, o in settlements})

    def record(self, results: Mapping[str, Done], owner: str) -> Mapping[str, Entry]:
        """Optimistic as `claim`: a new DONE entry per key; one that exists comes back with
        the cancellation and stands."""

        def rule(key: str, done: Done) -> _Rule:
            return lambda current: on_record(current, key, owner, self._clock(), done)

        return self._settle({key: (None, rule(key, done)) for key, done in results.items()})

    def _settle(self, work: Mapping[str, tuple[Entry | None, _Rule]]) -> dict[str, Entry]:
        answers: dict[str, Entry] = {}
        order = list(work)
        groups = [
            {k: work[k] for k in order[start : start + TRANSACT_WRITE_LIMIT]}
            for start in range(0, len(order), TRANSACT_WRITE_LIMIT)
        ]
        settled = (
            map(self._settle_group, groups)
            if self._pool is None or len(groups) < 2
            else (self._pool.map(self._settle_group, groups))
        )
        for part in settled:
            answers.update(part)
        return answers

    def _settle_group(self, group: Mapping[str, tuple[Entry | None, _Rule]]) -> dict[str, Entry]:
        answers: dict[str, Entry] = {}
        # key -> (the version the write expects, the entry to write)
        pending: dict[str, tuple[int, Entry]] = {}
        for key, (current, rule) in group.items():
            new = rule(current)
            if new is None or new == current:
                if current is not None:  # None: no entry, nothing to answer
                    answers[key] = current
            else:
                pending[key] = (current.version if current else 0, new)
        attempt = 0
        deadline = deadlines.current()
        while pending:
            # Not Backoff.attempts: a decision (another writer won) starts the count again.
            if attempt >= self._backoff.tries or (deadline is not None and deadline.passed):
                raise DependencyUnavailable(
                    self.table,
                    f"{len(pending)} ledger writes still cancelled after retries or the deadline",
                )
            if attempt:
                self._backoff.wait(attempt)
            attempt += 1
            keys = list(pending)
            try:
                if len(keys) == 1:  # a transaction of one is a plain conditional Put, billed once
                    expected, new = pending[keys[0]]
                    written, current = self._write(keys[0], expected, new)
                    if not written:
                        self._decide_again(keys[0], current, group, pending, answers)
                        attempt = 0  # a decision, not a retry
                        continue
                else:
                    self._db.transact_write_items(
                        TransactItems=[
                            {
                                "Put": {
                                    "TableName": self.table,
                                    "Item": _item(pending[k][1]),
                                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                                    **_condition(pending[k][0]),
                                }
                            }
                            for k in keys
                        ]
                    )
            except AWS_ERRORS as error:
                if error_code(error) != _CANCELLED:
                    raise unavailable(self.table, error) from error
                reasons = getattr(error, "response", {}).get("CancellationReasons") or []
                if len(reasons) != len(keys):
                    raise unavailable(self.table, error) from error
                decided = False
                for key, reason in zip(keys, reasons, strict=True):
                    code = reason.get("Code")
                    if code == "ConditionalCheckFailed":
                        item = reason.get("Item")
                        current = _entry(item) if isinstance(item, Mapping) else None
                        self._decide_again(key, current, group, pending, answers)
                        decided = True
                    elif code not in _RESEND_REASONS:
                        raise unavailable(self.table, error) from error
                if decided:
                    attempt = 0
                continue
            for key in keys:
                answers[key] = pending.pop(key)[1]
        return answers

    @staticmethod
    def _decide_again(
        key: str,
        current: Entry | None,
        group: Mapping[str, tuple[Entry | None, _Rule]],
        pending: dict[str, tuple[int, Entry]],
        answers: dict[str, Entry],
    ) -> None:
        """Another writer changed the entry: the rule again, from the entry as it is now."""
        new = group[key][1](current)
        if new is None or new == current:
            if current is not None:  # None: the entry is gone (released), nothing to answer
                answers[key] = current
            del pending[key]
        else:
            pending[key] = (current.version if current else 0, new)

    def read(self, keys: Sequence[str]) -> Mapping[str, Entry]:
        found: dict[str, Entry] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self.table: {
                    "Keys": [{"pk": {"S": k}} for k in unique[start : start + BATCH_GET_LIMIT]],
                    "ConsistentRead": True,
                }
            }
            for _ in self._backoff.attempts(deadlines.current()):
                try:
                    answer = self._db.batch_get_item(RequestItems=request)
                except AWS_ERRORS as error:
                    raise unavailable(self.table, error) from error
                for item in answer.get("Responses", {}).get(self.table, []):
                    entry = _entry(item)
                    found[entry.key] = entry
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
            if request:
                raise DependencyUnavailable(self.table, "unprocessed keys after retries")
        return found
