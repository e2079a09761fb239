"""A programmable local HTTP server for integration tests of the service-contract adapters.

It listens on 127.0.0.1 on a free port in a background thread, routes requests to handlers,
logs every request it receives, and injects failures on demand: N answers of 503, a 429 with
Retry-After, a response slower than the client's timeout, a garbage body, a dropped connection.

    with LocalHttpServer() as server:
        server.route("GET", "/campaigns/{campaign_id}", handler)
        server.inject(Fault.status(503), times=2)
        ... server.url ...

In front of a real server (`forward_to(url)`: every request no route takes is relayed there as
it came, and its answer back), it is a fault-injecting proxy: the emulator's S3 with one
UploadPart failing is `server.inject(Fault.status(500), method="PUT", query={"partNumber": "2"})`.

`http_server` is a pytest fixture built on it; import it into a test module to use it.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import re
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
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
    raw_query: str = ""  # as sent (parse_qs drops S3's valueless `?uploads`)

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
    query: Mapping[str, str]

    def matches(self, method: str, path: str, query: Mapping[str, list[str]]) -> bool:
        if self.method not in (None, method):
            return False
        if self.path is not None and not self.path.fullmatch(path):
            return False
        return all(query.get(name, [None])[0] == value for name, value in self.query.items())


# Hop-by-hop headers (and the length, set anew) are not relayed; Expect: 100-continue was
# answered by this server already.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "content-length",
    }
)


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
        self._upstream: tuple[str, int] | None = None
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

    def forward_to(self, url: str) -> None:
        """Requests that no route takes go to `url` (http://host:port) as they came."""
        split = urlsplit(url)
        with self._lock:
            self._upstream = (split.hostname or "127.0.0.1", split.port or 80)

    def inject(
        self,
        fault: Fault,
        *,
        times: int = 1,
        method: str | None = None,
        path: str | None = None,
        query: Mapping[str, str] | None = None,
    ) -> None:
        """The next `times` matching requests get `fault` (queued behind earlier injections);
        `query` names parameters the request's query string must have with those values."""
        with self._lock:
            self._injections.append(
                _Injection(
                    fault,
                    times,
                    method.upper() if method else None,
                    _compile(path) if path is not None else None,
                    dict(query or {}),
                )
            )

    def requests_to(self, method: str, path: str) -> list[Request]:
        pattern = _compile(path)
        return [r for r in self.requests if r.method == method and pattern.fullmatch(r.path)]

    # --- inside the server thread ---------------------------------------------------------------

    def _take_fault(self, method: str, path: str, query: Mapping[str, list[str]]) -> Fault | None:
        with self._lock:
            for injection in self._injections:
                if not injection.matches(method, path, query):
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
        if self._upstream is not None:
            return self._forward(request, *self._upstream)
        return Response.json({"error": f"no route for {request.method} {request.path}"}, 404)

    @staticmethod
    def _forward(request: Request, host: str, port: int) -> Response:
        """The request relayed as it came (Host too: a signature covers it), the answer back."""
        headers = {k: v for k, v in request.headers.items() if k not in _HOP_BY_HOP}
        target = request.path + (f"?{request.raw_query}" if request.raw_query else "")
        upstream = http.client.HTTPConnection(host, port, timeout=120)
        try:
            upstream.request(request.method, target, body=request.body, headers=headers)
            answer = upstream.getresponse()
            body = answer.read()
            kept = tuple((k, v) for k, v in answer.getheaders() if k.lower() not in _HOP_BY_HOP)
            length = answer.getheader("Content-Length")
            if request.method == "HEAD" and length is not None:
                kept += (("Content-Length", length),)  # the object's size, with no body
            return Response(answer.status, body, kept)
        finally:
            upstream.close()

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
                query = parse_qs(split.query)
                fault = server._take_fault(self.command, split.path, query)
                request = Request(
                    method=self.command,
                    path=split.path,
                    query=query,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    fault=fault.name if fault else None,
                    raw_query=split.query,
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
                    if not any(name.lower() == "content-length" for name, _ in response.headers):
                        self.send_header("Content-Length", str(len(response.body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(response.body)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up (a slow fault beyond its timeout): nothing to answer.
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

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

    def accepted(self) -> list[socket.socket]:
        """The server's ends of the connections accepted so far, oldest first."""
        return list(self._held)

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
