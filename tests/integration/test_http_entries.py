"""HttpEntryDirectory over real HTTP against the fake entry service (the original's schema)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.http.client import JsonHttpClient
from adapters.http.entries import MAX_ITEMS_PER_CALL, HttpEntryDirectory
from domain.backoff import no_wait
from domain.ports import EntryDirectory
from domain.records import AssignedCodes, CodeAssignment
from domain.streaming import DependencyUnavailable
from tests.support.fake_services import FakeEntryService
from tests.support.http_server import Fault, LocalHttpServer, Response, running_server

pytestmark = pytest.mark.integration

START = {"start": "2026-12-01T10:00:00Z"}


@pytest.fixture
def server() -> Iterator[LocalHttpServer]:
    with running_server() as s:
        yield s


@pytest.fixture
def service(server: LocalHttpServer) -> FakeEntryService:
    return FakeEntryService(server, token="entry-token")


def directory(server: LocalHttpServer) -> EntryDirectory:
    client = JsonHttpClient(
        "entry service",
        server.url,
        token="entry-token",
        read_timeout=0.5,
        retry=no_wait(retries=2),
    )
    return HttpEntryDirectory(client)


def user(i: int) -> str:
    return f"{i:024d}"


def assignment(i: int, code: str | None = None) -> CodeAssignment:
    return CodeAssignment("c-1", user(i), f"g{i}", code or f"CODE{i}", dates=START)


def test_assigns_in_calls_of_at_most_1000(
    server: LocalHttpServer, service: FakeEntryService
) -> None:
    service.register("c-1", *(user(i) for i in range(2500)))
    result = directory(server).assign_codes("c-1", [assignment(i) for i in range(2500)])
    assert result.unwrap() == AssignedCodes(assigned=2500, already=0)
    sizes = [len(r.json()) for r in server.requests]
    assert sizes == [1000, 1000, 500]
    assert all(size <= MAX_ITEMS_PER_CALL for size in sizes)
    assert service.codes[("c-1", user(1234))] == "CODE1234"
    first = server.requests[0].json()[0]
    assert first == {"userId": user(0), "code": "CODE0", "date": START, "globalUserId": "g0"}


def test_a_replay_assigns_nothing_twice(server: LocalHttpServer, service: FakeEntryService) -> None:
    service.register("c-1", *(user(i) for i in range(10)))
    batch = [assignment(i) for i in range(10)]
    assert directory(server).assign_codes("c-1", batch).unwrap() == AssignedCodes(10, 0)
    assert directory(server).assign_codes("c-1", batch).unwrap() == AssignedCodes(0, 10)


def test_duplicates_inside_a_call_are_sent_once(
    server: LocalHttpServer, service: FakeEntryService
) -> None:
    service.register("c-1", user(1))
    result = directory(server).assign_codes("c-1", [assignment(1), assignment(1)])
    assert result.unwrap() == AssignedCodes(assigned=1, already=1)
    assert len(server.requests[0].json()) == 1


def test_fans_without_entries_are_neither_assigned_nor_already(
    server: LocalHttpServer, service: FakeEntryService
) -> None:
    service.register("c-1", user(1))
    result = directory(server).assign_codes("c-1", [assignment(1), assignment(2)])
    assert result.unwrap() == AssignedCodes(assigned=1, already=0)


def test_missing_start_date_fails_before_any_call(server: LocalHttpServer) -> None:
    bad = CodeAssignment("c-1", user(7), "g7", "CODE7", dates={"end": "2027-01-01"})
    failure = directory(server).assign_codes("c-1", [assignment(1), bad]).failure()
    assert failure.kind == "invalid"
    assert "assignment 1" in failure.detail and "date.start" in failure.detail
    assert server.requests == []


def test_service_schema_rejection_is_invalid(
    server: LocalHttpServer, service: FakeEntryService
) -> None:
    short = CodeAssignment("c-1", "short-id", "g1", "CODE1", dates=START)
    failure = directory(server).assign_codes("c-1", [short]).failure()
    assert failure.kind == "invalid"
    assert "24-character" in failure.detail
    assert "POST /c-1/entries/codes -> HTTP 400" in failure.detail


def test_counts_that_do_not_add_up_are_invalid(server: LocalHttpServer) -> None:
    server.route(
        "POST",
        "/{campaign_id}/entries/codes",
        lambda _r: Response.json({"count": {"input": 5, "assigned": 1, "scoring": 1}}),
    )
    failure = directory(server).assign_codes("c-1", [assignment(1)]).failure()
    assert "do not add up" in failure.detail


def test_garbage_is_invalid(server: LocalHttpServer, service: FakeEntryService) -> None:
    server.inject(Fault.garbage())
    assert directory(server).assign_codes("c-1", [assignment(1)]).failure().kind == "invalid"


def test_transient_failures_retry_then_raise(
    server: LocalHttpServer, service: FakeEntryService
) -> None:
    service.register("c-1", user(1))
    server.inject(Fault.status(503))
    server.inject(Fault.slow(1.0))
    assert directory(server).assign_codes("c-1", [assignment(1)]).unwrap().assigned == 1
    server.inject(Fault.status(500), times=3)
    with pytest.raises(DependencyUnavailable, match="entry service"):
        directory(server).assign_codes("c-1", [assignment(2)])


def test_nothing_to_assign_makes_no_call(server: LocalHttpServer) -> None:
    assert directory(server).assign_codes("c-1", []).unwrap() == AssignedCodes(0, 0)
    assert server.requests == []
