"""POST over HTTP/1.1 keep-alive connections on one event loop, for the SMS send's hot path:
httptools' C parser (llhttp, uvicorn's) under an asyncio Protocol, a request's head formatted
once, one future and one timer a request.

Why not aiohttp's ClientSession: its request path (tracing hooks, cookie and redirect handling,
a task to write the body, a response object and its stream) was ~half of the sender's CPU a text
(benchmarks/README.md, "SMS send"); a text needs none of it.

Errors, as the gateways need them: a connection that cannot be opened raises NotSent (nothing
reached the server: safe to send again); anything after the request was written raises OSError
or TimeoutError (it may have reached the server). No retries here.
"""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

import httptools


class NotSent(Exception):
    """The connection could not be opened: the request never left."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its answer parsed as it arrives."""

    __slots__ = ("body", "keep", "lost", "parser", "retry_after", "status", "transport", "waiter")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[None] | None = None
        self.status = 0
        self.keep = False
        self.retry_after = b""
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
        if len(name) == 11 and name.lower() == b"retry-after":
            self.retry_after = value

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


class AsyncPoster:
    """POSTs to one origin from one event loop (the loop of the first call). Idle connections
    are kept LIFO and dropped after `idle_seconds`: a server that closed one would fail the next
    request in a way that cannot be told from a request lost in flight."""

    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        *,
        timeout: float,
        connect_timeout: float = 3.0,
        idle_seconds: float = 4.0,
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
        self._idle: list[tuple[_Connection, float]] = []
        self._heads: dict[str, bytes] = {}

    def _head(self, path: str) -> bytes:
        head = self._heads.get(path)
        if head is None:
            lines = [f"POST {self.prefix}{path} HTTP/1.1"]
            lines += [f"{k}: {v}" for k, v in self.headers.items()]
            head = self._heads[path] = ("\r\n".join(lines) + "\r\nContent-Length: ").encode()
        return head

    async def _connection(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        now = loop.time()
        while self._idle:
            connection, used = self._idle.pop()
            if not connection.lost and now - used <= self.idle:
                return connection
            assert connection.transport is not None
            connection.transport.close()
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(_Connection, self.host, self.port, ssl=self.ssl),
                self.connect_timeout,
            )
        except (OSError, TimeoutError) as error:
            raise NotSent(type(error).__name__) from error
        return connection

    async def post(self, path: str, body: bytes) -> tuple[int, bytes, bytes]:
        """(status, Retry-After, body). NotSent, or OSError / TimeoutError (module docstring)."""
        loop = asyncio.get_running_loop()
        connection = await self._connection(loop)
        connection.waiter = waiter = loop.create_future()
        connection.body = []
        connection.retry_after = b""
        transport = connection.transport
        assert transport is not None
        transport.write(b"%s%d\r\n\r\n%s" % (self._head(path), len(body), body))
        timer = loop.call_later(self.timeout, connection.timed_out)
        try:
            await waiter
        finally:
            timer.cancel()
            connection.waiter = None
        if connection.keep and not connection.lost:
            self._idle.append((connection, loop.time()))
        else:
            transport.close()
        return connection.status, connection.retry_after, b"".join(connection.body)

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for connection, _ in idle:
            if connection.transport is not None:
                connection.transport.close()
        await asyncio.sleep(0)  # the transports' close callbacks run on this loop
