"""HTTP/1.1 keep-alive requests on one event loop, for calls made by the thousand (the SMS
gateway's POST /sms, Pacman's POST /passwords): httptools' C parser (llhttp, uvicorn's) under an
asyncio Protocol, a request's head formatted once per method, path and extra headers, one future
and one timer a request.

Why not aiohttp's ClientSession: its request path (tracing hooks, cookie and redirect handling,
a task to write the body, a response object and its stream) was ~half of the SMS sender's CPU a
text and ~95 % of a Pacman call's client CPU (benchmarks/README.md, "SMS send", "Wave codes");
these calls need none of it.

Errors, as the callers need them: a connection that cannot be opened raises NotSent (nothing
reached the server: safe to send again); anything after the request was written raises OSError,
or TimeoutError when no whole answer came within `timeout` (it may have reached the server). No
retries here: the caller's one retry layer decides. A request cancelled while waiting closes its
connection, so a late answer can never be read as the next request's.

Connections: one per request in flight (the caller bounds how many are in flight), idle ones
kept LIFO and dropped after `idle_seconds`.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools


class NotSent(Exception):
    """The connection could not be opened: the request never left."""


@dataclass(frozen=True, slots=True)
class LeanResponse:
    status: int
    headers: Mapping[bytes, bytes]  # the names asked for (lower case), as sent
    body: bytes


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its answer parsed as it arrives."""

    __slots__ = ("body", "headers", "keep", "lost", "parser", "status", "transport", "waiter",
                 "wanted")  # fmt: skip

    def __init__(self, wanted: frozenset[bytes]) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[None] | None = None
        self.wanted = wanted
        self.status = 0
        self.keep = False
        self.headers: dict[bytes, bytes] = {}
        self.body: list[bytes] = []
        self.lost = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(OSError(f"bad HTTP answer: {type(error).__name__}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._fail(ConnectionResetError("connection closed before the answer"))

    # httptools' callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        if (lower := name.lower()) in self.wanted:
            self.headers[lower] = value

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.status = self.parser.get_status_code()
        # Read here: the parser resets its flags for the next message once this returns.
        self.keep = self.parser.should_keep_alive()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def _fail(self, error: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(error)
        if self.transport is not None:
            self.transport.close()

    def timed_out(self) -> None:
        self._fail(TimeoutError("no answer in time"))


class LeanHttp:
    """Requests to one origin from one event loop (the loop of the first call). Idle connections
    are kept LIFO and dropped after `idle_seconds`: a server that closed one would fail the next
    request in a way that cannot be told from a request lost in flight. `response_headers`: the
    answer's headers to keep (the rest are skipped as they are parsed)."""

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        *,
        timeout: float,
        connect_timeout: float = 3.0,
        idle_seconds: float = 4.0,
        response_headers: Iterable[str] = ("retry-after",),
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self.prefix = parts.path.rstrip("/")
        self.headers = {"Host": parts.netloc, **headers, "Connection": "keep-alive"}
        self.timeout, self.connect_timeout, self.idle = timeout, connect_timeout, idle_seconds
        self._wanted = frozenset(name.lower().encode("latin-1") for name in response_headers)
        self._idle: list[tuple[_Connection, float]] = []
        self._heads: dict[tuple[str, str, tuple[tuple[str, str], ...]], bytes] = {}

    def _head(self, method: str, path: str, extra: Mapping[str, str] | None) -> bytes:
        key = (method, path, tuple(extra.items()) if extra else ())
        head = self._heads.get(key)
        if head is None:
            if len(self._heads) >= 64:  # extra headers vary by batch (a correlation id)
                self._heads.clear()
            lines = [f"{method} {self.prefix}{path} HTTP/1.1"]
            lines += [f"{k}: {v}" for k, v in {**self.headers, **dict(key[2])}.items()]
            head = self._heads[key] = ("\r\n".join(lines) + "\r\nContent-Length: ").encode()
        return head

    async def _connection(
        self, loop: asyncio.AbstractEventLoop, connect_timeout: float
    ) -> _Connection:
        now = loop.time()
        while self._idle:
            connection, used = self._idle.pop()
            if not connection.lost and now - used <= self.idle:
                return connection
            assert connection.transport is not None
            connection.transport.close()
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(self._wanted), self.host, self.port, ssl=self.ssl
                ),
                connect_timeout,
            )
        except (OSError, TimeoutError) as error:
            raise NotSent(type(error).__name__) from error
        return connection

    async def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        connect_timeout: float | None = None,
    ) -> LeanResponse:
        """One request, its whole answer within `timeout` of being written (the client's by
        default). NotSent, or OSError / TimeoutError (module docstring)."""
        loop = asyncio.get_running_loop()
        connection = await self._connection(
            loop, self.connect_timeout if connect_timeout is None else connect_timeout
        )
        connection.waiter = waiter = loop.create_future()
        connection.body = []
        connection.headers = {}
        transport = connection.transport
        assert transport is not None
        transport.write(b"%s%d\r\n\r\n%s" % (self._head(method, path, headers), len(body), body))
        timer = loop.call_later(self.timeout if timeout is None else timeout, connection.timed_out)
        try:
            await waiter
        except BaseException:
            transport.close()  # cancelled too: its late answer must not meet the next request
            raise
        finally:
            timer.cancel()
            connection.waiter = None
        if connection.keep and not connection.lost:
            self._idle.append((connection, loop.time()))
        else:
            transport.close()
        return LeanResponse(connection.status, connection.headers, b"".join(connection.body))

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for connection, _ in idle:
            if connection.transport is not None:
                connection.transport.close()
        await asyncio.sleep(0)  # the transports' close callbacks run on this loop
