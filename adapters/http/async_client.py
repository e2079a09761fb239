"""AsyncJsonClient (adapters/http/async_json.py: the retry loop and house rule) over aiohttp's
ClientSession: the fallback Pacman transport (`PACMAN_TRANSPORT=aiohttp`); the default is
LeanJsonHttpClient, which costs less CPU a call (benchmarks/README.md, "Wave codes").

Timeouts: `connect_timeout` to open a connection, `read_timeout` between bytes of the answer
(aiohttp's sock_connect / sock_read: the same meaning as httpx's connect / read). A connection
whose answer timed out is closed, so each try of a call to an endpoint that never answers is
one connection.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import yarl

from adapters.http.async_json import AsyncJsonClient, Unanswered


class AsyncJsonHttpClient(AsyncJsonClient):
    """AsyncJsonClient on aiohttp: at most `max_connections` connections, kept alive."""

    def __init__(self, service: str, base_url: str, **kwargs: Any) -> None:
        super().__init__(service, base_url, **kwargs)
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.connect_timeout, sock_read=self.read_timeout
        )
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, yarl.URL] = {}  # parsed once per path: ~10 µs a call otherwise

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

    async def _send(
        self,
        path: str,
        content: bytes,
        headers: dict[str, str] | None,
        connect: float,
        read: float,
    ) -> tuple[int, str | None, bytes]:
        session = self._open()
        url = self._urls.get(path)
        if url is None:
            url = self._urls.setdefault(path, yarl.URL(self._base + path))
        timeout = self._timeout
        if (connect, read) != (self.connect_timeout, self.read_timeout):
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)
        try:
            async with session.post(url, data=content, headers=headers, timeout=timeout) as answer:
                raw = await answer.read()
                return answer.status, answer.headers.get("Retry-After"), raw
        except TimeoutError:  # aiohttp's read and connect timeouts are ClientErrors too
            raise
        except aiohttp.ClientError as exc:
            raise Unanswered(repr(exc)) from exc
