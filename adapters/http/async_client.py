"""The JSON client of adapters/http/client.py on asyncio and aiohttp, for calls made by the
thousand (Pacman: one POST per fan of a wave).

Why a second transport: issuing codes is CPU-bound in the client. httpx from threads costs ~0.45
ms of CPU per call and more threads contend for the GIL, so one process tops out near 860
calls/s against a 20 ms service; aiohttp on one event loop (a C HTTP parser, no thread
switches) costs ~0.15-0.2 ms and keeps 100 calls in flight from one thread
(benchmarks/README.md, "Wave codes"). The house rule is the same piece as the blocking client's:
`Answer.classify` reads every answer, `retry_delay` spaces the tries (domain.backoff's jittered
draw, Retry-After as a floor), `out_of_tries` is what a spent budget raises, and the tries are
the same helper's (`Backoff.attempts_async`, the asyncio form of `Backoff.attempts`), bounded by
the same deadline. One retry layer per call: that loop, nothing around it (aiohttp itself does
not retry).

Timeouts: `connect_timeout` to open a connection, `read_timeout` between bytes of the answer
(aiohttp's sock_connect / sock_read: the same meaning as httpx's connect / read). A connection
whose answer timed out is closed, so each try of a call to an endpoint that never answers is
one connection.

The session lives on the event loop of whoever first awaits a call (one `asyncio.Runner` of the
caller's, kept across batches so the keep-alive pool survives); `aclose()` on that loop.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import yarl
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
from domain.backoff import Backoff
from domain.deadline import Deadline
from domain.models import FailureKind


class AsyncJsonHttpClient:
    """A JSON client bound to one service on asyncio: base URL, bearer token, timeouts, retries;
    at most `max_connections` connections, kept alive."""

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
        # Every call is a JSON POST: the session sends these, so a call merges no headers of its
        # own unless it carries a correlation id (~15 µs a call, benchmarks/README.md).
        self._headers = {**json_headers(token), "Content-Type": "application/json"}
        self._correlated: tuple[str, dict[str, str]] | None = None  # the last id's headers
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, yarl.URL] = {}  # parsed once per path: ~10 µs a call otherwise
        # Calls that needed at least one retry, since the client was made: a caller making calls
        # by the batch logs the difference once per batch (retries themselves log at DEBUG).
        self.calls_retried = 0

    def __repr__(self) -> str:  # the token stays out of logs
        return f"AsyncJsonHttpClient({self.service!r}, {self._base!r})"

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=self.max_connections),
                # Answers are JSON read as text; aiohttp's cookie jar and redirects are no part
                # of these contracts.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

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
        session = self._open()
        url = self._urls.get(path)
        if url is None:
            url = self._urls.setdefault(path, yarl.URL(self._base + path))
        last: ServiceError | None = None
        tries = 0
        timeout = self._timeout

        # The delay reads `last` when the retry comes: the latest failure's Retry-After.
        def delay(retry: int) -> float:
            return retry_delay(self, retry, last)

        async for attempt in self.retry.attempts_async(deadline, delay=delay, sleep=asyncio.sleep):
            tries += 1
            if attempt == 1:
                self.calls_retried += 1
            if deadline is not None and deadline.bounded:
                connect, read = timeouts_within(self.connect_timeout, self.read_timeout, deadline)
                if (connect, read) != (self.connect_timeout, self.read_timeout):
                    timeout = aiohttp.ClientTimeout(
                        total=None, sock_connect=connect, sock_read=read
                    )
            try:
                async with session.post(
                    url, data=content, headers=headers, timeout=timeout
                ) as response:
                    raw = await response.read()
                    status, retry_after = response.status, response.headers.get("Retry-After")
            except TimeoutError as exc:  # aiohttp's read and connect timeouts are TimeoutErrors
                last = self._error(path, f"timed out ({exc!r})")
                continue
            except aiohttp.ClientError as exc:
                last = self._error(path, f"connection: {exc!r}")
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
