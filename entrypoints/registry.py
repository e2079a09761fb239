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
               actions=("dynamodb:UpdateItem", ..., "sqs:SendMessageBatch"),
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

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Generic, Protocol, TypeVar

import orjson
from returns.result import Result

from adapters.aws.dynamo_entries import DynamoSelectionLedger
from adapters.aws.lake import S3Lake
from adapters.aws.sqs import SqsVerdictQueue
from adapters.canonical_json import orjson_canonical
from adapters.clock import SystemClock
from adapters.json_codec import exact_dumps, exact_loads
from adapters.leases import ObjectLeases, run_holder
from adapters.parallel import ProcessPoolChunkMapper
from domain.models import ObjectRef
from domain.ports import StreamWorker
from domain.waves import WAVE_LEASE_PREFIX
from domain.workers.generate_sms_wave_codes import (
    GeneratedWave,
    GenerateFailure,
    GenerateInput,
    generate_sms_wave_codes,
)
from domain.workers.load_code_assignments_to_stream import (
    StreamedWave,
    StreamFailure,
    WaveConfigRef,
    load_code_assignments_to_stream,
)
from domain.workers.process_scheduled_wave import (
    AssignedWave,
    AssignFailure,
    ScheduledWave,
    process_scheduled_wave,
)
from domain.workers.process_scored_files import (
    ScoredFileCounts,
    ScoredFileFailure,
    process_scored_files,
)
from domain.workers.save_campaign_data import SaveCampaignData
from domain.workers.save_selection import SaveSelection
from domain.workers.transform_code_assignments import TransformCodeAssignments
from entrypoints import lake, sms_send, wave_prep
from entrypoints.bootstrap import Container, container
from entrypoints.settings import Settings

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
class Worker(Generic[W]):
    """One registered worker: its name, trigger, factory, Lambda handler and AWS actions."""

    name: str
    summary: str
    trigger: Trigger
    build: Callable[[Container], W]
    # The Lambda handler setting of its function (one package serves every worker).
    handler: str
    # What its role must allow (README's deployment table; least privilege).
    actions: tuple[str, ...]


# --- the workers -------------------------------------------------------------------------------


class ScoredFileRun(Protocol):
    """process_scored_files bound to adapters: one scored file in, its outcome out."""

    def __call__(
        self,
        source: ObjectRef,
        *,
        processes: int | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> Result[ScoredFileCounts, ScoredFileFailure]: ...


def _process_scored_files(c: Container) -> ScoredFileRun:
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
            on_progress=on_progress,
            # Where the run is, for the answer a second run of the file gets (lease.py).
            run_id=run_holder(),
            lease_seconds=s.scored_file_lease_seconds,
        )

    return run


def _save_campaign_data(c: Container) -> StreamWorker:
    return SaveCampaignData(
        archive=S3Lake(c.aws.client("s3"), c.settings.campaign_data_bucket, c.schemas),
        schemas=c.schemas,
        dead_letters=c.dead_letters,
        clock=SystemClock(),
        loads=exact_loads,  # never rounds an integer beyond 64 bits (orjson.loads would)
        canonical=orjson_canonical,
    )


def _transform_code_assignments(c: Container) -> StreamWorker:
    return TransformCodeAssignments(
        users=c.users,
        campaigns=c.campaigns,
        schemas=c.schemas,
        output=c.stream(c.settings.save_selection_stream),
        encode=exact_dumps,  # keeps integers beyond 64 bits (orjson.dumps raises on them)
        dead_letters=c.dead_letters,
    )


def _save_selection(c: Container) -> StreamWorker:
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
_DEAD_LETTERS = ("sqs:GetQueueUrl", "sqs:SendMessageBatch", "s3:PutObject")


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
        handler="entrypoints.lambda_handlers.stream_worker_handler",
        actions=(*_CONSUMES, *actions, *_DEAD_LETTERS),
    )


def _job(
    name: str,
    summary: str,
    trigger: Trigger,
    build: Callable[[Container], W],
    actions: tuple[str, ...],
) -> Worker[W]:
    """A worker with a Lambda handler of its own, named `{name}_handler`."""
    handler = f"entrypoints.lambda_handlers.{name}_handler"
    return Worker(name, summary, trigger, build, handler, actions)


