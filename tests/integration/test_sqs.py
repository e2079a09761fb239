"""Dead-letter and verdict queues on SQS over HTTP (the embedded emulator), and SQS failing."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from adapters.aws.clients import ClientFactory, ClientOptions
from adapters.aws.sqs import SqsDeadLetters, SqsVerdictQueue, queue_url_for
from domain.backoff import no_wait
from domain.records import Verdict
from domain.streaming import DeadLetter, DependencyUnavailable
from tests.conftest import unique_name
from tests.support.http_server import Fault, running_server, silent_listener
from tests.support.stream_records import batch_of

pytestmark = pytest.mark.integration
NO_WAIT = no_wait(retries=3)  # four tries


@pytest.fixture(scope="module")
def sqs(aws: ClientFactory) -> Any:
    return aws.client("sqs")


@pytest.fixture
def make_queue(sqs: Any) -> Callable[..., str]:
    def make(fifo: bool = False) -> str:
        name = unique_name("queue") + (".fifo" if fifo else "")
        attributes = {"FifoQueue": "true"} if fifo else {}
        return str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])

    return make


def drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while True:
        answer = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        )
        got = answer.get("Messages", [])
        if not got:
            return messages
        messages.extend(got)
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
            ],
        )


def letters(n: int, size: int = 10) -> list[DeadLetter]:
    records = batch_of([bytes([i % 256]) * size for i in range(n)], shard="shardId-000000000007")
    return [DeadLetter(r, f"reason {i}", "save_campaign_data") for i, r in enumerate(records)]


class RecordingSqs:
    """The real client, recording SendMessageBatch sizes and failing chosen entries once."""

    def __init__(self, real: Any, fail_first_call_ids: set[str] | None = None) -> None:
        self.real = real
        self.batch_sizes: list[int] = []
        self.fail_ids = set(fail_first_call_ids or ())

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.batch_sizes.append(len(Entries))
        failing = [e for e in Entries if e["Id"] in self.fail_ids]
        self.fail_ids = set()
        passing = [e for e in Entries if e not in failing]
        answer = self.real.send_message_batch(QueueUrl=QueueUrl, Entries=passing)
        failed = [
            {"Id": e["Id"], "Code": "InternalError", "SenderFault": False, "Message": "try again"}
            for e in failing
        ]
        return {"Successful": answer.get("Successful", []), "Failed": failed}


def test_dead_letters_keep_raw_data_reason_and_origin_in_batches_of_ten(
    sqs: Any, make_queue: Callable[..., str]
) -> None:
    queue = make_queue()
    recording = RecordingSqs(sqs, fail_first_call_ids={"3", "7"})
    sent = letters(25)

    SqsDeadLetters(recording, queue, resend=NO_WAIT).send(sent)

    assert recording.batch_sizes == [10, 2, 10, 5]  # the two failed entries resent alone
    bodies = sorted((json.loads(m["Body"]) for m in drain(sqs, queue)), key=lambda b: b["reason"])
    assert len(bodies) == 25
    by_reason = {b["reason"]: b for b in bodies}
    for i, letter in enumerate(sent):
        body = by_reason[f"reason {i}"]
        assert base64.b64decode(body["data"]) == letter.record.data
        assert body["worker"] == "save_campaign_data"
        assert body["shardId"] == "shardId-000000000007"
        assert body["sequenceNumber"] == letter.record.sequence_number
        assert body["stream"] == "vf1-input-stream"
        assert body["arrivedAt"] == letter.record.arrived_at.isoformat()  # type: ignore[union-attr]


def test_a_record_too_large_for_sqs_keeps_its_bytes_in_s3(
    sqs: Any, s3_client: Any, make_queue: Callable[..., str], make_bucket: Callable[[], str]
) -> None:
    queue, bucket = make_queue(), make_bucket()
    (big,) = letters(1, size=300 * 1024)
    dead = SqsDeadLetters(sqs, queue, overflow_s3=s3_client, overflow_bucket=bucket)

    dead.send([big])

    (message,) = drain(sqs, queue)
    body = json.loads(message["Body"])
    assert body["data"] is None
    key = body["dataRef"].removeprefix(f"s3://{bucket}/")
    assert s3_client.get_object(Bucket=bucket, Key=key)["Body"].read() == big.record.data


def test_a_record_too_large_without_an_overflow_bucket_is_not_dropped(
    sqs: Any, make_queue: Callable[..., str]
) -> None:
    with pytest.raises(DependencyUnavailable, match="no overflow bucket"):
        SqsDeadLetters(sqs, make_queue()).send(letters(1, size=300 * 1024))


def test_a_fifo_dead_letter_queue_keeps_one_copy_of_a_replayed_letter(
    sqs: Any, make_queue: Callable[..., str]
) -> None:
    queue = make_queue(fifo=True)
    dead = SqsDeadLetters(sqs, queue)
    dead.send(letters(3))
    dead.send(letters(3))
    assert len(drain(sqs, queue)) == 3


def test_entries_failing_past_the_budget_raise(sqs: Any, make_queue: Callable[..., str]) -> None:
    class AlwaysFailing(RecordingSqs):
        def send_message_batch(
            self, QueueUrl: str, Entries: list[dict[str, Any]]
        ) -> dict[str, Any]:
            self.batch_sizes.append(len(Entries))
            return {"Successful": [], "Failed": [{"Id": e["Id"], "Code": "X"} for e in Entries]}

    failing = AlwaysFailing(sqs)
    with pytest.raises(DependencyUnavailable, match="3 messages not accepted after 4 attempts"):
        SqsDeadLetters(failing, make_queue(), resend=NO_WAIT).send(letters(3))
    assert failing.batch_sizes == [3, 3, 3, 3]


def test_verdicts_carry_exactly_campaign_and_count(
    sqs: Any, make_queue: Callable[..., str]
) -> None:
    queue = make_queue()
    SqsVerdictQueue(sqs, queue).send([Verdict("camp-1", 42, "d1")])
    (message,) = drain(sqs, queue)
    assert json.loads(message["Body"]) == {"campaignId": "camp-1", "count": 42}
    assert message["MessageAttributes"]["dedupeId"]["StringValue"] == "d1"


def test_verdicts_go_in_batches_of_ten_and_failed_entries_are_resent_alone(
    sqs: Any, make_queue: Callable[..., str]
) -> None:
    queue = make_queue()
    recording = RecordingSqs(sqs, fail_first_call_ids={"4"})
    SqsVerdictQueue(recording, queue, resend=NO_WAIT).send(
        [Verdict("camp-1", 1, f"d{i}") for i in range(23)]
    )
    assert recording.batch_sizes == [10, 1, 10, 3]
    ids = sorted(m["MessageAttributes"]["dedupeId"]["StringValue"] for m in drain(sqs, queue))
    assert ids == sorted(f"d{i}" for i in range(23))


def test_a_fifo_verdict_queue_drops_the_replayed_verdict(
    sqs: Any, make_queue: Callable[..., str]
) -> None:
    queue = make_queue(fifo=True)
    verdicts = SqsVerdictQueue(sqs, queue)
    verdicts.send([Verdict("camp-1", 5, "same")])
    verdicts.send([Verdict("camp-1", 5, "same"), Verdict("camp-1", 7, "other")])
    assert [json.loads(m["Body"])["count"] for m in drain(sqs, queue)] == [5, 7]


def test_queue_urls_come_from_names(sqs: Any, make_queue: Callable[..., str]) -> None:
    queue = make_queue()
    assert queue_url_for(sqs, queue.rsplit("/", 1)[1]) == queue
    with pytest.raises(DependencyUnavailable, match="no-such-queue"):
        queue_url_for(sqs, "no-such-queue")


@pytest.mark.parametrize("fault", [Fault.status(503), Fault.status(500)])
def test_sqs_failing_past_botocores_retries_raises_without_retrying_again(fault: Fault) -> None:
    with running_server() as server:
        server.inject(fault, times=1000)
        sqs = ClientFactory(
            ClientOptions(endpoint_url=server.url, max_attempts=2, read_timeout=2.0)
        ).client("sqs")
        url = f"{server.url}/123456789012/dlq"
        with pytest.raises(DependencyUnavailable, match="queue"):
            SqsDeadLetters(sqs, url, resend=NO_WAIT).send(letters(2))
        # botocore's two attempts, and no adapter loop around them (one retry layer per call)
        assert len(server.requests) == 2
        with pytest.raises(DependencyUnavailable, match="verdict queue"):
            SqsVerdictQueue(sqs, url, resend=NO_WAIT).send([Verdict("c", 1, "d")])
        assert len(server.requests) == 4


def test_an_endpoint_that_accepts_and_never_answers_fails_within_timeout_times_attempts() -> None:
    """Before: 5 botocore attempts x 6 adapter tries (x the runtime's 10 replays: ~2.5 h per
    KCL batch). Now the adapter's share is botocore's attempts x the read timeout."""
    read_timeout, attempts = 0.5, 2
    with silent_listener() as listener:
        sqs = ClientFactory(
            ClientOptions(
                endpoint_url=listener.url,
                max_attempts=attempts,
                read_timeout=read_timeout,
                connect_timeout=read_timeout,
            )
        ).client("sqs")
        url = f"{listener.url}/123456789012/dlq"
        with pytest.raises(DependencyUnavailable, match=r"(?i)timeout"):
            SqsDeadLetters(sqs, url, resend=no_wait(retries=5)).send(letters(1))
    # One connection per botocore attempt and none more: the call's cost is bounded by
    # attempts x (timeout + botocore's jittered wait of at most a second), not by a product
    # of retry layers. (Counted, not timed: tests set no wall-clock limits.)
    assert listener.connections == attempts


def test_a_queue_given_by_name_is_resolved_at_the_first_send_not_when_built(
    sqs: Any, make_queue: Callable[..., str]
) -> None:
    """A consumer built while SQS is down must start; the first send fails like any call
    (DependencyUnavailable, replayed by the runtime) and succeeds once SQS is back."""
    name = unique_name("late-dlq")
    with silent_listener() as listener:
        down = ClientFactory(
            ClientOptions(endpoint_url=listener.url, max_attempts=1, read_timeout=0.3)
        ).client("sqs")
        built = SqsDeadLetters(down, name, resend=NO_WAIT)  # no call yet
        assert listener.connections == 0
        with pytest.raises(DependencyUnavailable, match=name):
            built.send(letters(1))
    dead = SqsDeadLetters(sqs, name, resend=NO_WAIT)
    verdicts = SqsVerdictQueue(sqs, name, resend=NO_WAIT)
    with pytest.raises(DependencyUnavailable, match=name):
        dead.send(letters(1))  # no such queue yet: a dependency fault, replayed
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    dead.send(letters(2))
    verdicts.send([Verdict("camp-1", 1, "d1")])
    assert dead.queue_url == url
    assert len(drain(sqs, url)) == 3
