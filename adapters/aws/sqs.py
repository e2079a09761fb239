"""SQS adapters for the stream workers: the dead-letter queue and the verdict queue.

Dead letters (DeadLetters port). One message per record, body JSON:
    {"worker", "reason", "stream", "shardId", "sequenceNumber", "subSequenceNumber",
     "partitionKey", "arrivedAt" (ISO 8601 or null), "data" (the raw bytes, base64)}
A record too large for one message (a Kinesis record may be 1 MiB, an SQS message 256 KiB)
keeps its raw bytes in S3 instead, when an overflow bucket is given: "data" is then null and
"dataRef" is `s3://bucket/dead-letters/{worker}/{stream}/{shard}/{sequence}-{sub}.bin` (a
deterministic key: a replay overwrites it). Without an overflow bucket such a record raises
DependencyUnavailable rather than being dropped.
Messages go out in SendMessageBatch calls of at most 10 entries and 256 KiB; entries that fail
inside a 200 answer are resent (only those, up to 4 times) with domain.backoff's exponential
backoff and full jitter; still failing after that, or failing as the sender's fault ->
DependencyUnavailable. A call that raises is not retried here: botocore's standard mode already
did (one retry layer per call). On a FIFO queue (name ends in
.fifo) each message's deduplication id is a hash of (worker, stream, shard, sequence,
sub-sequence), so a replayed batch does not queue the same dead letter twice; a standard queue
may (at least once).

Verdicts (VerdictQueue port): body exactly `{"campaignId": ..., "count": n}` (what the
verdict reporter reads), sent the same way in batches of 10; the verdict's dedupe id goes into
MessageDeduplicationId on a FIFO queue (group = campaign) and into a `dedupeId` message
attribute on a standard queue.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from adapters import deadline as deadlines
from adapters.aws.errors import AWS_ERRORS, unavailable
from domain.backoff import Backoff
from domain.lake import MoveRequest
from domain.records import Verdict
from domain.sms import EmailRequest
from domain.streaming import DeadLetter, DependencyUnavailable

MAX_BATCH_ENTRIES = 10
MAX_MESSAGE_BYTES = 256 * 1024
MAX_BATCH_BYTES = 256 * 1024
OVERFLOW_PREFIX = "dead-letters/"


# SendMessageBatch answers 200 with some entries Failed (throttled, internal error): those, and
# only those, are resent. botocore (standard mode, adapters/aws/clients.py) already retries a
# whole call that fails, so an exception here is final for this attempt: retrying it again
# would be a retry loop around botocore's (5 x 6 calls per batch once, hours behind a hung
# endpoint). Four resends, waits of up to 0.1, 0.2, 0.4, 0.8 s: then the batch goes back to the
# runtime, whose wall-clock deadline decides.
DEFAULT_RESEND_BACKOFF = Backoff(base_seconds=0.1, cap_seconds=2.0, retries=4)


def queue_url_for(sqs: Any, queue: str) -> str:
    """A queue URL from a URL or a name (GetQueueUrl)."""
    if queue.startswith(("http://", "https://")):
        return queue
    try:
        return str(sqs.get_queue_url(QueueName=queue)["QueueUrl"])
    except AWS_ERRORS as error:
        raise unavailable(f"queue {queue}", error) from error


def _is_fifo(queue_url: str) -> bool:
    return queue_url.rstrip("/").endswith(".fifo")


class _BatchSender:
    """SendMessageBatch in calls of <= 10 entries / 256 KiB; resends the entries that failed
    inside a 200 answer (a bounded budget); a call that raises is final (botocore retried it).

    `queue` is a URL or a name. A name is resolved (GetQueueUrl) on the first send, not when
    the adapter is built: a consumer that starts while SQS is down must not die at start-up
    (issue 7: every restarted KCL child died in GetQueueUrl); the first send then fails like
    any other call, DependencyUnavailable, inside the runtime's batch deadline."""

    def __init__(self, sqs: Any, queue: str, resend: Backoff, what: str) -> None:
        self._sqs = sqs
        self.queue = queue
        self._resolved = queue if queue.startswith(("http://", "https://")) else None
        self._resend = resend
        self._what = what

    @property
    def queue_url(self) -> str:
        if self._resolved is None:
            self._resolved = queue_url_for(self._sqs, self.queue)
        return self._resolved

    def send_all(self, entries: Sequence[dict[str, Any]]) -> None:
        for batch in _batches(entries):
            self._send(batch)

    def _send(self, batch: list[dict[str, Any]]) -> None:
        pending = {entry["Id"]: entry for entry in batch}
        failed: list[dict[str, Any]] = []
        tries = 0  # none made when the deadline had passed already
        for _ in self._resend.attempts(deadlines.current()):
            tries += 1
            try:
                answer = self._sqs.send_message_batch(
                    QueueUrl=self.queue_url, Entries=list(pending.values())
                )
            except AWS_ERRORS as error:
                raise unavailable(f"{self._what} {self.queue}", error) from error
            for sent in answer.get("Successful") or []:
                pending.pop(sent["Id"], None)
            if not pending:
                return
            failed = answer.get("Failed") or []
            if any(entry.get("SenderFault") for entry in failed):
                break  # the request itself is wrong: resending the same entries cannot help
        raise DependencyUnavailable(
            f"{self._what} {self.queue}",
            f"{len(pending)} messages not accepted after {tries} attempts (or at the "
            "deadline); "
            f"last: {_failure_text(failed)}",
        )