_SCORED_FILES = _job(
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
)
FILE_WORKERS: tuple[Worker[ScoredFileRun], ...] = (_SCORED_FILES,)

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
        actions=("dynamodb:UpdateItem", "dynamodb:GetItem", "sqs:SendMessageBatch"),
    ),
)

# --- access codes (docs/access-codes.md): one input in, one outcome out ------------------------


In_contra = TypeVar("In_contra", contravariant=True)
Out_co = TypeVar("Out_co", covariant=True)


class Run(Protocol[In_contra, Out_co]):
    """A job bound to the process's adapters: one input in, its outcome out, with the rows
    done so far reported to `on_progress` (the CLI's progress bar)."""

    def __call__(
        self, source: In_contra, /, *, on_progress: Callable[[int], None] | None = None
    ) -> Out_co: ...


WaveCodesRun = Run[GenerateInput, Result[GeneratedWave, GenerateFailure]]
ScheduledWaveRun = Run[ScheduledWave, Result[AssignedWave, AssignFailure]]
CodeStreamRun = Run[WaveConfigRef, Result[StreamedWave, StreamFailure]]


def _generate_sms_wave_codes(c: Container) -> WaveCodesRun:
    s = c.settings
    leases = ObjectLeases(
        c.store,
        s.scoring_bucket,
        WAVE_LEASE_PREFIX,
        holder=run_holder(),
        clock=SystemClock(),
        seconds=s.run_lease_seconds,
        subject="wave {name}",
        consequence="nothing was issued",
    )
    return partial(
        generate_sms_wave_codes,
        store=c.store,
        issuer=c.code_issuer,
        ledger=c.issued_codes,
        leases=leases,
        bucket=s.scoring_bucket,
    )


def _process_scheduled_wave(c: Container) -> ScheduledWaveRun:
    return partial(process_scheduled_wave, store=c.store, inventory=c.code_inventory)


def _load_code_assignments_to_stream(c: Container) -> CodeStreamRun:
    return partial(
        load_code_assignments_to_stream,
        store=c.store,
        stream=c.stream(c.settings.input_stream),
        clock=SystemClock(),
        encode=orjson.dumps,
    )


# The codes table's ledger and issuer: BatchGetItem to recall, PutItem to issue and to record
# (a TransactWriteItems of Puts is authorised as each item's PutItem). No GetItem: a failed
# condition returns the item it failed on.
_CODE_TABLE = ("dynamodb:BatchGetItem", "dynamodb:PutItem")
_WAVE_CODES = _job(
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
)
_SCHEDULED_WAVE = _job(
    name="process_scheduled_wave",
    summary="assigns a scheduled wave's codes to its campaign in batches of 2,500",
    trigger=DirectInput("{key: smsWaves/csv/{campaignId}_{suffix}.csv}"),
    build=_process_scheduled_wave,
    # Assign's failed condition returns the code's item (ALL_OLD): no GetItem.
    actions=("s3:GetObject", "dynamodb:UpdateItem"),
)
_CODE_STREAM = _job(
    name="load_code_assignments_to_stream",
    summary="a wave's codes as codeAssignment records on the input stream, once per wave",
    trigger=S3Objects(bucket="scoring_bucket", prefix="smsWaves/triggered/ (and completed/)"),
    build=_load_code_assignments_to_stream,
    actions=("s3:GetObject", "s3:PutObject", "kinesis:PutRecords"),
)

_S3_LAKE = ("s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject")
# The one Athena orchestration (the lake merge's engine, wave prep's eligible fans).
_ATHENA = (
    "athena:StartQueryExecution",
    "athena:GetQueryExecution",
    "athena:GetQueryResults",
    "athena:StopQueryExecution",
)
_MERGE = _job(
    name="merge_avro_files",
    summary="compacts a day's / month's lake files into one Avro file per type, each record "
    "once; queues the move",
    trigger=Schedule(
        'cron(0 10 * * ? *) input {"type": "daily"}, cron(0 9 2 * ? *) input {"type": "monthly"}'
        ' (or direct: {"prefix": "YYYY/MM/DD"})'
    ),
    build=lake.build_merge,
    actions=(
        *_S3_LAKE,
        "s3:AbortMultipartUpload",
        "sqs:GetQueueUrl",
        "sqs:SendMessageBatch",
        # MERGE_ENGINE=athena only: its temporary tables and queries
        *_ATHENA,
        "glue:CreateTable",
        "glue:DeleteTable",
        "glue:GetTable",
        "glue:GetDatabase",
    ),
)
_MOVE = _job(
    name="move_merged_avro_files",
    summary="archives a merged prefix's sources (copy, verify size and ETag, then delete)",
    trigger=SqsQueue("move_queue"),
    build=lake.build_move,
    actions=(
        *_S3_LAKE,
        "s3:AbortMultipartUpload",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
    ),
)

