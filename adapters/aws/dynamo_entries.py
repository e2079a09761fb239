"""AWS-native entries, selection ledger and user directory on DynamoDB.

The demand table (as the original's sibling services keep it): one item per fan per campaign,
    PK = "fan:{globalUserId}", SK = "campaign:{campaignId}"
with `codes` (string set), `verdict` (true once selected), `selectedEvents` (string set of
market ids), `userId`, `selectedAt` (first selection, ISO 8601).

DynamoEntryDirectory.assign_codes updates each fan's item with the condition
`attribute_not_exists(codes) OR NOT contains(codes, :code)`: a code is added to a fan's entry
at most once, so a replayed batch assigns nothing twice (the failed condition is counted as
`already`). The same update marks the fan selected (verdict, selectedEvents), so with this
directory save_selection needs no separate ledger. DynamoSelectionLedger does only that
marking, for use beside the HTTP entry service. Both are idempotent.

DynamoUserDirectory: a table keyed by `globalUserId` (string) holding `userId`; BatchGetItem
in calls of 100 keys, UnprocessedKeys retried with domain.backoff's jittered backoff.

Throttling and 5xx that outlast botocore's retries come back as LookupFailure(kind
FailureKind.UNAVAILABLE); the worker turns that into DependencyUnavailable (replay).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from returns.result import Failure, Result, Success

from adapters import deadline as deadlines
from adapters.aws.errors import AWS_ERRORS, error_code, lookup_failure
from domain.backoff import Backoff
from domain.models import FailureKind, LookupFailure
from domain.records import AssignedCodes, CodeAssignment

MAX_ASSIGNMENTS_PER_CALL = 1000
BATCH_GET_LIMIT = 100
# Parallel UpdateItem calls per assign_codes: DynamoDB has no conditional batch write, and 1,000
# sequential round trips would take seconds; boto3 clients are thread-safe.
DEFAULT_CONCURRENCY = 8

# Six BatchGetItem tries, waits of up to 0.1, 0.2, 0.4, 0.8, 1.6 s for the unprocessed keys.
DEFAULT_UNPROCESSED_BACKOFF = Backoff(base_seconds=0.1, cap_seconds=2.0, retries=5)


def fan_key(global_user_id: str, campaign_id: str) -> dict[str, dict[str, str]]:
    return {"PK": {"S": f"fan:{global_user_id}"}, "SK": {"S": f"campaign:{campaign_id}"}}


def _worst(what: str, failures: Sequence[LookupFailure]) -> LookupFailure:
    """The call's failure: an unavailable one if any (a retry may cure the call), else the
    first, as a failure of `what`."""
    worst = next((f for f in failures if f.kind == FailureKind.UNAVAILABLE), failures[0])
    return LookupFailure(what, worst.kind, worst.detail)


class DynamoEntryDirectory:
    """EntryDirectory on the demand table: conditional, at most once per fan and code."""

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        *,
        max_assignments_per_call: int = MAX_ASSIGNMENTS_PER_CALL,
        concurrency: int = DEFAULT_CONCURRENCY,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._db = dynamodb
        self.table = table
        self.max_assignments_per_call = max_assignments_per_call
        self._concurrency = max(1, concurrency)
        self._clock = clock

    def assign_codes(
        self, campaign_id: str, assignments: Sequence[CodeAssignment]
    ) -> Result[AssignedCodes, LookupFailure]:
        what = f"entries of campaign {campaign_id!r} in {self.table}"
        if len(assignments) > self.max_assignments_per_call:
            return Failure(
                LookupFailure(
                    what,
                    FailureKind.INVALID,
                    f"{len(assignments)} assignments, at most {self.max_assignments_per_call}",
                )
            )
        now = self._clock().isoformat()
        with ThreadPoolExecutor(max_workers=self._concurrency) as pool:
            outcomes = list(pool.map(lambda a: self._assign_one(campaign_id, a, now), assignments))
        failures = [o for o in outcomes if isinstance(o, LookupFailure)]
        if failures:
            # Some may have been written: a retry counts those as `already`.
            return Failure(_worst(what, failures))
        return Success(
            AssignedCodes(
                assigned=sum(1 for o in outcomes if o is True),
                already=sum(1 for o in outcomes if o is False),
            )
        )

    def _assign_one(
        self, campaign_id: str, assignment: CodeAssignment, now: str
    ) -> bool | LookupFailure:
        """True: newly assigned; False: the fan already had this code; or why it failed."""
        names = {"#codes": "codes"}
        values: dict[str, Any] = {
            ":code": {"S": assignment.code},
            ":codes": {"SS": [assignment.code]},
            ":true": {"BOOL": True},
            ":user": {"S": assignment.user_id},
            ":now": {"S": now},
        }
        additions = "#codes :codes"
        if assignment.market_id:
            additions += ", selectedEvents :markets"
            values[":markets"] = {"SS": [assignment.market_id]}
        update = (
            f"ADD {additions} "
            "SET verdict = :true, userId = :user, selectedAt = if_not_exists(selectedAt, :now)"
        )
        try:
            self._db.update_item(
                TableName=self.table,
                Key=fan_key(assignment.global_user_id, campaign_id),
                UpdateExpression=update,
                ConditionExpression="attribute_not_exists(#codes) OR NOT contains(#codes, :code)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except AWS_ERRORS as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            return lookup_failure("entry", error)
        return True


class DynamoSelectionLedger:
    """SelectionLedger on the demand table: verdict true, market added to selectedEvents."""

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._db = dynamodb
        self.table = table
        self._concurrency = max(1, concurrency)
        self._clock = clock

    def record_selections(
        self, campaign_id: str, assignments: Sequence[CodeAssignment]
    ) -> Result[int, LookupFailure]:
        now = self._clock().isoformat()
        with ThreadPoolExecutor(max_workers=self._concurrency) as pool:
            outcomes = list(pool.map(lambda a: self._mark(campaign_id, a, now), assignments))
        failures = [o for o in outcomes if o is not None]
        if failures:
            what = f"selections of campaign {campaign_id!r} in {self.table}"
            return Failure(_worst(what, failures))
        return Success(len(assignments))

    def _mark(self, campaign_id: str, assignment: CodeAssignment, now: str) -> LookupFailure | None:
        values: dict[str, Any] = {
            ":true": {"BOOL": True},
            ":user": {"S": assignment.user_id},
            ":now": {"S": now},
        }
        update = "SET verdict = :true, userId = :user, selectedAt = if_not_exists(selectedAt, :now)"
        if assignment.market_id:
            update += " ADD selectedEvents :markets"
            values[":markets"] = {"SS": [assignment.market_id]}
        try:
            self._db.update_item(
                TableName=self.table,
                Key=fan_key(assignment.global_user_id, campaign_id),
                UpdateExpression=update,
                ExpressionAttributeValues=values,
            )
        except AWS_ERRORS as error:
            return lookup_failure("selection", error)
        return None


class DynamoUserDirectory:
    """UserDirectory on a table keyed by globalUserId, holding userId."""

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        *,
        key: str = "globalUserId",
        attribute: str = "userId",
        backoff: Backoff = DEFAULT_UNPROCESSED_BACKOFF,
    ) -> None:
        self._db = dynamodb
        self.table = table
        self._key = key
        self._attribute = attribute
        self._backoff = backoff

    def user_ids_for(
        self, global_user_ids: Sequence[str]
    ) -> Result[Mapping[str, str], LookupFailure]:
        wanted = list(dict.fromkeys(g for g in global_user_ids if g))
        found: dict[str, str] = {}
        for start in range(0, len(wanted), BATCH_GET_LIMIT):
            chunk = wanted[start : start + BATCH_GET_LIMIT]
            outcome = self._get(chunk, found)
            if outcome is not None:
                return Failure(outcome)
        return Success(found)

    def _get(self, chunk: Sequence[str], found: dict[str, str]) -> LookupFailure | None:
        request: dict[str, Any] = {
            self.table: {
                "Keys": [{self._key: {"S": g}} for g in chunk],
                "ProjectionExpression": "#k, #a",
                "ExpressionAttributeNames": {"#k": self._key, "#a": self._attribute},
            }
        }
        for _ in self._backoff.attempts(deadlines.current()):
            try:
                answer = self._db.batch_get_item(RequestItems=request)
            except AWS_ERRORS as error:
                return lookup_failure(f"users in {self.table}", error)
            for item in answer.get("Responses", {}).get(self.table, []):
                key = item.get(self._key, {}).get("S")
                user_id = item.get(self._attribute, {}).get("S")
                if key and user_id:
                    found[key] = user_id
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                return None
        return LookupFailure(
            f"users in {self.table}", FailureKind.UNAVAILABLE, "unprocessed keys after retries"
        )
