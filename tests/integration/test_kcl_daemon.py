"""The real MultiLangDaemon (Java 17, KCL 3) against the embedded emulator.

Kinesis goes through the emulator's h2c listener (the KCL's Kinesis client speaks only HTTP/2),
DynamoDB (leases) through moto's HTTP/1.1 server. The records are handled by the probe worker
(tests.support.kcl_probe), which names each stored batch after its first record the way the
lake does, so the store shows exactly-once delivery directly: every sequence number once.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("amazon_kclpy")

from adapters.aws.clients import ClientFactory
from domain.backoff import Backoff
from domain.records import DEDUPE_FIELD, RecordType, formatted
from entrypoints.kcl_cli import (
    DaemonConfig,
    DaemonSupervisor,
    daemon_command,
    daemon_config,
    daemon_environment,
    jar_directory,
    prime_lease_table,
    prime_local_leases,
    write_properties,
)
from entrypoints.settings import Settings
from local.emulator_h2c import H2cListener, start_h2c_listener
from tests.support import kcl_child
from tests.support.kcl_lake import (
    dead_letter_counts,
    dead_lettered_sequence_numbers,
    lake_dedupe_ids,
)
from tests.support.kcl_probe import stored_sequence_numbers
from tests.support.stream_records import raw, sample_record
from tests.support.tcp_proxy import OutageProxy

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("java") is None, reason="the MultiLangDaemon needs java"),
]

RECORDS = 10_000
POISON = b"\xff\xfe not json, not utf-8"


@pytest.fixture(scope="module")
def h2c(emulator: Any) -> Iterator[H2cListener]:
    listener = start_h2c_listener(emulator.server)
    yield listener
    listener.stop()


def _mixed_payloads(count: int, start: int = 0) -> list[bytes]:
    types = list(RecordType)
    payloads = []
    for n in range(start, start + count):
        if n % 101 == 50:
            payloads.append(POISON)  # poison rides along too
        else:
            payloads.append(raw(sample_record(types[n % len(types)], n)))
    return payloads


Placed = dict[tuple[str, str], bytes]  # (shard, sequence number) -> data


def _put(
    kinesis: Any,
    stream: str,
    payloads: list[bytes],
    offset: int = 0,
    key: Callable[[int], str] = "fan-{}".format,
) -> Placed:
    """Puts the payloads, the n-th (from `offset`) under partition key `key(n)`."""
    placed: Placed = {}
    for start in range(0, len(payloads), 500):
        chunk = payloads[start : start + 500]
        entries = [
            {"Data": data, "PartitionKey": key(offset + start + i)} for i, data in enumerate(chunk)
        ]
        answer = kinesis.put_records(StreamName=stream, Records=entries)
        assert answer["FailedRecordCount"] == 0
        for data, result in zip(chunk, answer["Records"], strict=True):
            placed[(result["ShardId"], result["SequenceNumber"])] = data
    return placed


class _ProbeStore:
    """The probe's store: one object per batch listing its records' sequence numbers."""

    worker = "probe"

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3, self.bucket = s3, bucket

    def progress(self) -> int:
        return len(set(stored_sequence_numbers(self.s3, self.bucket)))

    def assert_exactly_once(self, placed: Placed, *, dead_letters: bool) -> None:
        copies = Counter(stored_sequence_numbers(self.s3, self.bucket))
        assert set(copies) == set(placed), "records lost (or foreign ones stored)"
        assert [item for item, n in copies.items() if n > 1] == [], "records stored twice"


class _LakeStore:
    """save_campaign_data's Avro lake (by dedupe id) and its dead-letter queue."""

    worker = "lake"

    def __init__(self, s3: Any, bucket: str, sqs: Any, queue_url: str) -> None:
        self.s3, self.bucket, self.sqs, self.queue_url = s3, bucket, sqs, queue_url

    def progress(self) -> int:
        """Distinct records in the lake (poison never gets there)."""
        return len(lake_dedupe_ids(self.s3, self.bucket))

    def assert_exactly_once(self, placed: Placed, *, dead_letters: bool) -> None:
        good = {key: data for key, data in placed.items() if data != POISON}
        expected = Counter(formatted(json.loads(data))[DEDUPE_FIELD] for data in good.values())
        assert max(expected.values()) == 1, "the test's records must differ from each other"
        in_lake = lake_dedupe_ids(self.s3, self.bucket)
        assert set(in_lake) == set(expected), "records lost from (or foreign ones in) the lake"
        assert [item for item, n in in_lake.items() if n > 1] == [], "records in the lake twice"
        if not dead_letters:
            return  # read the queue once, at the end: reading hides messages for a while
        poison = {key for key, data in placed.items() if data == POISON}
        # Dead letters are at least once (a replayed batch sends its letters again): none lost.
        assert dead_lettered_sequence_numbers(self.sqs, self.queue_url) == poison


