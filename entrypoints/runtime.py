"""The one job runtime: every job (a registry entry that is not a stream consumer) runs through
here, from Lambda and from the CLI alike (docs/runtime.md).

An entry declares its trigger (which says how an event splits into inputs), how one input is
parsed, the domain function bound to adapters, how its outcome is written, and its failure
policy. This module does the rest, once for every job: AWS event unwrapping, one correlation
id per invocation, the settings read once per process, the one failure value and its one
mapping to Lambda behaviour and exit codes, the counts as CloudWatch metrics (EMF), and the
progress callback.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Generic, Literal, TypeVar

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)
from returns.result import Failure, Result, Success

from adapters import deadline as deadlines
from adapters.logging import correlation, lambda_logger
from domain.deadline import Deadline
from domain.models import ObjectRef
from domain.streaming import DependencyUnavailable
from entrypoints.events import s3_notifications, unwrap
from entrypoints.settings import Settings

log = logging.getLogger("entrypoints.runtime")

NAMESPACE = "campaign-workers"
# The counts every job reports (its own come after them): CloudWatch metrics and the CLI line.
COUNTS = ("in", "out", "rejected", "failed")


class Exit(IntEnum):
    """README's exit codes, the same for every command."""

    OK = 0
    # The work failed and a re-run can cure it; re-running continues where it stopped.
    FAILED = 1
    # Refused: bad arguments or input that no re-run can fix (argparse's usage errors are 2 too).
    REFUSED = 2
    # The environment: a bad setting, no AWS credentials or region, a busy port, a missing extra.
    ENVIRONMENT = 3
    INTERRUPTED = 130


@dataclass(frozen=True)
class JobFailure:
    """The one failure value: what kind, what and where (masked by the writers), and whether a
    later attempt can cure it. `environment`: no attempt can until the deployment changes."""

    kind: str
    message: str
    retryable: bool = False
    environment: bool = False

    @property
    def exit_code(self) -> Exit:
        if self.environment:
            return Exit.ENVIRONMENT
        return Exit.FAILED if self.retryable else Exit.REFUSED

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


def exit_code(failures: Sequence[JobFailure]) -> Exit:
    """A run's exit code: the gravest of its failures (environment, then refused, then
    retryable), 0 without any."""
    if not failures:
        return Exit.OK
    return max((f.exit_code for f in failures), key=lambda code: (code == 3, code == 2, code))


class RetryableFailure(RuntimeError):
    """Raised so Lambda (or Step Functions' Retry) runs the event again; the message lists every
    input that needs it."""


class WorkerFailed(RuntimeError):
    """A failure a retry cannot cure, raised for a job whose policy is `raise` (a Step Functions
    task fails with this error name and the message saying what and where)."""


Refusal = Literal["return", "raise"]


def raise_for_lambda(failures: Sequence[tuple[str, JobFailure]], refusal: Refusal) -> None:
    """The one mapping to Lambda behaviour: a retryable failure raises (Lambda retries the
    event), any other returns the response, or raises WorkerFailed when the job says so."""
    retry = [f"{where}{f}" for where, f in failures if f.retryable]
    if retry:
        raise RetryableFailure("; ".join(retry))
    stop = [f"{where}{f}" for where, f in failures]
    if stop and refusal == "raise":
        raise WorkerFailed("; ".join(stop))


@dataclass(frozen=True)
class Written:
    """How an outcome is written: the response (Lambda's answer, the CLI's JSON), the failure
    it carries if any, its counts and the ids it concerns (metric properties, never dimensions:
    a dimension per campaign would bill a custom metric per campaign)."""

    response: dict[str, Any]
    failure: JobFailure | None = None
    counts: Mapping[str, int] = field(default_factory=dict)
    ids: Mapping[str, str] = field(default_factory=dict)
    note: str | None = None  # a line for the CLI's reader (e.g. "merged already")


In = TypeVar("In")
Out = TypeVar("Out")
Progress = Callable[[int], None]


def _default_failed(failure: JobFailure) -> dict[str, Any]:
    return {
        "status": "failed",
        "error": {"kind": failure.kind, "message": failure.message},
        "retryable": failure.retryable,
    }


