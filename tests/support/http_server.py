"""A programmable local HTTP server for integration tests of the service-contract adapters.

It listens on 127.0.0.1 on a free port in a background thread, routes requests to handlers,
logs every request it receives, and injects failures on demand: N answers of 503, a 429 with
Retry-After, a response slower than the client's timeout, a garbage body, a dropped connection.

    with LocalHttpServer() as server:
        server.route("GET", "/campaigns/{campaign_id}", handler)
        server.inject(Fault.status(503), times=2)
        ... server.url ...

`http_server` is a pytest fixture built on it; import it into a test module to use it.
"""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    path_params: dict[str, str] = field(default_factory=dict)
    fault: str | None = None  # the fault injected into this request, if any

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Response:
    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def json(cls, value: Any, status: int = 200) -> Response:
        return cls(status, json.dumps(value).encode(), (("Content-Type", "application/json"),))

    @classmethod
    def text(cls, value: str, status: int = 200) -> Response:
        return cls(status, value.encode(), (("Content-Type", "text/plain"),))


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Fault:
    """What to do instead of calling the handler."""

    name: str
    response: Response | None = None
    delay: float = 0.0
    drop: bool = False

    @classmethod
    def status(cls, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Fault:
        return cls(f"status {status}", Response(status, body, tuple((headers or {}).items())))

    @classmethod
    def throttle(cls, retry_after: str = "1") -> Fault:
        return cls.status(429, b'{"message":"slow down"}', {"Retry-After": retry_after})

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Answer normally (the handler runs) but only after `seconds`."""
        return cls(f"slow {seconds}s", delay=seconds)

    @classmethod
    def garbage(cls, body: bytes = b"<html><body>502 Bad Gateway</body></html>") -> Fault:
        return cls("garbage body", Response(200, body, (("Content-Type", "text/html"),)))

    @classmethod
    def dropped(cls) -> Fault:
        """Read the request, then close the connection without a byte of response."""
        return cls("dropped connection", drop=True)


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


@dataclass
class _Injection:
    fault: Fault
    remaining: int
    method: str | None
    path: re.Pattern[str] | None


def _compile(path: str) -> re.Pattern[str]:
    """'/campaigns/{campaign_id}' -> a regex with one named group per {placeholder}."""
    parts = re.split(r"\{(\w+)\}", path)
    regex = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts)
    )
    return re.compile(regex)


class _ThreadingServer(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: 64 clients connecting at once overflowed it,
    # and the refused SYNs came back as 1 s+ connect stalls and retries (measured in
    # benchmarks/bench_pacman_transports.py). A real service's backlog is in the hundreds.
    request_queue_size = 256


class LocalHttpServer:
    def __init__(self) -> None:
        self._routes: list[_Route] = []
        self._injections: list[_Injection] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.requests: list[Request] = []
        self.connections = 0  # accepted so far (keep-alive: many requests each)
        self._server = _ThreadingServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(
            # A short poll interval: shutdown() waits up to one interval, once per test.
            target=lambda: self._server.serve_forever(poll_interval=0.02),
            name="local-http-server",
            daemon=True,
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalHttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in a slow fault
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LocalHttpServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Routes match in the order added; `{name}` matches one path segment."""
        with self._lock:
            self._routes.append(_Route(method.upper(), _compile(path), handler))

    def inject(
        self, fault: Fault, *, times: int = 1, method: str | None = None, path: str | None = None
    ) -> None:
        """The next `times` matching requests get `fault` (queued behind earlier injections)."""
        with self._lock:
            self._injections.append(
                _Injection(
                    fault,
                    times,
                    method.upper() if method else None,
                    _compile(path) if path is not None else None,
                )
            )

    def requests_to(self, method: str, path: str) -> list[Request]:
        pattern = _compile(path)
        return [r for r in self.requests if r.method == method and pattern.fullmatch(r.path)]

    # --- inside the server thread ---------------------------------------------------------------

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for injection in self._injections:
                if injection.method not in (None, method):
                    continue
                if injection.path is not None and not injection.path.fullmatch(path):
                    continue
                injection.remaining -= 1
                if injection.remaining <= 0:
                    self._injections.remove(injection)
                return injection.fault
        return None

    def _dispatch(self, request: Request) -> Response:
        for route in self._routes:
            if route.method != request.method:
                continue
            match = route.pattern.fullmatch(request.path)
            if match:
                routed = dataclasses.replace(request, path_params=match.groupdict())
                try:
                    return route.handler(routed)
                except Exception as exc:  # a broken handler answers 500, like a real service
                    return Response.json({"error": f"handler raised {exc!r}"}, 500)
        return Response.json({"error": f"no route for {request.method} {request.path}"}, 404)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real services and httpx's pool do
            # Headers and body go out in two writes; with Nagle on, the body waits for the
            # client's delayed ACK of the headers: ~40 ms added to every keep-alive answer.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the request log is `server.requests`; keep test output clean

            def setup(self) -> None:
                super().setup()
                with server._lock:
                    server.connections += 1

            def _handle(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = server._take_fault(self.command, split.path)
                request = Request(
                    method=self.command,
                    path=split.path,
                    query=parse_qs(split.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    fault=fault.name if fault else None,
                )
                with server._lock:
                    server.requests.append(request)
                if fault is not None and fault.drop:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                # A slow fault ends early only when the server stops.
                if fault is not None and fault.delay and server._stopping.wait(fault.delay):
                    self.close_connection = True
                    return
                if fault is not None and fault.response is not None:
                    response = fault.response
                else:
                    response = server._dispatch(request)
                try:
                    self.send_response(response.status)
                    for name, value in response.headers:
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(response.body)))
                    self.end_headers()
                    self.wfile.write(response.body)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up (a slow fault beyond its timeout): nothing to answer.
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        return _Handler


@contextmanager
def running_server() -> Iterator[LocalHttpServer]:
    """A started server, stopped on exit however the block ends."""
    server = LocalHttpServer().start()
    try:
        yield server
    finally:
        server.stop()


class SilentListener:
    """Accepts TCP connections on 127.0.0.1 and never answers (a hung endpoint): each
    connection is held open, unread, until the listener stops. `connections` counts them."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.1)
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    @property
    def connections(self) -> int:
        return len(self._held)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(connection)

    def start(self) -> SilentListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        for connection in self._held:
            connection.close()
        self._socket.close()


@contextmanager
def silent_listener() -> Iterator[SilentListener]:
    """A started SilentListener, stopped on exit however the block ends."""
    listener = SilentListener().start()
    try:
        yield listener
    finally:
        listener.stop()


@pytest.fixture
def http_server() -> Iterator[LocalHttpServer]:
    with running_server() as server:
        yield server
