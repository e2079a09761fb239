"""The JSON client of adapters/http/client.py on asyncio, for calls made by the thousand
(Pacman: one POST per fan of a wave), over either of two transports:

- `LeanJsonHttpClient` (the default): adapters/http/lean_async.py, httptools under an asyncio
  Protocol, the SMS gateway's transport too;
- `AsyncJsonHttpClient` (adapters/http/async_client.py, `PACMAN_TRANSPORT=aiohttp`): aiohttp's
  ClientSession, the fallback.

Why asyncio: issuing codes is CPU-bound in the client. httpx from threads costs ~0.45 ms of CPU
per call and more threads contend for the GIL; one event loop keeps 100 calls in flight from one
thread. Why lean by default: aiohttp's request path was ~95 % of a code's client CPU
(benchmarks/README.md, "Wave codes").

The house rule is the same piece as the blocking client's, here once for both transports:
`Answer.classify` reads every answer, `retry_delay` spaces the tries (domain.backoff's jittered
draw, Retry-After as a floor), `out_of_tries` is what a spent budget raises, and the tries are
the same helper's (`Backoff.attempts_async`, the asyncio form of `Backoff.attempts`), bounded by
the same deadline, each try's timeouts cut to the time left. One retry layer per call: that
loop, nothing around it (neither transport retries). Timeouts, refused, reset or dropped
connections, 5xx, 408 and 429 are retried; other 4xx are not.

The client lives on the event loop of whoever first awaits a call (one `asyncio.Runner` of the
caller's, kept across batches so the keep-alive connections survive); `aclose()` on that loop.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from returns.result import Result

from adapters.http.client import (
    DEFAULT_HTTP_BACKOFF,
    DEFAULT_MAX_RETRY_AFTER,
    Answer,
    JsonResponse,
    ServiceError,
    json_headers,
    out_of_tries,
    retry_delay,
    timeouts_within,
)
from adapters.http.lean_async import LeanHttp, NotSent
from domain.backoff import Backoff
from domain.deadline import Deadline
from domain.models import FailureKind


class Unanswered(Exception):
    """A try that got no answer for a reason other than a timeout (refused, reset, dropped):
    retried. Its text is the transport's error, never a body."""


class AsyncJsonClient:
    """A JSON client bound to one service on asyncio: base URL, bearer token, timeouts,
    retries; its transport is a subclass's `_send`."""

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
        max_connections: int = 20,
    ) -> None:
        self.service = service
        self.retry = retry
        self.max_retry_after = max_retry_after
        self.max_connections = max_connections
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self._base = base_url.rstrip("/")
        # Every call is a JSON POST: the transport sends these, so a call merges no headers of
        # its own unless it carries a correlation id (~15 µs a call, benchmarks/README.md).
        self._headers = {**json_headers(token), "Content-Type": "application/json"}
        self._correlated: tuple[str, dict[str, str]] | None = None  # the last id's headers
        # Calls that needed at least one retry, since the client was made: a caller making calls
        # by the batch logs the difference once per batch (retries themselves log at DEBUG).
        self.calls_retried = 0

    def __repr__(self) -> str:  # the token stays out of logs
        return f"{type(self).__name__}({self.service!r}, {self._base!r})"

    async def aclose(self) -> None:
        """Close the connections, on the loop that made them."""

    async def _send(
        self,
        path: str,
        content: bytes,
        headers: dict[str, str] | None,
        connect: float,
        read: float,
    ) -> tuple[int, str | None, bytes]:
        """One try: (status, Retry-After, body). Raises TimeoutError or Unanswered."""
        raise NotImplementedError

    async def post(
        self,
        path: str,
        body: Any,
        *,
        correlation_id: str | None = None,
        deadline: Deadline | None = None,
    ) -> Result[JsonResponse, ServiceError]:
        """One logical call: tried up to `retry.tries` times within `deadline`, each try's
        timeouts cut to the time left. Raises DependencyUnavailable. `correlation_id` and
        `deadline` are passed in, not read from the context: the loop runs in a context of its
        own."""
        content = json.dumps(body, separators=(",", ":")).encode()
        return await self.post_encoded(
            path, content, correlation_id=correlation_id, deadline=deadline
        )

    async def post_encoded(
        self,
        path: str,
        content: bytes,
        *,
        correlation_id: str | None = None,
        deadline: Deadline | None = None,
    ) -> Result[JsonResponse, ServiceError]:
        """`post` of a body already encoded as JSON (a caller sending thousands of bodies that
        differ in one field builds them from a template)."""
        headers = None
        if correlation_id is not None:  # one id per batch: its headers are made once
            if self._correlated is None or self._correlated[0] != correlation_id:
                self._correlated = (correlation_id, {"X-Correlation-Id": correlation_id})
            headers = self._correlated[1]
        last: ServiceError | None = None
        tries = 0
        connect, read = self.connect_timeout, self.read_timeout

        # The delay reads `last` when the retry comes: the latest failure's Retry-After.
        def delay(retry: int) -> float:
            return retry_delay(self, retry, last)

        async for attempt in self.retry.attempts_async(deadline, delay=delay, sleep=asyncio.sleep):
            tries += 1
            if attempt == 1:
                self.calls_retried += 1
            if deadline is not None and deadline.bounded:
                connect, read = timeouts_within(self.connect_timeout, self.read_timeout, deadline)
            try:
                status, retry_after, raw = await self._send(path, content, headers, connect, read)
            except TimeoutError as exc:
                last = self._error(path, f"timed out ({exc!r})")
                continue
            except Unanswered as exc:
                last = self._error(path, f"connection: {exc}")
                continue
            answer = Answer(self.service, "POST", path, status, raw.decode("utf-8", "replace"))
            outcome = answer.classify(expect_json=True)
            if outcome is not None:
                return outcome
            last = answer.retryable(retry_after)
        raise out_of_tries(self.service, tries, last, deadline) from last

    def _error(self, path: str, reason: str) -> ServiceError:
        return ServiceError(
            service=self.service,
            method="POST",
            path=path,
            kind=FailureKind.UNAVAILABLE,
            reason=reason,
        )


class LeanJsonHttpClient(AsyncJsonClient):
    """AsyncJsonClient over adapters/http/lean_async.py. `read_timeout` bounds each try's whole
    answer once the request is written (aiohttp's is between bytes: the same for answers of a
    few hundred bytes). Connections: one per call in flight, so at most the caller's
    concurrency (`max_connections` is aiohttp's pool limit, not used here)."""

    def __init__(self, service: str, base_url: str, **kwargs: Any) -> None:
        super().__init__(service, base_url, **kwargs)
        self._http = LeanHttp(
            base_url,
            self._headers,
            timeout=self.read_timeout,
            connect_timeout=self.connect_timeout,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(
        self,
        path: str,
        content: bytes,
        headers: dict[str, str] | None,
        connect: float,
        read: float,
    ) -> tuple[int, str | None, bytes]:
        try:
            answer = await self._http.request(
                "POST", path, content, headers=headers, timeout=read, connect_timeout=connect
            )
        except NotSent as exc:
            raise Unanswered(f"not sent ({exc})") from exc
        except TimeoutError:
            raise
        except OSError as exc:
            raise Unanswered(repr(exc)) from exc
        retry_after = answer.headers.get(b"retry-after")
        return (
            answer.status,
            None if retry_after is None else retry_after.decode("latin-1"),
            (answer.body),
        )
