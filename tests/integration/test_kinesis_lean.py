"""The producer's lean PutRecords request (adapters/aws/kinesis_lean.py) over HTTP against a
local server that plays Kinesis: the same body botocore sends, signed, and the producer's
semantics through it (partial failures resent entry by entry, throttling and 5xx retried,
dropped connections retried, configuration errors raised naming the stream and counts)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from adapters import deadline as deadlines
from adapters.aws.kinesis import KinesisPutFailed, KinesisRecordStream
from adapters.aws.kinesis_lean import LeanPutRecords
from domain.backoff import Backoff
from domain.models import StreamRecord
from tests.support.http_server import Fault, LocalHttpServer, Request, Response

pytestmark = pytest.mark.integration

THROTTLED = "ProvisionedThroughputExceededException"


class PlayedKinesis:
    """PutRecords on a LocalHttpServer: `fail(entry)` says which entries fail inside the 200;
    every landed entry is kept, in order."""

    def __init__(self, fail: Callable[[dict[str, Any]], bool] = lambda _entry: False) -> None:
        self.fail = fail
        self.landed: list[tuple[str, bytes]] = []
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: Request) -> Response:
        body = request.json()
        self.bodies.append(body)
        results: list[dict[str, str]] = []
        for entry in body["Records"]:
            if self.fail(entry):
                results.append({"ErrorCode": THROTTLED, "ErrorMessage": "Rate exceeded for shard"})
            else:
                self.landed.append((entry["PartitionKey"], base64.b64decode(entry["Data"])))
                results.append({"SequenceNumber": str(len(self.landed)), "ShardId": "shardId-0"})
        failed = sum(1 for r in results if "ErrorCode" in r)
        return Response.json({"FailedRecordCount": failed, "Records": results})


@pytest.fixture
def server() -> Iterator[LocalHttpServer]:
    with LocalHttpServer() as running:
        yield running


def client_for(server: LocalHttpServer) -> Any:
    return boto3.client(
        "kinesis",
        endpoint_url=server.url,
        region_name="eu-west-1",
        aws_access_key_id="AKIDLEAN",
        aws_secret_access_key="secret",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=5, connect_timeout=5),
    )


def lean_stream(server: LocalHttpServer, retries: int = 5) -> KinesisRecordStream:
    backoff = Backoff(retries=retries, sleep=lambda _s: None)
    return KinesisRecordStream(
        LeanPutRecords(client_for(server)), "fans", backoff=backoff, max_in_flight=1
    )


def signed_again(server: LocalHttpServer, received: Request) -> str:
    """The Authorization header SigV4 gives the request as received (its signed headers, its
    X-Amz-Date, its body), as AWS checks it: equal to the one sent only if the signature is
    valid for what went over the wire."""
    sent = received.headers["authorization"]
    signed = sent.split("SignedHeaders=")[1].split(",")[0].split(";")
    request = AWSRequest(
        method="POST",
        url=server.url + received.path,
        data=received.body,
        headers={name: received.headers[name] for name in signed if name != "host"},
    )
    request.context["timestamp"] = received.headers["x-amz-date"]
    credentials = Credentials("AKIDLEAN", "secret")
    auth = SigV4Auth(credentials, "kinesis", "eu-west-1")
    canonical = auth.canonical_request(request)
    signature = auth.signature(auth.string_to_sign(request, canonical), request)
    scope = auth.scope(request)
    return (
        f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders={';'.join(signed)}, "
        f"Signature={signature}"
    )


def records(count: int) -> list[StreamRecord]:
    return [StreamRecord(f"fan-{i}", b'{"n":%d,"bytes":"\x00\xff"}' % i) for i in range(count)]


def test_the_lean_body_is_the_one_botocore_sends_and_is_signed_for_kinesis(
    server: LocalHttpServer,
) -> None:
    played = PlayedKinesis()
    server.route("POST", "/", played)
    batch = records(7)
    KinesisRecordStream(client_for(server), "fans", backoff=Backoff()).put_records(batch)
    lean_stream(server).put_records(batch)

    botocore_request, lean_request = server.requests_to("POST", "/")
    assert lean_request.json() == botocore_request.json()
    assert lean_request.path == botocore_request.path
    for header in ("content-type", "x-amz-target"):
        assert lean_request.headers[header] == botocore_request.headers[header]
    assert lean_request.headers["authorization"] == signed_again(server, lean_request)
    authorization = lean_request.headers["authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDLEAN/")
    assert "/eu-west-1/kinesis/aws4_request" in authorization
    assert played.landed == [(r.partition_key, r.data) for r in batch] * 2


def test_entries_failing_inside_a_200_are_resent_alone_until_they_land(
    server: LocalHttpServer,
) -> None:
    tries: dict[str, int] = {}

    def fail_every_third_twice(entry: dict[str, Any]) -> bool:
        key = entry["PartitionKey"]
        tries[key] = tries.get(key, 0) + 1
        return int(key.split("-")[1]) % 3 == 0 and tries[key] <= 2

    played = PlayedKinesis(fail_every_third_twice)
    server.route("POST", "/", played)
    batch = records(30)

    outcome = lean_stream(server).put_records(batch)

    assert (outcome.sent, outcome.stranded, outcome.calls, outcome.retries) == (30, 0, 3, 2)
    assert sorted(played.landed) == sorted((r.partition_key, r.data) for r in batch)
    assert [len(body["Records"]) for body in played.bodies] == [30, 10, 10]


def test_throttling_and_server_errors_are_retried_and_nothing_is_lost(
    server: LocalHttpServer,
) -> None:
    played = PlayedKinesis()
    server.route("POST", "/", played)
    throttled = json.dumps({"__type": THROTTLED, "message": "Rate exceeded"}).encode()
    server.inject(Fault.status(400, throttled), times=2)
    server.inject(Fault.status(500, b"<html>oops</html>"))
    server.inject(Fault.dropped())
    batch = records(12)

    outcome = lean_stream(server).put_records(batch)

    assert (outcome.sent, outcome.stranded, outcome.calls, outcome.retries) == (12, 0, 5, 4)
    assert played.landed == [(r.partition_key, r.data) for r in batch]


def test_a_batch_still_throttled_after_the_budget_is_stranded_with_its_positions(
    server: LocalHttpServer,
) -> None:
    server.route("POST", "/", PlayedKinesis(lambda entry: entry["PartitionKey"] == "fan-4"))

    outcome = lean_stream(server, retries=2).put_records(records(6))

    assert (outcome.sent, outcome.stranded, outcome.stranded_at) == (5, 1, (4,))


def test_a_missing_stream_raises_naming_it_and_the_count_sent(server: LocalHttpServer) -> None:
    missing = {"__type": "ResourceNotFoundException", "message": "Stream fans not found"}
    server.route("POST", "/", lambda _request: Response.json(missing, status=400))

    with pytest.raises(KinesisPutFailed, match=r"'fans'.*ResourceNotFoundException") as raised:
        lean_stream(server).put_records(records(3))

    assert raised.value.stream_name == "fans" and raised.value.sent_so_far == 0


def test_the_resend_stops_at_the_deadline_and_strands_what_is_left(
    server: LocalHttpServer,
) -> None:
    server.route("POST", "/", PlayedKinesis(lambda entry: entry["PartitionKey"] == "fan-1"))
    backoff = Backoff(base_seconds=10.0, retries=5, random=lambda: 1.0, sleep=lambda _s: None)
    stream = KinesisRecordStream(LeanPutRecords(client_for(server)), "fans", backoff=backoff)

    with deadlines.within(deadlines.Deadline.after(5.0)):
        outcome = stream.put_records(records(3))

    assert (outcome.sent, outcome.stranded_at, outcome.calls) == (2, (1,), 1)


def test_a_client_of_another_protocol_is_refused() -> None:
    s3 = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    with pytest.raises(ValueError, match="not a JSON-protocol client"):
        LeanPutRecords(s3)


def test_a_200_that_is_not_json_raises_naming_the_stream(server: LocalHttpServer) -> None:
    server.route("POST", "/", PlayedKinesis())
    server.inject(Fault.garbage())

    with pytest.raises(KinesisPutFailed, match=r"'fans'.*MalformedResponse"):
        lean_stream(server).put_records(records(2))