@dataclass(frozen=True)
class Job(Generic[In, Out]):
    """How a job runs, beside its registry entry's trigger and factory: `parse` one input (an
    unwrapped event, an S3 object or an SQS body), `write` its outcome, `failed` the response
    for an input that failed before an outcome (refused input, a dependency down), `refusal`
    the Lambda policy for failures no retry cures, `bad_input` the kind of a refused input."""

    parse: Callable[[Any, Settings], Result[In, str]]
    write: Callable[[Out], Written]
    failed: Callable[[JobFailure], dict[str, Any]] = _default_failed
    refusal: Refusal = "return"
    bad_input: str = "bad_input"
    # The list an S3-triggered job's response holds its objects' results under.
    collection: str = "results"


Run = Callable[..., Any]  # the domain function bound to adapters: (input, on_progress=...) -> Out


@dataclass(frozen=True)
class Item:
    """One input of an invocation: where it came from (for messages) and the raw value."""

    raw: Any
    where: str = ""
    message_id: str | None = None


def run_item(
    name: str,
    job: Job[Any, Any],
    run: Run,
    item: Any,
    settings: Settings,
    on_progress: Progress | None = None,
    options: Mapping[str, Any] | None = None,
) -> Written:
    """Parse, run, write one input; a refused input and a dependency that stayed down become
    the job's failure value instead of an exception."""
    match job.parse(item, settings):
        case Failure(reason):
            failure = JobFailure(job.bad_input, str(reason))
            return Written(job.failed(failure), failure, {"in": 1, "rejected": 1})
        case Success(value):
            pass
    try:
        extra = dict(options or {})
        if on_progress is not None:
            extra["on_progress"] = on_progress
        outcome = run(value, **extra)
    except DependencyUnavailable as down:
        # A service stayed down past its own retries; the re-run resumes (every job is
        # idempotent or checkpointed), so nothing is done twice.
        failure = JobFailure("dependency_unavailable", str(down), retryable=True)
        return Written(job.failed(failure), failure, {"failed": 1})
    written: Written = job.write(outcome)
    return written


# --- settings, once per process ---------------------------------------------------------------


@functools.cache
def settings() -> Settings:
    """The process's settings, read from the environment the first time they are needed (never
    at import: a bad setting is then the invocation's error, not a failed cold start)."""
    from entrypoints import bootstrap

    read = Settings.from_env()
    bootstrap.configure_logging(read)
    return read


def reset_settings() -> None:
    """Forget the settings (tests that change the environment between runs)."""
    settings.cache_clear()


# --- metrics -----------------------------------------------------------------------------------


def emit_metrics(worker: str, counts: Mapping[str, int], ids: Mapping[str, str]) -> str:
    """The counts as one CloudWatch EMF line on stdout (Lambda ships it to CloudWatch Metrics):
    namespace campaign-workers, the worker's name the only dimension, ids as properties."""
    metrics = AmazonCloudWatchEMFProvider(namespace=NAMESPACE)
    metrics.service = None  # type: ignore[assignment]  # POWERTOOLS_SERVICE_NAME would add a second dimension
    metrics.add_dimension(name="worker", value=worker)
    for name in (*COUNTS, *(k for k in counts if k not in COUNTS)):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=counts.get(name, 0))
    for key, value in ids.items():
        metrics.add_metadata(key=key, value=value)
    line = json.dumps(metrics.serialize_metric_set(), separators=(",", ":"))
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    return line


def total(counts: Sequence[Mapping[str, int]]) -> dict[str, int]:
    summed: dict[str, int] = dict.fromkeys(COUNTS, 0)
    for one in counts:
        for key, value in one.items():
            summed[key] = summed.get(key, 0) + value
    return summed


def counts_line(counts: Mapping[str, int]) -> str:
    """What the CLI shows: the same counts the metrics carry."""
    return ", ".join(f"{k} {v:,}" for k, v in counts.items())


# --- progress ----------------------------------------------------------------------------------


def progress_lines(
    description: str,
    unit: str,
    *,
    every_seconds: float = 15.0,
    clock: Callable[[], float] = time.monotonic,
    say: Callable[[str], None] | None = None,
) -> Progress:
    """A progress callback for a run without a terminal: one log line at most every
    `every_seconds` (a piped demo printed nothing for minutes)."""
    emit = say or (lambda line: log.info(line))
    last = [clock()]

    def tick(done: int) -> None:
        now = clock()
        if now - last[0] >= every_seconds:
            last[0] = now
            emit(f"{description}: {done:,} {unit}")

    return tick


# --- Lambda ------------------------------------------------------------------------------------


@contextmanager
def invocation(_context: Any) -> Iterator[Settings]:
    """An invocation's settings. Its one correlation id is `lambda_entry`'s: a second block
    here logged one invocation under two ids."""
    yield settings()


