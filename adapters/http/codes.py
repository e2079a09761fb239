"""The code service (CodeInventory) and Pacman (CodeIssuer) over their HTTP contracts.

Code service (from the original's sibling service; answers in the `{data, meta}` envelope,
`meta = {timestamp, correlationId}`; a body without the envelope is read as the data itself):

    GET  {base}/{campaignId}/reserve?count=N&type=external
         200 -> {"data": {"codes": ["..."], "reserveId": "..."}, "meta": {...}}
         the codes are held for 24 hours unless assigned; fewer than N when stock runs short
    POST {base}/{campaignId}/assign      body {"codes": ["...", ...]} (non-empty)
         200 -> {"data": {"count": {"in": n, "updated": u}}, "meta": {...}}
         idempotent: a code already assigned to the campaign is not `updated` again
    GET  {base}/{campaignId}/codes?codes=A,B           [inferred: the contract names no look-up]
         200 -> {"data": {"codes": [{"code": "A", "status": "reserved"}, ...]}, "meta": {...}}

Pacman (the original's `@verifiedfan/tm-pacman` `generatePasswords`; the call's fields are
documented, its HTTP shape is not, so this is our reading [inferred]):

    POST {base}/passwords   body {"productId", "source", "beginDate", "endDate", "globalUserId"}
         200 -> {"passwords": ["CODE"]}   (the `{data, meta}` envelope is accepted too)

Retries are the JsonHttpClient's (one layer: 5xx, 408, 429 with Retry-After, timeouts, dropped
connections). A POST to Pacman that timed out may have issued a code we never saw; retrying it
issues another, and only the one we receive is ever recorded and sent to the fan (the other
stays unused at Pacman). When the client's budget is spent the call comes back as a
LookupFailure of kind 'unavailable' (the port's contract), never as an exception, so a worker
decides what a lasting outage means (generate_sms_wave_codes stops the run; nothing is lost).

Errors never echo codes (they are credentials to a presale): a wrong-shaped body is described
by its shape, and the excerpt of a failing body comes from the client, which the services
answer with messages, not codes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote

from returns.result import Failure, Result, Success

from adapters.http.client import JsonHttpClient, JsonResponse, ServiceError
from domain.codes import AssignCount, CodeRequest, CodeType, Reservation
from domain.models import FailureKind, LookupFailure
from domain.streaming import DependencyUnavailable

# Pacman answers in ~20 ms: 32 calls in flight allow ~1,600 codes/s; on 2 busy cores more threads
# cost more CPU per code than they gain (benchmarks/README.md, "Wave codes").
DEFAULT_ISSUE_CONCURRENCY = 32
RESERVATION_HOURS = 24
T = TypeVar("T")


def iso_millis(moment: datetime) -> str:
    """UTC, millisecond precision, `Z`: what JavaScript's toISOString wrote in the original."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


def _call(
    what: str, call: Callable[[], Result[JsonResponse, ServiceError]]
) -> Result[Any, LookupFailure]:
    """The call's data (envelope removed), or a LookupFailure naming the call."""
    try:
        answer = call()
    except DependencyUnavailable as error:
        return Failure(LookupFailure(what, FailureKind.UNAVAILABLE, str(error)))
    match answer:
        case Failure(error):
            return Failure(error.to_lookup_failure(what))
        case Success(response):
            body = response.body
    if isinstance(body, Mapping) and "data" in body and set(body) <= {"data", "meta"}:
        body = body["data"]
    return Success((response, body))


def _shape(what: str, response: JsonResponse, why: str) -> Failure[LookupFailure]:
    return Failure(LookupFailure(what, FailureKind.INVALID, str(response.wrong_shape(why))))


def _strings(value: Any) -> list[str] | None:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        return None
    return value


