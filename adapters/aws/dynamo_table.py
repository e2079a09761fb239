"""The codes table (`CODES_TABLE`) on DynamoDB, and what its adapters share: the table, its
keys, conditional writes that tell what won, consistent batch reads. The adapters by concern:
adapters/aws/dynamo_inventory.py (CodeInventory: stock, reserve, assign, lookup; its rules are
domain/inventory.py), adapters/aws/dynamo_issuer.py (CodeIssuer), and the issued-code ledger,
which is the once-ledger in this table (adapters/aws/dynamo_ledger.py, domain/issued_codes.py).

The table:

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
- `issued-code#{wave}#{globalUserId}`: the issued-code ledger of generate_sms_wave_codes, which
  is the once-ledger (adapters/aws/dynamo_ledger.py, domain/issued_codes.py) in this table.
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

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from adapters import deadline as deadlines
from adapters.aws.errors import AWS_ERRORS, error_code, lookup_failure
from domain.backoff import Backoff
from domain.models import FailureKind, LookupFailure

POOL_INDEX = "pool-freeAt"
BATCH_GET_LIMIT = 100
DEFAULT_CONCURRENCY = 8
# A fresh draw from 2**60 colliding five times in a row means the generator is broken.
MAX_DRAWS = 5
DEFAULT_UNPROCESSED_BACKOFF = Backoff(base_seconds=0.05, cap_seconds=2.0, retries=6)
_CONDITION_FAILED = "ConditionalCheckFailedException"

Clock = Callable[[], datetime]


def now_utc() -> datetime:
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


def iter_table_codes(db: Any, table: str) -> Iterator[dict[str, Any]]:
    """Every code item (a Scan): for tests and audits, not for workers."""
    start: dict[str, Any] | None = None
    while True:
        page = db.scan(TableName=table, **({"ExclusiveStartKey": start} if start else {}))
        yield from (i for i in page["Items"] if i["pk"]["S"].startswith("code#"))
        start = page.get("LastEvaluatedKey")
        if not start:
            return
