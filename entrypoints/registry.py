"""The worker registry: every worker by name, what triggers it, and how it is built.

Every runtime looks workers up here and nowhere else: the Lambda handlers (`WORKER` in the
function's environment, read by Settings), the KCL child (`python -m entrypoints.kcl_main NAME`),
the local shard poller and the CLI (`campaign-workers poll NAME`), the README's deployment table
and the Lambda package test. A worker is bound to real adapters by its factory, which takes the
process's `Container` (bootstrap.py): clients and adapters are built once per process and shared.

Adding a worker
---------------
1. Its domain function in `domain/workers/<original_name>.py` (ports + input -> result value).
2. A factory here binding it to adapters from the container, and ONE entry in the tuple for its
   kind (STREAM_WORKERS for Kinesis consumers, FILE_WORKERS for S3-triggered files, JOBS for
   scheduled or directly invoked work), made by `_stream_worker` (the shared stream handler,
   the actions of reading a stream and dead-lettering) or `_job` (its own `{name}_handler`).
   For example, the stream worker save_selection:

       def _save_selection(c: Container) -> StreamWorker:
           return SaveSelection(entries=c.entries, verdicts=c.verdicts, ...)

       STREAM_WORKERS = (
           ...,
           _stream_worker(
               name="save_selection",
               summary="records each assigned code as a selection; reports verdicts",
               stream="save_selection_stream",   # a Settings field name
               build=_save_selection,
               actions=("dynamodb:UpdateItem", ..., "sqs:SendMessage"),
           ),
       )

   A job of one input is usually `partial(domain_function, **its_ports)`, typed as a `Run`.

   The existing four: process_scored_files (S3Objects: scored files in the scoring bucket),
   save_campaign_data, transform_code_assignments (KinesisStream "input_stream") and
   save_selection (KinesisStream "save_selection_stream").
3. Its CLI command arguments in entrypoints/cli.py, if it takes any beyond the trigger's.

The Lambda handler for a trigger kind is shared (`Worker.handler`): a new stream worker needs no
new handler, only `WORKER=<name>` on its function.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from returns.result import Failure, Result, Success

from adapters import deadline as deadlines
from adapters.clock import SystemClock
from domain.models import ObjectRef
from domain.ports import StreamWorker
from entrypoints.bootstrap import Container, container
from entrypoints.runtime import Job, JobFailure, Progress, Run, Written, s3_item
from entrypoints.settings import Settings

# Each worker's own modules (its domain function, its adapters, numpy for the merge, fastavro
# for the lake, aiohttp for Pacman) are imported inside its factory, parser and writer, when
# first used: a Lambda handler imports only its own worker's stack (a cold start that imported
# every worker's took 2.6 s; benchmarks/bench_cold_start.py). Here for the type checker only.
if TYPE_CHECKING:
    from adapters.lake_keys import SpillingKeyIndex
    from adapters.lake_sidecar import SpooledKeyLog
    from domain.deadline import Deadline
    from domain.lake import MergeCounts, MoveCounts, MoveRequest
    from domain.sms import SendCounts
    from domain.wave_prep.request import WavePrepRequest
    from domain.workers.generate_sms_wave_codes import GenerateInput
    from domain.workers.load_code_assignments_to_stream import (
        StreamedWave,
        StreamFailure,
        WaveConfigRef,
    )
    from domain.workers.merge_avro_files import MergeRequest
    from domain.workers.move_merged_avro_files import MoveFailure
    from domain.workers.process_scheduled_wave import ScheduledWave
    from domain.workers.process_scored_files import ScoredFileCounts, ScoredFileFailure
    from domain.workers.process_sms_wave_files import WavePrepCounts, WavePrepFailure
    from domain.workers.reconcile_sms_deliveries import DeliveryEvent, ReconcileResult
    from domain.workers.sms_wave_scheduler import SchedulerResult
    from domain.workers.sms_wave_send import SendFailure, SendInput, SendOptions, SentWave
    from domain.workers.translate_ranks_to_scores import FanlistUpload

_log = logging.getLogger("entrypoints.bootstrap")

# --- triggers: what starts a worker ------------------------------------------------------------


@dataclass(frozen=True)
class S3Objects:
    """S3 ObjectCreated notifications (direct, through SQS or SNS, or EventBridge) for keys
    under `prefix` in the bucket the Settings field `bucket` names."""

    bucket: str
    prefix: str

    def describe(self) -> str:
        return f"S3 ObjectCreated on ${self.bucket.upper()} under `{self.prefix}`"


@dataclass(frozen=True)
class KinesisStream:
    """Batches of records from the stream the Settings field `stream` names."""

    stream: str

    def name(self, settings: Settings) -> str:
        value = getattr(settings, self.stream)
        if not isinstance(value, str):
            raise TypeError(f"Settings.{self.stream} is not a stream name")
        return value

    def describe(self) -> str:
        return f"Kinesis stream ${self.stream.upper()}"


@dataclass(frozen=True)
class SqsQueue:
    """Messages from the queue the Settings field `queue` names."""

    queue: str

    def describe(self) -> str:
        return f"SQS queue ${self.queue.upper()}"


@dataclass(frozen=True)
class Schedule:
    """An EventBridge schedule (`rate(1 hour)`, `cron(...)`)."""

    expression: str

    def describe(self) -> str:
        return f"EventBridge schedule `{self.expression}`"


@dataclass(frozen=True)
class DirectInput:
    """Invoked with a JSON payload (Step Functions, another service, the CLI)."""

    payload: str

    def describe(self) -> str:
        return f"direct invocation with {self.payload}"


Trigger = S3Objects | KinesisStream | SqsQueue | Schedule | DirectInput

W = TypeVar("W", covariant=True)


@dataclass(frozen=True)
class Cli:
    """A job's CLI subcommand: its arguments (argparse `add_argument` calls: flags, options) and
    the inputs a parsed command line makes (what its trigger would carry), progress `unit`."""

    help: str
    arguments: tuple[tuple[tuple[str, ...], Mapping[str, Any]], ...]
    inputs: Callable[[argparse.Namespace], Sequence[Any]]
    unit: str = "rows"
    # Print the response on stdout when the job failed too (wave prep: its status document).
    failure_json: bool = False
    # Keyword arguments of the bound run the command line sets (e.g. one process).
    options: Callable[[argparse.Namespace], Mapping[str, Any]] = lambda _a: {}
    # The bound run takes `on_progress` (a move does not).
    progress: bool = True
    # Print the results as counts tables (entrypoints/reports.py), not JSON.
    table: bool = False


@dataclass(frozen=True)
class Worker(Generic[W]):
    """One registered worker: its name, trigger, factory, AWS actions, and for a job (every
    worker that is not a stream consumer) how the runtime parses, runs and writes it and its CLI
    subcommand (entrypoints/runtime.py). Its Lambda handler is `{name}_handler` in
    entrypoints.lambda_handlers, made from this entry (stream workers share one)."""

    name: str
    summary: str
    trigger: Trigger
    build: Callable[[Container], W]
    # What its role must allow (README's deployment table; least privilege).
    actions: tuple[str, ...]
    job: Job[Any, Any] | None = None
    cli: Cli | None = None

    @property
    def handler(self) -> str:
        """The Lambda handler setting of its function (one package serves every worker)."""
        if isinstance(self.trigger, KinesisStream):
            return "entrypoints.lambda_handlers.stream_worker_handler"
        return f"entrypoints.lambda_handlers.{self.name}_handler"

    @property
    def command(self) -> str:
        return self.name.replace("_", "-")


def trigger_kind(trigger: Trigger) -> str:
    """How the runtime splits an event of this trigger into inputs."""
    if isinstance(trigger, S3Objects):
        return "s3"
    if isinstance(trigger, SqsQueue):
        return "sqs"
    return "direct"


# --- the workers -------------------------------------------------------------------------------


QUIET = (("--quiet",), {"action": "store_true", "help": "no progress bar"})


def _save_campaign_data(c: Container) -> StreamWorker:
    from adapters.aws.lake import S3Lake
    from adapters.canonical_json import orjson_canonical
    from adapters.json_codec import exact_loads
    from domain.workers.save_campaign_data import SaveCampaignData

    return SaveCampaignData(
        archive=S3Lake(c.aws.client("s3"), c.settings.campaign_data_bucket, c.schemas),
        schemas=c.schemas,
        dead_letters=c.dead_letters,
        clock=SystemClock(),
        loads=exact_loads,  # never rounds an integer beyond 64 bits (orjson.loads would)
        canonical=orjson_canonical,
    )


def _transform_code_assignments(c: Container) -> StreamWorker:
    from adapters.json_codec import exact_dumps
    from domain.workers.transform_code_assignments import TransformCodeAssignments

    return TransformCodeAssignments(
        users=c.users,
        campaigns=c.campaigns,
        schemas=c.schemas,
        output=c.stream(c.settings.save_selection_stream),
        encode=exact_dumps,  # keeps integers beyond 64 bits (orjson.dumps raises on them)
        dead_letters=c.dead_letters,
    )


def _save_selection(c: Container) -> StreamWorker:
    from adapters.aws.dynamo_entries import DynamoSelectionLedger
    from adapters.aws.sqs import SqsVerdictQueue
    from domain.workers.save_selection import SaveSelection

    s = c.settings
    sqs = c.aws.client("sqs")
    # With the entry service, the selection is recorded in the demand table beside it; the
    # DynamoDB entry directory records it in the same conditional update.
    ledger = (
        DynamoSelectionLedger(c.aws.client("dynamodb"), s.demand_table)
        if s.entry_service_url
        else None
    )
    return SaveSelection(
        entries=c.entries,
        verdicts=SqsVerdictQueue(sqs, s.verdict_queue),
        dead_letters=c.dead_letters,
        ledger=ledger,
    )


# Every Kinesis consumer reads its stream and may dead-letter (SQS, big ones kept in S3).
_CONSUMES = (
    "kinesis:GetRecords",
    "kinesis:GetShardIterator",
    "kinesis:DescribeStream",
    "kinesis:DescribeStreamSummary",
    "kinesis:ListShards",
    "kinesis:ListStreams",
    # The Lambda runtime's per-shard watermarks in $CHECKPOINT_TABLE (streams/checkpoints.py).
    "dynamodb:GetItem",
    "dynamodb:PutItem",
)
# IAM authorises SendMessageBatch as sqs:SendMessage: "sqs:SendMessageBatch" is no IAM action,
# and a role allowing only it was denied every batch (cfn-lint W3037 on the deploy template).
_DEAD_LETTERS = ("sqs:GetQueueUrl", "sqs:SendMessage", "s3:PutObject")


def _stream_worker(
    name: str,
    summary: str,
    stream: str,
    build: Callable[[Container], StreamWorker],
    actions: tuple[str, ...],
) -> Worker[StreamWorker]:
    """A Kinesis consumer of the stream the Settings field `stream` names: the one shared
    handler; `actions` beside reading the stream and dead-lettering."""
    return Worker(
        name=name,
        summary=summary,
        trigger=KinesisStream(stream),
        build=build,
        actions=(*_CONSUMES, *actions, *_DEAD_LETTERS),
    )


# --- jobs: one input in, one outcome out -----------------------------------------------------


def _process_scored_files(c: Container) -> Run:
    import orjson

    from adapters.leases import run_holder
    from adapters.parallel import ProcessPoolChunkMapper
    from domain.workers.process_scored_files import process_scored_files

    s = c.settings

    def run(
        source: ObjectRef,
        *,
        processes: int | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> Result[ScoredFileCounts, ScoredFileFailure]:
        processes = processes or s.processes_for_transform()
        _log.info("processing scored file", extra={"source": source.uri, "processes": processes})
        return process_scored_files(
            source,
            store=c.store,
            stream=c.stream(s.scored_output_stream),
            campaigns=c.campaigns,
            notifier=c.notifier,
            clock=SystemClock(),
            encode=orjson.dumps,
            blacklist=ObjectRef(source.bucket, s.blacklist_key),
            mapper=ProcessPoolChunkMapper(processes) if processes > 1 else None,
            transform=c.chunk_transform,
            on_progress=on_progress,
            # Where the run is, for the answer a second run of the file gets (lease.py).
            run_id=run_holder(),
            lease_seconds=s.scored_file_lease_seconds,
            liveness=c.process_liveness,
            rows_per_chunk=s.scored_file_chunk_rows,
            checkpoint_rows=s.scored_file_checkpoint_rows,
        )

    return run


# A scored file's failures a later attempt can cure. `in_progress`: another run holds the
# file's lease (a live one finishes it, and the retry is then a no-op; a crashed one's lease
# expires and the retry resumes). `taken_over`: likewise.
SCORED_RETRYABLE = frozenset(
    {"campaign_unavailable", "blacklist_unavailable", "stranded", "in_progress", "taken_over"}
)


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


def _scored_counts(counts: ScoredFileCounts | None) -> dict[str, int]:
    if counts is None:
        return {"failed": 1}
    return {
        "in": counts.rows_in,
        "out": counts.rows_out,
        "rejected": counts.rows_rejected,
        "failed": counts.stranded,
        "tagged": counts.tagged,
    }


def file_result(outcome: Result[ScoredFileCounts, ScoredFileFailure]) -> dict[str, Any]:
    return _write_scored_file(outcome).response


def _write_scored_file(outcome: Result[ScoredFileCounts, ScoredFileFailure]) -> Written:
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
            return Written(done, None, _scored_counts(counts), {"source": counts.source.uri})
        case Failure(failure):
            job_failure = JobFailure(
                failure.kind, failure.message, retryable=failure.kind in SCORED_RETRYABLE
            )
            result: dict[str, Any] = {
                "source": failure.source.uri,
                "status": "failed",
                "error": {"kind": failure.kind, "message": failure.message},
                "retryable": job_failure.retryable,
            }
            if failure.counts is not None:
                result["scrubbed"] = failure.counts.scrubbed.uri
                result["count"] = counts_dict(failure.counts)
            ids = {"source": failure.source.uri}
            return Written(result, job_failure, _scored_counts(failure.counts), ids)
    raise TypeError(f"not a worker outcome: {outcome!r}")


def _scored_file_input(item: Any, _settings: Settings) -> Result[ObjectRef, str]:
    if isinstance(item, ObjectRef):
        return Success(item)
    try:
        return Success(ObjectRef.parse(str(item)))
    except ValueError as bad:
        return Failure(str(bad))


_SCORED_FILES = Worker(
    name="process_scored_files",
    summary="scores, scrubs and streams a scored file; writes the scrubbed CSV; Slack summary",
    trigger=S3Objects(bucket="scoring_bucket", prefix="scored/"),
    build=_process_scored_files,
    actions=(
        "s3:GetObject",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        # progress/ checkpoints beside the file: found by listing, removed when done
        "s3:ListBucket",
        "s3:DeleteObject",
        "kinesis:PutRecords",
        "kinesis:ListShards",  # only with KINESIS_PACING
    ),
    job=Job(parse=_scored_file_input, write=_write_scored_file, collection="files"),
    cli=Cli(
        help="score, scrub and stream one scored file",
        arguments=(
            (("uri",), {"help": "s3://bucket/scored/{campaignId}.{timestamp}.txt"}),
            (("--sequential",), {"action": "store_true", "help": "one process, no pool"}),
        ),
        inputs=lambda a: [a.uri],
        options=lambda a: {"processes": 1} if a.sequential else {},
        table=True,
    ),
)


def _code_job_writer(
    counts: Callable[[Any], dict[str, int]], ids: Callable[[Any], dict[str, str]]
) -> Callable[[Result[Any, Any]], Written]:
    """A code job's outcome: its `to_json()` when done; its failure (and the counts so far, when
    it carries them) when not."""

    def write(outcome: Result[Any, Any]) -> Written:
        match outcome:
            case Success(done):
                return Written(done.to_json(), None, counts(done), ids(done))
            case Failure(failed):
                job_failure = JobFailure(failed.kind, failed.message, retryable=failed.retryable)
                so_far = getattr(failed, "counts", None)
                response: dict[str, Any] = {
                    "status": "failed",
                    "error": {"kind": failed.kind, "message": failed.message},
                    "retryable": failed.retryable,
                }
                if so_far is not None:
                    response["count"] = so_far.to_json()
                return Written(
                    response,
                    job_failure,
                    counts(so_far) if so_far is not None else {"failed": 1},
                )
        raise TypeError(f"not a worker outcome: {outcome!r}")

    return write


def _generate_sms_wave_codes(c: Container) -> Run:
    from domain.workers.generate_sms_wave_codes import generate_sms_wave_codes

    return partial(
        generate_sms_wave_codes,
        store=c.store,
        issuer=c.code_issuer,
        ledger=c.issued_codes,
        leases=c.wave_leases,
        bucket=c.settings.scoring_bucket,
    )


def _process_scheduled_wave(c: Container) -> Run:
    from domain.workers.process_scheduled_wave import process_scheduled_wave

    return partial(process_scheduled_wave, store=c.store, inventory=c.code_inventory)


def _load_code_assignments_to_stream(c: Container) -> Run:
    import orjson

    from domain.workers.load_code_assignments_to_stream import load_code_assignments_to_stream

    return partial(
        load_code_assignments_to_stream,
        store=c.store,
        stream=c.stream(c.settings.input_stream),
        clock=SystemClock(),
        encode=orjson.dumps,
        leases=c.stream_leases,
    )


def _config_argument(value: str) -> Any:
    """A JSON object, or @path to a file holding one (an unreadable file is named, not a
    traceback)."""
    if not value.startswith("@"):
        return value
    try:
        return Path(value[1:]).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as unreadable:
        why = getattr(unreadable, "strerror", None) or str(unreadable)
        return _Unreadable(f"--config {value}: cannot read the file ({why})")


@dataclass(frozen=True)
class _Unreadable:
    reason: str


def _generate_input(event: Any, _settings: Settings) -> Result[GenerateInput, str]:
    if isinstance(event, Mapping) and isinstance(event.get("config"), _Unreadable):
        return Failure(event["config"].reason)
    from domain.workers.generate_sms_wave_codes import GenerateInput

    return GenerateInput.parse(event)


def _scheduled_wave_input(event: Any, settings: Settings) -> Result[ScheduledWave, str]:
    from domain.workers.process_scheduled_wave import ScheduledWave

    return ScheduledWave.parse(event, settings.scoring_bucket)


# The codes table's ledger and issuer: BatchGetItem to recall, PutItem to issue and to record
# (a TransactWriteItems of Puts is authorised as each item's PutItem). No GetItem: a failed
# condition returns the item it failed on.
_CODE_TABLE = ("dynamodb:BatchGetItem", "dynamodb:PutItem")
_WAVE_CODES = Worker(
    name="generate_sms_wave_codes",
    summary="a code per fan of a wave from Pacman (or generated), recorded, into the wave CSV",
    trigger=DirectInput("{waveFilePrefix, config} (Step Functions, upload service {data})"),
    build=_generate_sms_wave_codes,
    actions=(
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
        *_CODE_TABLE,
    ),
    job=Job(
        parse=_generate_input,
        write=_code_job_writer(
            lambda w: {
                "in": w.rows_in,
                "out": w.rows_out,
                "rejected": w.errors,
                "issued": w.issued,
                "reused": w.reused,
                "kept": w.kept,
            },
            lambda w: {"waveFilePrefix": w.wave_file_prefix},
        ),
        refusal="raise",
    ),
    cli=Cli(
        help="a code per fan of a wave, into its CSV (Pacman or generated)",
        arguments=(
            (("wave_file_prefix",), {"help": "the wave: smsWaves/csv/{prefix}.csv"}),
            (("--config",), {"required": True, "help": "the wave config as JSON, or @file.json"}),
        ),
        inputs=lambda a: [
            {"waveFilePrefix": a.wave_file_prefix, "config": _config_argument(a.config)}
        ],
    ),
)
_SCHEDULED_WAVE = Worker(
    name="process_scheduled_wave",
    summary="assigns a scheduled wave's codes to its campaign in batches of 2,500",
    trigger=DirectInput("{key: smsWaves/csv/{campaignId}_{suffix}.csv}"),
    build=_process_scheduled_wave,
    # Assign's failed condition returns the code's item (ALL_OLD): no GetItem.
    actions=("s3:GetObject", "dynamodb:UpdateItem"),
    job=Job(
        parse=_scheduled_wave_input,
        write=_code_job_writer(
            lambda w: {
                "in": w.rows_in,
                "out": w.updated,
                "rejected": w.dropped_empty + w.dropped_placeholder,
                "conflicts": w.conflicts,
            },
            lambda w: {"campaignId": w.campaign_id, "key": w.source.key},
        ),
        refusal="raise",
    ),
    cli=Cli(
        help="assign a scheduled wave's codes to its campaign",
        arguments=(
            (("key",), {"help": "smsWaves/csv/{campaignId}_{suffix}.csv or s3://bucket/..."}),
        ),
        inputs=lambda a: [{"key": a.key}],
    ),
)


def _wave_config_input(item: Any, settings: Settings) -> Result[WaveConfigRef, str]:
    from domain.workers.load_code_assignments_to_stream import WaveConfigRef

    key = s3_item(item) if isinstance(item, ObjectRef) else item
    return WaveConfigRef.parse(key, settings.scoring_bucket)


def _streamed_write(outcome: Result[StreamedWave, StreamFailure]) -> Written:
    written = _code_job_writer(
        lambda w: {
            "in": w.rows,
            "out": w.streamed,
            "rejected": w.rejected,
            "failed": w.stranded,
        },
        lambda w: {"wave": w.wave, "campaignId": w.campaign_id},
    )(outcome)
    if written.failure is None:
        return Written({"status": "ok", **written.response}, None, written.counts, written.ids)
    return written


_CODE_STREAM = Worker(
    name="load_code_assignments_to_stream",
    summary="a wave's codes as codeAssignment records on the input stream, once per wave",
    trigger=S3Objects(bucket="scoring_bucket", prefix="smsWaves/triggered/ (and completed/)"),
    build=_load_code_assignments_to_stream,
    actions=("s3:GetObject", "s3:PutObject", "kinesis:PutRecords"),
    job=Job(
        parse=_wave_config_input,
        write=_streamed_write,
        bad_input="bad_key",
        collection="waves",
    ),
    cli=Cli(
        help="put a wave's codes on the input stream, once",
        arguments=((("key",), {"help": "smsWaves/triggered/{wave}_csv.json or s3://bucket/..."}),),
        inputs=lambda a: [{"key": a.key}],
    ),
)

# --- the lake (docs/data-lake.md) ---------------------------------------------------------------


def _merge_avro_files(c: Container) -> Run:
    # The merge's stack: numpy (the key index), fastavro (the compactor), on its path only.
    from adapters.lake_keys import SpillingKeyIndex
    from adapters.lake_sidecar import SpooledKeyLog
    from domain.workers.merge_avro_files import MergeLimits, merge_avro_files

    s = c.settings
    limits = MergeLimits(max_bytes=s.merge_max_bytes, max_records=s.merge_max_records)

    def new_index() -> SpillingKeyIndex:
        return SpillingKeyIndex(in_memory_keys=s.merge_keys_in_memory)

    def new_key_log() -> SpooledKeyLog:
        return SpooledKeyLog(in_memory_keys=s.merge_keys_in_memory)

    return partial(
        merge_avro_files,
        leases=c.merge_leases,
        store=c.store,
        compactor=c.lake_compactor,
        manifests=c.lake_compactor,
        queue=c.move_queue,
        layout=c.lake_layout,
        limits=limits,
        duplicates=c.lake_duplicates,
        new_index=new_index,
        new_key_log=new_key_log,
    )


def _merge_input(event: Any, _settings: Settings) -> Result[MergeRequest, str]:
    from entrypoints import lake

    return lake.merge_request_from_event(event, datetime.now(UTC))


def _write_merge(counts: MergeCounts) -> Written:
    from entrypoints import lake

    result = lake.merge_dict(counts)
    failure = None
    if counts.busy:
        failure = JobFailure("busy", counts.busy)
    elif counts.refusals:
        # A refusal (an outdated schema, a guard) is reported, not raised: a retry would meet
        # the same files; the other types are merged regardless.
        refused = [t.refusal for t in counts.refusals if t.refusal]
        failure = JobFailure("refused", "; ".join(f"{r.kind}: {r.message}" for r in refused))
    note = (
        f"{counts.prefix} was merged already: nothing written, move queued again"
        if counts.already_merged
        else None
    )
    tally = {
        "in": counts.records,
        "out": counts.records - counts.duplicates,
        "rejected": counts.duplicates,
        "failed": len(counts.refusals),
        "files": counts.files,
    }
    return Written(result, failure, tally, {"prefix": counts.prefix}, note)


_S3_LAKE = ("s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject")
# The one Athena orchestration (the lake merge's engine, wave prep's eligible fans).
_ATHENA = (
    "athena:StartQueryExecution",
    "athena:GetQueryExecution",
    "athena:GetQueryResults",
    "athena:StopQueryExecution",
)
_MERGE = Worker(
    name="merge_avro_files",
    summary="compacts a day's / month's lake files into one Avro file per type, each record "
    "once; queues the move",
    trigger=Schedule(
        'cron(0 10 * * ? *) input {"type": "daily"}, cron(0 9 2 * ? *) input {"type": "monthly"}'
        ' (or direct: {"prefix": "YYYY/MM/DD"})'
    ),
    build=_merge_avro_files,
    actions=(
        *_S3_LAKE,
        "s3:AbortMultipartUpload",
        "sqs:GetQueueUrl",
        "sqs:SendMessage",  # its SendMessageBatch
        # MERGE_ENGINE=athena only: its temporary tables and queries
        *_ATHENA,
        "glue:CreateTable",
        "glue:DeleteTable",
        "glue:GetTable",
        "glue:GetDatabase",
    ),
    job=Job(
        parse=_merge_input,
        write=_write_merge,
        failed=lambda f: {"status": "refused", "error": f.message},
    ),
    cli=Cli(
        help="compact the lake: one Avro file per record type for a day or month, each record once",
        arguments=(
            (("--daily",), {"dest": "kind", "action": "store_const", "const": "daily"}),
            (("--monthly",), {"dest": "kind", "action": "store_const", "const": "monthly"}),
            (("--prefix",), {"help": "YYYY/MM/DD or YYYY/MM (default: --daily, yesterday)"}),
            (("--type",), {"action": "append", "help": "a record type (repeatable; default all)"}),
        ),
        inputs=lambda a: [
            {
                **({"prefix": a.prefix} if a.prefix else {"type": a.kind or "daily"}),
                **({"recordTypes": a.type} if a.type else {}),
            }
        ],
        unit="records merged",
    ),
)


def _move_merged_avro_files(c: Container) -> Run:
    from domain.workers.move_merged_avro_files import move_merged_avro_files

    return partial(
        move_merged_avro_files, store=c.store, manifests=c.lake_compactor, layout=c.lake_layout
    )


def _move_input(body: Any, _settings: Settings) -> Result[MoveRequest, str]:
    from adapters.aws.sqs import move_request_from_body

    try:
        return Success(move_request_from_body(body))
    except ValueError as bad:  # a body that is not a move request: to the DLQ, not lost
        return Failure(str(bad))


def _write_move(outcome: Result[MoveCounts, MoveFailure]) -> Written:
    from entrypoints import lake

    result = lake.move_dict(outcome)
    if result["status"] == "failed":
        # A copy that did not verify: no original was deleted; SQS delivers it again.
        return Written(result, JobFailure("move_failed", result["error"], True), {"failed": 1})
    moved = int(result["moved"])
    ids = {"prefix": str(result["prefix"]), "recordType": str(result["recordType"])}
    return Written(result, None, {"in": 1, "out": moved}, ids)


def _move_bodies(a: argparse.Namespace) -> list[str]:
    from domain.lake import parse_prefix
    from entrypoints import lake

    prefix = parse_prefix(a.prefix)
    if prefix is None:
        return [json.dumps({"prefix": a.prefix})]  # refused by the parser, naming it
    return [
        json.dumps({"recordType": r.record_type, "prefix": r.prefix})
        for r in lake.move_requests_for(prefix, a.type)
    ]


_MOVE = Worker(
    name="move_merged_avro_files",
    summary="archives a merged prefix's sources (copy, verify size and ETag, then delete)",
    trigger=SqsQueue("move_queue"),
    build=_move_merged_avro_files,
    actions=(
        *_S3_LAKE,
        "s3:AbortMultipartUpload",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
    ),
    job=Job(
        parse=_move_input,
        write=_write_move,
        failed=lambda f: {"status": "failed", "error": f.message},
    ),
    cli=Cli(
        help="archive a merged prefix's source files (copy, verify, then delete)",
        arguments=(
            (("prefix",), {"help": "YYYY/MM/DD or YYYY/MM"}),
            (("--type",), {"action": "append", "help": "a record type (repeatable; default all)"}),
        ),
        inputs=_move_bodies,
        unit="record types",
        progress=False,
    ),
)

# --- wave prep (docs/wave-prep.md) --------------------------------------------------------------


def _process_sms_wave_files(c: Container) -> Run:
    from domain.workers.process_sms_wave_files import process_sms_wave_files

    s = c.settings
    prepare = partial(
        process_sms_wave_files,
        bucket=s.scoring_bucket,
        store=c.store,
        campaigns=c.campaigns,
        markets=c.markets,
        fans=c.eligible_fans,
        codes=c.code_inventory,
        ledger=c.reservation_ledger,
        status=c.wave_status,
        package=c.wave_package,
        selections=c.wave_selections,
        clock=SystemClock(),
        reserve_batch=s.wave_reserve_batch,
        stale_after=timedelta(minutes=s.wave_stale_minutes),
    )

    def run(request: WavePrepRequest, **options: Any) -> Result[WavePrepCounts, WavePrepFailure]:
        # The invocation's deadline (Lambda's remaining time) bounds how long this wave waits
        # for another wave of its campaign to finish selecting (domain/wave_prep/turns.py).
        bound = deadlines.current()
        ends = None
        if bound is not None and bound.bounded:
            ends = datetime.now(UTC) + timedelta(seconds=bound.remaining())
        turns = c.selection_turns(request.date_key)
        return prepare(request, turns=turns, deadline=ends, **options)

    return run


def _wave_prep_input(event: Any, _settings: Settings) -> Result[WavePrepRequest, str]:
    from domain.wave_prep.request import request_from_json

    return request_from_json(event)


def _write_wave_prep(outcome: Result[WavePrepCounts, WavePrepFailure]) -> Written:
    from entrypoints import wave_prep

    result = wave_prep.outcome_dict(outcome)
    match outcome:
        case Success(c):
            tally = {
                "in": c.fans_read,
                "out": c.selected,
                "rejected": sum(c.ineligible.values()) + c.duplicates,
                "waitlisted": c.waitlisted,
                "codesReserved": c.codes_reserved,
            }
            return Written(result, None, tally, {"key": c.package.key})
        case Failure(f):
            error = result["error"]  # masked: it can quote a dependency's error body
            failure = JobFailure(
                f.kind, error["message"], retryable=f.retryable, environment=f.environment
            )
            return Written(result, failure, {"failed": 1})
    raise TypeError(f"not a wave prep outcome: {outcome!r}")


_WAVE_PREP = Worker(
    name="process_sms_wave_files",
    summary="wave prep: fans per market within capacity, codes, sms/email/masterCodes zip",
    trigger=DirectInput("{campaignId, dateKey, reassign, orderByPreference, ...}"),
    build=_process_sms_wave_files,
    actions=(
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:ListBucket",
        "s3:AbortMultipartUpload",
        "dynamodb:Query",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        *_ATHENA,
    ),
    job=Job(
        parse=_wave_prep_input,
        write=_write_wave_prep,
        failed=lambda f: {
            "success": False,
            "status": "REFUSED",
            "error": {"kind": f.kind, "message": f.message},
            "retryable": f.retryable,
        },
        bad_input="invalid_input",
    ),
    cli=Cli(
        help="wave prep: select fans per market, reserve codes, zip the delivery files",
        arguments=(
            (("campaign_id",), {}),
            (("date_key",), {"help": "YYYY-MM-DD: names the market details and the zip"}),
            (("--reassign",), {"action": "store_true", "help": "fans holding a code compete too"}),
            (("--order-by-preference",), {"action": "store_true"}),
            (("--single-market",), {"action": "store_true", "help": "primary market only"}),
            (("--random-selection",), {"action": "store_true", "help": "keyed draw, not score"}),
            (("--min-score",), {"type": float}),
            (("--max-score",), {"type": float}),
        ),
        inputs=lambda a: [
            {
                "campaignId": a.campaign_id,
                "dateKey": a.date_key,
                "reassign": a.reassign,
                "orderByPreference": a.order_by_preference,
                "singleMarket": a.single_market,
                "randomSelection": a.random_selection,
                "minScore": a.min_score,
                "maxScore": a.max_score,
            }
        ],
        unit="fans read",
        failure_json=True,
    ),
)

# --- sending a wave (docs/sending.md) -----------------------------------------------------------


def _time_left(bound: Deadline | None) -> Callable[[], float] | None:
    """The seconds an invocation has left (its root deadline), for work that must stop in time."""
    if bound is None or not bound.bounded:
        return None
    return bound.remaining


def _send_options(s: Settings, owner: str) -> SendOptions:
    from domain.workers.sms_wave_send import SendOptions

    return SendOptions(
        bucket=s.scoring_bucket,
        owner=owner,
        in_flight=s.sms_max_in_flight,
        rate_parts_per_second=s.sms_parts_per_second or float("inf"),
    )


@dataclass(frozen=True)
class _SendPlan:
    """The dry run's plan (plan_sms_wave): what sending would do; nothing sent."""

    plan: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return self.plan


