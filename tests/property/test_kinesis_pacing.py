"""Pacing to the shards: records go where Kinesis routes them (MD5 of the partition key in the
shards' hash ranges), and no shard is given more than its limits allow over any run."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from adapters.aws.kinesis_pacing import ShardMap, ShardPacer, hash_key
from domain.models import StreamRecord

TOP = 2**128


def four_shards() -> ShardMap:
    starts = [i * (TOP // 4) for i in range(4)]
    return ShardMap([f"shardId-{i:012d}" for i in range(4)], starts)


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_hash_key_is_the_md5_of_the_partition_key_as_a_128_bit_number() -> None:
    assert hash_key("fan-1") == int(hashlib.md5(b"fan-1").hexdigest(), 16)


@given(st.text(min_size=1, max_size=20))
def test_a_key_goes_to_the_shard_whose_range_holds_its_hash(key: str) -> None:
    shard = four_shards().shard_for(key)
    assert shard == f"shardId-{hash_key(key) // (TOP // 4):012d}"


@given(
    st.lists(st.integers(1, 500), min_size=1, max_size=30),
    st.integers(1, 8),
    st.sampled_from([10, 400, 5_000]),
)
def test_no_shard_gets_more_than_its_rate_over_the_run(
    batch_sizes: list[int], keys: int, record_bytes: int
) -> None:
    fake = FakeTime()
    pacer = ShardPacer(four_shards, headroom=1.0, clock=fake.clock, sleep=fake.sleep)
    per_shard: dict[str, tuple[int, int]] = {}
    shards = four_shards()
    for number, size in enumerate(batch_sizes):
        batch = [StreamRecord(f"k{(number + i) % keys}", b"x" * record_bytes) for i in range(size)]
        pacer.wait_for(batch)
        for record in batch:
            shard = shards.shard_for(record.partition_key)
            count, total = per_shard.get(shard, (0, 0))
            per_shard[shard] = (count + 1, total + len(record.data) + len(record.partition_key))
    elapsed = fake.now
    for count, total in per_shard.values():
        # One second's worth up front (the bucket starts full), then the rate; a batch bigger
        # than a second's worth is let through whole once the bucket is full.
        assert count <= 1_000 * (elapsed + 1) + 500
        assert total <= 1024 * 1024 * (elapsed + 1) + 500 * 5_010


def test_a_hot_shard_paces_to_a_thousand_records_a_second() -> None:
    fake = FakeTime()
    pacer = ShardPacer(four_shards, headroom=1.0, clock=fake.clock, sleep=fake.sleep)
    for _ in range(10):
        pacer.wait_for([StreamRecord("same-fan", b"x")] * 500)
    assert fake.now == 4.0  # 5,000 records: 1,000 up front, then 4 seconds at 1,000/s


@given(st.lists(st.integers(1, 1_000), min_size=1, max_size=20))
def test_a_shard_never_gets_more_than_a_seconds_worth_in_any_second(sizes: list[int]) -> None:
    """The first second included: a bucket that starts full and refills while it drains
    would let two seconds' worth through it."""
    fake = FakeTime()
    pacer = ShardPacer(four_shards, headroom=1.0, clock=fake.clock, sleep=fake.sleep)
    sent: list[tuple[float, int]] = []
    for size in sizes:
        pacer.wait_for([StreamRecord("same-fan", b"x")] * size)
        sent.append((fake.now, size))
    for start, _ in sent:
        assert sum(n for at, n in sent if start <= at < start + 1.0) <= 1_000
