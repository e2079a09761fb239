"""A dependency that accepts the connection and never answers, at every port: each adapter gives
up inside the work's deadline (adapters/deadline.py) with an error that names the dependency.

Over real sockets (tests/support/tcp_proxy.py SilentServer), no emulator: the connect succeeds,
so only the read timeouts, cut to the deadline, can end the call. Without the deadline a botocore
call here waits 3 x 30 s and an HTTP call 4 x 10 s. The bound asserted is generous (10 x the
deadline): the claim is "gave up and said who", not a wall-clock figure; the seconds measured
are in docs/design-notes.md ("A deadline that travels").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from returns.result import Failure

from adapters import deadline as deadlines
from adapters.aws.athena_engine import AthenaQueryEngine
from adapters.aws.clients import ClientFactory, ClientOptions
from adapters.aws.dynamo_entries import DynamoUserDirectory
from adapters.aws.kinesis import KinesisRecordStream
from adapters.aws.s3 import S3ObjectStore
from adapters.aws.sqs import SqsMoveQueue
from adapters.http.async_client import AsyncJsonHttpClient
from adapters.http.campaigns import HttpCampaignDirectory
from adapters.http.client import JsonHttpClient
from adapters.http.codes import HttpCodeInventory, HttpCodeIssuer
from adapters.http.entries import HttpEntryDirectory
from adapters.http.slack import SlackWebhookNotifier
from adapters.http.users import HttpUserDirectory
from domain.backoff import Backoff
from domain.codes import CodeRequest, CodeType
from domain.deadline import Deadline
from domain.lake import MoveRequest
from domain.models import Notification, ObjectRef, StreamRecord
from domain.records import CodeAssignment
from domain.streaming import DependencyUnavailable
from tests.support.tcp_proxy import SilentServer

DEADLINE_SECONDS = 2.0
GENEROUS = 10 * DEADLINE_SECONDS

# What each port's call gives back when it gives up: the text of the error or failure.
Call = Callable[[str], str]


def _raised_or_failed(call: Callable[[], Any]) -> str:
    try:
        result = call()
    except DependencyUnavailable as error:
        return str(error)
    if isinstance(result, Failure):
        return str(result.failure())
    raise AssertionError(f"the call answered {result!r} from a silent dependency")


def _aws(url: str) -> ClientFactory:
    return ClientFactory(ClientOptions(endpoint_url=url))


def s3(url: str) -> str:
    store = S3ObjectStore(_aws(url).client("s3"))
    return _raised_or_failed(lambda: store.read_bytes(ObjectRef("scoring", "in/file.csv")))


def sqs(url: str) -> str:
    queue = SqsMoveQueue(_aws(url).client("sqs"), f"{url}/000000000000/moves")
    return _raised_or_failed(lambda: queue.send(MoveRequest("codeAssignment", "2026/01/02")))


def dynamodb(url: str) -> str:
    users = DynamoUserDirectory(_aws(url).client("dynamodb"), "users")
    return _raised_or_failed(lambda: users.user_ids_for(["g1"]))


def athena(url: str) -> str:
    aws = _aws(url)
    engine = AthenaQueryEngine(
        aws.client("athena"), aws.client("s3"), database="lake", output_location="s3://out/a"
    )
    return _raised_or_failed(lambda: engine.execute("SELECT 1"))


def _http(name: str, url: str) -> JsonHttpClient:
    return JsonHttpClient(name, url)  # the production defaults: 3 s connect, 10 s read, 4 tries


def campaign_service(url: str) -> str:
    campaigns = HttpCampaignDirectory(_http("campaign service", url))
    return _raised_or_failed(lambda: campaigns.get_campaign("c1"))


def entry_service(url: str) -> str:
    entries = HttpEntryDirectory(_http("entry service", url))
    dates = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}
    assignment = CodeAssignment("c1", "u1", "g1", "C1", dates=dates)
    return _raised_or_failed(lambda: entries.assign_codes("c1", [assignment]))


def user_service(url: str) -> str:
    users = HttpUserDirectory(_http("user service", url))
    return _raised_or_failed(lambda: users.user_ids_for(["g1"]))


def code_service(url: str) -> str:
    codes = HttpCodeInventory(_http("code service", url))
    return _raised_or_failed(lambda: codes.reserve("c1", 5, CodeType.TM, "k1"))


def pacman(url: str) -> str:
    issuer = HttpCodeIssuer(AsyncJsonHttpClient("pacman", url))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    request = CodeRequest("p1", "sms", now, now, "g1")
    try:
        (result,) = issuer.issue_many([request])
    finally:
        issuer.close()
    return _raised_or_failed(lambda: result)


def slack(url: str) -> str:
    notifier = SlackWebhookNotifier(f"{url}/services/T000/B000/secret")
    return _raised_or_failed(lambda: notifier.notify(Notification("run done")))


PORTS: dict[str, tuple[Call, str]] = {
    "s3": (s3, "s3://scoring/in/file.csv"),
    "sqs": (sqs, "move queue"),
    "dynamodb": (dynamodb, "users"),
    "athena": (athena, "athena"),
    "campaign service": (campaign_service, "campaign service"),
    "entry service": (entry_service, "entry service"),
    "user service": (user_service, "user service"),
    "code service": (code_service, "code service"),
    "pacman": (pacman, "pacman"),
    "slack": (slack, "slack webhook"),
}


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    with SilentServer() as server:
        yield server


@pytest.mark.parametrize("port", sorted(PORTS))
def test_a_dependency_that_never_answers_is_given_up_inside_the_deadline_and_named(
    port: str, silent: SilentServer
) -> None:
    call, named = PORTS[port]
    started = time.monotonic()
    with deadlines.within(Deadline.after(DEADLINE_SECONDS)):
        message = call(silent.url)
    took = time.monotonic() - started
    print(f"{port}: gave up after {took:.2f} s (deadline {DEADLINE_SECONDS} s): {message}")
    assert named in message
    assert took < GENEROUS, f"{port} took {took:.1f} s with a {DEADLINE_SECONDS} s deadline"


def test_a_kinesis_stream_that_never_answers_strands_the_records_inside_the_deadline(
    silent: SilentServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = _aws(silent.url).client("kinesis", max_attempts=1)
    stream = KinesisRecordStream(client, "scored-fans", backoff=Backoff())
    started = time.monotonic()
    with caplog.at_level(logging.ERROR), deadlines.within(Deadline.after(DEADLINE_SECONDS)):
        outcome = stream.put_records([StreamRecord("k1", b"{}")])
    took = time.monotonic() - started
    print(f"kinesis: gave up after {took:.2f} s (deadline {DEADLINE_SECONDS} s)")
    assert outcome.stranded == 1 and outcome.sent == 0
    assert any(getattr(r, "stream", None) == "scored-fans" for r in caplog.records)
    assert took < GENEROUS