# Ledger calls are grouped (a start per 100 texts, closes per 100 or per second): a few threads
# keep them off the event loop.
LEDGER_STEP_THREADS = 4


def _sms_wave_send(c: Container) -> Run:
    from adapters.leases import run_holder
    from adapters.rate_limiter import SystemMonotonicClock
    from adapters.sms.pacer import ThrottlePacer
    from adapters.sms.runner import AsyncSmsGateway, AsyncTaskRunner, ThreadTaskRunner
    from domain.workers.sms_wave_send import SendPorts, plan_sms_wave, sms_wave_send

    s = c.settings

    def run(
        request: SendInput, *, on_progress: Progress | None = None, dry_run: bool = False
    ) -> Result[SentWave | _SendPlan, SendFailure]:
        if dry_run:
            planned = plan_sms_wave(request, store=c.store, options=_send_options(s, "dry-run"))
            return planned.map(_SendPlan)
        owner = run_holder()  # per run: the lease's holder and the owner of its ledger claims
        clock = SystemMonotonicClock()

        def progress(counts: SendCounts) -> None:
            _log.info("wave progress", extra={"wave": request.wave_name, **counts.to_json()})
            if on_progress is not None:
                on_progress(counts.total)

        gateway = c.sms_gateway
        # A gateway with send_async (the TM service) on one event loop: ~165 CPU µs a text
        # where 200 threads cost ~490 (benchmarks/README.md, "SMS send"); boto3's in threads.
        async_gateway = isinstance(gateway, AsyncSmsGateway)
        ports = SendPorts(
            store=c.store,
            ledger=c.send_ledger,
            gateway=gateway,
            emails=c.sms_emails,
            # The ledger's DynamoDB calls in step threads, not on the loop, where each call's
            # network wait would pause every text in flight. On the local emulator (~1 ms a
            # call) it measured even: 277 texts/s against 266 on the loop, 2,000 texts, load 7.
            runner=AsyncTaskRunner(step_threads=LEDGER_STEP_THREADS)
            if async_gateway
            else ThreadTaskRunner(),
            pacer=ThrottlePacer(s.sms_parts_per_second or None, s.sms_max_in_flight, clock),
            leases=c.send_leases(owner),
            monotonic=clock,
            notifier=c.notifier,
            progress=progress,
            time_left=_time_left(deadlines.current()),
        )
        sent: Result[SentWave | _SendPlan, SendFailure] = sms_wave_send(
            request, ports=ports, options=_send_options(s, owner)
        )
        return sent

    return run


