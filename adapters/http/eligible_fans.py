"""EligibleFans over the entry service's contract (from the original's sibling service):

    GET {base}/{campaignId}/entries/scoring
        ?minScore=&maxScore=&reassign=&randomSelection=&singleMarketSelection=
         &orderByPreference=&marketIds=a,b&limit=1000&offset=0
    200 -> {"list": [{"_id": {"globalUserId"}, "user_id", "name": {"first", "last"}, "email",
                      "phone": {"number", "type"}, "score", "verdict", "locale",
                      "marketIds": [...], "codes": [...]}, ...],
            "counts": {"total": n}}

Paged by offset, `limit` per page. Guards against a service that misbehaves, each a
BrokenSource naming what it saw (no retry can fix them):
- more fans than the first page's `counts.total` announced, or more pages than that total
  needs (a service that pages forever);
- a page that starts with the same fan as the page before (an offset the service ignores);
- a body that is not `{"list": [...], "counts": {"total": n}}`.
A single entry that does not parse is yielded as a Failure naming the field (never its value)
and counted by the worker; the rest of the page goes on. A service that stays down past the
client's retries raises DependencyUnavailable.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

from returns.result import Failure, Result, Success

from adapters.http.client import JsonHttpClient
from domain.wave_prep.fans import BrokenSource, EligibilityQuery, EligibleFan

DEFAULT_PAGE_SIZE = 1000


def _flag(value: bool) -> str:
    return "true" if value else "false"


def query_params(query: EligibilityQuery) -> dict[str, str]:
    params = {
        "reassign": _flag(query.reassign),
        "randomSelection": _flag(query.random_selection),
        "singleMarketSelection": _flag(query.single_market),
        "orderByPreference": _flag(query.order_by_preference),
    }
    if query.min_score is not None:
        params["minScore"] = repr(query.min_score)
    if query.max_score is not None:
        params["maxScore"] = repr(query.max_score)
    if query.market_ids:
        params["marketIds"] = ",".join(query.market_ids)
    return params


def fan_from_entry(entry: Any) -> Result[EligibleFan, str]:
    """One entry of the list, or why it does not fit (the field, never the value)."""
    if not isinstance(entry, Mapping):
        return Failure("entry is not an object")
    ident = entry.get("_id")
    gid = ident.get("globalUserId") if isinstance(ident, Mapping) else entry.get("globalUserId")
    if not isinstance(gid, str) or not gid:
        return Failure("entry without _id.globalUserId")
    score = entry.get("score")
    if not isinstance(score, int | float) or isinstance(score, bool):
        return Failure(f"entry {gid}: score is not a number")
    markets = entry.get("marketIds") or []
    if not isinstance(markets, list) or not all(isinstance(m, str | int) for m in markets):
        return Failure(f"entry {gid}: marketIds is not a list of ids")
    raw_name = entry.get("name")
    name: Mapping[str, Any] = raw_name if isinstance(raw_name, Mapping) else {}
    phone = entry.get("phone")
    number = phone.get("number") if isinstance(phone, Mapping) else phone
    verdict = entry.get("verdict")
    if verdict is not None and not isinstance(verdict, bool):
        return Failure(f"entry {gid}: verdict is not a boolean")
    texts = {
        "user_id": entry.get("user_id"),
        "first": name.get("first"),
        "last": name.get("last"),
        "email": entry.get("email"),
        "phone": number,
        "locale": entry.get("locale"),
    }
    for field, value in texts.items():
        if value is not None and not isinstance(value, str):
            return Failure(f"entry {gid}: {field} is not a string")
    return Success(
        EligibleFan(
            global_user_id=gid,
            score=float(score),
            market_ids=tuple(str(m) for m in markets),
            verdict=verdict is not False,
            has_codes=bool(entry.get("codes")),
            user_id=texts["user_id"] or "",
            first_name=texts["first"] or "",
            last_name=texts["last"] or "",
            email=texts["email"] or "",
            phone=texts["phone"] or "",
            locale=texts["locale"] or "",
        )
    )


class HttpEligibleFans:
    def __init__(self, client: JsonHttpClient, *, page_size: int = DEFAULT_PAGE_SIZE) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size}")
        self._client = client
        self._page_size = page_size

    def eligible_fans(
        self, campaign_id: str, query: EligibilityQuery
    ) -> Iterator[Result[EligibleFan, str]]:
        path = f"/{quote(campaign_id, safe='')}/entries/scoring"
        params = query_params(query) | {"limit": str(self._page_size)}
        total: int | None = None
        offset = 0
        previous_first: Any = None
        while True:
            response = self._client.get(path, params=params | {"offset": str(offset)})
            match response:
                case Failure(error):
                    raise BrokenSource(f"entry service refused the eligible fans: {error}")
                case Success(page):
                    pass
            body = page.body
            entries = body.get("list") if isinstance(body, Mapping) else None
            counts = body.get("counts") if isinstance(body, Mapping) else None
            announced = counts.get("total") if isinstance(counts, Mapping) else None
            if not isinstance(entries, list) or not isinstance(announced, int) or announced < 0:
                raise BrokenSource(str(page.wrong_shape("expected {list: [...], counts: {total}}")))
            if total is None:
                total = announced
            if not entries:
                return
            first = entries[0].get("_id") if isinstance(entries[0], Mapping) else entries[0]
            if offset and first == previous_first:
                raise BrokenSource(
                    f"entry service answered offset {offset} with the page of offset "
                    f"{offset - self._page_size}: it ignores the offset"
                )
            previous_first = first
            if offset + len(entries) > total:
                raise BrokenSource(
                    f"entry service sent more than the {total} eligible fans it announced "
                    f"(at offset {offset}): it pages forever or the list changed while paging"
                )
            for entry in entries:
                yield fan_from_entry(entry)
            offset += len(entries)
            if offset >= total or len(entries) < self._page_size:
                return
