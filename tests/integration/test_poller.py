"""The local shard poller against the emulator over HTTP: every record once, resumable."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from domain.backoff import no_wait
from domain.streaming import BatchCounts, DependencyUnavailable, IncomingRecord
from streams.poller import BatchAbandoned, DynamoCheckpoints, FileCheckpoints, ShardPoller
from tests.support.stream_fakes import ScriptedWorker

pytestmark = pytest.mark.integration


def _put(kinesis: Any, stream: str, count: int, start: int = 0) -> list[str]:
    sequences: list[str] = []
    for offset in range(start, start + count, 500):
        entries = [
            {"Data": json.dumps({"type": "scoring", "n": n}).encode(), "PartitionKey": f"fan-{n}"}
            for n in range(offset, min(start + count, offset + 500))
        ]
        answer = kinesis.put_records(StreamName=stream, Records=entries)
        assert answer["FailedRecordCount"] == 0
        sequences.extend(r["SequenceNumber"] for r in answer["Records"])
    return sequences


def test_every_record_is_handled_once_and_a_rerun_resumes_after_the_checkpoint(
    kinesis_client: Any, make_stream: Callable[..., str], tmp_path: Path
) -> None:
    stream = make_stream(shards=2)
    first = _put(kinesis_client, stream, 1200)
    checkpoints = FileCheckpoints(tmp_path / "checkpoints.json")
    worker = ScriptedWorker()
    counts = ShardPoller(kinesis_client, stream, worker, checkpoints, limit=250).run()
    assert sorted(worker.handled) == sorted(first)
    assert counts.records == 1200
    assert counts.counts.handled == 1200
    assert max(len(batch) for batch in worker.batches) <= 250

    second = _put(kinesis_client, stream, 300, start=1200)
    again = ScriptedWorker()
    ShardPoller(kinesis_client, stream, again, checkpoints, limit=250).run()
    assert sorted(again.handled) == sorted(second)
    saved = json.loads((tmp_path / "checkpoints.json").read_text())[stream]
    assert set(saved) == {"shardId-000000000000", "shardId-000000000001"}


def test_an_abandoned_batch_is_not_checkpointed_and_is_replayed_next_time(
    kinesis_client: Any, make_stream: Callable[..., str], tmp_path: Path
) -> None:
    stream = make_stream(shards=1)
    sequences = _put(kinesis_client, stream, 30)
    checkpoints = FileCheckpoints(tmp_path / "checkpoints.json")
    broken = ScriptedWorker(failing=frozenset({sequences[12]}))
    with pytest.raises(BatchAbandoned, match=sequences[10]):
        ShardPoller(
            kinesis_client, stream, broken, checkpoints, limit=10, backoff=no_wait(retries=2)
        ).run()
    assert broken.handled == sequences[:10]
    assert checkpoints.get(stream, "shardId-000000000000") == sequences[9]

    healed = ScriptedWorker()
    ShardPoller(kinesis_client, stream, healed, checkpoints, limit=10).run()
    assert healed.handled == sequences[10:]


def test_checkpoints_can_live_in_dynamodb(
    emulator: Any, kinesis_client: Any, make_stream: Callable[..., str]
) -> None:
    import boto3

    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=emulator.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    stream = make_stream(shards=1)
    sequences = _put(kinesis_client, stream, 40)
    checkpoints = DynamoCheckpoints(dynamodb, f"checkpoints-{stream}")
    first = ScriptedWorker()

    class StopAfterTwoBatches:
        name = "stopper"

        def __call__(self, batch: Sequence[IncomingRecord]) -> BatchCounts:
            if len(first.batches) >= 2:
                raise DependencyUnavailable("test", "stop here")
            return first(batch)

    with pytest.raises(BatchAbandoned):
        ShardPoller(
            kinesis_client,
            stream,
            StopAfterTwoBatches(),
            checkpoints,
            limit=15,
            backoff=no_wait(retries=0),
        ).run()
    assert checkpoints.get(stream, "shardId-000000000000") == sequences[29]
    rest = ScriptedWorker()
    ShardPoller(kinesis_client, stream, rest, checkpoints, limit=15).run()
    assert first.handled + rest.handled == sequences


def test_a_corrupt_checkpoint_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"checkpoints\.json is not JSON"):
        FileCheckpoints(path).get("s", "shardId-000000000000")


def test_kpl_aggregates_reach_the_worker_as_user_records_with_sub_sequence_numbers(
    kinesis_client: Any, make_stream: Callable[..., str], tmp_path: Path
) -> None:
    from aws_kinesis_agg.aggregator import RecordAggregator

    stream = make_stream(shards=1)
    aggregator = RecordAggregator()
    for n in range(3):
        aggregator.add_user_record(f"fan-{n}", json.dumps({"type": "scoring", "n": n}).encode())
    key, _, data = aggregator.clear_and_get().get_contents()
    sequence = kinesis_client.put_record(StreamName=stream, PartitionKey=key, Data=data)[
        "SequenceNumber"
    ]
    seen: list[IncomingRecord] = []

    class Keep:
        name = "keep"

        def __call__(self, batch: Sequence[IncomingRecord]) -> BatchCounts:
            seen.extend(batch)
            return BatchCounts(received=len(batch), handled=len(batch))

    ShardPoller(kinesis_client, stream, Keep(), FileCheckpoints(tmp_path / "cp.json")).run()
    assert [(r.sequence_number, r.sub_sequence_number, r.partition_key) for r in seen] == [
        (sequence, n, f"fan-{n}") for n in range(3)
    ]
    assert [json.loads(r.data)["n"] for r in seen] == [0, 1, 2]


def test_a_batch_against_an_endpoint_that_never_answers_is_abandoned_at_its_deadline(
    kinesis_client: Any, make_stream: Callable[..., str], tmp_path: Path
) -> None:
    """botocore alone would take its 5 attempts x the 30 s read timeout (2.5 min) per call,
    and the old runtime replayed that 10 times; the batch deadline bounds the whole batch."""
    import time

    from adapters.aws.clients import ClientFactory, ClientOptions
    from tests.support.http_server import silent_listener
    from tests.support.kcl_probe import ProbeWorker

    stream = make_stream(shards=1)
    _put(kinesis_client, stream, 5)
    checkpoints = FileCheckpoints(tmp_path / "cp.json")
    deadline = 2.0
    with silent_listener() as hung:
        s3 = ClientFactory(ClientOptions(endpoint_url=hung.url)).client("s3")
        poller = ShardPoller(
            kinesis_client,
            stream,
            ProbeWorker(s3, "lake"),
            checkpoints,
            deadline_seconds=deadline,
            abandon_hung_calls=True,
        )
        started = time.monotonic()
        with pytest.raises(BatchAbandoned, match="unanswered"):
            poller.run()
        elapsed = time.monotonic() - started
    # Bounded by the deadline, not by botocore's timeouts: well under one 30 s read timeout.
    assert elapsed < ClientOptions().read_timeout
    assert hung.connections >= 1
    assert checkpoints.get(stream, "shardId-000000000000") is None
