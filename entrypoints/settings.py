"""Settings from environment variables: the one place names, endpoints and secrets come in."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from adapters.aws.kinesis_limits import DEFAULT_MAX_IN_FLIGHT


class Secret:
    """A credential that shows as *** in repr, str, f-strings, `dataclasses.asdict(settings)`
    (which deep-copies it: a dataclass would have been opened into its value) and so in any
    log line, traceback or dump; `reveal()` is the one way to the value, for the adapter that
    sends it. issue 17: `asdict(settings)` held SERVICE_TOKEN, BAND_SECRET, SLACK_WEBHOOK_URL."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, _spec: str) -> str:
        return "***"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __deepcopy__(self, _memo: dict[int, Any]) -> Secret:
        return self

    def __reduce__(self) -> tuple[Any, ...]:  # pickling it would write the value out
        raise TypeError("a Secret is not pickled")


def reveal(secret: Secret | None) -> str | None:
    """The value of an optional secret, for the adapter that needs it."""
    return secret.reveal() if secret is not None else None


def _secret(env: Mapping[str, str], name: str) -> Secret | None:
    value = _get(env, name)
    return Secret(value) if value else None


class SettingsError(ValueError):
    """An environment variable that cannot be used as it is; the message names it."""


def _get(env: Mapping[str, str], name: str, default: str = "") -> str:
    return env.get(name, default).strip()


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = _get(env, name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise SettingsError(f"environment variable {name} must be a positive number, got {raw!r}")
    return value


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = _get(env, name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(
            f"environment variable {name} must be an integer, got {raw!r}"
        ) from None


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    """A whole number of at least 1. Every count, size and limit here: 0 rows a chunk would
    read nothing and call the file done, 0 calls in flight would wait forever, a 0-byte line
    bound would reject every row, 0 stale minutes would let a second trigger take over a live
    wave."""
    value = _int(env, name, default)
    if value < 1:
        raise SettingsError(f"environment variable {name} must be at least 1, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = _get(env, name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"environment variable {name} must be a number, got {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    """Hashable, so warm processes can keep one set of adapters per distinct configuration."""

    # The registered worker this process runs (entrypoints/registry.py): a Lambda function's
    # WORKER picks the worker its shared handler runs.
    worker: str | None = None
    region: str = "us-east-1"
    # AWS_ENDPOINT_URL points every service at one endpoint (the emulator, LocalStack);
    # AWS_ENDPOINT_URL_<SERVICE> (boto3's own convention) overrides it per service.
    endpoint_url: str | None = None
    service_endpoints: tuple[tuple[str, str], ...] = ()
    scoring_bucket: str = "vf-scoring"
    campaign_data_bucket: str = "campaign-data"
    input_stream: str = "vf1-input-stream"
    save_selection_stream: str = "save-selection-stream"
    # The original's code puts scored fans on its input stream (the Data Flow doc agrees; the
    # use-case doc says the save-selection stream): the lake archives them from there.
    scored_output_stream: str = "vf1-input-stream"
    blacklist_key: str = "blacklist/emails.txt"
    campaign_config_prefix: str = "campaigns/"
    campaign_service_url: str | None = None
    entry_service_url: str | None = None
    user_service_url: str | None = None
    # Secrets: masked wherever Settings shows (repr, asdict, `public()`, any log line or
    # traceback); a Slack webhook's URL is itself the credential.
    service_token: Secret | None = field(default=None, repr=False)
    slack_webhook_url: Secret | None = field(default=None, repr=False)
    band_secret: Secret | None = field(default=None, repr=False)
    dead_letter_queue: str = "campaign-workers-dlq"
    verdict_queue: str = "verdict-reporter-queue"
    demand_table: str = "demand-table"
    users_table: str = "users"
    # Per-shard checkpoints of the poller (when shared by several pollers) and the Kinesis
    # Lambda handler's per-shard watermarks (records at or below are never archived twice).
    checkpoint_table: str = "campaign-workers-checkpoints"
    # How long a stream runtime replays a failing batch before giving it up (streams/runtime.py).
    batch_deadline_seconds: float = 120.0
    # The term of a scored file's lease (domain/scoring/lease.py): how long a crashed run keeps
    # a re-run of the same file waiting; each put must finish within half of it.
    scored_file_lease_seconds: float = 120.0
    # Lines of a scored file a chunk: the transform's unit and one group of puts; memory holds
    # 4 chunks a pool process (benchmarks/README.md, "End to end").
    scored_file_chunk_rows: int = 2_000
    # Lines of a scored file a checkpoint (at least; whole chunks): fewer S3 writes and reads
    # than one a chunk, and a crash re-puts up to this many lines' records (consumers dedupe).
    scored_file_checkpoint_rows: int = 10_000
    # The term of a wave's codes lease, of a lake day's merge lease and of a campaign's wave-prep
    # selection lease (domain/lease.py): one run at a time; a killed run's lease is taken over
    # after this. Renewed between chunks / record types / fans, so one chunk, one type's merge
    # or one page of fans must finish within half of it.
    run_lease_seconds: float = 600.0
    # Access codes (docs/access-codes.md): the code service and Pacman over HTTP when their URLs
    # are set; otherwise the DynamoDB codes table holds the inventory and generates codes. The
    # issued-code ledger of generate_sms_wave_codes is always in that table.
    code_service_url: str | None = None
    pacman_url: str | None = None
    codes_table: str = "campaign-codes"
    # Pacman calls in flight while a wave's codes are issued, on one asyncio event loop (~20 ms
    # each; 100 allow ~5,000 codes/s, benchmarks/README.md "Wave codes").
    pacman_concurrency: int = 100
    # "lean" (httptools on asyncio) or "aiohttp", the fallback (docs/access-codes.md).
    pacman_transport: str = "lean"
    # Threads issuing codes from and recording them in the DynamoDB codes table.
    issue_concurrency: int = 32
    log_level: str = "INFO"
    # 0 = automatic: one process inside Lambda (no /dev/shm there, so no process pools),
    # every core elsewhere.
    transform_processes: int = 0
    # The scored-file transform: auto (the compiled kernel where built), rust, python
    # (adapters/row_kernel.py, docs/kernel.md).
    scoring_kernel: str = "auto"
    # A scored-file line longer than this is not a fan but garbage (a binary upload, a file
    # without line ends): refusing it keeps memory bounded.
    max_line_bytes: int = 64 * 1024 * 1024
    # Wave prep (docs/wave-prep.md). Codes: the code service when CODE_SERVICE_URL is set, else
    # the DynamoDB codes table (code_service_url and codes_table above, shared with the
    # access-code workers).
    # Where eligible fans come from: "entry_service" (needs ENTRY_SERVICE_URL), "lake" (the Avro
    # lake in CAMPAIGN_DATA_BUCKET, read on this machine) or "athena" (the same lake queried in
    # Athena); empty = the entry service when its URL is set, else the lake.
    wave_fan_source: str = ""
    athena_database: str = "campaign_lake"
    athena_workgroup: str = "primary"
    # Empty = s3://{CAMPAIGN_DATA_BUCKET}/athena-outputs/ (the original's output prefix).
    athena_output: str = ""
    wave_reserve_batch: int = 20_000
    # A TRIGGERED wave older than this is a run that died (Lambda's longest timeout is 15 min).
    wave_stale_minutes: int = 15
    # How long a wave waits for another wave of its campaign to finish selecting (at most half
    # of a Lambda's remaining time) before it is refused as busy, its attempt not spent.
    wave_prep_lease_wait_seconds: float = 300.0
    # The data lake's compaction (docs/data-lake.md): merge_avro_files queues each merged prefix
    # on MOVE_QUEUE for move_merged_avro_files, which archives the sources under
    # LAKE_ARCHIVE_PREFIX. The guards refuse a merge past them. Memory is flat in both bytes and
    # records: the dedupe keys spill to disk (24 B each, in TMPDIR) past MERGE_KEYS_IN_MEMORY, so
    # MERGE_MAX_RECORDS guards that disk. MERGE_ENGINE=athena has Athena find the repeated ids.
    move_queue: str = "campaign-workers-move-merged-avro"
    lake_archive_prefix: str = "avro/archived/"
    merge_max_bytes: int = 50 * 1024**3
    merge_max_records: int = 10_000_000
    merge_keys_in_memory: int = 500_000
    merge_engine: str = "embedded"

    def fan_source(self) -> str:
        source = self.wave_fan_source or ("entry_service" if self.entry_service_url else "lake")
        if source not in ("entry_service", "lake", "athena"):
            raise SettingsError(
                f"WAVE_FAN_SOURCE must be entry_service, lake or athena: {source!r}"
            )
        if source == "entry_service" and not self.entry_service_url:
            raise SettingsError("WAVE_FAN_SOURCE=entry_service needs ENTRY_SERVICE_URL")
        return source

    # Sending a wave (docs/sending.md): the once-ledger's DynamoDB table, the SMS gateway
    # ("end_user_messaging" from SMS_ORIGINATION, "sns", or "tm" at SMS_SERVICE_URL), the email
    # queue, the calls in flight and the rate in message parts a second (0 = no limit), and the
    # scheduler's state machine (empty: the scheduler triggers waves without starting them).
    ledger_table: str = "campaign-workers-once"
    sms_gateway: str = "end_user_messaging"
    sms_origination: str = ""
    # The End User Messaging configuration set every text names: its event destination carries
    # the delivery events reconcile_sms_deliveries settles `unknown` texts from.
    sms_configuration_set: str = ""
    sms_service_url: str | None = None
    sms_wave_email_queue: str = "sms-wave-email-queue"
    sms_max_in_flight: int = 200
    sms_parts_per_second: float = 100.0
    sms_wave_state_machine: str = ""
    sms_wave_send_function: str = ""
    # The queue End User Messaging's delivery events reach (reconcile_sms_deliveries' trigger).
    sms_events_queue: str = "sms-delivery-events"

    # PutRecords calls in flight per producer (1: serial); records of one partition key keep
    # their order whatever the number.
    kinesis_max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    # Pace puts to each shard's 1,000 records/s and 1 MiB/s, at this share of the limits
    # (0 = off: throttled entries are resent with backoff instead). Off by default: it counts
    # only this process's own traffic.
    kinesis_pacing: float = 0.0
    # How the producer builds PutRecords: "lean" (orjson body, one SigV4 signature; a third of
    # botocore's CPU a record) or "botocore" (the client's own call, model-validated).
    kinesis_put_request: str = "lean"
    # translate_ranks_to_scores' output (the original's fanlistRanksStream).
    fanlist_ranks_stream: str = "fanlist-ranks-stream"
    # save_stats' objects `{prefix}{campaignId}.json` in the scoring bucket (docs/stats.md).
    stats_prefix: str = "stats/"

    def public(self) -> dict[str, Any]:
        """Every setting by name, safe to log or print: a secret that is set shows as ***."""
        shown: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            shown[item.name] = str(value) if isinstance(value, Secret) else value
        return shown

    def endpoint_for(self, service: str) -> str | None:
        return dict(self.service_endpoints).get(service) or self.endpoint_url

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        d = cls()
        services = ("s3", "kinesis", "sqs", "dynamodb", "sns", "athena", "stepfunctions", "lambda")
        return cls(
            worker=_get(env, "WORKER") or None,
            region=_get(env, "AWS_REGION") or _get(env, "AWS_DEFAULT_REGION") or d.region,
            endpoint_url=_get(env, "AWS_ENDPOINT_URL") or None,
            service_endpoints=tuple(
                (s, v) for s in services if (v := _get(env, f"AWS_ENDPOINT_URL_{s.upper()}"))
            ),
            scoring_bucket=_get(env, "SCORING_BUCKET", d.scoring_bucket),
            campaign_data_bucket=_get(env, "CAMPAIGN_DATA_BUCKET", d.campaign_data_bucket),
            input_stream=_get(env, "INPUT_STREAM", d.input_stream),
            save_selection_stream=_get(env, "SAVE_SELECTION_STREAM", d.save_selection_stream),
            scored_output_stream=_get(
                env, "SCORED_OUTPUT_STREAM", _get(env, "INPUT_STREAM", d.input_stream)
            ),
            blacklist_key=_get(env, "BLACKLIST_KEY", d.blacklist_key),
            campaign_config_prefix=_get(env, "CAMPAIGN_CONFIG_PREFIX", d.campaign_config_prefix),
            campaign_service_url=_get(env, "CAMPAIGN_SERVICE_URL") or None,
            entry_service_url=_get(env, "ENTRY_SERVICE_URL") or None,
            user_service_url=_get(env, "USER_SERVICE_URL") or None,
            service_token=_secret(env, "SERVICE_TOKEN"),
            slack_webhook_url=_secret(env, "SLACK_WEBHOOK_URL"),
            band_secret=_secret(env, "BAND_SECRET"),
            dead_letter_queue=_get(env, "DEAD_LETTER_QUEUE", d.dead_letter_queue),
            verdict_queue=_get(env, "VERDICT_QUEUE", d.verdict_queue),
            demand_table=_get(env, "DEMAND_TABLE", d.demand_table),
            users_table=_get(env, "USERS_TABLE", d.users_table),
            checkpoint_table=_get(env, "CHECKPOINT_TABLE", d.checkpoint_table),
            batch_deadline_seconds=_seconds(
                env, "BATCH_DEADLINE_SECONDS", d.batch_deadline_seconds
            ),
            scored_file_lease_seconds=_seconds(
                env, "SCORED_FILE_LEASE_SECONDS", d.scored_file_lease_seconds
            ),
            scored_file_chunk_rows=_count(env, "SCORED_FILE_CHUNK_ROWS", d.scored_file_chunk_rows),
            scored_file_checkpoint_rows=_count(
                env, "SCORED_FILE_CHECKPOINT_ROWS", d.scored_file_checkpoint_rows
            ),
            run_lease_seconds=_seconds(env, "RUN_LEASE_SECONDS", d.run_lease_seconds),
            code_service_url=_get(env, "CODE_SERVICE_URL") or None,
            pacman_url=_get(env, "PACMAN_URL") or None,
            codes_table=_get(env, "CODES_TABLE", d.codes_table),
            pacman_concurrency=_count(env, "PACMAN_CONCURRENCY", d.pacman_concurrency),
            pacman_transport=_get(env, "PACMAN_TRANSPORT", d.pacman_transport).lower(),
            issue_concurrency=_count(env, "ISSUE_CONCURRENCY", d.issue_concurrency),
            log_level=_get(env, "LOG_LEVEL", d.log_level),
            transform_processes=_int(env, "TRANSFORM_PROCESSES", 0),
            scoring_kernel=_get(env, "SCORING_KERNEL", d.scoring_kernel).lower(),
            max_line_bytes=_count(env, "MAX_LINE_BYTES", d.max_line_bytes),
            wave_fan_source=_get(env, "WAVE_FAN_SOURCE").lower(),
            athena_database=_get(env, "ATHENA_DATABASE", d.athena_database),
            athena_workgroup=_get(env, "ATHENA_WORKGROUP", d.athena_workgroup),
            athena_output=_get(env, "ATHENA_OUTPUT"),
            wave_reserve_batch=_count(env, "WAVE_RESERVE_BATCH", d.wave_reserve_batch),
            wave_stale_minutes=_count(env, "WAVE_STALE_MINUTES", d.wave_stale_minutes),
            wave_prep_lease_wait_seconds=_seconds(
                env, "WAVE_PREP_LEASE_WAIT_SECONDS", d.wave_prep_lease_wait_seconds
            ),
            move_queue=_get(env, "MOVE_QUEUE", d.move_queue),
            lake_archive_prefix=_get(env, "LAKE_ARCHIVE_PREFIX", d.lake_archive_prefix),
            merge_max_bytes=_count(env, "MERGE_MAX_BYTES", d.merge_max_bytes),
            merge_max_records=_count(env, "MERGE_MAX_RECORDS", d.merge_max_records),
            merge_keys_in_memory=_count(env, "MERGE_KEYS_IN_MEMORY", d.merge_keys_in_memory),
            merge_engine=_get(env, "MERGE_ENGINE", d.merge_engine).lower(),
            kinesis_max_in_flight=_count(env, "KINESIS_MAX_IN_FLIGHT", d.kinesis_max_in_flight),
            kinesis_pacing=_float(env, "KINESIS_PACING", d.kinesis_pacing),
            kinesis_put_request=_get(env, "KINESIS_PUT_REQUEST", d.kinesis_put_request).lower(),
            ledger_table=_get(env, "LEDGER_TABLE", d.ledger_table),
            sms_gateway=_get(env, "SMS_GATEWAY", d.sms_gateway).lower(),
            sms_origination=_get(env, "SMS_ORIGINATION"),
            sms_configuration_set=_get(env, "SMS_CONFIGURATION_SET"),
            sms_service_url=_get(env, "SMS_SERVICE_URL") or None,
            sms_wave_email_queue=_get(env, "SMS_WAVE_EMAIL_QUEUE", d.sms_wave_email_queue),
            sms_max_in_flight=_count(env, "SMS_MAX_IN_FLIGHT", d.sms_max_in_flight),
            sms_parts_per_second=_float(env, "SMS_PARTS_PER_SECOND", d.sms_parts_per_second),
            sms_wave_state_machine=_get(env, "SMS_WAVE_STATE_MACHINE"),
            sms_wave_send_function=_get(env, "SMS_WAVE_SEND_FUNCTION"),
            fanlist_ranks_stream=_get(env, "FANLIST_RANKS_STREAM", d.fanlist_ranks_stream),
            stats_prefix=_get(env, "STATS_PREFIX", d.stats_prefix),
            sms_events_queue=_get(env, "SMS_EVENTS_QUEUE", d.sms_events_queue),
        )

    def processes_for_transform(self, in_lambda: bool | None = None) -> int:
        if self.transform_processes > 0:
            return self.transform_processes
        if in_lambda is None:
            in_lambda = bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))
        return 1 if in_lambda else max(1, os.cpu_count() or 1)
