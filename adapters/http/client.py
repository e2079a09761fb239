"""One small JSON-over-HTTP client for every service contract (campaign, user, entry, Slack).

The house rule at this edge:
- 2xx with a body of the expected kind -> Success(JsonResponse).
- 404 -> Failure(ServiceError kind 'not_found'); any other 4xx but 408/429, or a 2xx whose body is
  not JSON -> Failure(ServiceError kind 'invalid'). Adapters turn a body of the wrong shape into
  the same 'invalid' failure with `JsonResponse.wrong_shape`.
- 408, 429, 5xx, timeouts, refused or dropped connections are retried with domain.backoff's
  exponential backoff and full jitter; a Retry-After (429/503) is a floor under that draw, up to
  `max_retry_after`. When the budget is spent the client raises
  domain.streaming.DependencyUnavailable (its __cause__ is the last ServiceError), so a stream
  runtime replays the batch instead of skipping it.

POSTs are retried too: every contract behind this client is idempotent (look-ups; the entry
service sets a code per user; a Slack summary posted twice is better than one lost).
Pacman's POST is not idempotent (a retry may issue a second code): adapters/http/codes.py says
why that is safe there.
"""

from __future__ import annotations

import email.utils
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
from returns.result import Failure, Result, Success

from adapters import deadline as deadlines
from adapters.logging import current_correlation_id, mask_text
from domain.backoff import Backoff
from domain.deadline import Deadline
from domain.models import FailureKind, LookupFailure
from domain.streaming import DependencyUnavailable

log = logging.getLogger(__name__)

EXCERPT_CHARS = 200
_RETRYABLE_STATUS = frozenset({408, 429})


# Four tries, waits of up to 0.2, 0.4, 0.8 s: a service that blips is retried within a second or
# two; one that stays down is the runtime's to replay with its longer budget.
DEFAULT_HTTP_BACKOFF = Backoff(base_seconds=0.2, cap_seconds=5.0, retries=3)
# A Retry-After longer than this is cut short: a worker must not sleep past its Lambda timeout.
DEFAULT_MAX_RETRY_AFTER = 30.0


class ServiceError(Exception):
    """What went wrong talking to a service, in words a person can act on.

    kind: 'not_found' | 'invalid' (the caller's or the service's data is wrong; retrying will not
    help) | 'unavailable' (transient; retried until the budget ran out)."""

    def __init__(
        self,
        *,
        service: str,
        method: str,
        path: str,
        kind: FailureKind,
        status: int | None = None,
        excerpt: str = "",
        reason: str = "",
        retry_after: float | None = None,
        hidden: tuple[str, ...] = (),
    ) -> None:
        # A dependency's answer may echo what it was sent (`cannot reserve for
        # ...@fanmail.net +1312...`) or its own URL (a Slack webhook's is its secret); this
        # text reaches logs, status objects, CLI output and Lambda responses, so it is masked
        # here, once, for every client. `hidden`: strings never shown (a secret URL path).
        path, excerpt, reason = (_scrubbed(text, hidden) for text in (path, excerpt, reason))
        self.service = service
        self.retry_after = retry_after  # seconds the service asked us to wait (429/503)
        self.method = method
        self.path = path
        self.kind = kind
        self.status = status
        self.excerpt = excerpt
        self.reason = reason
        status_text = f"HTTP {status}" if status is not None else "no response"
        text = f"{service}: {method} {path} -> {status_text}"
        if reason:
            text += f": {reason}"
        if excerpt:
            text += f"; body: {excerpt!r}"
        super().__init__(text)

    def to_lookup_failure(self, what: str) -> LookupFailure:
        return LookupFailure(what=what, kind=self.kind, detail=str(self))


@dataclass(frozen=True, slots=True)
class JsonResponse:
    service: str
    method: str
    path: str
    status: int
    body: Any  # parsed JSON, or the text when the call did not expect JSON
    text: str

    def wrong_shape(self, why: str) -> ServiceError:
        """The body parsed but is not what the contract promises: an 'invalid' failure."""
        return ServiceError(
            service=self.service,
            method=self.method,
            path=self.path,
            kind=FailureKind.INVALID,
            status=self.status,
            excerpt=_excerpt(self.text),
            reason=f"unexpected response shape: {why}",
        )