def _send_input(event: Any, _settings: Settings) -> Result[SendInput, str]:
    from domain.workers.sms_wave_send import SendInput

    return SendInput.parse(event)


def _send_counts(done: SentWave | _SendPlan | SendCounts) -> dict[str, int]:
    from domain.workers.sms_wave_send import SentWave

    if isinstance(done, _SendPlan):
        fans = done.plan["fans"]
        return {"rejected": fans["badRows"], "smsFans": fans["sms"], "emailFans": fans["email"]}
    counts = done.counts if isinstance(done, SentWave) else done
    return {
        "in": counts.total,
        "out": counts.ok,
        "failed": counts.failed,
        **{f"sms_{k}": v for k, v in counts.sms.items()},
        **{f"email_{k}": v for k, v in counts.email.items()},
    }


_SMS_SEND = Worker(
    name="sms_wave_send",
    summary="texts and emails every fan of a triggered wave once, within the carriers' rate",
    trigger=DirectInput("{waveName} (the scheduler's Step Functions execution)"),
    build=_sms_wave_send,
    # The ledger's claims, starts and finishes are conditional PutItem / TransactWriteItems;
    # the lease and the config moves are in the scoring bucket.
    actions=(
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchGetItem",
        "dynamodb:GetItem",
        "sms-voice:SendTextMessage",
        "sns:Publish",  # only with SMS_GATEWAY=sns
        "sqs:GetQueueUrl",
        "sqs:SendMessage",  # its SendMessageBatch
    ),
    job=Job(
        parse=_send_input,
        write=_code_job_writer(_send_counts, lambda w: {"waveName": w.to_json()["waveName"]}),
        refusal="raise",  # Step Functions task: fail on WorkerFailed
    ),
    cli=Cli(
        help="text and email every fan of a triggered wave, once",
        arguments=(
            (("wave_name",), {"help": "the wave: smsWaves/csv/{name}.csv"}),
            (
                ("--dry-run",),
                {
                    "action": "store_true",
                    "help": "send nothing: fans per channel, parts per text, UCS-2 texts, "
                    "time at the rate",
                },
            ),
        ),
        inputs=lambda a: [{"waveName": a.wave_name}],
        options=lambda a: {"dry_run": True} if a.dry_run else {},
        unit="fans",
    ),
)


