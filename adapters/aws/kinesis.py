"""RecordStream on Kinesis PutRecords: batches within limits, resends only what failed.

Why each piece exists (the failures it prevents):
- PutRecords answers 200 even when some entries failed (throttled shard, internal failure);
  treating 200 as success silently drops those entries. We resend exactly the failed entries,
  never the ones that succeeded (that would duplicate them downstream).
- Whole calls fail on throttling, 5xx, timeouts and dropped connections: retried with
  exponential backoff and full jitter, so a hot shard is not hammered.
- The retry budget is spent only by rounds that make no progress: a round in which some
  entries succeed resets it (a batch holds at most 500 entries, so this is bounded).
- When a batch is still failing after the budget, sending stops; the rest of the input is still
  consumed (the caller's side effects, e.g. a scrubbed CSV written as rows are pulled, complete)
  and counted as stranded in the PutOutcome: an explicit failure, never a silent drop.

Layering: adapters may not import streams/ (sibling layers), so the batch splitter is injected;
bootstrap passes `streams.batching.split_batches`. The backoff is the domain's
`domain.backoff.Backoff`, given by the caller so tests can pass one that never sleeps.
A read timeout is ambiguous (the call may have landed): its retry can duplicate entries, which
is why every record carries a dedupe id for consumers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from domain.backoff import Backoff
from domain.models import PutOutcome, RejectedRecord, StreamRecord

log = logging.getLogger(__name__)

MAX_RECORD_BYTES = 1024 * 1024

# Error codes that mean "try the whole call again later"; anything else (missing stream,
# access denied, validation) is broken configuration and raises at once.
RETRYABLE_CALL_ERRORS = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "LimitExceededException",
        "KMSThrottlingException",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
        "SlowDown",
    }
)


class BatchPlan(Protocol):
    """What streams.batching.Batch provides."""

    @property
    def records(self) -> Sequence[StreamRecord]: ...

    @property
    def rejected(self) -> Sequence[RejectedRecord]: ...


BatchSplitter = Callable[[Iterable[StreamRecord]], Iterator[BatchPlan]]


class KinesisPutFailed(RuntimeError):
    """A PutRecords call failed in a way retrying cannot fix (no such stream, access denied)."""

    def __init__(self, stream_name: str, detail: str, sent_so_far: int) -> None:
        super().__init__(
            f"PutRecords to stream {stream_name!r} failed: {detail} "
            f"({sent_so_far} records had been sent before the failure)"
        )
        self.stream_name = stream_name
        self.sent_so_far = sent_so_far


@dataclass(slots=True)
class _Tally:
    sent: int = 0
    calls: int = 0
    retries: int = 0


def _is_retryable(error: ClientError) -> bool:
    code = str(error.response.get("Error", {}).get("Code", ""))
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code in RETRYABLE_CALL_ERRORS or status >= 500 or status == 429


class KinesisRecordStream:
    """domain.ports.RecordStream over a boto3 Kinesis client.

    `client` is a boto3 Kinesis client (give it few or no botocore retries: this class owns the
    retry budget). Memory: one batch (<= 500 records, <= 5 MiB) plus the rejects' keys.
    """

    def __init__(
        self,
        client: Any,
        stream_name: str,
        *,
        split: BatchSplitter,
        backoff: Backoff,
        max_record_bytes: int = MAX_RECORD_BYTES,
    ) -> None:
        self.client = client
        self.stream_name = stream_name
        self.split = split
        self.backoff = backoff
        self.max_record_bytes = max_record_bytes

    def put_records(self, records: Iterable[StreamRecord]) -> PutOutcome:
        tally = _Tally()
        rejected: list[RejectedRecord] = []
        stranded = 0
        batches = self.split(records)
        for batch in batches:
            rejected.extend(batch.rejected)
            if not batch.records:
                continue
            stranded = self._send_batch(batch.records, tally)
            if stranded:
                log.error(
                    "kinesis batch stranded after retry budget; draining the rest as stranded",
                    extra={"stream": self.stream_name, "stranded": stranded, "sent": tally.sent},
                )
                for rest in batches:
                    rejected.extend(rest.rejected)
                    stranded += len(rest.records)
                break
        return PutOutcome(
            sent=tally.sent,
            rejected=tuple(rejected),
            stranded=stranded,
            calls=tally.calls,
            retries=tally.retries,
        )

    def _send_batch(self, records: Sequence[StreamRecord], tally: _Tally) -> int:
        """Sends one batch; returns how many of its entries are stranded (0 on success)."""
        pending: list[dict[str, Any]] = [
            {"Data": r.data, "PartitionKey": r.partition_key} for r in records
        ]
        stalled = 0
        while True:
            tally.calls += 1
            try:
                response = self.client.put_records(StreamName=self.stream_name, Records=pending)
            except ClientError as error:
                if not _is_retryable(error):
                    raise KinesisPutFailed(self.stream_name, str(error), tally.sent) from error
                failure = str(error)
                progressed = False
            except (ConnectionError, HTTPClientError) as error:
                failure = f"{type(error).__name__}: {error}"
                progressed = False
            else:
                pending, progressed = self._still_failing(pending, response, tally)
                if not pending:
                    return 0
                failure = f"{len(pending)} entries failed inside a 200 response"
            stalled = 1 if progressed else stalled + 1
            if stalled > self.backoff.retries:
                return len(pending)
            log.warning(
                "kinesis put_records retrying",
                extra={"stream": self.stream_name, "reason": failure, "retry": stalled},
            )
            tally.retries += 1
            self.backoff.wait(stalled)

    def _still_failing(
        self, pending: list[dict[str, Any]], response: Any, tally: _Tally
    ) -> tuple[list[dict[str, Any]], bool]:
        results = response.get("Records", [])
        if len(results) != len(pending):
            # Without a one-to-one answer we cannot tell which entries landed; resending all
            # could duplicate, dropping could lose: refuse to guess.
            raise KinesisPutFailed(
                self.stream_name,
                f"response has {len(results)} results for {len(pending)} entries",
                tally.sent,
            )
        failed = [
            entry for entry, result in zip(pending, results, strict=True) if result.get("ErrorCode")
        ]
        succeeded = len(pending) - len(failed)
        tally.sent += succeeded
        return failed, succeeded > 0
