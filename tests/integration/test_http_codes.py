"""HttpCodeInventory and HttpCodeIssuer over real HTTP against local services implementing the
code-service and Pacman contracts, including 5xx, 429, timeouts and wrong-shaped answers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from returns.result import Failure, Success

from adapters.http.client import JsonHttpClient
from adapters.http.codes import HttpCodeInventory, HttpCodeIssuer, iso_millis
from domain.backoff import no_wait
from domain.codes import AssignCount, CodeRequest, CodeType
from tests.support.fake_code_services import FakeCodeService, FakePacman
from tests.support.http_server import Fault, LocalHttpServer, Response, running_server

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def server() -> Iterator[LocalHttpServer]:
    with running_server() as s:
        yield s


def client(server: LocalHttpServer, name: str, retries: int = 2) -> JsonHttpClient:
    return JsonHttpClient(
        name, server.url, token="t0ken", read_timeout=0.3, retry=no_wait(retries=retries)
    )


def inventory(server: LocalHttpServer, retries: int = 2) -> HttpCodeInventory:
    return HttpCodeInventory(client(server, "code service", retries), clock=lambda: NOW)


def request(gid: str = "g1") -> CodeRequest:
    return CodeRequest("prod-1", "vf", NOW, NOW.replace(year=2027), gid)


def test_reserve_reads_the_envelope_and_holds_the_codes_for_24_hours(
    server: LocalHttpServer,
) -> None:
    service = FakeCodeService(server, token="t0ken")
    service.stock("camp-1", [f"X{i}" for i in range(5)])
    reservation = inventory(server).reserve("camp-1", 3, CodeType.EXTERNAL, "camp-1#d1#m1")
    held = reservation.unwrap()
    assert held.codes == ("X0", "X1", "X2")
    assert held.key == "camp-1#d1#m1" and held.reserve_id == "r0"
    assert held.expires_at == datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    assert [service.status("camp-1", c) for c in ("X0", "X3")] == ["reserved", "available"]
    (sent,) = server.requests_to("GET", "/camp-1/reserve")
    assert sent.query == {"count": ["3"], "type": ["external"]}
    assert sent.headers["authorization"] == "Bearer t0ken"


def test_reserve_comes_back_short_when_stock_runs_out(server: LocalHttpServer) -> None:
    FakeCodeService(server, token="t0ken").stock("camp-1", ["A", "B"])
    assert inventory(server).reserve("camp-1", 5, CodeType.EXTERNAL, "k").unwrap().codes == (
        "A",
        "B",
    )


def test_assign_is_idempotent_and_counts_in_and_updated(server: LocalHttpServer) -> None:
    service = FakeCodeService(server, token="t0ken")
    service.stock("camp-1", ["A", "B", "C"])
    codes = inventory(server)
    assert codes.assign("camp-1", ["A", "B"]).unwrap() == AssignCount(2, 2)
    assert codes.assign("camp-1", ["A", "B", "C"]).unwrap() == AssignCount(3, 1)
    assert server.requests_to("POST", "/camp-1/assign")[0].json() == {"codes": ["A", "B"]}
    assert codes.lookup("camp-1", ["A", "C", "nope"]).unwrap() == {
        "A": "assigned",
        "C": "assigned",
    }


def test_assign_retries_5xx_and_429_then_succeeds(server: LocalHttpServer) -> None:
    FakeCodeService(server, token="t0ken").stock("camp-1", ["A"])
    server.inject(Fault.status(503), times=1)
    server.inject(Fault.throttle("0"), times=1)
    assert inventory(server).assign("camp-1", ["A"]).unwrap() == AssignCount(1, 1)
    assert [r.fault for r in server.requests] == ["status 503", "status 429", None]


def test_a_lasting_outage_is_an_unavailable_failure_naming_the_call(
    server: LocalHttpServer,
) -> None:
    FakeCodeService(server, token="t0ken")
    server.inject(Fault.slow(1.0), times=3)
    outcome = inventory(server).assign("camp-1", ["A"])
    assert isinstance(outcome, Failure)
    failure = outcome.failure()
    assert failure.kind == "unavailable"
    assert "assign 1 codes to campaign 'camp-1'" in str(failure)
    assert "POST /camp-1/assign" in failure.detail and "timed out" in failure.detail


def test_wrong_shapes_are_invalid_and_never_echo_codes(server: LocalHttpServer) -> None:
    server.route(
        "GET", "/{c}/reserve", lambda r: Response.json({"data": {"codes": "SECRET1"}, "meta": {}})
    )
    server.route(
        "POST", "/{c}/assign", lambda r: Response.json({"data": {"count": {"in": 9, "updated": 1}}})
    )
    reserved = inventory(server).reserve("camp-1", 1, CodeType.EXTERNAL, "k")
    assert isinstance(reserved, Failure) and reserved.failure().kind == "invalid"
    assert "expected {codes" in reserved.failure().detail
    assigned = inventory(server).assign("camp-1", ["SECRET2"])
    assert isinstance(assigned, Failure) and "for 1 codes sent" in assigned.failure().detail
    assert "SECRET2" not in str(assigned.failure())


def test_a_4xx_is_invalid_without_retry(server: LocalHttpServer) -> None:
    FakeCodeService(server, token="other")
    outcome = inventory(server).reserve("camp-1", 1, CodeType.EXTERNAL, "k")
    assert isinstance(outcome, Failure) and outcome.failure().kind == "invalid"
    assert len(server.requests) == 1


def test_pacman_issues_one_code_per_fan_with_the_window_in_iso_millis(
    server: LocalHttpServer,
) -> None:
    pacman = FakePacman(server, token="t0ken")
    issuer = HttpCodeIssuer(client(server, "pacman"), concurrency=4)
    results = issuer.issue_many([request(f"g{i}") for i in range(20)])
    assert all(isinstance(r, Success) for r in results)
    assert len({r.unwrap() for r in results}) == 20
    assert {i["globalUserId"] for i in pacman.issued} == {f"g{i}" for i in range(20)}
    first = pacman.issued[0]
    assert first["beginDate"] == "2026-12-01T10:00:00.000Z" == iso_millis(NOW)
    assert first["endDate"] == "2027-12-01T10:00:00.000Z"
    assert first["productId"] == "prod-1" and first["source"] == "vf"
    issuer.close()


def test_pacman_faults_mid_file_are_retried_then_reported_per_fan(
    server: LocalHttpServer,
) -> None:
    FakePacman(server, token="t0ken")
    issuer = HttpCodeIssuer(client(server, "pacman", retries=1), concurrency=1)
    server.inject(Fault.status(500), times=1)
    assert isinstance(issuer.issue(request("g1")), Success)
    server.inject(Fault.dropped(), times=2)
    down = issuer.issue(request("g2"))
    assert isinstance(down, Failure) and down.failure().kind == "unavailable"
    assert "'g2'" in down.failure().what
    refused = issuer.issue(CodeRequest("prod-1", "vf", NOW, NOW, "g3"))  # begin == end
    assert isinstance(refused, Failure) and refused.failure().kind == "invalid"
    issuer.close()