def _sms_wave_scheduler(c: Container) -> Run:
    from domain.workers.sms_wave_scheduler import sms_wave_scheduler

    def run(_input: object) -> SchedulerResult:
        return sms_wave_scheduler(
            store=c.store,
            starter=c.send_starter,
            clock=SystemClock(),
            bucket=c.settings.scoring_bucket,
        )

    return run


def _write_schedule(result: SchedulerResult) -> Written:
    # A wave not started is no failure of the run: its config stays and the next run (5
    # minutes on) starts it; without SMS_WAVE_STATE_MACHINE that is the design.
    tally = {
        "in": len(result.triggered)
        + len(result.already)
        + result.waiting
        + len(result.failed)
        + len(result.not_started),
        "out": len(result.triggered),
        "rejected": len(result.failed),
        "alreadyTriggered": len(result.already),
        "waiting": result.waiting,
        "notStarted": len(result.not_started),
    }
    return Written(result.to_json(), None, tally)


_SMS_SCHEDULER = Worker(
    name="sms_wave_scheduler",
    summary="moves due wave configs to triggered once and starts their sends",
    trigger=Schedule("rate(5 minutes)"),
    build=_sms_wave_scheduler,
    actions=(
        "s3:ListBucket",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "states:StartExecution",
    ),
    # The scheduled event carries nothing the scheduler needs: every due config is its input.
    job=Job(parse=lambda _e, _s: Success(None), write=_write_schedule),
    cli=Cli(
        help="trigger the waves whose notifyDate has come; start their sends",
        arguments=(),
        inputs=lambda _a: [{}],
        unit="waves",
        progress=False,
    ),
)


