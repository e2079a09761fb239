"""Two senders of one wave started at once (a Step Functions retry racing the first run, an
operator's CLI beside the Lambda), through the Lambda handler the registry makes, with the real
adapters: lease and wave on the emulator's S3, the ledger on its DynamoDB, emails on its SQS,
texts to a local TM SMS service. Exactly one sends; the other is refused naming the holder; no
fan is texted twice."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any

import pytest

from domain.workers.sms_wave_send import SEND_LEASE_PREFIX
from entrypoints import runtime
from entrypoints.lambda_handlers import WorkerFailed, sms_wave_send_handler
from tests.conftest import unique_name
from tests.support.http_server import LocalHttpServer, Request, Response, http_server
from tests.support.sms_fakes import fan
from tests.support.sms_wave_env import triggered_wave

__all__ = ["http_server"]

pytestmark = pytest.mark.integration

WAVE = "c7_race"
FANS = 20


@pytest.fixture
def settings_env(
    emulator: Any,
    aws: Any,
    s3_client: Any,
    make_bucket: Callable[[], str],
    http_server: LocalHttpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    bucket = make_bucket()
    queue = aws.client("sqs").create_queue(QueueName=unique_name("emails"))["QueueUrl"]
    triggered_wave(
        wave=WAVE,
        campaign="c7",
        rows=[fan(n) for n in range(FANS)],
        bucket=bucket,
        endpoint_url=emulator.endpoint_url,
        sms_url=http_server.url,
        email_queue=queue,
        aws=aws,
        s3_client=s3_client,
        monkeypatch=monkeypatch,
    )
    runtime.reset_settings()
    yield bucket
    runtime.reset_settings()


def test_two_senders_of_one_wave_at_once_one_sends_the_other_is_refused_naming_it(
    settings_env: str, s3_client: Any, http_server: LocalHttpServer
) -> None:
    bucket = settings_env
    other_done = threading.Event()

    def texted(request: Request) -> Response:
        # The sender that won holds its first text until the other has returned: both runs
        # overlap for certain, whichever thread took the lease.
        other_done.wait(timeout=30)
        return Response.json({"messageId": f"tm-{request.json()['message']['messageId']}"})

    http_server.route("POST", "/sms", texted)
    start = threading.Barrier(2)

    def send() -> Any:
        start.wait(timeout=30)
        try:
            return sms_wave_send_handler({"waveName": WAVE}, None)
        except WorkerFailed as refused:
            return refused

    with ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(send) for _ in range(2)]
        done, _ = wait(runs, timeout=60, return_when=FIRST_COMPLETED)
        first = next(iter(done)).result()
        lease = s3_client.get_object(Bucket=bucket, Key=f"{SEND_LEASE_PREFIX}{WAVE}.json")
        holder = json.loads(lease["Body"].read())["holder"]
        other_done.set()
        second = next(r for r in runs if r not in done).result(timeout=60)

    assert isinstance(first, WorkerFailed), first
    assert str(first).startswith("busy: ") and f"({holder})" in str(first)
    assert "nothing was sent" in str(first)
    assert second["count"]["detail"]["sms"]["sent"] == FANS
    assert second["count"]["detail"]["email"]["sent"] == FANS
    numbers = [
        r.json()["message"]["to"]["phoneNumber"] for r in http_server.requests_to("POST", "/sms")
    ]
    assert sorted(numbers) == sorted(f"+1212555{n:04d}" for n in range(FANS))