def _scrubbed(text: str, hidden: tuple[str, ...]) -> str:
    for never_shown in hidden:
        if never_shown and never_shown != "/":
            text = text.replace(never_shown, "/…")
    return mask_text(text)


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= EXCERPT_CHARS else flat[:EXCERPT_CHARS] + "…"


def parse_retry_after(value: str | None, now: Callable[[], datetime]) -> float | None:
    """Retry-After in seconds (delta-seconds or an HTTP-date); None when absent or garbage."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now()).total_seconds())


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer of a service, read: the house rule of the module docstring, shared by
    the blocking client below and the asyncio one (adapters/http/async_client.py)."""

    service: str
    method: str
    shown: str  # the path as errors may show it
    status: int
    text: str
    hidden: tuple[str, ...] = ()  # never shown in an error (hide_path: the URL and its path)

    def classify(self, expect_json: bool) -> Result[JsonResponse, ServiceError] | None:
        """A final answer, or None when the status says: try again."""
        status, text = self.status, self.text
        if status >= 500 or status in _RETRYABLE_STATUS:
            return None
        if status >= 400:
            kind = FailureKind.NOT_FOUND if status == 404 else FailureKind.INVALID
            return Failure(self._error(kind, excerpt=_excerpt(text)))
        if not expect_json:
            return Success(JsonResponse(self.service, self.method, self.shown, status, text, text))
        try:
            parsed = json.loads(text)
        except ValueError:
            reason = "response body is empty" if not text.strip() else "response body is not JSON"
            return Failure(self._error(FailureKind.INVALID, excerpt=_excerpt(text), reason=reason))
        return Success(JsonResponse(self.service, self.method, self.shown, status, parsed, text))

    def retryable(self, retry_after_header: str | None) -> ServiceError:
        """The error of an answer that `classify` said to try again (5xx, 408, 429)."""
        return self._error(
            FailureKind.UNAVAILABLE,
            excerpt=_excerpt(self.text),
            retry_after=parse_retry_after(retry_after_header, lambda: datetime.now(UTC)),
        )

    def _error(
        self, kind: FailureKind, *, excerpt: str, reason: str = "", retry_after: float | None = None
    ) -> ServiceError:
        return ServiceError(
            service=self.service,
            method=self.method,
            path=self.shown,
            kind=kind,
            status=self.status,
            excerpt=excerpt,
            reason=reason,
            retry_after=retry_after,
            hidden=self.hidden,
        )


class RetryPolicy(Protocol):
    service: str
    retry: Backoff
    max_retry_after: float


def retry_delay(client: RetryPolicy, retry: int, last: ServiceError | None) -> float:
    """The wait before retry number `retry`: the backoff's jittered draw, or longer when the
    service said when (Retry-After). Logged at DEBUG, without the answer's body: a call made per
    fan logged one WARNING per fan per retry (33 lines for 13 fans with Pacman down), and a body
    may echo a fan's email. Callers that make calls by the batch log one line per batch (Pacman:
    adapters/http/codes.py); a spent budget raises DependencyUnavailable for the caller to say."""
    delay = client.retry.delay(retry)
    retry_after = last.retry_after if last is not None else None
    if retry_after is not None:
        # The HTTP contract: the server said when, so wait at least that long (retrying
        # sooner is refused again and spends the budget), within our own ceiling.
        delay = max(delay, min(retry_after, client.max_retry_after))
    log.debug(
        "retrying %s call",
        client.service,
        extra={
            "retry": retry,
            "delaySeconds": round(delay, 3),
            "status": last.status if last is not None else None,
            "reason": last.reason if last is not None else "",
        },
    )
    return delay


def out_of_tries(
    service: str, tries: int, last: ServiceError | None, deadline: Deadline | None = None
) -> DependencyUnavailable:
    """What a call raises (`from last`) once every try failed or its deadline came."""
    if last is None:
        return DependencyUnavailable(service, "no time left before the first try (deadline)")
    ended = f"after {tries} attempts"
    if deadline is not None and deadline.bounded:
        ended += f", {deadline.remaining():.1f} s left of its deadline"
    return DependencyUnavailable(service, f"{last} ({ended})")


def timeouts_within(connect: float, read: float, deadline: Deadline | None) -> tuple[float, float]:
    """A try's connect and read timeouts, cut to the time the deadline leaves."""
    return deadlines.fit(connect, deadline), deadlines.fit(read, deadline)


