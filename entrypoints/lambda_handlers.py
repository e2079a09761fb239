"""Lambda entry points: parse the event, call the worker through bootstrap, shape the response.

One deployment package serves every worker; the function's handler setting picks the function
(`entrypoints.lambda_handlers.process_scored_files_handler`, ...).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from returns.result import Failure, Result, Success

from adapters.aws.sqs import move_request_from_body
from adapters.logging import correlation, lambda_logger
from domain.ports import StreamWorker
from domain.streaming import DependencyUnavailable
from domain.wave_prep.request import request_from_json
from domain.workers.generate_sms_wave_codes import GenerateInput
from domain.workers.load_code_assignments_to_stream import WaveConfigRef
from domain.workers.process_scheduled_wave import ScheduledWave
from domain.workers.process_scored_files import ScoredFileCounts, ScoredFileFailure
from entrypoints import bootstrap, lake, registry, wave_prep
from entrypoints.events import s3_notifications, s3_object_refs
from entrypoints.settings import Settings
from streams.checkpoints import CheckpointStore, DynamoCheckpoints
from streams.lambda_kinesis import kinesis_handler

log = logging.getLogger(__name__)

R = TypeVar("R")
Handler = Callable[[Any, Any], R]


def lambda_entry(handler: Handler[R]) -> Handler[R]:
    """Every log line of an invocation carries its request id (as correlation id), function
    name, cold start and X-Ray trace id (Powertools' Logger), whichever module writes it.

    A direct call without a Lambda context (the demo, a test, a script) has none of those to
    add, and runs the handler with a fresh correlation id."""
    with_context = lambda_logger.inject_lambda_context(handler, clear_state=True)

    @functools.wraps(handler)
    def entry(event: Any, context: Any) -> R:
        with correlation(getattr(context, "aws_request_id", None)):
            if context is None:
                return handler(event, context)
            result: R = with_context(event, context)
            return result

    return entry


# Failures a later attempt can cure. Lambda retries an asynchronous S3 invocation when the
# handler raises, so these raise; a bad file raises nothing (retrying cannot fix it) and is
# reported in the response, the log and the Slack summary instead.
# `in_progress`: another run holds the file's lease (a live one finishes it, and the retry is
# then a no-op; a crashed one's lease expires and the retry resumes). `taken_over`: likewise.
RETRYABLE_FAILURES = frozenset(
    {"campaign_unavailable", "blacklist_unavailable", "stranded", "in_progress", "taken_over"}
)


class RetryableFailure(RuntimeError):
    """Raised so Lambda retries the event; the message lists every file that needs it."""


def counts_dict(counts: ScoredFileCounts) -> dict[str, Any]:
    return {
        "in": counts.rows_in,
        "out": counts.rows_out,
        "rejected": counts.rows_rejected,
        "tagged": counts.tagged,
        "stranded": counts.stranded,
        "rejectedByReason": dict(counts.rejected_by_reason),
        "byTag": dict(counts.by_tag),
        "byBand": dict(counts.by_band),
    }


def file_result(outcome: Success[ScoredFileCounts] | Failure[ScoredFileFailure]) -> dict[str, Any]:
    match outcome:
        case Success(counts):
            done: dict[str, Any] = {
                "source": counts.source.uri,
                "status": "ok",
                "scrubbed": counts.scrubbed.uri,
                "count": counts_dict(counts),
            }
            if counts.already_processed:  # a re-delivered event: nothing was done again
                done["alreadyProcessed"] = True
            if counts.resumed_at_line is not None:
                done["resumedAtLine"] = counts.resumed_at_line
            return done
        case Failure(failure):
            result: dict[str, Any] = {
                "source": failure.source.uri,
                "status": "failed",
                "error": {"kind": failure.kind, "message": failure.message},
                "retryable": failure.kind in RETRYABLE_FAILURES,
            }
            if failure.counts is not None:
                result["scrubbed"] = failure.counts.scrubbed.uri
                result["count"] = counts_dict(failure.counts)
            return result
    raise TypeError(f"not a worker outcome: {outcome!r}")


@lambda_entry
def process_scored_files_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """S3 ObjectCreated -> processScoredFiles, for every object the event names: delivered by
    S3 itself, through SQS or SNS, or by EventBridge (entrypoints/events.py). Test events and
    removals are acknowledged in the response and the log, not processed."""
    settings = Settings.from_env()
    bootstrap.configure_logging(settings)
    notifications = s3_notifications(event)
    for ignored in notifications.ignored:
        log.info("acknowledged, not processed: %s", ignored)
    files = []
    for ref in notifications.created:
        try:
            outcome = registry.scored_file_run(settings)(ref)
            result = file_result(outcome)  # type: ignore[arg-type]
        except DependencyUnavailable as down:
            # A service stayed down past its own retries; a retry resumes the file after
            # its last checkpoint (docs/scored-files.md), so nothing is streamed twice.
            result = {
                "source": ref.uri,
                "status": "failed",
                "error": {"kind": "dependency_unavailable", "message": str(down)},
                "retryable": True,
            }
        level = logging.INFO if result["status"] == "ok" else logging.ERROR
        log.log(level, "scored file %s", result["status"], extra=result)
        files.append(result)
    retry = [f for f in files if f.get("retryable")]
    if retry:
        raise RetryableFailure("; ".join(f"{f['source']}: {f['error']['message']}" for f in retry))
    response: dict[str, Any] = {"files": files}
    if notifications.ignored:
        response["ignored"] = list(notifications.ignored)
    return response


class WavePrepRetryable(RuntimeError):
    """Raised so Step Functions' Retry (or a caller) runs the next attempt; the status JSON
    already says FAILED with this message, and at most two attempts ever run."""


@lambda_entry
def process_sms_wave_files_handler(event: Any, context: Any) -> dict[str, Any]:
    """Wave prep, invoked directly, by Step Functions or by the upload service (`{data}`)."""
    settings = Settings.from_env()
    bootstrap.configure_logging(settings)
    with correlation(getattr(context, "aws_request_id", None)):
        match request_from_json(wave_prep.wave_input(event)):
            case Failure(message):
                log.error("wave prep input refused", extra={"error": message})
                return {
                    "success": False,
                    "status": "REFUSED",
                    "error": {"kind": "invalid_input", "message": message},
                    "retryable": False,
                }
            case Success(request):
                result = wave_prep.outcome_dict(registry.wave_prep_run(settings)(request))
        log.log(
            logging.INFO if result["success"] else logging.ERROR, "wave prep done", extra=result
        )
        if result.get("retryable"):
            raise WavePrepRetryable(f"{result['error']['kind']}: {result['error']['message']}")
        return result


def _stream_worker_from_settings() -> StreamWorker:
    settings = Settings.from_env()
    bootstrap.configure_logging(settings)
    if not settings.worker:
        known = ", ".join(w.name for w in registry.STREAM_WORKERS)
        raise RuntimeError(f"set WORKER to the stream worker this function runs, one of: {known}")
    return registry.stream_worker(settings.worker, settings)


def _watermarks_from_settings() -> CheckpointStore:
    """The per-shard watermarks that keep overlapping batches from archiving a record twice
    (streams/lambda_kinesis.py). The table (key `shardKey`, a string) is the deployment's to
    create; against a local endpoint it is created on first use."""
    settings = Settings.from_env()
    aws = bootstrap.container(settings).aws
    return DynamoCheckpoints(
        aws.client("dynamodb"),
        settings.checkpoint_table,
        create_if_missing=aws.options.all_endpoints_local,
    )


# Kinesis event source (with ReportBatchItemFailures): WORKER names the stream worker.
stream_worker_handler = lambda_entry(
    kinesis_handler(
        _stream_worker_from_settings,
        build_watermarks=_watermarks_from_settings,
        deadline_seconds=Settings.from_env().batch_deadline_seconds,
    )
)


# --- access codes (docs/access-codes.md) -----------------------------------------------------


class WorkerFailed(RuntimeError):
    """A failure a retry cannot cure (bad input, a file that is not a wave): raised so that a
    Step Functions task fails with this error name and the message saying what and where."""


def _job_failed(what: str, kind: str, message: str, retryable: bool) -> None:
    log.error("%s failed", what, extra={"kind": kind, "error": message, "retryable": retryable})
    if retryable:
        raise RetryableFailure(f"{kind}: {message}")
    raise WorkerFailed(f"{kind}: {message}")


In = TypeVar("In")


def _run_job(
    what: str,
    parsed: Result[In, str],
    run: Callable[[Settings], Callable[[In], Result[Any, Any]]],
    settings: Settings,
    done: str,
) -> dict[str, Any]:
    """A code job's input parsed, then run: its JSON result logged as `done` and returned;
    raises WorkerFailed (bad input, or a failure a retry cannot cure) or RetryableFailure. A
    failure that carries the counts so far logs them first."""
    match parsed:
        case Failure(reason):
            _job_failed(what, "bad_input", reason, False)
        case Success(job_input):
            match run(settings)(job_input):
                case Success(result):
                    answer: dict[str, Any] = result.to_json()
                    log.info(done, extra=answer)
                    return answer
                case Failure(failure):
                    counts = getattr(failure, "counts", None)
                    if counts is not None:
                        log.error("counts so far", extra=counts.to_json())
                    _job_failed(what, failure.kind, failure.message, failure.retryable)
    raise AssertionError("unreachable")


@lambda_entry
def generate_sms_wave_codes_handler(event: Any, context: Any) -> dict[str, Any]:
    """Direct invoke / Step Functions / upload service `{data}` -> generateSmsWaveCodes."""
    settings = Settings.from_env()
    bootstrap.configure_logging(settings)
    with correlation(getattr(context, "aws_request_id", None)):
        return _run_job(
            "generate_sms_wave_codes",
            GenerateInput.parse(event),
            registry.wave_codes_run,
            settings,
            "wave codes generated",
        )


@lambda_entry
def process_scheduled_wave_handler(event: Any, context: Any) -> dict[str, Any]:
    """`{key}` (direct, Step Functions, upload service `{data}`, or an S3 event) ->
    processScheduledWave."""
    settings = Settings.from_env()
    bootstrap.configure_logging(settings)
    with correlation(getattr(context, "aws_request_id", None)):
        return _run_job(
            "process_scheduled_wave",
            ScheduledWave.parse(event, settings.scoring_bucket),
            registry.scheduled_wave_run,
            settings,
            "wave codes assigned",
        )


@lambda_entry
def load_code_assignments_to_stream_handler(event: Any, context: Any) -> dict[str, Any]:
    """S3 ObjectCreated on `smsWaves/{triggered,completed}/{wave}_csv.json` ->
    loadCodeAssignmentsToStream for each object (keys URL-decoded). A config that is not a
    wave's is reported, not retried; stranded records raise so Lambda retries (the retry
    continues after the last acknowledged chunk)."""
    settings = Settings.from_env()
    bootstrap.configure_logging(settings)
    waves: list[dict[str, Any]] = []
    with correlation(getattr(context, "aws_request_id", None)):
        for ref in s3_object_refs(event):
            result: dict[str, Any] = {"source": ref.uri}
            match WaveConfigRef.parse({"bucket": ref.bucket, "key": ref.key}, ref.bucket):
                case Failure(reason):
                    result |= {"status": "failed", "error": {"kind": "bad_key", "message": reason}}
                case Success(source):
                    match registry.code_stream_run(settings)(source):
                        case Success(streamed):
                            result |= {"status": "ok", **streamed.to_json()}
                        case Failure(failure):
                            result |= {
                                "status": "failed",
                                "error": {"kind": failure.kind, "message": failure.message},
                                "retryable": failure.retryable,
                            }
            level = logging.INFO if result["status"] == "ok" else logging.ERROR
            log.log(level, "code assignments %s", result["status"], extra=result)
            waves.append(result)
    retry = [w for w in waves if w.get("retryable")]
    if retry:
        raise RetryableFailure("; ".join(f"{w['source']}: {w['error']['message']}" for w in retry))
    return {"waves": waves}


@lambda_entry
def merge_avro_files_handler(event: Any, context: Any) -> dict[str, Any]:
    """The lake's merge: EventBridge schedules (`{"type": "daily"|"monthly"}`) or a direct
    `{"prefix": "YYYY/MM/DD"}`. A refusal (an outdated schema, a guard) is reported, not raised:
    a retry would meet the same files; the other types are merged regardless. An unreachable
    service raises (Lambda retries the scheduled invocation; the re-run is idempotent)."""
    settings = Settings.from_env()
    bootstrap.configure_logging(settings)
    with correlation(getattr(context, "aws_request_id", None)):
        match lake.merge_request_from_event(event, datetime.now(UTC)):
            case Failure(message):
                log.error("merge input refused", extra={"error": message})
                return {"status": "refused", "error": message}
            case Success(request):
                result = lake.merge_dict(registry.lake_merge_run(settings)(request))
        refused = any("refused" in t for t in result["types"].values())
        log.log(logging.ERROR if refused else logging.INFO, "merge done", extra=result)
        return result


@lambda_entry
def move_merged_avro_files_handler(event: Any, context: Any) -> dict[str, Any]:
    """The move queue's SQS event (ReportBatchItemFailures): one prefix per message. A message
    whose move did not verify, or that does not parse, or whose move met an unreachable
    service, is reported in `batchItemFailures` (SQS delivers it again, then to its DLQ);
    the others are done."""
    settings = Settings.from_env()
    bootstrap.configure_logging(settings)
    move = registry.lake_move_run(settings)
    failures = []
    moves = []
    with correlation(getattr(context, "aws_request_id", None)):
        for record in event.get("Records") or []:
            message_id = record.get("messageId", "")
            try:
                result = lake.move_dict(move(move_request_from_body(record.get("body", ""))))
            except ValueError as bad:  # a body that is not a move request: to the DLQ, not lost
                result = {"status": "failed", "error": str(bad)}
            except Exception as error:
                # S3 or SQS unreachable past botocore's retries, a source gone mid-copy: this
                # message only is retried; the others of the batch are done.
                log.exception("move failed", extra={"messageId": message_id})
                result = {"status": "failed", "error": f"{type(error).__name__}: {error}"}
            result["messageId"] = message_id
            log.log(
                logging.ERROR if result["status"] == "failed" else logging.INFO,
                "move done",
                extra=result,
            )
            moves.append(result)
            if result["status"] == "failed":
                failures.append({"itemIdentifier": message_id})
    log.info("move batch done", extra={"moves": moves})
    # Exactly the partial batch response's shape: Lambda reads batchItemFailures only.
    return {"batchItemFailures": failures}


@lambda_entry
def sms_wave_send_handler(event: Any, context: Any) -> dict[str, Any]:
    """`{waveName}` (Step Functions, direct) -> smsWaveSend: `{waveName, count}`."""
    from domain.workers.sms_wave_send import SendInput

    settings = Settings.from_env()
    bootstrap.configure_logging(settings)
    with correlation(getattr(context, "aws_request_id", None)):
        return _run_job(
            "sms_wave_send",
            SendInput.parse(event),
            registry.sms_send_run,
            settings,
            "wave sent",
        )


@lambda_entry
def sms_wave_scheduler_handler(event: Any, context: Any) -> dict[str, Any]:
    """Every 5 minutes: due waves triggered and their sends started."""
    settings = Settings.from_env()
    bootstrap.configure_logging(settings)
    with correlation(getattr(context, "aws_request_id", None)):
        answer = registry.sms_scheduler_run(settings)().to_json()
        log.info("waves scheduled", extra=answer)
        return answer