class HttpCodeInventory:
    """CodeInventory over the code service."""

    def __init__(
        self, client: JsonHttpClient, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._client = client
        self._clock = clock

    def reserve(
        self, campaign_id: str, count: int, code_type: CodeType, key: str
    ) -> Result[Reservation, LookupFailure]:
        """`key` is not part of the contract: the service makes a new reservation each call."""
        what = f"reserve {count} {code_type} codes for campaign {campaign_id!r}"
        if count < 1:
            return Failure(LookupFailure(what, FailureKind.INVALID, "count must be at least 1"))
        path = f"/{quote(campaign_id, safe='')}/reserve"
        params = {"count": str(count), "type": str(code_type)}
        called = _call(what, lambda: self._client.get(path, params=params))
        match called:
            case Failure():
                return called
            case Success((response, data)):
                pass
        codes = _strings(data.get("codes")) if isinstance(data, Mapping) else None
        reserve_id = data.get("reserveId") if isinstance(data, Mapping) else None
        if codes is None or not isinstance(reserve_id, str | int):
            return _shape(what, response, "expected {codes: [non-empty strings], reserveId}")
        if len(codes) > count:
            return _shape(what, response, f"{len(codes)} codes for {count} asked")
        return Success(
            Reservation(
                key=key,
                reserve_id=str(reserve_id),
                codes=tuple(codes),
                expires_at=self._clock().astimezone(UTC).replace(microsecond=0)
                + timedelta(hours=RESERVATION_HOURS),
            )
        )

    def assign(self, campaign_id: str, codes: Sequence[str]) -> Result[AssignCount, LookupFailure]:
        what = f"assign {len(codes)} codes to campaign {campaign_id!r}"
        if not codes:
            return Success(AssignCount(0, 0))
        path = f"/{quote(campaign_id, safe='')}/assign"
        called = _call(what, lambda: self._client.post(path, {"codes": list(codes)}))
        match called:
            case Failure():
                return called
            case Success((response, data)):
                pass
        count = data.get("count") if isinstance(data, Mapping) else None
        if not isinstance(count, Mapping):
            return _shape(what, response, "expected {count: {in, updated}}")
        received, updated = count.get("in"), count.get("updated")
        if not all(_is_count(v) for v in (received, updated)):
            return _shape(what, response, "count.in and count.updated must be integers >= 0")
        assert isinstance(received, int) and isinstance(updated, int)
        if received != len(codes) or updated > received:
            return _shape(what, response, f"counts {dict(count)} for {len(codes)} codes sent")
        return Success(AssignCount(received, updated))

    def lookup(
        self, campaign_id: str, codes: Sequence[str]
    ) -> Result[Mapping[str, str], LookupFailure]:
        what = f"look up {len(codes)} codes of campaign {campaign_id!r}"
        if not codes:
            return Success({})
        path = f"/{quote(campaign_id, safe='')}/codes"
        called = _call(what, lambda: self._client.get(path, params={"codes": ",".join(codes)}))
        match called:
            case Failure():
                return called
            case Success((response, data)):
                pass
        items = data.get("codes") if isinstance(data, Mapping) else None
        if not isinstance(items, list) or not all(
            isinstance(i, Mapping)
            and isinstance(i.get("code"), str)
            and isinstance(i.get("status"), str)
            for i in items
        ):
            return _shape(what, response, "expected {codes: [{code, status}]}")
        return Success({str(i["code"]): str(i["status"]) for i in items})


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class HttpCodeIssuer:
    """CodeIssuer over Pacman: one POST per fan, `concurrency` of them in flight.

    Memory: the requests handed to `issue_many` and their results (the worker hands a chunk).
    """

    def __init__(
        self, client: JsonHttpClient, *, concurrency: int = DEFAULT_ISSUE_CONCURRENCY
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self._client = client
        self.concurrency = concurrency
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="pacman")

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def issue(self, request: CodeRequest) -> Result[str, LookupFailure]:
        what = f"code for fan {request.global_user_id!r}"
        body = {
            "productId": request.product_id,
            "source": request.source,
            "beginDate": iso_millis(request.begin),
            "endDate": iso_millis(request.end),
            "globalUserId": request.global_user_id,
        }
        called = _call(what, lambda: self._client.post("/passwords", body))
        match called:
            case Failure():
                return called
            case Success((response, data)):
                pass
        passwords = _strings(data.get("passwords")) if isinstance(data, Mapping) else None
        if not passwords or len(passwords) != 1:
            return _shape(what, response, "expected {passwords: [one non-empty string]}")
        return Success(passwords[0])

    def issue_many(self, requests: Sequence[CodeRequest]) -> Sequence[Result[str, LookupFailure]]:
        return list(self._pool.map(self.issue, requests))
