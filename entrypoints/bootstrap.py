"""The composition root: the one place real adapters are built from settings and handed to workers.

Tests build workers with fakes directly; everything that runs for real (Lambda, KCL, CLI, demo)
comes through here, so an endpoint or a name is configured in exactly one way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import orjson
from returns.result import Result

from adapters.avro import AvroSchemas
from adapters.aws.clients import ClientFactory, ClientOptions
from adapters.aws.dynamo_entries import (
    DynamoEntryDirectory,
    DynamoSelectionLedger,
    DynamoUserDirectory,
)
from adapters.aws.kinesis import KinesisRecordStream
from adapters.aws.lake import S3Lake
from adapters.aws.s3 import S3ObjectStore
from adapters.aws.sqs import SqsDeadLetters, SqsVerdictQueue
from adapters.campaign_config import S3CampaignDirectory
from adapters.canonical_json import orjson_canonical
from adapters.clock import SystemClock
from adapters.http.campaigns import HttpCampaignDirectory
from adapters.http.client import JsonHttpClient
from adapters.http.entries import HttpEntryDirectory
from adapters.http.slack import SlackWebhookNotifier
from adapters.http.users import HttpUserDirectory
from adapters.log_notifier import LogNotifier
from adapters.logging import configure_logging as _configure_logging
from adapters.parallel import ProcessPoolChunkMapper
from domain.backoff import Backoff
from domain.models import ObjectRef
from domain.ports import (
    CampaignDirectory,
    EntryDirectory,
    Notifier,
    ObjectStore,
    RecordStream,
    UserDirectory,
)
from domain.streaming import DeadLetters, StreamWorker
from domain.workers.process_scored_files import (
    ScoredFileCounts,
    ScoredFileFailure,
    process_scored_files,
)
from domain.workers.save_campaign_data import SaveCampaignData
from domain.workers.save_selection import SaveSelection
from domain.workers.transform_code_assignments import TransformCodeAssignments
from entrypoints.settings import Settings
from streams.batching import split_batches


def configure_logging(settings: Settings) -> None:
    _configure_logging(settings.log_level)


@dataclass
class Container:
    """Adapters built lazily from settings and kept for the life of the process (warm Lambdas
    reuse clients and connection pools instead of rebuilding them per event)."""

    settings: Settings

    @cached_property
    def aws(self) -> ClientFactory:
        s = self.settings
        return ClientFactory(
            ClientOptions(
                region=s.region,
                endpoint_url=s.endpoint_url,
                service_endpoints=dict(s.service_endpoints),
            )
        )

    @cached_property
    def store(self) -> ObjectStore:
        return S3ObjectStore(self.aws.client("s3"), max_line_bytes=self.settings.max_line_bytes)

    def stream(self, stream_name: str) -> RecordStream:
        # The producer owns the retry budget: botocore's own retries would resend whole
        # batches, duplicating the entries that had succeeded.
        client = self.aws.client("kinesis", max_attempts=1)
        return KinesisRecordStream(client, stream_name, split=split_batches, backoff=Backoff())

    def _service(self, name: str, url: str) -> JsonHttpClient:
        return JsonHttpClient(name, url, token=self.settings.service_token)

    @cached_property
    def campaigns(self) -> CampaignDirectory:
        s = self.settings
        if s.campaign_service_url:
            client = self._service("campaign service", s.campaign_service_url)
            return HttpCampaignDirectory(client, band_secret=s.band_secret)
        return S3CampaignDirectory(
            self.store,
            s.scoring_bucket,
            prefix=s.campaign_config_prefix,
            band_secret=s.band_secret,
        )

    @cached_property
    def schemas(self) -> AvroSchemas:
        # zlib level 1: ~2 µs a record cheaper than 6 for files ~10 % bigger (benchmarks/).
        return AvroSchemas(compression_level=1)

    @cached_property
    def dead_letters(self) -> DeadLetters:
        sqs = self.aws.client("sqs")
        return SqsDeadLetters(
            sqs,
            self.settings.dead_letter_queue,  # a name is resolved on first use
            # Records too big for an SQS message are kept whole in S3 rather than lost.
            overflow_s3=self.aws.client("s3"),
            overflow_bucket=self.settings.campaign_data_bucket,
        )

    @cached_property
    def users(self) -> UserDirectory:
        s = self.settings
        if s.user_service_url:
            return HttpUserDirectory(self._service("user service", s.user_service_url))
        return DynamoUserDirectory(self.aws.client("dynamodb"), s.users_table)

    @cached_property
    def entries(self) -> EntryDirectory:
        s = self.settings
        if s.entry_service_url:
            return HttpEntryDirectory(self._service("entry service", s.entry_service_url))
        return DynamoEntryDirectory(self.aws.client("dynamodb"), s.demand_table)

    @cached_property
    def notifier(self) -> Notifier:
        if self.settings.slack_webhook_url:
            return SlackWebhookNotifier(self.settings.slack_webhook_url)
        return LogNotifier()


_containers: dict[Settings, Container] = {}


def container(settings: Settings) -> Container:
    if settings not in _containers:
        _containers[settings] = Container(settings)
    return _containers[settings]


def process_scored_file(
    settings: Settings,
    source: ObjectRef,
    *,
    processes: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Result[ScoredFileCounts, ScoredFileFailure]:
    """processScoredFiles with real adapters; `processes` defaults to the settings' choice."""
    c = container(settings)
    processes = processes or settings.processes_for_transform()
    logging.getLogger(__name__).info(
        "processing scored file", extra={"source": source.uri, "processes": processes}
    )
    return process_scored_files(
        source,
        store=c.store,
        stream=c.stream(settings.scored_output_stream),
        campaigns=c.campaigns,
        notifier=c.notifier,
        clock=SystemClock(),
        encode=orjson.dumps,
        blacklist=ObjectRef(source.bucket, settings.blacklist_key),
        mapper=ProcessPoolChunkMapper(processes) if processes > 1 else None,
        on_progress=on_progress,
    )


def build_stream_worker(name: str, settings: Settings) -> StreamWorker:
    """A stream worker bound to real adapters: what KCL children, Lambdas and the poller run."""
    c = container(settings)
    s = settings
    if name == "save_campaign_data":
        lake = S3Lake(c.aws.client("s3"), s.campaign_data_bucket, c.schemas)
        return SaveCampaignData(
            archive=lake,
            schemas=c.schemas,
            dead_letters=c.dead_letters,
            clock=SystemClock(),
            loads=orjson.loads,
            canonical=orjson_canonical,
        )
    if name == "transform_code_assignments":
        return TransformCodeAssignments(
            users=c.users,
            campaigns=c.campaigns,
            schemas=c.schemas,
            output=c.stream(s.save_selection_stream),
            encode=orjson.dumps,
            dead_letters=c.dead_letters,
        )
    if name == "save_selection":
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
    raise ValueError(f"unknown stream worker {name!r}")
