"""The scheduler without Step Functions: through its Lambda handler, on the emulator's S3, each
due wave starts its send as an asynchronous Invoke of the send function (a local server speaking
Lambda's Invoke contract: POST /2015-03-31/functions/{name}/invocations, 202 for `Event`). A
throttled invoke leaves the wave scheduled for the next run, never lost and never failed."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from domain.waves import wave_csv_key
from domain.workers.sms_wave_send import config_key
from entrypoints import runtime
from entrypoints.lambda_handlers import sms_wave_scheduler_handler
from tests.support.http_server import LocalHttpServer, Request, Response, http_server

__all__ = ["http_server"]

pytestmark = pytest.mark.integration

FUNCTION = "campaign-sms-wave-send"
INVOKE_PATH = f"/2015-03-31/functions/{FUNCTION}/invocations"
SCHEDULED_EVENT = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2024-05-01T12:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/sms-wave-scheduler"],
    "detail": {},
}


@pytest.fixture
def bucket(
    emulator: Any,
    make_bucket: Callable[[], str],
    http_server: LocalHttpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    name = make_bucket()
    for key, value in {
        "AWS_ENDPOINT_URL": emulator.endpoint_url,
        "AWS_ENDPOINT_URL_LAMBDA": http_server.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "SCORING_BUCKET": name,
        "SMS_WAVE_SEND_FUNCTION": FUNCTION,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SMS_WAVE_STATE_MACHINE", raising=False)
    runtime.reset_settings()
    yield name
    runtime.reset_settings()


def _schedule(s3_client: Any, bucket: str, wave: str) -> None:
    config = {"notifyDate": "2024-05-01T00:00:00Z", "campaignId": "c1"}
    s3_client.put_object(Bucket=bucket, Key=config_key("scheduled", wave), Body=json.dumps(config))
    s3_client.put_object(Bucket=bucket, Key=wave_csv_key(wave), Body=b"globalUserId\r\nf1\r\n")


def _keys(s3_client: Any, bucket: str) -> set[str]:
    listed = s3_client.list_objects_v2(Bucket=bucket, Prefix="smsWaves/").get("Contents", [])
    return {o["Key"] for o in listed}


def test_each_due_wave_is_started_by_one_async_invoke_of_the_send_function(
    bucket: str, s3_client: Any, http_server: LocalHttpServer
) -> None:
    invoked: list[Request] = []

    def invoke(request: Request) -> Response:
        invoked.append(request)
        return Response(202)

    http_server.route("POST", INVOKE_PATH, invoke)
    waves = ["c1_a", "c1_b", "c1_c"]
    for wave in waves:
        _schedule(s3_client, bucket, wave)

    result = sms_wave_scheduler_handler(SCHEDULED_EVENT, None)

    assert sorted(result["triggered"]) == waves
    assert sorted(r.json()["waveName"] for r in invoked) == waves
    assert {r.headers.get("x-amz-invocation-type") for r in invoked} == {"Event"}
    assert all(r.headers.get("authorization", "").startswith("AWS4-HMAC-SHA256") for r in invoked)
    keys = _keys(s3_client, bucket)
    assert {config_key("triggered", w) for w in waves} <= keys
    assert not {config_key("scheduled", w) for w in waves} & keys


def test_a_throttled_invoke_leaves_the_wave_scheduled_and_the_next_run_starts_it(
    bucket: str, s3_client: Any, http_server: LocalHttpServer
) -> None:
    answers = iter([429] * 50)
    invoked: list[str] = []

    def invoke(request: Request) -> Response:
        status = next(answers, 202)
        if status == 202:
            invoked.append(request.json()["waveName"])
            return Response(202)
        body = {"Type": "User", "message": "Rate exceeded"}
        response = Response.json(body, status)
        return Response(
            status, response.body, (*response.headers, ("x-amzn-ErrorType", "TooManyRequests"))
        )

    http_server.route("POST", INVOKE_PATH, invoke)
    _schedule(s3_client, bucket, "c1_t")

    first = sms_wave_scheduler_handler(SCHEDULED_EVENT, None)

    assert first["triggered"] == []
    assert [n["wave"] for n in first["notStarted"]] == ["c1_t"]
    assert "TooManyRequests" in first["notStarted"][0]["reason"]
    assert invoked == []
    answers = iter([])  # the throttling is over
    second = sms_wave_scheduler_handler(SCHEDULED_EVENT, None)
    assert second["triggered"] + second["alreadyTriggered"] == ["c1_t"]
    assert invoked == ["c1_t"]
    assert config_key("scheduled", "c1_t") not in _keys(s3_client, bucket)
