"""The one Kinesis record decoder: KPL aggregates (as aws-kinesis-agg writes them) come apart
into their user records with sub-sequence numbers; a corrupt one is handed on to be
dead-lettered as corrupt; anything else passes through unchanged."""

from __future__ import annotations

import base64
import hashlib

import pytest
from aws_kinesis_agg.aggregator import RecordAggregator
from hypothesis import given
from hypothesis import strategies as st

from domain.records import CORRUPT_AGGREGATE, decoded_or_reason
from domain.streaming import KPL_MAGIC
from streams.kinesis_records import (
    CorruptAggregate,
    deaggregate,
    from_get_records,
    from_kcl,
    from_lambda,
    user_records,
)

user_record = st.tuples(st.text(min_size=1, max_size=20), st.binary(min_size=0, max_size=300))


def aggregate(records: list[tuple[str, bytes]], *, hash_keys: bool = False) -> bytes:
    aggregator = RecordAggregator()
    for n, (key, data) in enumerate(records):
        aggregator.add_user_record(key, data, str(n * 7919) if hash_keys else None)
    aggregated = aggregator.clear_and_get()
    assert aggregated is not None
    _key, _hash_key, data = aggregated.get_contents()
    return bytes(data)


@given(records=st.lists(user_record, min_size=1, max_size=30), hash_keys=st.booleans())
def test_what_aws_kinesis_agg_aggregates_comes_apart_in_order(
    records: list[tuple[str, bytes]], hash_keys: bool
) -> None:
    data = aggregate(records, hash_keys=hash_keys)
    assert data.startswith(KPL_MAGIC)
    assert deaggregate(data) == records
    incoming = user_records(
        stream="s",
        shard_id="shardId-000000000001",
        sequence_number="4955",
        partition_key=records[0][0],
        data=data,
        arrived_at=None,
    )
    assert [(r.partition_key, r.data) for r in incoming] == records
    assert [r.sub_sequence_number for r in incoming] == list(range(len(records)))
    assert {r.sequence_number for r in incoming} == {"4955"}


@given(
    records=st.lists(user_record, min_size=1, max_size=10),
    position=st.integers(min_value=0),
    flip=st.integers(min_value=1, max_value=255),
)
def test_a_damaged_aggregate_is_handed_on_whole_and_dead_letters_as_corrupt(
    records: list[tuple[str, bytes]], position: int, flip: int
) -> None:
    data = bytearray(aggregate(records))
    at = len(KPL_MAGIC) + position % (len(data) - len(KPL_MAGIC))
    data[at] ^= flip
    with pytest.raises(CorruptAggregate):
        deaggregate(bytes(data))
    [whole] = user_records(
        stream="s",
        shard_id="x",
        sequence_number="1",
        partition_key="k",
        data=bytes(data),
        arrived_at=None,
    )
    assert whole.data == bytes(data)
    assert decoded_or_reason(whole.data) == CORRUPT_AGGREGATE


def test_a_checksum_that_matches_bad_protobuf_is_still_corrupt() -> None:
    body = b"\x1a\x7f\x00"  # field 3, 127 bytes long, with 1 there
    data = KPL_MAGIC + body + hashlib.md5(body).digest()
    with pytest.raises(CorruptAggregate, match="past the end"):
        deaggregate(data)
    with pytest.raises(CorruptAggregate, match="MD5"):
        deaggregate(KPL_MAGIC + b"\x01")


@given(data=st.binary(max_size=200).filter(lambda d: not d.startswith(KPL_MAGIC)))
def test_plain_records_pass_through_each_runtime_shape_alike(data: bytes) -> None:
    from datetime import UTC, datetime

    arrived = datetime(2026, 12, 1, 10, 0, 0, 123000, tzinfo=UTC)
    encoded = base64.b64encode(data).decode()
    shapes = [
        from_get_records(
            "s",
            "shardId-1",
            {
                "SequenceNumber": "7",
                "PartitionKey": "k",
                "Data": data,
                "ApproximateArrivalTimestamp": arrived,
            },
        ),
        from_lambda(
            "s",
            "shardId-1",
            {
                "sequenceNumber": "7",
                "partitionKey": "k",
                "data": encoded,
                "approximateArrivalTimestamp": arrived.timestamp(),
            },
        ),
        from_kcl(
            "s",
            "shardId-1",
            {
                "sequenceNumber": "7",
                "partitionKey": "k",
                "data": encoded,
                "subSequenceNumber": 0,
                "approximateArrivalTimestamp": 1_796_119_200_123,
            },
        ),
    ]
    assert shapes[0] == shapes[1] == shapes[2]
    assert shapes[0][0].data == data


def test_the_kcl_sub_sequence_number_is_kept_and_bad_base64_is_kept_as_text() -> None:
    [record] = from_kcl(
        "s",
        "x",
        {
            "sequenceNumber": "9",
            "partitionKey": "k",
            "data": "not base64!",
            "subSequenceNumber": 3,
            "approximateArrivalTimestamp": None,
        },
    )
    assert (record.sub_sequence_number, record.data) == (3, b"not base64!")
