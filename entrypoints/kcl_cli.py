"""`campaign-workers kcl properties|run <worker>`: the daemon's properties; the daemon, supervised.

Facts this module is built on (KCL 3.1.3 multilang, measured against the embedded emulator):
- The daemon's Kinesis client speaks HTTP/2 only: against the emulator `kinesisEndpoint` must be
  its h2c listener (local.emulator_h2c); DynamoDB may stay on HTTP/1.1.
- The Java SDK sends CBOR to Kinesis unless started with -Daws.cborEnabled=false; moto reads JSON.
- When a child process dies the daemon does not restart it: it exits with code 1. The supervisor
  here waits for that JVM to exit, then starts a new one with the same workerId, which takes its
  leases back within a few seconds (a new id would wait out the old leases).
- SIGTERM runs the processors' shutdown_requested (and so their checkpoints) only when
  shutdownGraceMillis is set.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from entrypoints import registry
from entrypoints.settings import Settings

_log = logging.getLogger(__name__)

DAEMON_CLASS = "software.amazon.kinesis.multilang.MultiLangDaemon"

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


def jar_directory() -> Path:
    """Where amazon-kclpy keeps the daemon's jars (installed by `make kcl`)."""
    try:
        import amazon_kclpy
    except ImportError as missing:
        raise RuntimeError("amazon-kclpy is not installed: run `make kcl`") from missing
    jars = Path(amazon_kclpy.__file__).parent / "jars"
    if not any(jars.glob("*.jar")):
        raise RuntimeError(f"no jars in {jars}: reinstall amazon-kclpy with `make kcl`")
    return jars


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


def _is_local(url: str | None) -> bool:
    if not url:
        return False
    host = url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
    return host in {"localhost", "127.0.0.1", "::1", "[::1]", "localstack"}


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
        local=_is_local(kinesis) or _is_local(dynamodb),
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


def daemon_command(properties: Path, *, java: str = "java") -> list[str]:
    jars = jar_directory()
    classpath = os.pathsep.join([str(jars / "*"), str(properties.parent)])
    return [
        java,
        # moto (and LocalStack's Kinesis emulation in some versions) cannot read CBOR.
        "-Daws.cborEnabled=false",
        f"-Dlogback.configurationFile={properties.parent / 'logback.xml'}",
        "-cp",
        classpath,
        DAEMON_CLASS,
        "--properties-file",
        str(properties),
    ]


