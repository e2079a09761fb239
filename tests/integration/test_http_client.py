"""The shared JSON client over real HTTP to a local server, through every failure mode."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from returns.result import Failure, Success

from adapters.http.client import JsonHttpClient, ServiceError
from adapters.logging import correlation
from domain.backoff import Backoff
from domain.streaming import DependencyUnavailable
from tests.support.http_server import (
    Fault,
    LocalHttpServer,
    Request,
    Response,
    running_server,
    silent_listener,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def server() -> Iterator[LocalHttpServer]:
    with running_server() as s:
        s.route("GET", "/things/{thing_id}", _thing)
        s.route("POST", "/echo", lambda r: Response.json({"got": r.json()}))
        yield s


def _thing(request: Request) -> Response:
    if request.path_params["thing_id"] == "missing":
        return Response.json({"error": "no such thing"}, 404)
    if request.path_params["thing_id"] == "bad":
        return Response.json({"error": "thing id is malformed"}, 400)
    return Response.json({"id": request.path_params["thing_id"]})


class RecordedSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def make_client(
    url: str, sleep: RecordedSleep, *, attempts: int = 4, read_timeout: float = 2.0
) -> JsonHttpClient:
    return JsonHttpClient(
        "thing service",
        url,
        token="s3cret",
        connect_timeout=1.0,
        read_timeout=read_timeout,
        retry=Backoff(
            base_seconds=0.1, cap_seconds=1.0, retries=attempts - 1, sleep=sleep, random=lambda: 0.5
        ),
    )


def test_success_sends_bearer_token_and_correlation_id(server: LocalHttpServer) -> None:
    sleep = RecordedSleep()
    with make_client(server.url, sleep) as client, correlation("corr-42"):
        result = client.get("/things/t1")
    assert result.unwrap().body == {"id": "t1"}
    (request,) = server.requests
    assert request.headers["authorization"] == "Bearer s3cret"
    assert request.headers["x-correlation-id"] == "corr-42"
    assert sleep.delays == []


def test_post_sends_json_body(server: LocalHttpServer) -> None:
    with make_client(server.url, RecordedSleep()) as client:
        result = client.post("/echo", {"ids": ["a", "b"]})
    assert result.unwrap().body == {"got": {"ids": ["a", "b"]}}
    assert server.requests[0].headers["content-type"] == "application/json"


def test_404_is_a_not_found_failure_without_retry(server: LocalHttpServer) -> None:
    with make_client(server.url, RecordedSleep()) as client:
        result = client.get("/things/missing")
    assert isinstance(result, Failure)
    error = result.failure()
    assert (error.kind, error.status, error.method, error.path) == (
        "not_found",
        404,
        "GET",
        "/things/missing",
    )
    assert "thing service: GET /things/missing -> HTTP 404" in str(error)
    assert "no such thing" in str(error)
    assert len(server.requests) == 1


def test_other_4xx_is_an_invalid_failure_without_retry(server: LocalHttpServer) -> None:
    with make_client(server.url, RecordedSleep()) as client:
        result = client.get("/things/bad")
    assert result.failure().kind == "invalid"
    assert "malformed" in result.failure().excerpt
    assert len(server.requests) == 1


def test_503_twice_then_success_backs_off_exponentially(server: LocalHttpServer) -> None:
    server.inject(Fault.status(503, b"maintenance"), times=2)
    sleep = RecordedSleep()
    with make_client(server.url, sleep) as client:
        result = client.get("/things/t1")
    assert result.unwrap().body == {"id": "t1"}
    assert [r.fault for r in server.requests] == ["status 503", "status 503", None]
    # full jitter with random=0.5: half of base * 2**(n-1)
    assert sleep.delays == pytest.approx([0.05, 0.1])


def test_503_past_the_budget_raises_dependency_unavailable_naming_the_call(
    server: LocalHttpServer,
) -> None:
    server.inject(Fault.status(503, b"down for maintenance"), times=10)
    sleep = RecordedSleep()
    with (
        make_client(server.url, sleep, attempts=3) as client,
        pytest.raises(DependencyUnavailable) as raised,
    ):
        client.get("/things/t1")
    assert raised.value.dependency == "thing service"
    cause = raised.value.__cause__
    assert isinstance(cause, ServiceError)
    assert (cause.status, cause.method, cause.path, cause.kind) == (
        503,
        "GET",
        "/things/t1",
        "unavailable",
    )
    assert "down for maintenance" in str(raised.value)
    assert "after 3 attempts" in str(raised.value)
    assert len(server.requests) == 3
    assert len(sleep.delays) == 2


def test_429_retry_after_is_honoured(server: LocalHttpServer) -> None:
    server.inject(Fault.throttle(retry_after="2"), times=1)
    sleep = RecordedSleep()
    with make_client(server.url, sleep) as client:
        result = client.get("/things/t1")
    assert isinstance(result, Success)
    assert sleep.delays == [2.0]


def test_retry_after_is_capped_by_the_policy(server: LocalHttpServer) -> None:
    server.inject(Fault.throttle(retry_after="3600"), times=1)
    sleep = RecordedSleep()
    client = JsonHttpClient(
        "thing service",
        server.url,
        retry=Backoff(retries=1, sleep=sleep, random=lambda: 0.0),
        max_retry_after=4.0,
    )
    with client:
        assert isinstance(client.get("/things/t1"), Success)
    assert sleep.delays == [4.0]


def test_slow_response_beyond_read_timeout_is_retried(server: LocalHttpServer) -> None:
    server.inject(Fault.slow(1.5), times=1)
    sleep = RecordedSleep()
    with make_client(server.url, sleep, read_timeout=0.3) as client:
        result = client.get("/things/t1")
    assert result.unwrap().body == {"id": "t1"}
    assert [r.fault for r in server.requests] == ["slow 1.5s", None]


def test_always_slow_raises_with_a_timeout_reason(server: LocalHttpServer) -> None:
    server.inject(Fault.slow(1.5), times=2)
    client = make_client(server.url, RecordedSleep(), attempts=2, read_timeout=0.2)
    with client, pytest.raises(DependencyUnavailable, match="timed out"):
        client.get("/things/t1")


def test_garbage_body_is_an_invalid_failure_with_an_excerpt(server: LocalHttpServer) -> None:
    server.inject(Fault.garbage(b"<html><body>Welcome to nginx</body></html>"))
    with make_client(server.url, RecordedSleep()) as client:
        result = client.get("/things/t1")
    error = result.failure()
    assert error.kind == "invalid"
    assert "not JSON" in str(error)
    assert "Welcome to nginx" in str(error)


def test_empty_body_is_an_invalid_failure(server: LocalHttpServer) -> None:
    server.inject(Fault.status(200))
    with make_client(server.url, RecordedSleep()) as client:
        assert "empty" in str(client.get("/things/t1").failure())


def test_long_bodies_are_cut_in_errors(server: LocalHttpServer) -> None:
    server.inject(Fault.garbage(b"x" * 10_000))
    with make_client(server.url, RecordedSleep()) as client:
        error = client.get("/things/t1").failure()
    assert len(error.excerpt) <= 201
    assert len(str(error)) < 400


def test_dropped_connection_is_retried(server: LocalHttpServer) -> None:
    server.inject(Fault.dropped(), times=2)
    sleep = RecordedSleep()
    with make_client(server.url, sleep) as client:
        result = client.get("/things/t1")
    assert result.unwrap().body == {"id": "t1"}
    assert [r.fault for r in server.requests] == [
        "dropped connection",
        "dropped connection",
        None,
    ]


def test_connection_refused_raises_dependency_unavailable() -> None:
    with socket.socket() as sock:  # a port nobody listens on once this socket closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleep = RecordedSleep()
    client = make_client(f"http://127.0.0.1:{port}", sleep, attempts=2)
    with client, pytest.raises(DependencyUnavailable, match="connection") as raised:
        client.get("/things/t1")
    assert isinstance(raised.value.__cause__, ServiceError)
    assert raised.value.__cause__.status is None
    assert len(sleep.delays) == 1


def test_hidden_path_stays_out_of_errors(server: LocalHttpServer) -> None:
    server.inject(Fault.status(500), times=5)
    client = JsonHttpClient(
        "secret hook",
        server.url,
        retry=Backoff(retries=1, sleep=RecordedSleep()),
        hide_path=True,
    )
    with client, pytest.raises(DependencyUnavailable) as raised:
        client.post("/services/T/B/very-secret-token", {"text": "hi"})
    assert "very-secret-token" not in str(raised.value)
    assert "very-secret-token" not in repr(raised.value.__cause__)


def test_base_url_with_a_path_prefix(server: LocalHttpServer) -> None:
    server.route("GET", "/api/v2/things/{thing_id}", _thing)
    with make_client(f"{server.url}/api/v2/", RecordedSleep()) as client:
        assert client.get("/things/t9").unwrap().body == {"id": "t9"}


def test_an_endpoint_that_accepts_and_never_answers_fails_after_attempts_timeouts() -> None:
    """One retry layer: `attempts` connections, each given up after the read timeout (counted,
    not timed: tests set no wall-clock limits)."""
    with silent_listener() as listener:
        sleep = RecordedSleep()
        client = make_client(listener.url, sleep, attempts=3, read_timeout=0.2)
        with client, pytest.raises(DependencyUnavailable, match=r"timed out.*after 3 attempts"):
            client.get("/things/t1")
        assert listener.connections == 3
        assert len(sleep.delays) == 2
