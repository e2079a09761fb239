"""The emulator's PutRecords: patched into the pinned moto, safe under concurrent producers,
and (opt-in) throttled per shard like Kinesis; the producer's pacing keeps within it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from adapters.aws.kinesis import KinesisRecordStream
from adapters.aws.kinesis_pacing import ShardMap, ShardPacer
from domain.backoff import Backoff
from domain.models import StreamRecord
from local import kinesis_put_path as put_path
from local.moto_patch import fingerprint

pytestmark = pytest.mark.integration


@pytest.fixture
def shard_limits() -> Any:
    put_path.enable_shard_limits()
    yield put_path
    put_path.disable_shard_limits()


def test_the_put_path_fix_applies_to_the_pinned_moto(emulator: Any) -> None:
    from moto.kinesis.responses import KinesisResponse

    status = put_path.PUT_PATH_FIX.status()
    assert status.applied, status.reason
    assert KinesisResponse.__dict__["put_records"] is put_path.response_put_records
    assert set(put_path.PUT_PATH_FIX.originals) == set(put_path.ORIGINAL_FINGERPRINTS)
    for qualified, original in put_path.PUT_PATH_FIX.originals.items():
        assert fingerprint(original) == put_path.ORIGINAL_FINGERPRINTS[qualified]


def test_a_changed_method_is_detected_and_nothing_is_patched() -> None:
    class Changed:
        def put_records(self) -> None:  # not moto's
            return None

    status = put_path.PUT_PATH_FIX.apply_to({"KinesisResponse": Changed})
    assert not status.applied and "differs" in status.reason
    assert Changed.__dict__["put_records"] is not put_path.response_put_records


def test_eight_calls_in_flight_lose_nothing(
    kinesis_client: Any,
    make_stream: Callable[..., str],
    read_stream: Callable[[str], dict[str, list[dict[str, Any]]]],
) -> None:
    name = make_stream(shards=1)
    stream = KinesisRecordStream(kinesis_client, name, backoff=Backoff(), max_in_flight=8)
    records = [StreamRecord(f"fan{i}", f"{i}".encode()) for i in range(8_000)]
    assert stream.put_records(records).sent == 8_000
    (shard,) = read_stream(name).values()
    assert sorted(int(r["Data"]) for r in shard) == list(range(8_000))


@pytest.fixture
def stopped_shard_limits() -> Any:
    """The limit on, its buckets never refilled: what they hold is all that gets through."""
    put_path.enable_shard_limits(clock=lambda: 0.0)
    yield put_path
    put_path.disable_shard_limits()


def test_past_a_thousand_records_a_second_a_shard_throttles_each_entry(
    kinesis_client: Any, make_stream: Callable[..., str], stopped_shard_limits: Any
) -> None:
    name = make_stream(shards=1)
    throttled = 0
    for call in range(3):
        entries = [{"Data": b"x", "PartitionKey": f"k{call}-{i}"} for i in range(500)]
        answer = kinesis_client.put_records(StreamName=name, Records=entries)
        throttled += answer["FailedRecordCount"]
        codes = {r.get("ErrorCode") for r in answer["Records"]}
        assert codes <= {None, "ProvisionedThroughputExceededException"}
    assert throttled == 500  # one second's worth (1,000) got through of 1,500


def test_a_paced_producer_stays_within_the_shards(
    kinesis_client: Any,
    make_stream: Callable[..., str],
    read_stream: Callable[[str], dict[str, list[dict[str, Any]]]],
    shard_limits: Any,
) -> None:
    name = make_stream(shards=2)
    pacer = ShardPacer(lambda: ShardMap.from_client(kinesis_client, name), headroom=0.9)
    stream = KinesisRecordStream(kinesis_client, name, backoff=Backoff(), pacer=pacer)
    outcome = stream.put_records(StreamRecord(f"fan{i}", b"y" * 50) for i in range(4_000))
    assert outcome.sent == 4_000 and outcome.stranded == 0
    assert shard_limits.throttled_entries <= 40  # < 1 %
    assert pacer.waited_seconds > 0.5  # 4,000 records on 2 shards need about a second more
    assert sum(len(records) for records in read_stream(name).values()) == 4_000