def lambda_entry(handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Every log line of an invocation carries its request id (as its one correlation id),
    function name, cold start and X-Ray trace id (Powertools' Logger). A direct call without a
    Lambda context (the demo, a test) runs with a fresh correlation id."""
    with_context = lambda_logger.inject_lambda_context(handler, clear_state=True)

    @functools.wraps(handler)
    def entry(event: Any, context: Any) -> Any:
        with (
            correlation(getattr(context, "aws_request_id", None)),
            deadlines.within(invocation_deadline(context)),
        ):
            if context is None:
                return handler(event, context)
            return with_context(event, context)

    return entry


# Seconds kept back from the invocation's remaining time, to report and return before Lambda's
# own timeout kills the invocation mid-sentence.
REPORT_MARGIN_SECONDS = 5.0


def invocation_deadline(context: Any) -> Deadline | None:
    """The root Deadline of an invocation, handed down to every adapter call: its remaining
    time, less the margin to report. None without a Lambda context (the demo, a test, a script):
    nothing bounds the work."""
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    if remaining_ms is None:
        return None
    return Deadline.after(max(0.0, remaining_ms() / 1000.0 - REPORT_MARGIN_SECONDS))


def _items(trigger_kind: str, event: Any) -> tuple[list[Item], list[str]]:
    """The inputs an event carries, by trigger kind, and what it carried that is acknowledged
    but not processed (S3 test events and removals)."""
    if trigger_kind == "s3":
        notes = s3_notifications(event)
        return [Item(ref, ref.uri) for ref in notes.created], list(notes.ignored)
    if trigger_kind == "sqs":
        records = event.get("Records") if isinstance(event, Mapping) else None
        return [
            Item(r.get("body", ""), message_id=str(r.get("messageId", "")))
            for r in records or []
            if isinstance(r, Mapping)
        ], []
    return [Item(unwrap(event))], []


def handle(
    name: str, job: Job[Any, Any], trigger_kind: str, run: Callable[[], Run], event: Any
) -> dict[str, Any]:
    """One Lambda invocation of a job (inside `invocation`)."""
    s = settings()
    items, ignored = _items(trigger_kind, event)
    for what in ignored:
        log.info("acknowledged, not processed: %s", what)
    results: list[tuple[Item, Written]] = []
    for item in items:
        try:
            written = run_item(name, job, run(), item.raw, s)
        except Exception as error:
            if trigger_kind != "sqs":
                raise
            # A message's failure (S3 or SQS unreachable past botocore's retries, a source gone
            # mid-copy): this message only is retried; the others of the batch are done.
            log.exception("%s failed", name, extra={"messageId": item.message_id})
            failure = JobFailure(type(error).__name__, str(error), retryable=True)
            written = Written(job.failed(failure), failure, {"failed": 1})
        response = written.response
        if item.where:
            response = {"source": item.where, **response}
        if item.message_id is not None:
            response["messageId"] = item.message_id
        level = logging.ERROR if written.failure else logging.INFO
        log.log(level, "%s %s", name, "failed" if written.failure else "done", extra=response)
        results.append((item, Written(response, written.failure, written.counts, written.ids)))
    counts = total([w.counts for _, w in results])
    ids = {k: v for _, w in results for k, v in w.ids.items()} if len(results) == 1 else {}
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        # Only inside Lambda, whose log stream CloudWatch reads EMF from: elsewhere (the demo,
        # a script) stdout is the caller's and the counts are in the log line below.
        emit_metrics(name, counts, ids)
    log.info("%s counts", name, extra={"counts": counts})
    if trigger_kind == "sqs":
        # Exactly the partial batch response's shape: Lambda reads batchItemFailures only; a
        # failed or unparsable message is delivered again, then to the queue's DLQ.
        log.info("%s batch done", name, extra={"results": [w.response for _, w in results]})
        return {
            "batchItemFailures": [
                {"itemIdentifier": i.message_id} for i, w in results if w.failure is not None
            ]
        }
    failures = [(f"{i.where}: " if i.where else "", w.failure) for i, w in results if w.failure]
    raise_for_lambda(failures, job.refusal)
    if trigger_kind == "s3":
        answer: dict[str, Any] = {job.collection: [w.response for _, w in results]}
        if ignored:
            answer["ignored"] = ignored
        return answer
    return results[0][1].response


def s3_item(ref: ObjectRef) -> dict[str, str]:
    """An S3 object as the `{bucket, key}` input the code jobs parse."""
    return {"bucket": ref.bucket, "key": ref.key}