def _failure_text(failed: Sequence[Mapping[str, Any]]) -> str:
    if not failed:
        return "no answer for some entries"
    first = failed[0]
    return f"{len(failed)} entries failed, e.g. {first.get('Code')}: {first.get('Message', '')}" + (
        " (sender fault)" if first.get("SenderFault") else ""
    )


def _batches(entries: Sequence[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    size = 0
    for entry in entries:
        entry_size = len(entry["MessageBody"].encode("utf-8"))
        if batch and (len(batch) == MAX_BATCH_ENTRIES or size + entry_size > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append({**entry, "Id": str(len(batch))})
        size += entry_size
    if batch:
        yield batch


class SqsDeadLetters:
    """DeadLetters on an SQS queue, with an optional S3 bucket for records too large for SQS."""

    def __init__(
        self,
        sqs: Any,
        queue: str,
        *,
        overflow_s3: Any | None = None,
        overflow_bucket: str | None = None,
        resend: Backoff = DEFAULT_RESEND_BACKOFF,
    ) -> None:
        self._sender = _BatchSender(sqs, queue, resend, "queue")
        self._fifo = _is_fifo(queue)  # a FIFO queue's name and URL both end in .fifo
        self._overflow_s3 = overflow_s3
        self._overflow_bucket = overflow_bucket

    @property
    def queue_url(self) -> str:
        return self._sender.queue_url

    def send(self, letters: Sequence[DeadLetter]) -> None:
        self._sender.send_all([self._entry(letter) for letter in letters])

    def _entry(self, letter: DeadLetter) -> dict[str, Any]:
        body = dead_letter_body(letter)
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=True)
        if len(text) > MAX_MESSAGE_BYTES:
            body["data"] = None
            body["dataRef"] = self._overflow(letter)
            text = json.dumps(body, separators=(",", ":"), ensure_ascii=True)
            if len(text) > MAX_MESSAGE_BYTES:  # a reason or key of ~256 KiB: a bug upstream
                raise ValueError(f"dead letter for {_where(letter)} is too large even without data")
        entry: dict[str, Any] = {"Id": "", "MessageBody": text}
        if self._fifo:
            record = letter.record
            entry["MessageGroupId"] = f"{record.stream}/{record.shard_id}"[:128]
            entry["MessageDeduplicationId"] = _digest(
                letter.worker,
                record.stream,
                record.shard_id,
                record.sequence_number,
                str(record.sub_sequence_number),
            )
        return entry

    def _overflow(self, letter: DeadLetter) -> str:
        if self._overflow_s3 is None or not self._overflow_bucket:
            raise DependencyUnavailable(
                f"queue {self._sender.queue}",
                f"dead letter for {_where(letter)} ({len(letter.record.data)} bytes) is over "
                f"{MAX_MESSAGE_BYTES} bytes and no overflow bucket is configured",
            )
        record = letter.record
        key = (
            f"{OVERFLOW_PREFIX}{letter.worker}/{record.stream}/{record.shard_id}/"
            f"{record.sequence_number}-{record.sub_sequence_number}.bin"
        )
        try:
            self._overflow_s3.put_object(Bucket=self._overflow_bucket, Key=key, Body=record.data)
        except AWS_ERRORS as error:
            raise unavailable(
                f"dead-letter overflow s3://{self._overflow_bucket}", error
            ) from error
        return f"s3://{self._overflow_bucket}/{key}"


def dead_letter_body(letter: DeadLetter) -> dict[str, Any]:
    record = letter.record
    return {
        "worker": letter.worker,
        "reason": letter.reason,
        "stream": record.stream,
        "shardId": record.shard_id,
        "sequenceNumber": record.sequence_number,
        "subSequenceNumber": record.sub_sequence_number,
        "partitionKey": record.partition_key,
        "arrivedAt": record.arrived_at.isoformat() if record.arrived_at else None,
        "data": base64.b64encode(record.data).decode("ascii"),
    }


class SqsVerdictQueue:
    """VerdictQueue on SQS: `{campaignId, count}` for the verdict reporter, in SendMessageBatch
    calls of 10 (one verdict per assignment: see domain.records.verdict_for)."""

    def __init__(self, sqs: Any, queue: str, *, resend: Backoff = DEFAULT_RESEND_BACKOFF) -> None:
        self._sender = _BatchSender(sqs, queue, resend, "verdict queue")
        self._fifo = _is_fifo(queue)

    @property
    def queue_url(self) -> str:
        return self._sender.queue_url

    def send(self, verdicts: Sequence[Verdict]) -> None:
        self._sender.send_all([self._entry(verdict) for verdict in verdicts])

    def _entry(self, verdict: Verdict) -> dict[str, Any]:
        body = json.dumps({"campaignId": verdict.campaign_id, "count": verdict.count})
        entry: dict[str, Any] = {"Id": "", "MessageBody": body}
        if self._fifo:
            entry["MessageGroupId"] = verdict.campaign_id[:128] or "-"
            entry["MessageDeduplicationId"] = verdict.dedupe_id[:128]
        else:
            entry["MessageAttributes"] = {
                "dedupeId": {"DataType": "String", "StringValue": verdict.dedupe_id}
            }
        return entry


def _digest(*parts: str) -> str:
    return hashlib.blake2b("|".join(parts).encode("utf-8"), digest_size=32).hexdigest()


def _where(letter: DeadLetter) -> str:
    record = letter.record
    return f"{record.stream}/{record.shard_id}/{record.sequence_number}"


class SqsMoveQueue:
    """MoveQueue on SQS: body `{"recordType": ..., "prefix": "YYYY/MM/DD"}`, one message per merged
    type. On a FIFO queue the deduplication id is (type, prefix): a re-run's message within
    SQS's 5-minute window is dropped; on a standard queue a second message is harmless (the move
    of a moved prefix moves nothing)."""

    def __init__(self, sqs: Any, queue: str, *, resend: Backoff = DEFAULT_RESEND_BACKOFF) -> None:
        self._sender = _BatchSender(sqs, queue, resend, "move queue")
        self._fifo = _is_fifo(queue)

    def send(self, request: MoveRequest) -> None:
        body = json.dumps({"recordType": request.record_type, "prefix": request.prefix})
        entry: dict[str, Any] = {"Id": "", "MessageBody": body}
        if self._fifo:
            entry["MessageGroupId"] = request.record_type
            entry["MessageDeduplicationId"] = _digest(request.record_type, request.prefix)[:128]
        self._sender.send_all([entry])


def move_request_from_body(body: str) -> MoveRequest:
    """A move queue message's body -> MoveRequest. Raises ValueError naming what is wrong."""
    try:
        message = json.loads(body)
    except ValueError as error:
        raise ValueError(f"move message is not JSON: {error}") from None
    if not isinstance(message, dict):
        raise ValueError("move message is not a JSON object")
    record_type, prefix = message.get("recordType"), message.get("prefix")
    if not isinstance(record_type, str) or not isinstance(prefix, str):
        raise ValueError("move message needs string fields recordType and prefix")
    return MoveRequest(record_type, prefix)


class SqsEmailQueue:
    """EmailQueue on SQS (the SMS wave email queue): body `{"data": EmailRequest}` (§2.6), up to
    10 a SendMessageBatch, each entry's Id its request's dedupe id (deterministic per wave and
    fan); that id also goes into MessageDeduplicationId on a FIFO queue (group = the id: no
    ordering between fans) and into a `dedupeId` attribute on a standard one, so a consumer
    drops a repeat. Entries the queue refuses inside a 200 answer come back None (not
    enqueued); a call that raises is DependencyUnavailable (botocore retried it already; the
    requests may have been enqueued)."""

    max_batch = MAX_BATCH_ENTRIES

    def __init__(self, sqs: Any, queue: str) -> None:
        self._sqs, self.queue = sqs, queue
        self._url: str | None = queue if queue.startswith(("http://", "https://")) else None

    @property
    def queue_url(self) -> str:
        if self._url is None:
            self._url = queue_url_for(self._sqs, self.queue)
        return self._url

    def send(self, requests: Sequence[EmailRequest]) -> Mapping[str, str | None]:
        if len(requests) > self.max_batch:
            raise ValueError(f"at most {self.max_batch} emails a call, got {len(requests)}")
        if not requests:
            return {}
        fifo = _is_fifo(self.queue_url)
        entries = []
        for request in requests:
            entry: dict[str, Any] = {
                "Id": request.dedupe_id,
                "MessageBody": json.dumps({"data": dict(request.body)}),
                "MessageAttributes": {
                    "dedupeId": {"DataType": "String", "StringValue": request.dedupe_id}
                },
            }
            if fifo:
                entry["MessageGroupId"] = request.dedupe_id
                entry["MessageDeduplicationId"] = request.dedupe_id
            entries.append(entry)
        try:
            answer = self._sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
        except AWS_ERRORS as error:
            raise unavailable(f"email queue {self.queue}", error) from error
        sent: dict[str, str | None] = {r.dedupe_id: None for r in requests}
        for ok in answer.get("Successful") or []:
            sent[ok["Id"]] = str(ok["MessageId"])
        return sent
