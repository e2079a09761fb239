"""The emulator's PutRecords: patched into the pinned moto, safe under concurrent producers,
and (opt-in) throttled per shard like Kinesis; the producer's pacing keeps within it."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.aws.kinesis import KinesisRecordStream
from adapters.aws.kinesis_limits import MIB
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


# --- the one-loop store, against moto's own backend.put_records -------------------------------

ENTRY = st.fixed_dictionaries(
    {
        "PartitionKey": st.text(min_size=1, max_size=12),
        "Data": st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
    },
    optional={"ExplicitHashKey": st.integers(0, 2**128 - 1).map(str)},
)


def _moto_streams(shards: int) -> tuple[Any, Any, Any]:
    """A backend of its own (no other test's streams), with two equal streams in it."""
    from moto.kinesis.models import KinesisBackend

    backend = KinesisBackend("eu-central-1", "123456789012")
    for name in ("moto", "fast"):
        backend.create_stream(name, shards, stream_mode={"StreamMode": "PROVISIONED"})
    return backend, backend.streams["moto"], backend.streams["fast"]


def _stored(stream: Any) -> list[tuple[str, list[tuple[Any, ...]]]]:
    return [
        (
            shard.shard_id,
            [
                (n, r.partition_key, r.data, r.sequence_number, r.explicit_hash_key)
                for n, r in shard.records.items()
            ],
        )
        for shard in stream.shards.values()
    ]


@settings(max_examples=60, deadline=None)
@given(shards=st.integers(1, 4), calls=st.lists(st.lists(ENTRY, max_size=30), max_size=4))
def test_the_one_loop_store_keeps_what_motos_put_records_keeps(
    emulator: Any, shards: int, calls: list[list[dict[str, Any]]]
) -> None:
    backend, moto_stream, fast_stream = _moto_streams(shards)
    for entries in calls:
        expected = backend.put_records(None, "moto", entries)["Records"]
        answered = put_path.put_entries(backend, fast_stream, entries)
        assert answered == [
            {"SequenceNumber": str(r["SequenceNumber"]), "ShardId": r["ShardId"]} for r in expected
        ]
    assert _stored(fast_stream) == _stored(moto_stream)
    for shard in fast_stream.shards.values():
        for record in shard.records.values():
            assert record.to_json()["ApproximateArrivalTimestamp"] == record.created_at_datetime
            assert isinstance(record.created_at, float)


@pytest.mark.parametrize(
    ("entries", "error"),
    [
        ([{"PartitionKey": "k", "Data": "eA=="}, {"PartitionKey": "k" * 257}], "InvalidArgument"),
        ([{"PartitionKey": "k", "Data": "eA=="}] * 501, "TooManyRecords"),
        ([{"PartitionKey": "k", "Data": base64.b64encode(b"x" * MIB).decode()}], "RecordSize"),
        (
            [{"PartitionKey": "k", "Data": base64.b64encode(b"x" * 1_000_000).decode()}] * 6,
            "TotalRecordsSize",
        ),
        ([{"PartitionKey": "k" * 257, "Data": "eA=="}], "InvalidArgument"),
    ],
)
def test_the_one_loop_store_refuses_what_moto_refuses_and_stores_nothing(
    emulator: Any, entries: list[dict[str, Any]], error: str
) -> None:
    backend, moto_stream, fast_stream = _moto_streams(1)
    with pytest.raises(Exception) as from_moto:
        backend.put_records(None, "moto", entries)
    assert type(from_moto.value).__name__.startswith(error)
    with pytest.raises(type(from_moto.value)):
        put_path.put_entries(backend, fast_stream, entries)
    assert _stored(fast_stream) == _stored(moto_stream)
