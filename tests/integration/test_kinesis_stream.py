"""KinesisRecordStream over HTTP against the in-process emulator: put, then GetRecords back;
every test with botocore's request and with the lean one (adapters/aws/kinesis_lean.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from adapters.aws.kinesis import KinesisPutFailed, KinesisRecordStream
from adapters.aws.kinesis_lean import LeanPutRecords
from adapters.aws.kinesis_limits import MIB
from domain.backoff import Backoff
from domain.models import StreamRecord

pytestmark = pytest.mark.integration


@pytest.fixture(params=["botocore", "lean"])
def put_client(request: pytest.FixtureRequest, kinesis_client: Any) -> Any:
    return kinesis_client if request.param == "botocore" else LeanPutRecords(kinesis_client)


def producer(put_client: Any, name: str) -> KinesisRecordStream:
    return KinesisRecordStream(put_client, name, backoff=Backoff(retries=3))


def test_records_read_back_equal_and_in_order_per_shard(
    put_client: Any,
    make_stream: Callable[..., str],
    read_stream: Callable[[str], dict[str, list[dict[str, Any]]]],
) -> None:
    name = make_stream(shards=3)
    records = [
        StreamRecord(f"fan-{i % 97}", f'{{"type":"scoring","n":{i}}}'.encode())
        for i in range(1_234)
    ]
    outcome = producer(put_client, name).put_records(iter(records))
    assert (outcome.sent, outcome.stranded, outcome.rejected) == (1_234, 0, ())
    assert outcome.calls == 3  # 500 + 500 + 234

    by_shard = read_stream(name)
    got = [(r["PartitionKey"], r["Data"]) for shard in by_shard.values() for r in shard]
    assert sorted(got) == sorted((r.partition_key, r.data) for r in records)
    assert sum(1 for shard in by_shard.values() if shard) > 1, "keys spread over shards"
    for shard in by_shard.values():
        # Within a shard, each partition key's records keep the order they were given in.
        for key in {r["PartitionKey"] for r in shard}:
            sent_order = [r.data for r in records if r.partition_key == key]
            assert [r["Data"] for r in shard if r["PartitionKey"] == key] == sent_order
        sequence = [int(r["SequenceNumber"]) for r in shard]
        assert sequence == sorted(sequence)


def test_records_near_the_limits_go_through_and_oversized_are_rejected(
    put_client: Any,
    make_stream: Callable[..., str],
    read_stream: Callable[[str], dict[str, list[dict[str, Any]]]],
) -> None:
    name = make_stream(shards=1)
    big = [StreamRecord(f"big-{i}", bytes([i]) * (MIB - 5)) for i in range(6)]  # 1 MiB each
    too_big = StreamRecord("too-big", b"x" * MIB)
    outcome = producer(put_client, name).put_records([*big[:3], too_big, *big[3:]])
    assert outcome.sent == 6 and outcome.stranded == 0
    assert [r.partition_key for r in outcome.rejected] == ["too-big"]
    assert outcome.calls == 2  # 5 MiB fits five of them per call
    (shard,) = read_stream(name).values()
    # Two calls in flight with no key in common: they may land in either order.
    digests = sorted(hashlib.sha256(r["Data"]).hexdigest() for r in shard)
    assert digests == sorted(hashlib.sha256(r.data).hexdigest() for r in big)


def test_a_missing_stream_fails_loudly_naming_it(put_client: Any) -> None:
    stream = producer(put_client, "no-such-stream")
    with pytest.raises(KinesisPutFailed, match=r"'no-such-stream'.*ResourceNotFoundException"):
        stream.put_records([StreamRecord("k", b"x")])
