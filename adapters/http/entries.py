"""EntryDirectory over the entry service's contract (from the original's sibling service).

    POST {base}/{campaignId}/entries/codes
      body: [{"userId": "<24 chars>", "code": "ABC", "date": {"start": "...", "end": ...,
              "revealCode": ..., "created": ...}, "globalUserId": "..."}, ...]
            an array of 1..1000 unique items; `date.start` required
      200 -> {"count": {"input": n, "assigned": a, "scoring": s}}

Reading of the counts (the original documents only the names): `input` items received,
`assigned` codes newly set, `scoring` items that matched a fan's entry in the campaign. So
`scoring - assigned` items matched a fan who already held the code (a replay: AssignedCodes
.already), and `input - scoring` matched no entry at all (neither assigned nor already; logged).

More than 1,000 assignments are sent in several calls of at most 1,000. Identical items are
sent once (the service rejects duplicates inside one array) and counted as `already`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from returns.result import Failure, Result, Success

from adapters.http.client import JsonHttpClient, JsonResponse
from domain.models import FailureKind, LookupFailure
from domain.records import AssignedCodes, CodeAssignment

log = logging.getLogger(__name__)

MAX_ITEMS_PER_CALL = 1000
_DATE_FIELDS = ("start", "end", "revealCode", "created")


def entry_item(assignment: CodeAssignment) -> dict[str, Any]:
    dates = assignment.dates or {}
    item: dict[str, Any] = {
        "userId": assignment.user_id,
        "code": assignment.code,
        "date": {k: dates[k] for k in _DATE_FIELDS if dates.get(k)},
    }
    if assignment.global_user_id:
        item["globalUserId"] = assignment.global_user_id
    return item


def _invalid_item(index: int, assignment: CodeAssignment) -> str | None:
    """Why the service would reject the whole array for this item (never echoes the code)."""
    if not assignment.user_id:
        return f"assignment {index}: userId is empty"
    if not assignment.code:
        return f"assignment {index} (userId {assignment.user_id}): code is empty"
    if not (assignment.dates or {}).get("start"):
        return f"assignment {index} (userId {assignment.user_id}): date.start is missing"
    return None


class HttpEntryDirectory:
    def __init__(
        self, client: JsonHttpClient, *, max_assignments_per_call: int = MAX_ITEMS_PER_CALL
    ) -> None:
        if not 1 <= max_assignments_per_call <= MAX_ITEMS_PER_CALL:
            raise ValueError(
                f"max_assignments_per_call must be 1..{MAX_ITEMS_PER_CALL}, "
                f"got {max_assignments_per_call}"
            )
        self._client = client
        self.max_assignments_per_call = max_assignments_per_call

    def assign_codes(
        self, campaign_id: str, assignments: Sequence[CodeAssignment]
    ) -> Result[AssignedCodes, LookupFailure]:
        """Raises DependencyUnavailable when the service stays down past the client's retries;
        calls already made are then replayed with the batch, which the service counts as
        `already` (it never assigns a code twice)."""
        what = f"code assignments for campaign {campaign_id!r}"
        if not campaign_id:
            return Failure(LookupFailure(what, FailureKind.INVALID, "empty campaign id"))
        for index, assignment in enumerate(assignments):
            if (reason := _invalid_item(index, assignment)) is not None:
                return Failure(LookupFailure(what, FailureKind.INVALID, reason))
        items = list({_key(item): item for item in map(entry_item, assignments)}.values())
        assigned, already = 0, len(assignments) - len(items)
        path = f"/{quote(campaign_id, safe='')}/entries/codes"
        for start in range(0, len(items), self.max_assignments_per_call):
            batch = items[start : start + self.max_assignments_per_call]
            match self._client.post(path, batch):
                case Failure(error):
                    detail = f"{error} (after {assigned} assigned in earlier calls)"
                    return Failure(LookupFailure(what, error.kind, detail))
                case Success(answer):
                    counts = _counts(answer, len(batch))
            if isinstance(counts, str):
                shape = answer.wrong_shape(counts)
                return Failure(LookupFailure(what, FailureKind.INVALID, str(shape)))
            new, scoring = counts
            assigned += new
            already += scoring - new
            if scoring < len(batch):
                log.warning(
                    "assignments matched no entry",
                    extra={"campaignId": campaign_id, "unmatched": len(batch) - scoring},
                )
        return Success(AssignedCodes(assigned=assigned, already=already))


def _key(item: Mapping[str, Any]) -> tuple[Any, ...]:
    return (
        item["userId"],
        item["code"],
        tuple(sorted(item["date"].items())),
        item.get("globalUserId"),
    )


def _counts(response: JsonResponse, sent: int) -> tuple[int, int] | str:
    count = response.body.get("count") if isinstance(response.body, Mapping) else None
    if not isinstance(count, Mapping):
        return "expected {'count': {'input', 'assigned', 'scoring'}}"
    values: dict[str, int] = {}
    for name in ("input", "assigned", "scoring"):
        value = count.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return f"count.{name} is not a non-negative integer: {value!r}"
        values[name] = value
    if values["input"] != sent or not values["assigned"] <= values["scoring"] <= sent:
        return f"counts do not add up for {sent} items sent: {values}"
    return values["assigned"], values["scoring"]
