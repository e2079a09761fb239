"""The SMS gateways and the email queue over HTTP: AWS End User Messaging through boto3 against a
local server speaking its JSON protocol (moto has no backend for it), SNS Publish and SQS on the
emulator (texts and messages read back), the TM SMS service contract against a local server
that throttles, refuses, is slow and drops connections."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from adapters.aws.sqs import SqsEmailQueue
from adapters.sms.gateways import (
    AsyncTmSmsGateway,
    EndUserMessagingGateway,
    LeanTmSmsGateway,
    SnsSmsGateway,
    TmSmsGateway,
)
from domain.sms import (
    Accepted,
    EmailRequest,
    NoAnswer,
    OptedOut,
    Refused,
    SmsMessage,
    Throttled,
    dedupe_id,
)
from tests.support.http_server import Fault, LocalHttpServer, Request, Response, http_server

__all__ = ["http_server"]

MESSAGE = SmsMessage("sms#c1_w1#fan1", "+12125550101", "Your code is C1", 1)


# --- End User Messaging (pinpoint-sms-voice-v2, JSON 1.0) against a local server -------------


def eum_handler(answers: dict[str, tuple[int, dict[str, Any]]]) -> Callable[[Request], Response]:
    """Answers SendTextMessage by destination number; accepted otherwise."""

    def handle(request: Request) -> Response:
        assert request.headers["x-amz-target"] == "PinpointSMSVoiceV2.SendTextMessage"
        body = request.json()
        status, answer = answers.get(body["DestinationPhoneNumber"], (200, {"MessageId": "m-1"}))
        return Response(
            status, json.dumps(answer).encode(), (("Content-Type", "application/x-amz-json-1.0"),)
        )

    return handle


@pytest.fixture
def eum(http_server: LocalHttpServer) -> Iterator[tuple[LocalHttpServer, Any]]:
    client = boto3.client(
        "pinpoint-sms-voice-v2",
        endpoint_url=http_server.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=0.5, connect_timeout=0.5),
    )
    yield http_server, client


def test_end_user_messaging_answers_map_to_sent_opted_out_throttled_refused(
    eum: tuple[LocalHttpServer, Any],
) -> None:
    server, client = eum
    server.route(
        "POST",
        "/",
        eum_handler(
            {
                "+12125550102": (
                    400,
                    {
                        "__type": "ConflictException",
                        "message": "opted out",
                        "Reason": "DESTINATION_PHONE_NUMBER_OPTED_OUT",
                        "ResourceType": "opt-out-list",
                        "ResourceId": "Default",
                    },
                ),
                "+12125550103": (400, {"__type": "ThrottlingException", "message": "slow"}),
                "+12125550104": (
                    400,
                    {"__type": "ValidationException", "message": "bad", "Reason": "INVALID_ARN"},
                ),
                "+12125550105": (500, {"__type": "InternalServerException", "message": "x"}),
                "+12125550106": (400, {"__type": "AccessDeniedException", "message": "no"}),
            }
        ),
    )
    gateway = EndUserMessagingGateway(client, "+18005550100")

    def to(number: str) -> Any:
        return gateway.send(SmsMessage(MESSAGE.key, number, MESSAGE.text, 1))

    assert to("+12125550101") == Accepted("m-1")
    assert to("+12125550102") == OptedOut()
    assert to("+12125550103") == Throttled("ThrottlingException")
    assert to("+12125550104") == Refused("ValidationException:INVALID_ARN")
    assert isinstance(to("+12125550105"), NoAnswer)
    assert to("+12125550106") == Throttled("set-up: AccessDeniedException")
    sent = server.requests_to("POST", "/")[0].json()
    assert sent["OriginationIdentity"] == "+18005550100"
    assert sent["Context"] == {"ledgerKey": MESSAGE.key}
    assert sent["MessageType"] == "TRANSACTIONAL"
    # one request per text: botocore's retries are off (a retry after a timeout is a 2nd text)
    assert len(server.requests_to("POST", "/")) == 6


def test_end_user_messaging_timeout_is_no_answer_and_never_retried(
    eum: tuple[LocalHttpServer, Any],
) -> None:
    server, client = eum
    server.route("POST", "/", eum_handler({}))
    server.inject(Fault.slow(2.0), times=1)
    answer = EndUserMessagingGateway(client, "pool-1").send(MESSAGE)
    assert isinstance(answer, NoAnswer) and "ReadTimeout" in answer.reason
    assert "+1212" not in answer.reason
    assert len(server.requests_to("POST", "/")) == 1


def test_end_user_messaging_unreachable_is_throttled_not_a_fans_failure() -> None:
    client = boto3.client(
        "pinpoint-sms-voice-v2",
        endpoint_url="http://127.0.0.1:9",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=0.5),
    )
    answer = EndUserMessagingGateway(client, "pool-1").send(MESSAGE)
    assert isinstance(answer, Throttled) and answer.reason.startswith("not sent")


# --- SNS and SQS on the emulator -------------------------------------------------------------


def test_sns_publish_to_a_number_is_read_back_from_the_emulator(emulator: Any, aws: Any) -> None:
    if not hasattr(emulator, "server"):
        pytest.skip("reads the in-process emulator's SNS backend")
    from moto.sns.models import sns_backends

    gateway = SnsSmsGateway(aws.client("sns", max_attempts=1))
    answer = gateway.send(SmsMessage("k", "+12125550177", "Your code is Z9", 1))
    assert isinstance(answer, Accepted)
    texts = {
        mid: text
        for backend in sns_backends.values()
        for regional in backend.values()
        for mid, text in regional.sms_messages.items()
    }
    assert texts[answer.message_id] == ("+12125550177", "Your code is Z9")


def test_emails_go_in_batches_of_ten_with_a_deterministic_id_per_fan(aws: Any) -> None:
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=f"emails-{dedupe_id('w', 'f', 'q')[:8]}")["QueueUrl"]
    queue = SqsEmailQueue(sqs, url)
    requests = [
        EmailRequest(dedupe_id("w", f"fan{n}", "email"), {"email": f"f{n}@example.com"})
        for n in range(10)
    ]
    ids = queue.send(requests)
    assert set(ids) == {r.dedupe_id for r in requests} and all(ids.values())
    got = []
    while True:
        answer = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        )
        if not answer.get("Messages"):
            break
        got.extend(answer["Messages"])
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]}
                for m in got[-len(answer["Messages"]) :]
            ],
        )
    assert len(got) == 10
    bodies = {json.loads(m["Body"])["data"]["email"] for m in got}
    assert bodies == {f"f{n}@example.com" for n in range(10)}
    assert {m["MessageAttributes"]["dedupeId"]["StringValue"] for m in got} == set(ids)
    with pytest.raises(ValueError, match="at most 10"):
        queue.send(requests + requests[:1])


# --- the TM SMS service over HTTP --------------------------------------------------------------


Sender = Callable[[TmSmsGateway], tuple[Callable[[SmsMessage], Any], Callable[[], None]]]


def sync_sender(gateway: TmSmsGateway) -> tuple[Callable[[SmsMessage], Any], Callable[[], None]]:
    return gateway.send, lambda: None


def async_sender(gateway: TmSmsGateway) -> tuple[Callable[[SmsMessage], Any], Callable[[], None]]:
    """send_async, each call on one kept loop (as AsyncTaskRunner's)."""
    assert isinstance(gateway, AsyncTmSmsGateway | LeanTmSmsGateway)
    loop = asyncio.new_event_loop()

    def close() -> None:
        loop.run_until_complete(gateway.aclose())
        loop.close()

    return lambda message: loop.run_until_complete(gateway.send_async(message)), close


@pytest.mark.parametrize(
    ("make", "sender"),
    [
        (TmSmsGateway, sync_sender),
        (AsyncTmSmsGateway, async_sender),
        (LeanTmSmsGateway, async_sender),
    ],
    ids=["http.client", "aiohttp", "httptools"],
)
def test_tm_sms_service_contract_and_its_answers(
    http_server: LocalHttpServer,
    make: Callable[..., TmSmsGateway],
    sender: Sender,
) -> None:
    def handle(request: Request) -> Response:
        number = request.json()["message"]["to"]["phoneNumber"]
        if number.endswith("02"):
            return Response.json({"reason": "OPTED_OUT"}, 409)
        if number.endswith("03"):
            return Response.json({"reason": "INVALID_NUMBER"}, 400)
        return Response.json({"messageId": "tm-1"})

    http_server.route("POST", "/sms", handle)
    send, close = sender(make(http_server.url, token="t0k3n", timeout=0.5))
    unreachable, close_unreachable = sender(make("http://127.0.0.1:9"))

    def to(number: str) -> Any:
        return send(SmsMessage(MESSAGE.key, number, MESSAGE.text, 1))

    assert to("+12125550101") == Accepted("tm-1")
    assert to("+12125550102") == OptedOut()
    assert to("+12125550103") == Refused("http 400 INVALID_NUMBER")
    http_server.inject(Fault.throttle("2"), times=1)
    assert to("+12125550101") == Throttled("http 429", 2.0)
    http_server.inject(Fault.slow(2.0), times=1)
    assert isinstance(to("+12125550101"), NoAnswer)
    http_server.inject(Fault.dropped(), times=1)
    assert isinstance(to("+12125550101"), NoAnswer)
    http_server.inject(Fault.status(502), times=1)
    assert to("+12125550101") == NoAnswer("http 502")
    refused = unreachable(MESSAGE)
    close()
    close_unreachable()
    assert isinstance(refused, Throttled) and refused.reason.startswith("not sent")
    body = http_server.requests_to("POST", "/sms")[0]
    assert body.headers["authorization"] == "Bearer t0k3n"
    assert body.json()["message"]["messageId"] == MESSAGE.key
    assert body.json()["correlationId"] == MESSAGE.key


def test_the_wired_end_user_messaging_gateway_names_the_configuration_set_on_every_text(
    http_server: LocalHttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SMS_CONFIGURATION_SET reaches SendTextMessage: without a configuration set End User
    Messaging publishes no delivery event, and a text left `unknown` is never reconciled."""
    from entrypoints.bootstrap import Container
    from entrypoints.settings import Settings, SettingsError

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "test")
    http_server.route("POST", "/", eum_handler({}))
    settings = Settings(
        endpoint_url=http_server.url,
        sms_gateway="end_user_messaging",
        sms_origination="pool-1",
        sms_configuration_set="cw-sms",
    )

    assert Container(settings).sms_gateway.send(MESSAGE) == Accepted("m-1")

    sent = http_server.requests_to("POST", "/")[0].json()
    assert sent["ConfigurationSetName"] == "cw-sms"
    assert sent["OriginationIdentity"] == "pool-1"
    unset = Settings(endpoint_url=http_server.url, sms_origination="pool-1")
    with pytest.raises(SettingsError, match="SMS_CONFIGURATION_SET"):
        _ = Container(unset).sms_gateway


def test_the_lean_tm_gateway_keeps_one_connection_for_texts_sent_one_after_another(
    http_server: LocalHttpServer,
) -> None:
    """Keep-alive is read when the answer completes (httptools resets its flags after): read
    later, every text opened a connection of its own (~2x the CPU a text)."""
    http_server.route("POST", "/sms", lambda _: Response.json({"messageId": "tm-1"}))
    send, close = async_sender(LeanTmSmsGateway(http_server.url))
    answers = [send(MESSAGE) for _ in range(5)]
    close()
    assert answers == [Accepted("tm-1")] * 5
    assert http_server.connections == 1