def _wait_until(condition: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    tail = log.read_text(errors="replace").splitlines()[-60:] if log.exists() else []
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n" + "\n".join(tail))


def _children(pid: int | None) -> list[int]:
    """Record-processor processes of the daemon (children of the JVM we started)."""
    if pid is None:
        return []
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _initialized_since_last_start(log: Path) -> int:
    text = log.read_text(errors="replace")
    latest = text.rsplit("MultiLangDaemonConfig - Using workerId", 1)[-1]
    return latest.count('"responseFor":"initialize"')


QUICK_RESTARTS = Backoff(base_seconds=0.2, cap_seconds=0.2, retries=10**6)


class _Daemon:
    """One supervised daemon run in a background thread, its log in a file."""

    def __init__(
        self,
        command: list[str],
        env: dict[str, str],
        log: Path,
        restart_backoff: Backoff = QUICK_RESTARTS,
    ) -> None:
        self.log_file = log.open("ab")
        self.supervisor = DaemonSupervisor(
            command,
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            restart_backoff=restart_backoff,
        )
        self.result: list[int] = []
        self.thread = threading.Thread(
            target=lambda: self.result.append(self.supervisor.run()), daemon=True
        )
        self.thread.start()

    def stop(self) -> int | None:
        code = self.supervisor.stop(timeout=60)
        self.thread.join(60)
        self.log_file.close()
        return code


def _consumer_env(emulator: Any, stream: str, bucket: str, **extra: str) -> dict[str, str]:
    """The consumer's environment on the emulator: its stream and lake bucket, then `extra`."""
    return {
        **os.environ,
        "AWS_ENDPOINT_URL": emulator.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "INPUT_STREAM": stream,
        "CAMPAIGN_DATA_BUCKET": bucket,
        **extra,
    }


@dataclass(frozen=True)
class _Consumer:
    """A daemon's settings, config and command line for one test's stream and worker."""

    settings: Settings
    config: DaemonConfig
    command: list[str]

    def environment(self, env: dict[str, str]) -> dict[str, str]:
        return daemon_environment(self.settings, env)


def _consumer(
    worker: str, env: dict[str, str], h2c: H2cListener, name: str, tmp_path: Path, batch: int
) -> _Consumer:
    """Application `kcl-{name}-{stream}`, worker id `kcl-{name}-worker`, `batch` records a
    GetRecords, 5 s to checkpoint on SIGTERM, the test KCL child."""
    settings = Settings.from_env(env)
    stream = env["INPUT_STREAM"]
    config = daemon_config(
        worker,
        settings,
        kinesis_endpoint=h2c.url,
        application=f"kcl-{name}-{stream}",
        worker_id=f"kcl-{name}-worker",
        shutdown_grace_millis=5_000,
        extra={"maxRecords": str(batch)},
        stream=stream,
        child_main=kcl_child.MODULE,
    )
    return _Consumer(settings, config, daemon_command(write_properties(config, tmp_path / "kcl")))


@pytest.fixture(params=["lake", "probe"])
def store(
    request: pytest.FixtureRequest,
    aws: ClientFactory,
    s3_client: Any,
    make_bucket: Callable[[], str],
) -> _ProbeStore | _LakeStore:
    bucket = make_bucket()
    if request.param == "probe":
        return _ProbeStore(s3_client, bucket)
    sqs = aws.client("sqs")
    queue_url = sqs.create_queue(QueueName=f"dlq-{bucket}")["QueueUrl"]
    return _LakeStore(s3_client, bucket, sqs, queue_url)


def test_the_real_daemon_delivers_every_record_exactly_once_across_kills_and_a_shutdown(
    emulator: Any,
    aws: ClientFactory,
    h2c: H2cListener,
    kinesis_client: Any,
    store: _ProbeStore | _LakeStore,
    make_stream: Callable[..., str],
    tmp_path: Path,
) -> None:
    jar_directory()  # fails clearly when amazon-kclpy was installed without its jars
    stream = make_stream(shards=2)
    placed = _put(kinesis_client, stream, _mixed_payloads(RECORDS))
    assert len(placed) == RECORDS
    assert {shard for shard, _ in placed} == {"shardId-000000000000", "shardId-000000000001"}

    def target(records: Placed) -> int:
        poison = sum(1 for data in records.values() if data == POISON)
        return len(records) - (poison if isinstance(store, _LakeStore) else 0)

    marker = tmp_path / "crashed"
    env = _consumer_env(
        emulator,
        stream,
        store.bucket,
        DEAD_LETTER_QUEUE=getattr(store, "queue_url", "unused"),
        # The worker dies once after its 3rd batch: after writing it, before checkpointing.
        PROBE_CRASH_MARKER=str(marker),
        PROBE_CRASH_AFTER="3",
        # Slow enough that the test can kill a child mid-stream.
        PROBE_BATCH_DELAY="0.3",
    )
    consumer = _consumer(store.worker, env, h2c, "test", tmp_path, batch=250)
    config = consumer.config
    dynamodb = aws.client("dynamodb")
    primed = prime_lease_table(
        dynamodb, kinesis_client, application=config.application, stream=stream
    )
    assert primed == 2
    log = tmp_path / "daemon.log"

    daemon = _Daemon(consumer.command, consumer.environment(env), log)
    try:
        # 1. A child dies between writing its batch and checkpointing it: the daemon exits 1,
        #    the supervisor starts a new one with the same workerId.
        _wait_until(
            lambda: marker.exists() and daemon.supervisor.starts >= 2, 180, "crash+restart", log
        )
        # 2. Kill a record processor (SIGKILL) mid-stream, once the restarted daemon is busy.
        _wait_until(lambda: len(_children(daemon.supervisor.pid)) == 2, 120, "children", log)
        _wait_until(lambda: store.progress() > 1000, 120, "progress after restart", log)
        assert store.progress() < target(placed), "finished before the kill: slow the worker"
        os.kill(_children(daemon.supervisor.pid)[0], signal.SIGKILL)
        _wait_until(lambda: daemon.supervisor.starts >= 3, 120, "restart after kill", log)
        # 3. Everything arrives.
        _wait_until(lambda: store.progress() >= target(placed), 300, "all records", log)
        # 4. Graceful shutdown (SIGTERM, shutdownGraceMillis set) checkpoints. The daemon
        #    that is running now must own both shards first (a daemon whose child died keeps
        #    working through its grace period, so the last restart may still be starting).
        _wait_until(lambda: _initialized_since_last_start(log) >= 2, 120, "both shards", log)
        daemon.log_file.flush()
        before_stop = log.stat().st_size
        exit_code = daemon.stop()
    finally:
        if daemon.thread.is_alive():
            daemon.stop()

    store.assert_exactly_once(placed, dead_letters=False)
    assert daemon.supervisor.exit_codes[:2] == [1, 1]
    assert exit_code is not None and daemon.result == [exit_code]

    with log.open("rb") as whole:
        whole.seek(before_stop)
        shutdown = whole.read().decode(errors="replace")
    assert shutdown.count("Requesting a checkpoint on shutdown notification") == 2
    after_request = shutdown.split("Requesting a checkpoint on shutdown notification", 1)[1]
    assert after_request.count("Writing CheckpointMessage to child process") == 2
    leases = dynamodb.scan(TableName=config.application)["Items"]
    last = {
        shard: max((s for sh, s in placed if sh == shard), key=int)
        for shard in ("shardId-000000000000", "shardId-000000000001")
    }
    assert {item["leaseKey"]["S"]: item["checkpoint"]["S"] for item in leases} == last

    # 5. A new daemon (same workerId) resumes after the checkpoints: new records only, once.
    placed |= _put(kinesis_client, stream, _mixed_payloads(500, start=RECORDS), offset=RECORDS)
    env.pop("PROBE_CRASH_MARKER")
    env["PROBE_BATCH_DELAY"] = "0"
    again = _Daemon(consumer.command, consumer.environment(env), log)
    try:
        _wait_until(lambda: store.progress() >= target(placed), 180, "the new records", log)
        time.sleep(1)  # a replay (there must be none) would land now
    finally:
        again.stop()
    store.assert_exactly_once(placed, dead_letters=True)


SUPERVISOR = """
import json, sys
from pathlib import Path
from entrypoints.kcl.supervisor import DaemonSupervisor, WorkerLock
spec = json.loads(Path(sys.argv[1]).read_text())
log = open(spec["log"], "ab")
pid_file = Path(spec["jvm_pid"])
DaemonSupervisor(
    spec["command"], env=spec["env"], stdout=log, stderr=-2, lock=WorkerLock(Path(spec["lock"])),
    on_start=lambda pid: pid_file.write_text(str(pid)),
).run()
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_resharded_stream_from_a_primed_cold_start_across_a_sigkilled_supervisor(
    emulator: Any,
    aws: ClientFactory,
    h2c: H2cListener,
    kinesis_client: Any,
    s3_client: Any,
    make_bucket: Callable[[], str],
    make_stream: Callable[..., str],
    tmp_path: Path,
) -> None:
    """Issue 7: priming leased only the open children of a split and merged stream (3,747 of
    5,000 records never read), and a SIGKILLed `kcl run` left its JVM running beside the next
    one (940 of 18,000 duplicated). Now: every shard is leased with all its parents, the JVM
    dies with its supervisor, a second supervisor of the same worker id refuses to start while
    one lives, a split while the daemon runs is followed, and every record is stored once."""
    store = _ProbeStore(s3_client, make_bucket())
    stream = make_stream(shards=2)
    placed = _put(kinesis_client, stream, _mixed_payloads(1500))
    kinesis_client.split_shard(
        StreamName=stream, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2**126)
    )
    placed |= _put(kinesis_client, stream, _mixed_payloads(1500, 1500), offset=1500)
    # shard 3 (the upper half of 0's range) and shard 1 are adjacent: merge them into 4.
    kinesis_client.merge_shards(
        StreamName=stream,
        ShardToMerge="shardId-000000000001",
        AdjacentShardToMerge="shardId-000000000003",
    )
    placed |= _put(kinesis_client, stream, _mixed_payloads(1500, 3000), offset=3000)
    assert len({shard for shard, _ in placed}) == 5

    env = _consumer_env(emulator, stream, store.bucket, PROBE_BATCH_DELAY="0.05")
    consumer = _consumer(store.worker, env, h2c, "reshard", tmp_path, batch=200)
    config = consumer.config
    assert prime_local_leases(aws, application=config.application, stream=stream) == 5
    leases = {
        item["leaseKey"]["S"]: item
        for item in aws.client("dynamodb").scan(TableName=config.application)["Items"]
    }
    assert set(leases["shardId-000000000004"]["parentShardId"]["SS"]) == {
        "shardId-000000000001",
        "shardId-000000000003",
    }
    assert prime_local_leases(aws, application=config.application, stream=stream) == 0

    log = tmp_path / "daemon.log"
    spec = tmp_path / "spec.json"
    jvm_pid = tmp_path / "jvm.pid"
    spec.write_text(
        json.dumps(
            {
                "command": consumer.command,
                "env": consumer.environment(env),
                "log": str(log),
                "jvm_pid": str(jvm_pid),
                "lock": str(tmp_path / "worker.lock"),
            }
        )
    )
    script = tmp_path / "supervise.py"
    script.write_text(SUPERVISOR)
    root = Path(__file__).resolve().parents[2]

    def supervise() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, str(script), str(spec)],
            cwd=root,
            env={**env, "PYTHONPATH": str(root)},
            stderr=subprocess.PIPE,
        )

    first = supervise()
    second: subprocess.Popen[bytes] | None = None
    try:
        _wait_until(lambda: store.progress() > 1500, 180, "progress", log)
        duplicate = supervise()
        _, complaint = duplicate.communicate(timeout=60)
        assert duplicate.returncode != 0
        assert b"another supervisor (pid" in complaint
        assert store.progress() < len(placed), "finished before the kill: slow the worker"
        jvm = int(jvm_pid.read_text())
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        _wait_until(lambda: not _alive(jvm), 60, "the JVM to die with its supervisor", log)
        second = supervise()
        # And a split while the daemon runs: the merged child closes, its children get the
        # new records, and the KCL finds them from the parent's end (ChildShards).
        kinesis_client.split_shard(
            StreamName=stream, ShardToSplit="shardId-000000000004", NewStartingHashKey=str(2**127)
        )
        placed |= _put(kinesis_client, stream, _mixed_payloads(1000, 4500), offset=4500)
        assert len({shard for shard, _ in placed}) == 7
        _wait_until(lambda: store.progress() >= len(placed), 300, "all records", log)
        time.sleep(2)  # a duplicate (there must be none) would land now
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    process.kill()
    store.assert_exactly_once(placed, dead_letters=False)


# The outage lasted three minutes; the suite's default keeps it shorter. The consumer
# must recover by itself whatever the length: DLQ_OUTAGE_SECONDS=180 runs the original.
OUTAGE_SECONDS = float(os.environ.get("DLQ_OUTAGE_SECONDS", "45"))


def test_the_consumer_rides_out_a_dead_letter_queue_outage_and_dead_letters_each_poison_once(
    emulator: Any,
    aws: ClientFactory,
    sqs_outage: OutageProxy,
    h2c: H2cListener,
    kinesis_client: Any,
    s3_client: Any,
    make_bucket: Callable[[], str],
    make_stream: Callable[..., str],
    tmp_path: Path,
) -> None:
    """Issue 7: with SQS refusing connections every restarted child died at start-up in
    GetQueueUrl, and after 5 restarts the supervisor gave up for good. Now the queue (given by
    name) is resolved at the first send, batches are given up at their deadline, the daemon is
    restarted with backoff for as long as it takes, and once SQS is back every record is in the
    lake once and every poison record in the (FIFO) dead-letter queue once."""
    bucket = make_bucket()
    sqs = aws.client("sqs")
    queue_name = f"dlq-{bucket}.fifo"
    queue_url = sqs.create_queue(QueueName=queue_name, Attributes={"FifoQueue": "true"})["QueueUrl"]
    store = _LakeStore(s3_client, bucket, sqs, queue_url)
    stream = make_stream(shards=1)
    placed = _put(kinesis_client, stream, _mixed_payloads(1500))
    poison = {key for key, data in placed.items() if data == POISON}
    assert len(poison) >= 10

    # SQS is down before the consumer starts (sqs_outage): it must start anyway.
    env = _consumer_env(
        emulator,
        stream,
        bucket,
        AWS_ENDPOINT_URL_SQS=sqs_outage.url,
        DEAD_LETTER_QUEUE=queue_name,  # a name: resolved at the first send
        BATCH_DEADLINE_SECONDS="10",
    )
    consumer = _consumer(store.worker, env, h2c, "outage", tmp_path, batch=250)
    config = consumer.config
    assert prime_local_leases(aws, application=config.application, stream=stream) == 1
    log = tmp_path / "daemon.log"
    daemon = _Daemon(
        consumer.command,
        consumer.environment(env),
        log,
        restart_backoff=Backoff(base_seconds=1.0, cap_seconds=5.0, retries=10**6),
    )
    try:
        time.sleep(OUTAGE_SECONDS)
        assert daemon.thread.is_alive(), "the supervisor gave up during the outage"
        assert daemon.supervisor.starts >= 2, "no batch was given up at its deadline"
        assert not dead_letter_counts(sqs, queue_url), "sent while SQS was down?"
        sqs_outage.up()
        last = max((sequence for _, sequence in placed), key=int)
        dynamodb = aws.client("dynamodb")

        def checkpointed_to_the_end() -> bool:
            leases = dynamodb.scan(TableName=config.application)["Items"]
            return [item["checkpoint"]["S"] for item in leases] == [last]

        # The checkpoint follows the batch's lake write and its dead letters.
        _wait_until(checkpointed_to_the_end, 240, "the last checkpoint", log)
        assert daemon.thread.is_alive() and daemon.result == [], "the supervisor stopped"
    finally:
        daemon.stop()
    store.assert_exactly_once(placed, dead_letters=False)
    letters = dead_letter_counts(sqs, queue_url)
    assert set(letters) == poison, "poison records lost (or good ones dead-lettered)"
    assert [key for key, n in letters.items() if n > 1] == [], "dead-lettered twice"


def _put_keyed(kinesis: Any, stream: str, start: int, count: int, keys: int = 16) -> Placed:
    """Records of `keys` fans, each record naming its fan and its place in the put order."""
    numbers = range(start, start + count)
    payloads = [json.dumps({"key": f"fan-{n % keys}", "n": n}).encode() for n in numbers]
    return _put(kinesis, stream, payloads, offset=start, key=lambda n: f"fan-{n % keys}")


def test_the_real_daemon_processes_each_keys_records_in_order_across_a_split_and_a_merge(
    emulator: Any,
    aws: ClientFactory,
    h2c: H2cListener,
    kinesis_client: Any,
    s3_client: Any,
    make_bucket: Callable[[], str],
    make_stream: Callable[..., str],
    tmp_path: Path,
) -> None:
    """Issue 7: order per partition key from parent to child. Sixteen fans' records go to one
    shard, then to its two children after a split, then to their merged child: every fan has
    records in three generations. From a primed cold start the daemon must finish a parent
    before it starts a child (both parents, for the merge), so each fan's records are processed
    in the order they were put. The probe stamps each batch with when it was written."""
    from tests.support.kcl_probe import stored_batches

    store = _ProbeStore(s3_client, make_bucket())
    stream = make_stream(shards=1)
    placed = _put_keyed(kinesis_client, stream, 0, 600)
    kinesis_client.split_shard(
        StreamName=stream, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2**127)
    )
    placed |= _put_keyed(kinesis_client, stream, 600, 600)
    kinesis_client.merge_shards(
        StreamName=stream,
        ShardToMerge="shardId-000000000001",
        AdjacentShardToMerge="shardId-000000000002",
    )
    placed |= _put_keyed(kinesis_client, stream, 1200, 600)
    generations: dict[str, set[str]] = {}
    for (shard, _), data in placed.items():
        generations.setdefault(json.loads(data)["key"], set()).add(shard)
    middle = {"shardId-000000000001", "shardId-000000000002"}
    assert set().union(*generations.values()) >= middle  # both parents of the merge hold fans
    for shards in generations.values():
        assert (
            len(shards & middle) == 1 and {"shardId-000000000000", "shardId-000000000003"} <= shards
        )

    # Slow parents: a child started before its parents ended would overtake them.
    env = _consumer_env(emulator, stream, store.bucket, PROBE_BATCH_DELAY="0.05")
    consumer = _consumer(store.worker, env, h2c, "order", tmp_path, batch=100)
    application = consumer.config.application
    assert prime_local_leases(aws, application=application, stream=stream) == 4
    log = tmp_path / "daemon.log"
    daemon = _Daemon(consumer.command, consumer.environment(env), log)
    try:
        _wait_until(lambda: store.progress() >= len(placed), 300, "all records", log)
        time.sleep(2)  # a duplicate (there must be none) would land now
    finally:
        daemon.stop()
    store.assert_exactly_once(placed, dead_letters=False)

    processed: dict[tuple[str, str], tuple[int, int]] = {}  # record -> (batch written, index)
    for batch in stored_batches(s3_client, store.bucket):
        for index, (sequence, _) in enumerate(batch.records):
            processed[(batch.shard, sequence)] = (batch.processed_ns, index)
    by_key: dict[str, list[tuple[int, tuple[str, str]]]] = {}
    for record, data in placed.items():
        fields = json.loads(data)
        by_key.setdefault(fields["key"], []).append((fields["n"], record))
    for key, records in by_key.items():
        in_put_order = [processed[record] for _, record in sorted(records)]
        assert in_put_order == sorted(in_put_order), f"{key}'s records processed out of order"
