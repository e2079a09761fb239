"""HttpUserDirectory over real HTTP against the fake user service, failures included."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.http.client import JsonHttpClient
from adapters.http.users import HttpUserDirectory
from domain.backoff import no_wait
from domain.ports import UserDirectory
from domain.streaming import DependencyUnavailable
from tests.support.fake_services import FakeUserService
from tests.support.http_server import Fault, LocalHttpServer, Response, running_server

pytestmark = pytest.mark.integration


@pytest.fixture
def server() -> Iterator[LocalHttpServer]:
    with running_server() as s:
        yield s


@pytest.fixture
def service(server: LocalHttpServer) -> FakeUserService:
    return FakeUserService(server, token="user-token")


def directory(server: LocalHttpServer, batch_size: int = 3) -> UserDirectory:
    client = JsonHttpClient(
        "user service",
        server.url,
        token="user-token",
        read_timeout=0.5,
        retry=no_wait(retries=2),
    )
    return HttpUserDirectory(client, batch_size=batch_size)


def test_looks_up_in_batches_and_leaves_unknown_out(
    server: LocalHttpServer, service: FakeUserService
) -> None:
    service.users.update({f"g{i}": f"u{i}" for i in range(7)})
    wanted = ["g0", "g1", "missing", "g2", "g3", "g1", "g4", "g5", "g6"]
    found = directory(server).user_ids_for(wanted).unwrap()
    assert found == {f"g{i}": f"u{i}" for i in range(7)}
    batches = [r.json()["globalUserIds"] for r in server.requests]
    assert batches == [["g0", "g1", "missing"], ["g2", "g3", "g4"], ["g5", "g6"]]


@settings(max_examples=25, deadline=None)
@given(
    known=st.dictionaries(st.text("abc123", min_size=1, max_size=4), st.text("xyz", min_size=1)),
    asked=st.lists(st.text("abc123", min_size=1, max_size=4), max_size=20),
    batch_size=st.integers(1, 6),
)
def test_answer_is_exactly_the_known_ids_asked_for(
    known: dict[str, str], asked: list[str], batch_size: int
) -> None:
    with running_server() as server:
        FakeUserService(server).users.update(known)
        found = directory(server, batch_size).user_ids_for(asked).unwrap()
        calls = len(server.requests)
    assert found == {g: known[g] for g in asked if g in known}
    distinct = len(set(asked))
    assert calls == -(-distinct // batch_size)


def test_nothing_to_look_up_makes_no_call(
    server: LocalHttpServer, service: FakeUserService
) -> None:
    assert directory(server).user_ids_for([]).unwrap() == {}
    assert server.requests == []


def test_rejected_request_is_invalid(server: LocalHttpServer, service: FakeUserService) -> None:
    service.max_batch = 2
    failure = directory(server).user_ids_for(["a", "b", "c"]).failure()
    assert failure.kind == "invalid"
    assert "POST /users/lookup -> HTTP 400" in failure.detail


def test_wrong_shape_is_invalid(server: LocalHttpServer) -> None:
    server.route("POST", "/users/lookup", lambda _r: Response.json({"users": [{"userId": "u"}]}))
    failure = directory(server).user_ids_for(["g1"]).failure()
    assert failure.kind == "invalid"
    assert "users[0].globalUserId" in failure.detail


def test_garbage_then_nothing_retried(server: LocalHttpServer, service: FakeUserService) -> None:
    server.inject(Fault.garbage(b"Service Unavailable"))
    assert directory(server).user_ids_for(["g1"]).failure().kind == "invalid"
    assert len(server.requests) == 1


def test_throttle_timeout_and_drop_are_retried(
    server: LocalHttpServer, service: FakeUserService
) -> None:
    service.users["g1"] = "u1"
    server.inject(Fault.throttle("0"))
    server.inject(Fault.dropped())
    assert directory(server).user_ids_for(["g1"]).unwrap() == {"g1": "u1"}
    server.inject(Fault.slow(1.0))
    assert directory(server).user_ids_for(["g1"]).unwrap() == {"g1": "u1"}
    assert [r.fault for r in server.requests] == [
        "status 429",
        "dropped connection",
        None,
        "slow 1.0s",
        None,
    ]


def test_down_service_raises(server: LocalHttpServer, service: FakeUserService) -> None:
    server.inject(Fault.status(500), times=3)
    with pytest.raises(DependencyUnavailable, match="user service"):
        directory(server).user_ids_for(["g1"])
