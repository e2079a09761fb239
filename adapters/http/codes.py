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

Retries are the clients' (one layer: 5xx, 408, 429 with Retry-After, timeouts, dropped
connections): JsonHttpClient for the code service, adapters/http/async_json.py for Pacman (the
same house rule on asyncio, for thousands of calls a second). A POST to Pacman that timed out
(or was cancelled at the batch deadline) may have issued a code we never saw; retrying it issues
another, and only the one we receive is ever recorded and sent to the fan (the other stays
unused at Pacman). When the client's budget is spent the call comes back as a
LookupFailure of kind 'unavailable' (the port's contract), never as an exception, so a worker
decides what a lasting outage means (generate_sms_wave_codes stops the run; nothing is lost).

Errors never echo codes (they are credentials to a presale): a wrong-shaped body is described
by its shape, and the excerpt of a failing body comes from the client, which the services
answer with messages, not codes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from returns.result import Failure, Result, Success

from adapters import deadline as deadlines
from adapters.http.client import JsonHttpClient, JsonResponse, ServiceError
from adapters.logging import current_correlation_id
from domain.codes import AssignCount, CodeRequest, CodeType, Reservation
from domain.deadline import Deadline
from domain.models import FailureKind, LookupFailure
from domain.streaming import DependencyUnavailable

if TYPE_CHECKING:  # the asyncio clients only where Pacman is used
    from adapters.http.async_json import AsyncJsonClient

log = logging.getLogger(__name__)

# Pacman answers in ~20 ms: 100 calls in flight allow ~5,000 codes/s in theory; the client's CPU
# per call on one event loop is the bound (benchmarks/README.md, "Wave codes").
DEFAULT_ISSUE_CONCURRENCY = 100
# Seconds a batch of issuing may take (the worker's chunk of 1,000 fans takes ~0.5 s).
DEFAULT_ISSUE_BATCH_DEADLINE_SECONDS = 120.0
RESERVATION_HOURS = 24


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
    return _data(what, answer)


def _data(what: str, answer: Result[JsonResponse, ServiceError]) -> Result[Any, LookupFailure]:
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
    """CodeIssuer over Pacman: one POST per fan, at most `concurrency` in flight, on an asyncio
    event loop this adapter owns (an `asyncio.Runner`, kept across batches so the keep-alive
    connections survive): `issue_many` is a plain blocking call, so the domain stays
    synchronous. Why asyncio and not threads: the CPU per call (adapters/http/async_json.py).

    A batch has a deadline (`batch_deadline_seconds`): calls still unanswered then (a Pacman
    that hangs, retried timeout after timeout) are cancelled and come back as 'unavailable'
    failures; the codes received before it are returned, so the worker records them and a re-run
    reuses them. Without it, 1,000 calls hanging for four 10 s read timeouts each would hold a
    chunk for minutes past any Lambda's limit.

    Memory: the requests handed to `issue_many` and their results (the worker hands a chunk).
    One batch at a time (a lock): the loop is not shared between threads.
    """

    def __init__(
        self,
        client: AsyncJsonClient,
        *,
        concurrency: int = DEFAULT_ISSUE_CONCURRENCY,
        batch_deadline_seconds: float = DEFAULT_ISSUE_BATCH_DEADLINE_SECONDS,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if batch_deadline_seconds <= 0:
            raise ValueError(f"batch deadline must be > 0 s, got {batch_deadline_seconds}")
        self._client = client
        self.concurrency = concurrency
        self.batch_deadline_seconds = batch_deadline_seconds
        self._runner = asyncio.Runner()
        self._templates: dict[tuple[str, str, datetime, datetime], bytes] = {}
        self._lock = threading.Lock()
        # Closed by close(), or when collected, or at interpreter exit: a CLI run or a test
        # that never calls close() would otherwise leave open sockets (aiohttp's "Unclosed
        # client session" on stderr): connections are only closed on the loop that opened them.
        self._finalizer = weakref.finalize(self, _shut_down, self._runner, client)

    def close(self) -> None:
        with self._lock:
            self._finalizer()  # once: later calls do nothing

    def issue(self, request: CodeRequest) -> Result[str, LookupFailure]:
        (result,) = self.issue_many([request])
        return result

    def issue_many(
        self, requests: Sequence[CodeRequest], *, deadline_seconds: float | None = None
    ) -> Sequence[Result[str, LookupFailure]]:
        """Within `batch_deadline_seconds`, or the caller's `deadline_seconds` when shorter
        (the worker's share of its lease)."""
        if not requests:
            return []
        deadline = self.batch_deadline_seconds
        if deadline_seconds is not None:
            deadline = max(0.001, min(deadline, deadline_seconds))
        if (work := deadlines.current()) is not None:  # the invocation's or batch's, if sooner
            deadline = max(0.001, min(deadline, work.remaining()))
        correlation_id = current_correlation_id()  # the loop's context is not the caller's
        with self._lock:
            if not self._finalizer.alive:
                raise RuntimeError("HttpCodeIssuer is closed")
            retried_before = self._client.calls_retried
            results = self._runner.run(self._issue_all(requests, correlation_id, deadline))
            retried = self._client.calls_retried - retried_before
        _log_batch(len(requests), retried, results)
        return results

    async def _issue_all(
        self, requests: Sequence[CodeRequest], correlation_id: str | None, deadline: float
    ) -> list[Result[str, LookupFailure]]:
        # `concurrency` callers take the next request in turn: at most that many in flight, and
        # no task or semaphore wait per request (measured: ~15 % of the CPU per call).
        results: list[Result[str, LookupFailure] | None] = [None] * len(requests)
        turns = iter(range(len(requests)))

        bound = Deadline.after(deadline)  # each call's tries and timeouts fit the batch's

        async def caller() -> None:
            for i in turns:
                results[i] = await self._issue(requests[i], correlation_id, bound)

        callers = [
            asyncio.ensure_future(caller()) for _ in range(min(self.concurrency, len(requests)))
        ]
        _done, late = await asyncio.wait(callers, timeout=deadline)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        for task in _done:
            task.result()  # a bug in a caller is raised, not turned into a missing code
        return [
            self._late(request, deadline) if result is None else result
            for request, result in zip(requests, results, strict=True)
        ]

    def _late(self, request: CodeRequest, deadline: float) -> Result[str, LookupFailure]:
        return Failure(
            LookupFailure(
                _what(request),
                FailureKind.UNAVAILABLE,
                f"pacman: no answer within the batch deadline of {deadline:g} s",
            )
        )

    async def _issue(
        self, request: CodeRequest, correlation_id: str | None, deadline: Deadline
    ) -> Result[str, LookupFailure]:
        try:
            answer = await self._client.post_encoded(
                "/passwords", self._body(request), correlation_id=correlation_id, deadline=deadline
            )
        except DependencyUnavailable as error:
            return Failure(LookupFailure(_what(request), FailureKind.UNAVAILABLE, str(error)))
        what = _what(request)
        match _data(what, answer):
            case Failure() as failed:
                return failed
            case Success((response, data)):
                pass
        passwords = _strings(data.get("passwords")) if isinstance(data, Mapping) else None
        if not passwords or len(passwords) != 1:
            return _shape(what, response, "expected {passwords: [one non-empty string]}")
        return Success(passwords[0])

    def _body(self, request: CodeRequest) -> bytes:
        """The JSON body `{productId, source, beginDate, endDate, globalUserId}`, byte for byte
        what json.dumps writes, from a template per wave (its fans share all but the id):
        dumping a dict and formatting two dates per fan was ~40 µs of the ~350 a code cost."""
        key = (request.product_id, request.source, request.begin, request.end)
        template = self._templates.get(key)
        if template is None:
            if len(self._templates) >= 16:  # one or two waves per run: bounded all the same
                self._templates.clear()
            template = self._templates[key] = _template(request)
        return b"%s%s}" % (template, json.dumps(request.global_user_id).encode())


def _template(request: CodeRequest) -> bytes:
    """`{"productId":...,"endDate":"...","globalUserId":` (the id and `}` follow)."""
    fields = {
        "productId": request.product_id,
        "source": request.source,
        "beginDate": iso_millis(request.begin),
        "endDate": iso_millis(request.end),
    }
    return json.dumps(fields, separators=(",", ":")).encode()[:-1] + b',"globalUserId":'


def _log_batch(calls: int, retried: int, results: Sequence[Result[str, LookupFailure]]) -> None:
    """One WARNING per batch that had trouble, with counts only: the per-call retries log at
    DEBUG (one line per fan per retry was 33 lines for 13 fans), and no fan's id or Pacman's
    error body (which may echo an email) goes into it; the failures themselves reach the worker.
    """
    failed = Counter(r.failure().kind for r in results if isinstance(r, Failure))
    if not retried and not failed:
        return
    log.warning(
        "pacman: %d of %d calls retried, %d failed",
        retried,
        calls,
        failed.total(),
        extra={
            "calls": calls,
            "callsRetried": retried,
            "callsFailed": failed.total(),
            "failedByKind": {str(kind): n for kind, n in sorted(failed.items())},
        },
    )


def _shut_down(runner: asyncio.Runner, client: AsyncJsonClient) -> None:
    runner.run(client.aclose())
    runner.close()


def _what(request: CodeRequest) -> str:
    return f"code for fan {request.global_user_id!r}"