_WAVE_PREP = _job(
    name="process_sms_wave_files",
    summary="wave prep: fans per market within capacity, codes, sms/email/masterCodes zip",
    trigger=DirectInput("{campaignId, dateKey, reassign, orderByPreference, ...}"),
    build=wave_prep.build,
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
)

# Sending a wave (docs/sending.md): the ledger's claims, starts and finishes are conditional
# PutItem / TransactWriteItems (UpdateItem-free); the lease and the config moves in the bucket.
_SMS_SEND = _job(
    name="sms_wave_send",
    summary="texts and emails every fan of a triggered wave once, within the carriers' rate",
    trigger=DirectInput("{waveName} (the scheduler's Step Functions execution)"),
    build=sms_send.build_send,
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
        "sqs:SendMessageBatch",
    ),
)
_SMS_SCHEDULER = _job(
    name="sms_wave_scheduler",
    summary="moves due wave configs to triggered once and starts their sends",
    trigger=Schedule("rate(5 minutes)"),
    build=sms_send.build_scheduler,
    actions=(
        "s3:ListBucket",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "states:StartExecution",
    ),
)

# Scheduled and directly invoked workers, and those run for one S3 object that are not scored
# files: one input in, one outcome out (code generation, wave prep, lake compaction, ...).
JOBS: tuple[Worker[object], ...] = (
    _WAVE_PREP,
    _WAVE_CODES,
    _SCHEDULED_WAVE,
    _CODE_STREAM,
    _MERGE,
    _MOVE,
    _SMS_SEND,
    _SMS_SCHEDULER,
)

WORKERS: Mapping[str, Worker[object]] = {w.name: w for w in (*FILE_WORKERS, *STREAM_WORKERS, *JOBS)}
_STREAM_WORKERS: Mapping[str, Worker[StreamWorker]] = {w.name: w for w in STREAM_WORKERS}


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


def stream_worker(name: str, settings: Settings) -> StreamWorker:
    """The named stream worker bound to the process's adapters (built once per process)."""
    return _bound(stream_worker_entry(name), settings)


def stream_of(name: str, settings: Settings) -> str:
    """The stream the named stream worker consumes."""
    trigger = stream_worker_entry(name).trigger
    if not isinstance(trigger, KinesisStream):
        raise TypeError(f"stream worker {name!r} is registered with a {type(trigger).__name__}")
    return trigger.name(settings)


def _bound(worker: Worker[W], settings: Settings) -> W:
    """The worker bound to the process's adapters, built the first time it is asked for."""
    c = container(settings)
    return c.built(worker.name, lambda: worker.build(c))


def wave_prep_run(settings: Settings) -> wave_prep.WavePrepRun:
    return _bound(_WAVE_PREP, settings)


def scored_file_run(settings: Settings) -> ScoredFileRun:
    return _bound(_SCORED_FILES, settings)


def wave_codes_run(settings: Settings) -> WaveCodesRun:
    return _bound(_WAVE_CODES, settings)


def scheduled_wave_run(settings: Settings) -> ScheduledWaveRun:
    return _bound(_SCHEDULED_WAVE, settings)


def code_stream_run(settings: Settings) -> CodeStreamRun:
    return _bound(_CODE_STREAM, settings)


def lake_merge_run(settings: Settings) -> lake.MergeRun:
    return _bound(_MERGE, settings)


def lake_move_run(settings: Settings) -> lake.MoveRun:
    return _bound(_MOVE, settings)


def sms_send_run(settings: Settings) -> sms_send.SendRun:
    return _bound(_SMS_SEND, settings)


def sms_plan_run(settings: Settings) -> sms_send.PlanRun:
    c = container(settings)
    return c.built("sms_wave_send:plan", lambda: sms_send.build_plan(c))


def sms_scheduler_run(settings: Settings) -> sms_send.SchedulerRun:
    return _bound(_SMS_SCHEDULER, settings)