def daemon_environment(settings: Settings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for the daemon and (inherited) its children."""
    env = dict(os.environ if base is None else base)
    if _is_local(settings.endpoint_for("kinesis")) or _is_local(settings.endpoint_for("dynamodb")):
        # The emulator accepts any credentials, but the SDK's default chain wants some.
        env.setdefault("AWS_ACCESS_KEY_ID", "testing")
        env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    env.setdefault("AWS_REGION", settings.region)
    # The children must import this project whatever directory the daemon runs them from.
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class DaemonSupervisor:
    """Runs the daemon; restarts it (same workerId) when it exits because a child died.

    Bounded: more than `max_restarts` restarts within `restart_window_seconds` means something is
    broken for good (a worker that crashes on every batch), and the supervisor gives up with the
    daemon's exit code rather than spinning.
    """

    command: Sequence[str]
    env: Mapping[str, str] | None = None
    max_restarts: int = 5
    restart_window_seconds: float = 300.0
    restart_delay_seconds: float = 1.0
    stdout: IO[Any] | int | None = None
    stderr: IO[Any] | int | None = None
    starts: int = 0
    exit_codes: list[int] = field(default_factory=list)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def run(self) -> int:
        recent_restarts: list[float] = []
        while True:
            with self._lock:
                if self._stopping.is_set():
                    return 0
                self._process = subprocess.Popen(
                    list(self.command),
                    env=dict(self.env) if self.env is not None else None,
                    stdin=subprocess.DEVNULL,
                    stdout=self.stdout,
                    stderr=self.stderr,
                )
                self.starts += 1
            _log.info("daemon started (pid %d, start %d)", self._process.pid, self.starts)
            # Waiting for the old JVM to be gone before starting the next one: two daemons
            # with one workerId would fight over the same leases.
            code = self._process.wait()
            self.exit_codes.append(code)
            if self._stopping.is_set():
                _log.info("daemon stopped on request (exit %d)", code)
                return code
            if code == 0:
                return 0
            now = time.monotonic()
            recent_restarts = [t for t in recent_restarts if now - t < self.restart_window_seconds]
            if len(recent_restarts) >= self.max_restarts:
                _log.error(
                    "daemon exited %d; %d restarts within %.0f s already: giving up",
                    code,
                    len(recent_restarts),
                    self.restart_window_seconds,
                )
                return code
            recent_restarts.append(now)
            _log.warning("daemon exited %d (a record processor died); restarting", code)
            if self._stopping.wait(self.restart_delay_seconds):
                return code

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM to the daemon (processors get shutdown_requested), then wait for it."""
        with self._lock:
            self._stopping.set()
            process = self._process
        if process is None or process.poll() is not None:
            return None if process is None else process.returncode
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            _log.error("daemon pid %d ignored SIGTERM for %.0f s; killing it", process.pid, timeout)
            process.kill()
            return process.wait()


# --- CLI ---------------------------------------------------------------------------------------


def _settings_and_config(args: argparse.Namespace) -> tuple[Settings, DaemonConfig]:
    settings = Settings.from_env()
    config = daemon_config(
        args.worker,
        settings,
        kinesis_endpoint=args.kinesis_endpoint,
        application=args.application,
        worker_id=args.worker_id,
        shutdown_grace_millis=args.shutdown_grace_millis,
    )
    return settings, config


def _properties(args: argparse.Namespace) -> int:
    _settings, config = _settings_and_config(args)
    path = write_properties(config, Path(args.directory))
    print(path)
    return 0


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO)
    settings, config = _settings_and_config(args)
    try:
        path = write_properties(config, Path(args.directory))
        command = daemon_command(path, java=args.java)
    except RuntimeError as missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    env = daemon_environment(settings)
    if config.local and not args.no_prime_leases:
        _prime_local_leases(settings, config, env)
    supervisor = DaemonSupervisor(command, env=env, max_restarts=args.max_restarts)

    def forward(_signum: int, _frame: object) -> None:
        threading.Thread(target=supervisor.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return supervisor.run()


def _prime_local_leases(settings: Settings, config: DaemonConfig, env: Mapping[str, str]) -> None:
    import boto3

    def client(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=settings.endpoint_for(service),
            region_name=settings.region,
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
        )

    added = prime_lease_table(
        client("dynamodb"), client("kinesis"), application=config.application, stream=config.stream
    )
    _log.info("lease table %s primed with %d new leases", config.application, added)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("worker", help="save_campaign_data | transform_code_assignments | ...")
    parser.add_argument("--directory", default=".kcl", help="where the properties go (.kcl)")
    parser.add_argument(
        "--kinesis-endpoint",
        help="the daemon's Kinesis endpoint; it must speak HTTP/2 (the emulator's h2c door)",
    )
    parser.add_argument("--application", help="KCL application (lease table) name")
    parser.add_argument("--worker-id", help="fixed worker id (default: worker@host)")
    parser.add_argument("--shutdown-grace-millis", type=int, default=10_000)


def register(subparsers: Any) -> None:
    """Adds `kcl properties <worker>` and `kcl run <worker>` to the campaign-workers CLI."""
    kcl = subparsers.add_parser("kcl", help="run stream workers under the KCL MultiLangDaemon")
    actions = kcl.add_subparsers(dest="kcl_command", required=True)
    properties = actions.add_parser("properties", help="write the daemon's properties file")
    _common(properties)
    properties.set_defaults(run=_properties)
    run = actions.add_parser("run", help="start the MultiLangDaemon, supervised")
    _common(run)
    run.add_argument("--java", default="java")
    run.add_argument("--max-restarts", type=int, default=5)
    run.add_argument(
        "--no-prime-leases",
        action="store_true",
        help="against a local endpoint, do not pre-create the lease table (saves 0-30 s)",
    )
    run.set_defaults(run=_run)


def prime_lease_table(
    dynamodb: Any, kinesis: Any, *, application: str, stream: str, position: str = "TRIM_HORIZON"
) -> int:
    """Creates the KCL lease table with one unowned lease per open shard; returns leases added.

    Why: a KCL 3 worker that finds the lease table empty waits a random 0-30 s (checking every
    3 s) before it syncs shards into leases, so every cold start against a fresh emulator costs
    up to half a minute. A lease row already there skips that wait. Rows are written only if
    absent, so existing checkpoints are never touched; the KCL adds its own index and fields.
    """
    try:
        dynamodb.create_table(
            TableName=application,
            KeySchema=[{"AttributeName": "leaseKey", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "leaseKey", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.get_waiter("table_exists").wait(TableName=application)
    except dynamodb.exceptions.ResourceInUseException:
        pass  # the table is there already: leave its leases (and checkpoints) alone
    added = 0
    pages = kinesis.get_paginator("list_shards").paginate(StreamName=stream)
    for page in pages:
        for shard in page["Shards"]:
            if shard.get("SequenceNumberRange", {}).get("EndingSequenceNumber"):
                continue  # closed shards: the KCL's own shard sync handles lineage
            item = {
                "leaseKey": {"S": shard["ShardId"]},
                "checkpoint": {"S": position},
                "checkpointSubSequenceNumber": {"N": "0"},
                "leaseCounter": {"N": "0"},
                "ownerSwitchesSinceCheckpoint": {"N": "0"},
                "startingHashKey": {"S": shard["HashKeyRange"]["StartingHashKey"]},
                "endingHashKey": {"S": shard["HashKeyRange"]["EndingHashKey"]},
            }
            if shard.get("ParentShardId"):
                item["parentShardId"] = {"SS": [shard["ParentShardId"]]}
            try:
                dynamodb.put_item(
                    TableName=application,
                    Item=item,
                    ConditionExpression="attribute_not_exists(leaseKey)",
                )
                added += 1
            except dynamodb.exceptions.ConditionalCheckFailedException:
                pass
    return added