# --- fanlists (docs/ranks.md) -------------------------------------------------------------------


def _translate_ranks_to_scores(c: Container) -> Run:
    import orjson

    from domain.workers.translate_ranks_to_scores import translate_ranks_to_scores

    return partial(
        translate_ranks_to_scores,
        store=c.store,
        campaigns=c.campaigns,
        stream=c.stream(c.settings.fanlist_ranks_stream),
        clock=SystemClock(),
        encode=orjson.dumps,
        leases=c.fanlist_leases,
    )


def _fanlist_upload(item: Any, s: Settings) -> Result[FanlistUpload, str]:
    from domain.workers.translate_ranks_to_scores import FanlistUpload

    return FanlistUpload.parse(
        s3_item(item) if isinstance(item, ObjectRef) else item, s.scoring_bucket
    )


_RANKS = Worker(
    name="translate_ranks_to_scores",
    summary="a fanlist upload's ranks as scores (raw | xnum) on the fanlist ranks stream, once; "
    "manifest.json beside it",
    trigger=S3Objects(bucket="scoring_bucket", prefix="fanlist/uploaded/ (suffix .csv)"),
    build=_translate_ranks_to_scores,
    actions=("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "kinesis:PutRecords"),
    job=Job(
        parse=_fanlist_upload,
        write=_code_job_writer(
            lambda r: {
                "in": r.rows,
                "out": r.streamed,
                "rejected": r.bad + r.rejected,
                "failed": r.stranded,
            },
            lambda r: {"source": r.source, "campaignId": r.campaign_id},
        ),
        bad_input="bad_key",
        collection="files",
    ),
    cli=Cli(
        help="a fanlist upload's ranks as scores on the fanlist ranks stream, once",
        arguments=((("key",), {"help": "fanlist/uploaded/{fanlistId}/{file}.csv or s3://..."}),),
        inputs=lambda a: [{"key": a.key}],
    ),
)

# --- campaign statistics (docs/stats.md) --------------------------------------------------------


def _save_stats(c: Container) -> Run:
    from domain.workers.save_stats import save_stats

    s = c.settings
    return partial(
        save_stats,
        campaigns=c.open_campaigns,
        lake=c.lake_records,
        store=c.store,
        lake_bucket=s.campaign_data_bucket,
        scoring_bucket=s.scoring_bucket,
        prefix=s.stats_prefix,
        clock=SystemClock(),
        monotonic=time.monotonic,
    )


def _slack_stats(c: Container) -> Run:
    from domain.workers.slack_stats import slack_stats

    s = c.settings
    return partial(
        slack_stats,
        campaigns=c.open_campaigns,
        store=c.store,
        notifier=c.notifier,
        bucket=s.scoring_bucket,
        prefix=s.stats_prefix,
    )


_STATS = Worker(
    name="save_stats",
    summary="per open campaign: registrations, scored, rejected by reason, selected per market, "
    "codes published, waves; from the lake and the status objects into stats/{campaignId}.json",
    trigger=Schedule("rate(5 minutes)"),
    build=_save_stats,
    actions=("s3:ListBucket", "s3:GetObject", "s3:PutObject"),
    job=Job(
        parse=lambda e, _s: Success(e),
        write=_code_job_writer(
            lambda r: {"in": r.records, "out": len(r.written), "files": r.files},
            lambda r: {},
        ),
    ),
    cli=Cli(
        help="count each open campaign's stats into stats/{campaignId}.json",
        arguments=(),
        inputs=lambda a: [{}],
        unit="records",
    ),
)
_SLACK_STATS = Worker(
    name="slack_stats",
    summary="each open campaign's stats object posted to its stats channel (not if noAlert)",
    trigger=Schedule("rate(30 minutes)"),
    build=_slack_stats,
    actions=("s3:ListBucket", "s3:GetObject"),
    job=Job(
        parse=lambda e, _s: Success(e),
        write=_code_job_writer(
            lambda r: {
                "in": len(r.posted) + len(r.skipped_no_alert) + len(r.missing) + len(r.failed),
                "out": len(r.posted),
                "skipped": len(r.skipped_no_alert),
                "failed": len(r.failed),
            },
            lambda r: {},
        ),
    ),
    cli=Cli(
        help="post each open campaign's stats to its Slack stats channel",
        arguments=(),
        inputs=lambda a: [{}],
        unit="campaigns",
    ),
)


def _reconcile_sms_deliveries(c: Container) -> Run:
    from domain.workers.reconcile_sms_deliveries import reconcile_sms_delivery

    return partial(reconcile_sms_delivery, ledger=c.send_ledger)


def _write_reconciled(result: ReconcileResult) -> Written:
    # pending: the entry is claimed or started (its run alive, or dead and not yet turned
    # unknown): retryable, so SQS delivers the event again instead of it being lost.
    failure = None
    if result.retryable:
        failure = JobFailure("pending", f"{result.ledger_key}: not settled yet", retryable=True)
    return Written(result.to_json(), failure, {"in": 1, result.outcome.value: 1})


def _delivery_event(body: Any, _settings: Settings) -> Result[DeliveryEvent, str]:
    from domain.workers.reconcile_sms_deliveries import DeliveryEvent

    return DeliveryEvent.parse(body)


def _event_lines(a: argparse.Namespace) -> list[str]:
    with open(a.events, encoding="utf-8") as lines:
        return [line for line in lines if line.strip()]


_SMS_RECONCILE = Worker(
    name="reconcile_sms_deliveries",
    summary="settles texts left unknown from End User Messaging's delivery events",
    trigger=SqsQueue("sms_events_queue"),
    build=_reconcile_sms_deliveries,
    actions=(
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:PutItem",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
    ),
    job=Job(parse=_delivery_event, write=_write_reconciled),
    cli=Cli(
        help="settle unknown texts from delivery events (a file of event JSON, one a line)",
        arguments=((("events",), {"help": "a file of End User Messaging events, one a line"}),),
        inputs=_event_lines,
        unit="events",
        progress=False,
    ),
)

STREAM_WORKERS: tuple[Worker[StreamWorker], ...] = (
    _stream_worker(
        name="save_campaign_data",
        summary="archives every record as Avro in the lake, keyed by shard and sequence",
        stream="input_stream",
        build=_save_campaign_data,
        actions=("s3:PutObject", "s3:GetObject"),
    ),
    _stream_worker(
        name="transform_code_assignments",
        summary="turns code assignments into selection records on the save-selection stream",
        stream="input_stream",
        build=_transform_code_assignments,
        actions=("kinesis:PutRecords", "dynamodb:GetItem", "dynamodb:BatchGetItem", "s3:GetObject"),
    ),
    _stream_worker(
        name="save_selection",
        summary="records each selection (conditional write); sends verdicts to the reporter",
        stream="save_selection_stream",
        build=_save_selection,
        actions=("dynamodb:UpdateItem", "dynamodb:GetItem", "sqs:SendMessage"),
    ),
)


# Every worker with an input of its own (not a stream consumer): the job runtime runs them, from
# Lambda and from the CLI (entrypoints/runtime.py).
JOBS: tuple[Worker[Run], ...] = (
    _SCORED_FILES,
    _WAVE_PREP,
    _WAVE_CODES,
    _SCHEDULED_WAVE,
    _CODE_STREAM,
    _MERGE,
    _MOVE,
    _SMS_SEND,
    _SMS_SCHEDULER,
    _RANKS,
    _STATS,
    _SLACK_STATS,
    _SMS_RECONCILE,
)

WORKERS: Mapping[str, Worker[object]] = {
    w.name: w for w in (_SCORED_FILES, *STREAM_WORKERS, *JOBS[1:])
}
_STREAM_WORKERS: Mapping[str, Worker[StreamWorker]] = {w.name: w for w in STREAM_WORKERS}
_JOBS: Mapping[str, Worker[Run]] = {w.name: w for w in JOBS}


class UnknownWorker(ValueError):
    """No registered worker of the wanted kind has this name; the message lists those that do."""


def _lookup(table: Mapping[str, Worker[W]], name: str, kind: str) -> Worker[W]:
    try:
        return table[name]
    except KeyError:
        known = ", ".join(table) or "none"
        raise UnknownWorker(f"no {kind} named {name!r}; known: {known}") from None


def stream_worker_entry(name: str) -> Worker[StreamWorker]:
    return _lookup(_STREAM_WORKERS, name, "stream worker")


def job_entry(name: str) -> Worker[Run]:
    return _lookup(_JOBS, name, "job")


def stream_worker(name: str, settings: Settings) -> StreamWorker:
    """The named stream worker bound to the process's adapters (built once per process)."""
    return bound(stream_worker_entry(name), settings)


def stream_of(name: str, settings: Settings) -> str:
    """The stream the named stream worker consumes."""
    trigger = stream_worker_entry(name).trigger
    if not isinstance(trigger, KinesisStream):
        raise TypeError(f"stream worker {name!r} is registered with a {type(trigger).__name__}")
    return trigger.name(settings)


def bound(worker: Worker[W], settings: Settings) -> W:
    """The worker bound to the process's adapters, built the first time it is asked for."""
    c = container(settings)
    return c.built(worker.name, lambda: worker.build(c))


def run_of(name: str, settings: Settings) -> Run:
    """The named job's domain function bound to the process's adapters."""
    return bound(job_entry(name), settings)
