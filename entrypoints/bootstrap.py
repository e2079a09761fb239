"""The composition root: the one place real adapters are built from settings and handed to workers.

Tests build workers with fakes directly; everything that runs for real (Lambda, KCL, CLI, demo)
comes through here, so an endpoint or a name is configured in exactly one way. Which workers
exist, what triggers them and how each is bound to these adapters: entrypoints/registry.py.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from adapters.leases import MERGE_LEASE_PREFIX, ObjectLeases, run_holder
from adapters.logging import configure_logging as _configure_logging
from domain.ports import (
    CampaignDirectory,
    CampaignMarkets,
    CodeInventory,
    CodeIssuer,
    ConditionalObjectStore,
    DeadLetters,
    EligibleFans,
    EntryDirectory,
    IssuedCodeLedger,
    LakeRecords,
    Notifier,
    OpenCampaigns,
    ProcessLiveness,
    RecordStream,
    SendStarter,
    SmsGateway,
    UserDirectory,
)
from domain.streaming import DependencyUnavailable
from domain.wave_prep.turns import SELECTION_LEASE_PREFIX, SelectionTurns
from domain.waves import STREAM_LEASE_PREFIX, WAVE_LEASE_PREFIX
from domain.workers.sms_wave_send import SEND_LEASE_PREFIX
from entrypoints.settings import Settings, SettingsError, reveal

# Each adapter is imported by the property that builds it, when first asked for: a Lambda
# handler then imports only its own worker's stack (boto3, aiohttp, fastavro, numpy each cost
# 0.3-0.9 s of a cold start; benchmarks/bench_cold_start.py). Here for the type checker only.
if TYPE_CHECKING:
    from adapters.avro import AvroSchemas
    from adapters.aws.athena_engine import AthenaQueryEngine
    from adapters.aws.clients import ClientFactory
    from adapters.aws.dynamo_ledger import DynamoOnceLedger
    from adapters.aws.kinesis import KinesisRecordStream
    from adapters.aws.s3 import S3ObjectStore
    from adapters.aws.sqs import SqsEmailQueue, SqsMoveQueue
    from adapters.aws.wave_prep import S3ReservationLedger, S3WaveStatusStore
    from adapters.campaign_config import S3CampaignDirectory
    from adapters.http.campaigns import HttpCampaignDirectory
    from adapters.http.client import JsonHttpClient
    from adapters.lake_compactor import AvroLakeCompactor
    from adapters.wave_package import ZipPackage
    from adapters.wave_selections import StoredWaveSelections
    from domain.lake import LakeLayout
    from domain.lake_athena import AthenaDuplicates
    from domain.scoring.chunk_types import Chunk, ChunkResult, TransformContext

T = TypeVar("T")


def configure_logging(settings: Settings) -> None:
    _configure_logging(settings.log_level)


@dataclass
class Container:
    """Adapters built lazily from settings and kept for the life of the process (warm Lambdas
    reuse clients and connection pools instead of rebuilding them per event)."""

    settings: Settings
    _streams: dict[str, RecordStream] = field(default_factory=dict, init=False, repr=False)
    _workers: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    @cached_property
    def aws(self) -> ClientFactory:
        from adapters.aws.clients import ClientFactory, ClientOptions

        s = self.settings
        return ClientFactory(
            ClientOptions(
                region=s.region,
                endpoint_url=s.endpoint_url,
                service_endpoints=dict(s.service_endpoints),
            )
        )

    @cached_property
    def store(self) -> ConditionalObjectStore:
        return self._s3_store

    @cached_property
    def _s3_store(self) -> S3ObjectStore:
        from adapters.aws.s3 import S3ObjectStore

        return S3ObjectStore(self.aws.client("s3"), max_line_bytes=self.settings.max_line_bytes)

    def stream(self, stream_name: str) -> RecordStream:
        """The producer for a stream, one per stream name, sharing one Kinesis client: it keeps
        its thread pool and its pacer's shard buckets across events."""
        if stream_name not in self._streams:
            self._streams[stream_name] = self._new_stream(stream_name)
        return self._streams[stream_name]

    @cached_property
    def _producer_client(self) -> Any:
        # The producer owns the retry budget: botocore's own retries would resend whole
        # batches, duplicating the entries that had succeeded.
        return self.aws.client("kinesis", max_attempts=1)

    def _new_stream(self, stream_name: str) -> KinesisRecordStream:
        from adapters.aws.kinesis import KinesisRecordStream
        from adapters.aws.kinesis_pacing import ShardMap, ShardPacer
        from domain.backoff import Backoff

        client = self._producer_client
        s = self.settings
        pacer = None
        if s.kinesis_pacing > 0:
            pacer = ShardPacer(
                lambda: ShardMap.from_client(client, stream_name), headroom=s.kinesis_pacing
            )
        return KinesisRecordStream(
            self._put_request(client),
            stream_name,
            backoff=Backoff(),
            max_in_flight=s.kinesis_max_in_flight,
            pacer=pacer,
        )

    def _put_request(self, client: Any) -> Any:
        """The put_records the producer calls: the lean request (adapters/aws/kinesis_lean.py)
        unless KINESIS_PUT_REQUEST=botocore."""
        choice = self.settings.kinesis_put_request
        if choice == "botocore":
            return client
        if choice != "lean":
            raise SettingsError(f"KINESIS_PUT_REQUEST must be lean or botocore, got {choice!r}")
        from adapters.aws.kinesis_lean import LeanPutRecords

        return LeanPutRecords(client)

    def built(self, name: str, build: Callable[[], T]) -> T:
        """The worker `name`, built by `build` the first time it is asked for in this process."""
        if name not in self._workers:
            self._workers[name] = build()
        worker: T = self._workers[name]
        return worker

    def _service(self, name: str, url: str) -> JsonHttpClient:
        from adapters.http.client import JsonHttpClient

        return JsonHttpClient(name, url, token=reveal(self.settings.service_token))

    @cached_property
    def campaigns(self) -> CampaignDirectory:
        return self._campaign_directory

    @cached_property
    def markets(self) -> CampaignMarkets:
        """The same directory as `campaigns` (one per process, with BAND_SECRET): wave prep used
        to build a second one without it."""
        return self._campaign_directory

    @cached_property
    def _campaign_directory(self) -> HttpCampaignDirectory | S3CampaignDirectory:
        s = self.settings
        if s.campaign_service_url:
            from adapters.http.campaigns import HttpCampaignDirectory

            client = self._service("campaign service", s.campaign_service_url)
            return HttpCampaignDirectory(client, band_secret=reveal(s.band_secret) or "")
        from adapters.campaign_config import S3CampaignDirectory

        return S3CampaignDirectory(
            self.store,
            s.scoring_bucket,
            prefix=s.campaign_config_prefix,
            band_secret=reveal(s.band_secret) or "",
        )

    @cached_property
    def schemas(self) -> AvroSchemas:
        from adapters.avro import AvroSchemas

        # zlib level 1: ~2 µs a record cheaper than 6 for files ~10 % bigger (benchmarks/).
        return AvroSchemas(compression_level=1)

    @cached_property
    def dead_letters(self) -> DeadLetters:
        from adapters.aws.sqs import SqsDeadLetters

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
            from adapters.http.users import HttpUserDirectory

            return HttpUserDirectory(self._service("user service", s.user_service_url))
        from adapters.aws.dynamo_entries import DynamoUserDirectory

        return DynamoUserDirectory(self.aws.client("dynamodb"), s.users_table)

    @cached_property
    def entries(self) -> EntryDirectory:
        s = self.settings
        if s.entry_service_url:
            from adapters.http.entries import HttpEntryDirectory

            return HttpEntryDirectory(self._service("entry service", s.entry_service_url))
        from adapters.aws.dynamo_entries import DynamoEntryDirectory

        return DynamoEntryDirectory(self.aws.client("dynamodb"), s.demand_table)

    # --- access codes (docs/access-codes.md) ---------------------------------------------------

    @cached_property
    def athena(self) -> AthenaQueryEngine:
        """One Athena orchestration for every worker that queries the lake (merge, wave prep)."""
        from adapters.aws.athena_engine import AthenaQueryEngine

        s = self.settings
        return AthenaQueryEngine(
            self.aws.client("athena"),
            self.aws.client("s3"),
            database=s.athena_database,
            output_location=s.athena_output or f"s3://{s.campaign_data_bucket}/athena-outputs/",
            workgroup=s.athena_workgroup,
        )

    @cached_property
    def code_inventory(self) -> CodeInventory:
        s = self.settings
        if s.code_service_url:
            from adapters.http.codes import HttpCodeInventory

            return HttpCodeInventory(self._service("code service", s.code_service_url))
        from adapters.aws.dynamo_codes import DynamoCodeInventory

        return DynamoCodeInventory(self.aws.client("dynamodb"), s.codes_table)

    @cached_property
    def code_issuer(self) -> CodeIssuer:
        s = self.settings
        if s.pacman_url:
            from adapters.http.async_json import AsyncJsonClient, LeanJsonHttpClient
            from adapters.http.codes import HttpCodeIssuer

            client: type[AsyncJsonClient] = LeanJsonHttpClient
            if s.pacman_transport == "aiohttp":
                from adapters.http.async_client import AsyncJsonHttpClient  # the fallback

                client = AsyncJsonHttpClient
            elif s.pacman_transport != "lean":
                raise SettingsError(
                    f"PACMAN_TRANSPORT must be lean or aiohttp, got {s.pacman_transport!r}"
                )
            # Kept for the process (a warm Lambda too): its event loop and keep-alive
            # connections serve every wave after the first.
            pacman = client(
                "pacman",
                s.pacman_url,
                token=reveal(s.service_token),
                max_connections=s.pacman_concurrency,
            )
            return HttpCodeIssuer(
                pacman,
                concurrency=s.pacman_concurrency,
                batch_deadline_seconds=s.batch_deadline_seconds,
            )
        from adapters.aws.dynamo_codes import DynamoCodeIssuer
        from adapters.code_generator import CodeGenerator

        return DynamoCodeIssuer(
            self._codes_dynamodb, s.codes_table, CodeGenerator(), concurrency=s.issue_concurrency
        )

    @cached_property
    def issued_codes(self) -> IssuedCodeLedger:
        from adapters.aws.dynamo_ledger import DynamoOnceLedger
        from domain.issued_codes import OnceIssuedCodes

        # The once-ledger's entries in the codes table (domain/issued_codes.py).
        once = DynamoOnceLedger(
            self._codes_dynamodb,
            self.settings.codes_table,
            concurrency=self.settings.issue_concurrency,
        )
        return OnceIssuedCodes(once, run_holder())

    @cached_property
    def _codes_dynamodb(self) -> Any:
        # One connection per thread issuing or recording codes, instead of waiting for a pool of 10.
        return self.aws.client("dynamodb", max_pool_connections=self.settings.issue_concurrency)

    def leases(
        self, bucket: str, prefix: str, subject: str, consequence: str, holder: str = ""
    ) -> ObjectLeases:
        """A run's lease on what it works on (one run at a time; docs/access-codes.md)."""
        from adapters.clock import SystemClock

        return ObjectLeases(
            self.store,
            bucket,
            prefix,
            holder=holder or run_holder(),
            clock=SystemClock(),
            seconds=self.settings.run_lease_seconds,
            subject=subject,
            consequence=consequence,
            liveness=self.process_liveness,
        )

    @cached_property
    def process_liveness(self) -> ProcessLiveness:
        """Proves a lease's holder dead (killed on this machine), so a re-run need not wait
        out its term (domain/lease.py)."""
        from adapters.process_liveness import ProcLiveness

        return ProcLiveness()

    @cached_property
    def wave_leases(self) -> ObjectLeases:
        return self.leases(
            self.settings.scoring_bucket,
            WAVE_LEASE_PREFIX,
            "wave {name}",
            "nothing was issued",
        )

    @cached_property
    def stream_leases(self) -> ObjectLeases:
        return self.leases(
            self.settings.scoring_bucket,
            STREAM_LEASE_PREFIX,
            "wave {name}",
            "nothing was streamed",
        )

    @cached_property
    def fanlist_leases(self) -> ObjectLeases:
        """translate_ranks_to_scores: one run at a time per fanlist upload."""
        return self.leases(
            self.settings.scoring_bucket,
            "fanlist/leases/",
            "fanlist upload {name}",
            "nothing was streamed",
        )

    def selection_turns(self, date_key: str) -> SelectionTurns:
        """A campaign's wave-prep selection lease, held by the wave of `date_key` (the refused
        wave is told which wave holds it, and where that run is; docs/wave-prep.md)."""
        leases = self.leases(
            self.settings.scoring_bucket,
            SELECTION_LEASE_PREFIX,
            "the fan selection of campaign {name}",
            "nothing was selected",
            holder=f"wave {date_key} on {run_holder()}",
        )
        wait = timedelta(seconds=self.settings.wave_prep_lease_wait_seconds)
        return SelectionTurns(leases, time.sleep, wait=wait)

    # --- the lake (docs/data-lake.md) ------------------------------------------------------------

    @cached_property
    def lake_layout(self) -> LakeLayout:
        from domain.lake import LakeLayout

        return LakeLayout(self.settings.campaign_data_bucket, self.settings.lake_archive_prefix)

    @cached_property
    def lake_compactor(self) -> AvroLakeCompactor:
        from adapters.lake_compactor import AvroLakeCompactor

        return AvroLakeCompactor(
            self.store, compression_level=1, abort_uploads=self._s3_store.abort_open_uploads
        )

    @cached_property
    def move_queue(self) -> SqsMoveQueue:
        from adapters.aws.sqs import SqsMoveQueue

        return SqsMoveQueue(self.aws.client("sqs"), self.settings.move_queue)

    @cached_property
    def merge_leases(self) -> ObjectLeases:
        return self.leases(
            self.settings.campaign_data_bucket,
            MERGE_LEASE_PREFIX,
            "the merge of {name}",
            "nothing was merged or queued",
        )

    @cached_property
    def chunk_transform(self) -> Callable[[TransformContext, Chunk], ChunkResult]:
        """SCORING_KERNEL: the scored-file transform, compiled kernel or Python (docs/kernel.md)."""
        from adapters.row_kernel import transform_for

        return transform_for(self.settings.scoring_kernel)

    @cached_property
    def lake_duplicates(self) -> AthenaDuplicates | None:
        """MERGE_ENGINE=athena: Athena names the repeated ids; embedded: the merge finds them."""
        from domain.lake_athena import AthenaDuplicates

        s = self.settings
        if s.merge_engine == "embedded":
            return None
        if s.merge_engine != "athena":
            raise ValueError(f"MERGE_ENGINE must be embedded or athena, got {s.merge_engine!r}")
        compactor = self.lake_compactor
        return AthenaDuplicates(
            self.athena, s.athena_database, self.lake_layout, compactor.projection_json
        )

    # --- wave prep (docs/wave-prep.md) -----------------------------------------------------------

    @cached_property
    def eligible_fans(self) -> EligibleFans:
        s = self.settings
        source = s.fan_source()
        if source == "entry_service":
            from adapters.http.eligible_fans import HttpEligibleFans

            assert s.entry_service_url is not None  # fan_source() checked it
            return HttpEligibleFans(self._service("entry service", s.entry_service_url))
        if source == "athena":
            from adapters.aws.athena_fans import AthenaEligibleFans

            return AthenaEligibleFans(self.athena)
        from adapters.aws.lake_fans import LakeEligibleFans

        # SCORING_KERNEL also picks the lake's Avro decoder (the same compiled kernel).
        return LakeEligibleFans(self.store, s.campaign_data_bucket, decoder=s.scoring_kernel)

    @cached_property
    def wave_status(self) -> S3WaveStatusStore:
        from adapters.aws.wave_prep import S3WaveStatusStore

        return S3WaveStatusStore(self.store, self.settings.scoring_bucket)

    @cached_property
    def reservation_ledger(self) -> S3ReservationLedger:
        from adapters.aws.wave_prep import S3ReservationLedger

        return S3ReservationLedger(self.store, self.settings.scoring_bucket)

    @cached_property
    def wave_package(self) -> ZipPackage:
        from adapters.wave_package import ZipPackage

        return ZipPackage(self.store)

    @cached_property
    def wave_selections(self) -> StoredWaveSelections:
        from adapters.wave_selections import StoredWaveSelections

        return StoredWaveSelections(self.store, self.settings.scoring_bucket)

    # --- sending a wave (docs/sending.md) --------------------------------------------------------

    @cached_property
    def sms_gateway(self) -> SmsGateway:
        """Texts by SMS_GATEWAY; botocore retries off (the send decides what goes again: a
        retried call that had reached the carrier texted a fan twice)."""
        from adapters.sms.gateways import (
            NO_RETRIES,
            EndUserMessagingGateway,
            LeanTmSmsGateway,
            SnsSmsGateway,
        )

        s = self.settings
        if s.sms_gateway == "end_user_messaging":
            if not s.sms_origination:
                raise SettingsError("SMS_GATEWAY=end_user_messaging needs SMS_ORIGINATION")
            if not s.sms_configuration_set:
                # Without one no delivery event is published: a text left `unknown` stays so.
                raise SettingsError(
                    "SMS_GATEWAY=end_user_messaging needs SMS_CONFIGURATION_SET (its event "
                    "destination feeds reconcile_sms_deliveries)"
                )
            client = self.aws.client(
                "pinpoint-sms-voice-v2", max_pool_connections=s.sms_max_in_flight, **NO_RETRIES
            )
            return EndUserMessagingGateway(
                client, s.sms_origination, configuration_set=s.sms_configuration_set
            )
        if s.sms_gateway == "sns":
            return SnsSmsGateway(
                self.aws.client("sns", max_pool_connections=s.sms_max_in_flight, **NO_RETRIES)
            )
        if s.sms_gateway == "tm":
            if not s.sms_service_url:
                raise SettingsError("SMS_GATEWAY=tm needs SMS_SERVICE_URL")
            # send_async on one event loop (AsyncTaskRunner), http.client per thread otherwise
            return LeanTmSmsGateway(s.sms_service_url, token=reveal(s.service_token) or "")
        raise SettingsError(
            f"SMS_GATEWAY must be end_user_messaging, sns or tm, got {s.sms_gateway!r}"
        )

    @cached_property
    def sms_emails(self) -> SqsEmailQueue:
        from adapters.aws.sqs import SqsEmailQueue

        return SqsEmailQueue(self.aws.client("sqs"), self.settings.sms_wave_email_queue)

    @cached_property
    def send_ledger(self) -> DynamoOnceLedger:
        """The once-ledger of a wave's texts and emails (LEDGER_TABLE)."""
        from adapters.aws.dynamo_ledger import DynamoOnceLedger

        # A connection per text in flight: each starts and finishes its own entry (with botocore's
        # 10, urllib3 dropped a connection per call past them: "Connection pool is full").
        s = self.settings
        client = self.aws.client("dynamodb", max_pool_connections=s.sms_max_in_flight)
        return DynamoOnceLedger(client, s.ledger_table)

    @cached_property
    def send_starter(self) -> SendStarter:
        """The scheduler's start of a send: Step Functions SMS_WAVE_STATE_MACHINE, else an
        async invoke of SMS_WAVE_SEND_FUNCTION, else (neither set) waves triggered and their
        sends not started."""
        machine = self.settings.sms_wave_state_machine
        if machine:
            from adapters.aws.step_functions import StepFunctionsSendStarter

            return StepFunctionsSendStarter(self.aws.client("stepfunctions"), machine)
        function = self.settings.sms_wave_send_function
        if function:
            from adapters.aws.lambda_invoke import LambdaInvokeSendStarter

            return LambdaInvokeSendStarter(self.aws.client("lambda"), function)
        return _NotStarting()

    def send_leases(self, holder: str) -> ObjectLeases:
        """One sender per wave. `holder` is the run's (also the owner of its ledger claims),
        not the process's: a later run in a warm Lambda must not pass for an earlier one."""
        return self.leases(
            self.settings.scoring_bucket,
            SEND_LEASE_PREFIX,
            "wave {name}",
            "nothing was sent",
            holder=holder,
        )

    @cached_property
    def open_campaigns(self) -> OpenCampaigns:
        """The same directory as `campaigns`: its open campaigns (save_stats, slack_stats)."""
        return self._campaign_directory

    @cached_property
    def lake_records(self) -> LakeRecords:
        from adapters.lake_records import AvroLakeRecords

        return AvroLakeRecords(self.store)

    @cached_property
    def notifier(self) -> Notifier:
        if self.settings.slack_webhook_url:
            from adapters.http.slack import SlackWebhookNotifier

            return SlackWebhookNotifier(self.settings.slack_webhook_url.reveal())
        from adapters.log_notifier import LogNotifier

        return LogNotifier()


class _NotStarting:
    """Neither a state machine nor a send function: waves triggered, their sends not started."""

    def start(self, wave_name: str) -> str:
        raise DependencyUnavailable(
            "SMS_WAVE_STATE_MACHINE", "not set (nor SMS_WAVE_SEND_FUNCTION): the send not started"
        )


@functools.cache
def container(settings: Settings) -> Container:
    """One container per distinct configuration for the life of the process (a warm Lambda
    reuses it, with its clients and connection pools, across invocations)."""
    return Container(settings)
