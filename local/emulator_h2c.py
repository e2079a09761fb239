"""A second, HTTP/2 cleartext (h2c) door into the embedded emulator, for the KCL's Kinesis client.

The KCL's Kinesis client (Java SDK v2 on Netty) speaks only HTTP/2 and no property turns that
off; moto's ThreadedMotoServer (werkzeug) speaks only HTTP/1.1. Without this listener the daemon's
first ListShards never gets an answer and no lease is ever taken. So the same moto WSGI app is
served a second time by hypercorn, which answers HTTP/2 with prior knowledge and h2c upgrades
alike. moto keeps its backends in module globals, so both doors see one set of streams, tables
and buckets: a record put over HTTP/1.1 (boto3) is read over HTTP/2 (the KCL).

hypercorn runs off the main thread on its own event loop; it must be given a `shutdown_trigger`
there, because its default one installs signal handlers, which only the main thread may do.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config

_log = logging.getLogger(__name__)

WsgiApp = Callable[..., Any]


def moto_wsgi_app(server: Any | None = None) -> WsgiApp:
    """The WSGI app of a running ThreadedMotoServer, or a new one on the same (global) backends."""
    inner = getattr(server, "_server", None)
    app: Callable[..., Any] | None = getattr(inner, "app", None)
    if app is not None:
        return app
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    fresh: Callable[..., Any] = DomainDispatcherApplication(create_backend_app)
    return fresh


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass
class H2cListener:
    """hypercorn serving a WSGI app over HTTP/1.1 and h2c on 127.0.0.1, in a daemon thread."""

    app: WsgiApp
    host: str = "127.0.0.1"
    port: int = 0
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, init=False, repr=False)
    _stop: asyncio.Event | None = field(default=None, init=False, repr=False)
    _ready: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _failure: BaseException | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> H2cListener:
        if self.port == 0:
            self.port = _free_port(self.host)
        self._thread = threading.Thread(target=self._run, name="emulator-h2c", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"h2c listener on {self.url} did not start within {timeout}s")
        if self._failure is not None:
            raise RuntimeError(f"h2c listener on {self.url} failed to start") from self._failure
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> H2cListener:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as failure:  # reported to start(); a listener must not die silently
            self._failure = failure
            _log.exception("h2c listener on %s stopped with an error", self.url)
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        config = Config()
        config.bind = [f"{self.host}:{self.port}"]
        config.accesslog = None
        config.errorlog = logging.getLogger("hypercorn.error")
        config.loglevel = "WARNING"
        # The SDK keeps connections open between polls; hypercorn's 5 s default would make it
        # reconnect constantly (each reconnect logged by the KCL as a warning).
        config.keep_alive_timeout = 300
        config.h2_max_concurrent_streams = 1000
        # GetRecords responses up to 10 MB; requests (PutRecords) up to 5 MB.
        config.wsgi_max_body_size = 64 * 1024 * 1024
        stop = self._stop

        async def started_then_wait() -> None:
            self._ready.set()
            await stop.wait()

        await serve(self.app, config, shutdown_trigger=started_then_wait, mode="wsgi")


def start_h2c_listener(server: Any | None = None, *, port: int = 0) -> H2cListener:
    """Serve the running moto server's app (or moto's app on the shared backends) over h2c.

    `server` is a started ThreadedMotoServer (or anything with its `_server.app`); the listener
    shares its backends. Stop it with `.stop()` before stopping the moto server.
    """
    return H2cListener(moto_wsgi_app(server), port=port).start()
