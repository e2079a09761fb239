"""A small asyncio HTTP server (aiohttp's low-level server) for the handlers of
tests/support/http_server.py: the same `Request` in, the same `Response` out, so one fake service
(FakePacman) serves both servers.

Why a second server: the threaded LocalHttpServer costs ~240 µs of CPU per request (a thread per
connection, http.server's Python parser); answering 2,000+ requests/s after a 20 ms wait, on the
2 cores the client under test also needs, it measured the server as much as the client. This one
waits with `asyncio.sleep`, parses in C and costs ~100 µs (benchmarks/README.md, "Wave codes").
It has no fault injection: failures are tested on LocalHttpServer; this one is for load.

    with AsyncHttpServer({("POST", "/passwords"): pacman.answer}, delay=0.02) as server:
        ... server.url ...

It runs its event loop in a thread of its own, on 127.0.0.1 and a free port; `stop()` closes it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from tests.support.http_server import Handler, Request, Response


class AsyncHttpServer:
    def __init__(self, routes: Mapping[tuple[str, str], Handler], *, delay: float = 0.0) -> None:
        self._routes = dict(routes)
        self._delay = delay
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="async-http-server", daemon=True)
        self._runner: web.ServerRunner | None = None
        self.port = 0
        self.served = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AsyncHttpServer:
        self._thread.start()
        self._ready.wait()
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> AsyncHttpServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._listen())
        self._ready.set()
        self._loop.run_forever()

    async def _listen(self) -> None:
        self._runner = web.ServerRunner(web.Server(self._handle, access_log=None))
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def _handle(self, incoming: web.BaseRequest) -> web.StreamResponse:
        handler = self._routes.get((incoming.method, incoming.path))
        if handler is None:
            return _web(Response.json({"error": f"no route for {incoming.path}"}, 404))
        body = await incoming.read()
        if self._delay:
            await asyncio.sleep(self._delay)
        request = Request(
            method=incoming.method,
            path=incoming.path,
            query={k: incoming.query.getall(k) for k in incoming.query},
            headers={k.lower(): v for k, v in incoming.headers.items()},
            body=body,
        )
        self.served += 1
        return _web(handler(request))


def _web(response: Response) -> web.Response:
    headers: dict[str, Any] = dict(response.headers)
    return web.Response(status=response.status, body=response.body, headers=headers)
