"""The MultiLangDaemon's properties file, rendered from Settings plus a few choices.

Facts it is built on (KCL 3.1.3 multilang, measured against the embedded emulator):
- The daemon's Kinesis client speaks HTTP/2 only: against the emulator `kinesisEndpoint` must be
  its h2c listener (local.emulator_h2c); DynamoDB may stay on HTTP/1.1.
- SIGTERM runs the processors' shutdown_requested (and so their checkpoints) only when
  shutdownGraceMillis is set.
- Local endpoints get POLLING retrieval (no SubscribeToShard), no metrics, and short lease
  intervals (LOCAL_TUNING).
"""

from __future__ import annotations

import shlex
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from adapters.aws.clients import is_local_endpoint
from entrypoints import registry
from entrypoints.settings import Settings

# Local runs (emulator, LocalStack): short lease and assignment intervals, so a cold start takes
# seconds instead of the 20-65 s the defaults give, and a restarted worker is back at once.
LOCAL_TUNING: Mapping[str, str] = {
    "failoverTimeMillis": "3000",
    "leaseAssignmentIntervalMillis": "1000",
    "workerMetricsReporterFreqInMillis": "1000",
    "shardSyncIntervalMillis": "5000",
    "parentShardPollIntervalMillis": "1000",
    "idleTimeBetweenReadsInMillis": "250",
    "taskBackoffTimeMillis": "250",
    "listShardsBackoffTimeInMillis": "250",
}

LOGBACK_XML = """<configuration>
  <appender name="STDERR" class="ch.qos.logback.core.ConsoleAppender">
    <target>System.err</target>
    <encoder><pattern>%d{HH:mm:ss.SSS} %-5level %logger{36} - %msg%n</pattern></encoder>
  </appender>
  <logger name="software.amazon.awssdk" level="WARN"/>
  <logger name="io.netty" level="WARN"/>
  <root level="{level}"><appender-ref ref="STDERR"/></root>
</configuration>
"""


def default_worker_id(worker: str) -> str:
    # Fixed per host and worker, so a restarted daemon takes back its own leases at once.
    return f"{worker.replace(':', '.')}@{socket.gethostname()}"


@dataclass(frozen=True)
class DaemonConfig:
    """Everything the daemon's properties file says, derived from Settings plus a few choices."""

    worker: str
    stream: str
    application: str
    region: str
    worker_id: str
    executable: str
    kinesis_endpoint: str | None = None
    dynamodb_endpoint: str | None = None
    local: bool = False
    shutdown_grace_millis: int = 10_000
    max_records: int = 1000
    initial_position: str = "TRIM_HORIZON"
    extra: Mapping[str, str] = field(default_factory=dict)

    def properties(self) -> dict[str, str]:
        values = {
            "executableName": self.executable,
            "streamName": self.stream,
            "applicationName": self.application,
            "workerId": self.worker_id,
            "regionName": self.region,
            "AwsCredentialsProvider": "DefaultCredentialsProvider",
            "processingLanguage": f"python/{sys.version_info.major}.{sys.version_info.minor}",
            "initialPositionInStream": self.initial_position,
            "maxRecords": str(self.max_records),
            # Without it SIGTERM stops the daemon without calling shutdown_requested.
            "shutdownGraceMillis": str(self.shutdown_grace_millis),
        }
        if self.kinesis_endpoint:
            values["kinesisEndpoint"] = self.kinesis_endpoint
        if self.dynamodb_endpoint:
            values["dynamoDBEndpoint"] = self.dynamodb_endpoint
        if self.local:
            # The emulator has no SubscribeToShard (fan-out) and no CloudWatch worth writing to.
            values["retrievalMode"] = "POLLING"
            values["metricsLevel"] = "NONE"
            values.update(LOCAL_TUNING)
        values.update(self.extra)
        return values

    def render(self) -> str:
        lines = [f"# MultiLangDaemon properties for {self.worker} (written by campaign-workers)"]
        lines += [f"{key} = {value}" for key, value in self.properties().items()]
        return "\n".join(lines) + "\n"


def daemon_config(
    worker: str,
    settings: Settings,
    *,
    kinesis_endpoint: str | None = None,
    application: str | None = None,
    worker_id: str | None = None,
    python: str = sys.executable,
    shutdown_grace_millis: int = 10_000,
    extra: Mapping[str, str] | None = None,
    stream: str | None = None,
    child_main: str = "entrypoints.kcl_main",
) -> DaemonConfig:
    """The daemon config for `worker`; `kinesis_endpoint` overrides the settings (the h2c door).

    `stream` defaults to the registered worker's; `child_main` is the module the daemon runs per
    shard (tests pass tests.support.kcl_child, which serves their probe workers)."""
    stream = stream or registry.stream_of(worker, settings)
    kinesis = kinesis_endpoint or settings.endpoint_for("kinesis")
    dynamodb = settings.endpoint_for("dynamodb")
    executable = shlex.join([python, "-m", child_main, worker, "--stream", stream])
    return DaemonConfig(
        worker=worker,
        stream=stream,
        application=application or f"campaign-workers-{worker.replace(':', '-').replace('.', '-')}",
        region=settings.region,
        worker_id=worker_id or default_worker_id(worker),
        executable=executable,
        kinesis_endpoint=kinesis,
        dynamodb_endpoint=dynamodb,
        local=is_local_endpoint(kinesis) or is_local_endpoint(dynamodb),
        shutdown_grace_millis=shutdown_grace_millis,
        extra=dict(extra or {}),
    )


def write_properties(config: DaemonConfig, directory: Path, *, log_level: str = "INFO") -> Path:
    """Writes `<worker>.properties` and a logback.xml (daemon logs to stderr) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{config.application}.properties"
    temporary = path.with_suffix(".tmp")
    temporary.write_text(config.render(), encoding="utf-8")
    temporary.replace(path)
    (directory / "logback.xml").write_text(
        LOGBACK_XML.replace("{level}", log_level.upper()), encoding="utf-8"
    )
    return path