def json_headers(token: str | None) -> dict[str, str]:
    """The headers every JSON call sends, with the bearer token when the service has one."""
    headers = {"Accept": "application/json", "User-Agent": "campaign-workers"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


class JsonHttpClient:
    """A JSON client bound to one service: base URL, bearer token, timeouts, retries.

    `retry` carries the injectable `sleep` and `random`, so tests run retries without waiting
    and can check delays.
    `hide_path` keeps the URL path out of errors and logs for services whose URL is the secret
    (a Slack webhook)."""

    def __init__(
        self,
        service: str,
        base_url: str,
        *,
        token: str | None = None,
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
        retry: Backoff = DEFAULT_HTTP_BACKOFF,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        hide_path: bool = False,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 20,
    ) -> None:
        self.service = service
        self.retry = retry
        self.max_retry_after = max_retry_after
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self._hide_path = hide_path
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=json_headers(token),
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            transport=transport,
            # Callers that issue calls from several threads (Pacman) keep that many connections
            # alive instead of reconnecting for every call past httpx's default of 20.
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> JsonHttpClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def get(
        self, path: str, *, params: Mapping[str, str] | None = None
    ) -> Result[JsonResponse, ServiceError]:
        return self.request("GET", path, params=params)

    def post(
        self, path: str, body: Any, *, expect_json: bool = True
    ) -> Result[JsonResponse, ServiceError]:
        return self.request("POST", path, body=body, expect_json=expect_json)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        expect_json: bool = True,
        deadline: Deadline | None = None,
    ) -> Result[JsonResponse, ServiceError]:
        """One logical call: tried up to `retry.tries` times within `deadline` (by default the
        work's, adapters/deadline.py), each try's timeouts cut to the time left. Raises
        DependencyUnavailable."""
        deadline = deadline or deadlines.current()
        shown = "/…" if self._hide_path else path
        hidden = self._hidden(path)
        headers = {}
        if (correlation_id := current_correlation_id()) is not None:
            headers["X-Correlation-Id"] = correlation_id
        content = None
        if body is not None:
            content = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        last: ServiceError | None = None
        tries = 0

        # The delay reads `last` when the retry comes: the latest failure's Retry-After.
        def delay(retry: int) -> float:
            return retry_delay(self, retry, last)

        for _ in self.retry.attempts(deadline, delay=delay):
            tries += 1
            connect, read = timeouts_within(self.connect_timeout, self.read_timeout, deadline)
            try:
                response = self._http.request(
                    method,
                    path,
                    params=params,
                    content=content,
                    headers=headers,
                    timeout=httpx.Timeout(read, connect=connect),
                )
            except httpx.TimeoutException as exc:
                last = self._error(
                    method,
                    shown,
                    FailureKind.UNAVAILABLE,
                    reason=f"timed out ({exc!r})",
                    hidden=hidden,
                )
                continue
            except httpx.TransportError as exc:
                last = self._error(
                    method,
                    shown,
                    FailureKind.UNAVAILABLE,
                    reason=f"connection: {exc!r}",
                    hidden=hidden,
                )
                continue
            answer = Answer(
                self.service, method, shown, response.status_code, response.text, hidden
            )
            outcome = answer.classify(expect_json)
            if outcome is not None:
                return outcome
            last = answer.retryable(response.headers.get("Retry-After"))
        raise out_of_tries(self.service, tries, last, deadline) from last

    def _error(
        self,
        method: str,
        shown: str,
        kind: FailureKind,
        *,
        status: int | None = None,
        excerpt: str = "",
        reason: str = "",
        retry_after: float | None = None,
        hidden: tuple[str, ...] = (),
    ) -> ServiceError:
        return ServiceError(
            service=self.service,
            method=method,
            path=shown,
            kind=kind,
            status=status,
            excerpt=excerpt,
            reason=reason,
            retry_after=retry_after,
            hidden=hidden,
        )

    def _hidden(self, path: str) -> tuple[str, ...]:
        """What errors never show: with hide_path, the path and the whole URL (a Slack error
        body that echoed its webhook URL was logged verbatim)."""
        if not self._hide_path:
            return ()
        bare = path.split("?", 1)[0]
        return (str(self._http.base_url).rstrip("/") + path, path, bare)
