"""The emulator reshards the way the Kinesis API reference says, over HTTP (boto3).

Each test names the documented behaviour it checks. If moto is upgraded and a replaced method
changed, the first test fails, naming it: review local/kinesis_resharding.py, then re-pin.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from local import kinesis_resharding as resharding
from local.moto_patch import fingerprint

pytestmark = pytest.mark.integration

MAX_HASH = 2**128 - 1
HALF = 2**127


def test_the_resharding_fix_applies_to_the_pinned_moto(emulator: Any) -> None:
    status = resharding.RESHARDING_FIX.status()
    assert status.applied, status.reason  # the emulator applied it when it started
    classes = resharding._classes()
    for qualified, replacement in resharding.PATCHES.items():
        owner, name = qualified.split(".")
        assert classes[owner].__dict__[name] is replacement, f"{qualified} is not patched"
    assert set(resharding.RESHARDING_FIX.originals) == set(resharding.ORIGINAL_FINGERPRINTS)
    for qualified, original in resharding.RESHARDING_FIX.originals.items():
        assert fingerprint(original) == resharding.ORIGINAL_FINGERPRINTS[qualified]


def test_a_changed_method_is_detected_and_nothing_is_patched() -> None:
    classes = dict(resharding._classes())
    originals = {
        name: resharding.RESHARDING_FIX.originals.get(f"Stream.{name}")
        or classes["Stream"].__dict__[name]
        for name in ("get_shard_for_key", "split_shard", "merge_shards")
    }

    def split_shard(self: object) -> None: ...

    classes["Stream"] = type("ChangedStream", (), {**originals, "split_shard": split_shard})
    problem = resharding.RESHARDING_FIX.check(classes)
    assert problem is not None and "differs" in problem
    assert "is gone" in (resharding.RESHARDING_FIX.check({}) or "")


def _hash(partition_key: str) -> int:
    return int(hashlib.md5(partition_key.encode()).hexdigest(), 16)  # Kinesis hashes keys with MD5


def _keys(low: int, high: int, count: int) -> list[str]:
    """Partition keys whose MD5 hash falls in [low, high]."""
    found: list[str] = []
    n = 0
    while len(found) < count:
        key = f"key-{n}"
        if low <= _hash(key) <= high:
            found.append(key)
        n += 1
    return found


def _put(kinesis: Any, stream: str, keys: list[str], tag: str) -> list[tuple[str, str]]:
    answer = kinesis.put_records(
        StreamName=stream,
        Records=[{"PartitionKey": key, "Data": f"{tag}-{key}".encode()} for key in keys],
    )
    assert answer["FailedRecordCount"] == 0
    return [(r["ShardId"], r["SequenceNumber"]) for r in answer["Records"]]


def _read_to_end(kinesis: Any, stream: str, shard_id: str) -> tuple[list[bytes], dict[str, Any]]:
    """Every record of a shard, and the last GetRecords answer (the one without an iterator)."""
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    data: list[bytes] = []
    for _ in range(100):
        answer = kinesis.get_records(ShardIterator=iterator, Limit=7)
        data += [r["Data"] for r in answer["Records"]]
        if answer.get("NextShardIterator") is None:
            return data, answer
        iterator = answer["NextShardIterator"]
    raise AssertionError(f"{shard_id} never ended (it is open, or the fix is not applied)")


def _shards(kinesis: Any, stream: str, **arguments: Any) -> dict[str, dict[str, Any]]:
    shards = kinesis.list_shards(StreamName=stream, **arguments)["Shards"]
    return {s["ShardId"]: s for s in shards}


S0, S1, S2, S3, S4 = (f"shardId-{n:012d}" for n in range(5))


def test_split_routes_new_records_to_the_open_children_and_leaves_the_parent_as_it_was(
    kinesis_client: Any, make_stream: Callable[..., str]
) -> None:
    """SplitShard: "the parent shard is closed ... data records continue to be readable from
    the parent"; new records go to the child whose hash key range holds them."""
    stream = make_stream(shards=1)
    low, high = _keys(0, HALF - 1, 5), _keys(HALF, MAX_HASH, 5)
    before = _put(kinesis_client, stream, low + high, "before")
    assert {shard for shard, _ in before} == {S0}
    kinesis_client.split_shard(StreamName=stream, ShardToSplit=S0, NewStartingHashKey=str(HALF))

    after = _put(kinesis_client, stream, low + high, "after")
    assert [shard for shard, _ in after] == [S1] * 5 + [S2] * 5
    parent, end = _read_to_end(kinesis_client, stream, S0)
    assert parent == [f"before-{k}".encode() for k in low + high], "parent changed by the split"
    assert end["ChildShards"] == [
        {
            "ShardId": S1,
            "ParentShards": [S0],
            "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": str(HALF - 1)},
        },
        {
            "ShardId": S2,
            "ParentShards": [S0],
            "HashKeyRange": {"StartingHashKey": str(HALF), "EndingHashKey": str(MAX_HASH)},
        },
    ]
    shards = _shards(kinesis_client, stream)
    assert shards[S1]["ParentShardId"] == S0 and shards[S2]["ParentShardId"] == S0
    assert "AdjacentParentShardId" not in shards[S1]
    assert shards[S0]["SequenceNumberRange"]["EndingSequenceNumber"] == before[-1][1]
    assert "EndingSequenceNumber" not in shards[S1]["SequenceNumberRange"]


def test_merge_copies_nothing_and_the_child_names_both_parents(
    kinesis_client: Any, make_stream: Callable[..., str]
) -> None:
    """MergeShards: both parents close and keep their records; the child starts empty and
    lists ParentShardId and AdjacentParentShardId; each parent's end names it."""
    stream = make_stream(shards=2)
    low, high = _keys(0, HALF - 1, 4), _keys(HALF, MAX_HASH, 4)
    _put(kinesis_client, stream, low + high, "before")
    kinesis_client.merge_shards(StreamName=stream, ShardToMerge=S1, AdjacentShardToMerge=S0)
    after = _put(kinesis_client, stream, low + high, "after")
    assert {shard for shard, _ in after} == {S2}

    expected_child = {
        "ShardId": S2,
        "ParentShards": [S1, S0],
        "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": str(MAX_HASH)},
    }
    for parent, keys in ((S0, low), (S1, high)):
        data, end = _read_to_end(kinesis_client, stream, parent)
        assert data == [f"before-{k}".encode() for k in keys]
        assert end["ChildShards"] == [expected_child]
    iterator = kinesis_client.get_shard_iterator(
        StreamName=stream, ShardId=S2, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    answer = kinesis_client.get_records(ShardIterator=iterator)
    assert [r["Data"] for r in answer["Records"]] == [f"after-{k}".encode() for k in low + high]
    assert answer["NextShardIterator"], "an open shard always has a next iterator"
    assert "ChildShards" not in answer or answer["ChildShards"] == []
    shard = _shards(kinesis_client, stream)[S2]
    assert (shard["ParentShardId"], shard["AdjacentParentShardId"]) == (S1, S0)


def test_shards_that_are_not_adjacent_or_already_closed_cannot_be_merged_or_split(
    kinesis_client: Any, make_stream: Callable[..., str]
) -> None:
    stream = make_stream(shards=3)
    error = kinesis_client.exceptions.InvalidArgumentException
    with pytest.raises(error, match="adjacent"):
        kinesis_client.merge_shards(StreamName=stream, ShardToMerge=S0, AdjacentShardToMerge=S2)
    kinesis_client.merge_shards(StreamName=stream, ShardToMerge=S0, AdjacentShardToMerge=S1)
    with pytest.raises(error, match="already been merged or split"):
        kinesis_client.split_shard(StreamName=stream, ShardToSplit=S0, NewStartingHashKey="5")
    with pytest.raises(error, match="already been merged or split"):
        kinesis_client.merge_shards(StreamName=stream, ShardToMerge=S1, AdjacentShardToMerge=S2)


def test_a_key_equal_to_a_shards_ending_hash_key_goes_to_that_shard(
    kinesis_client: Any, make_stream: Callable[..., str]
) -> None:
    """Hash key ranges are inclusive at both ends."""
    stream = make_stream(shards=2)
    shards = _shards(kinesis_client, stream)
    for shard_id, shard in shards.items():
        for edge in ("StartingHashKey", "EndingHashKey"):
            answer = kinesis_client.put_record(
                StreamName=stream,
                PartitionKey="any",
                ExplicitHashKey=shard["HashKeyRange"][edge],
                Data=b"x",
            )
            assert answer["ShardId"] == shard_id


def test_a_split_and_a_merge_end_each_closed_shard_once_read_from_any_position(
    kinesis_client: Any, make_stream: Callable[..., str]
) -> None:
    """A closed shard read to its end from its last record (AFTER_SEQUENCE_NUMBER) or from
    LATEST answers no iterator and its children at once."""
    stream = make_stream(shards=1)
    placed = _put(kinesis_client, stream, _keys(0, MAX_HASH, 3), "x")
    kinesis_client.split_shard(StreamName=stream, ShardToSplit=S0, NewStartingHashKey=str(HALF))
    for kind, extra in (
        ("AFTER_SEQUENCE_NUMBER", {"StartingSequenceNumber": placed[-1][1]}),
        ("LATEST", {}),
    ):
        iterator = kinesis_client.get_shard_iterator(
            StreamName=stream, ShardId=S0, ShardIteratorType=kind, **extra
        )["ShardIterator"]
        answer = kinesis_client.get_records(ShardIterator=iterator)
        assert answer["Records"] == []
        assert answer.get("NextShardIterator") is None
        assert [c["ShardId"] for c in answer["ChildShards"]] == [S1, S2]


def test_list_shards_honours_every_shard_filter(
    kinesis_client: Any, make_stream: Callable[..., str]
) -> None:
    """ShardFilter types as the ListShards reference defines them (nothing expires here, so
    the trim horizon is the stream's creation)."""
    stream = make_stream(shards=2)
    before_resharding = datetime.now(tz=UTC)
    time.sleep(0.05)
    kinesis_client.split_shard(StreamName=stream, ShardToSplit=S0, NewStartingHashKey=str(2**126))
    kinesis_client.merge_shards(StreamName=stream, ShardToMerge=S3, AdjacentShardToMerge=S1)
    time.sleep(0.05)
    after_resharding = datetime.now(tz=UTC)
    s5 = "shardId-000000000004"

    def listed(kind: str, **extra: Any) -> list[str]:
        return sorted(_shards(kinesis_client, stream, ShardFilter={"Type": kind, **extra}))

    assert sorted(_shards(kinesis_client, stream)) == [S0, S1, S2, S3, s5]
    assert listed("FROM_TRIM_HORIZON") == [S0, S1, S2, S3, s5]
    assert listed("AT_TRIM_HORIZON") == [S0, S1]
    assert listed("AT_LATEST") == [S2, s5]
    assert listed("AFTER_SHARD_ID", ShardId=S1) == [S2, S3, s5]
    assert listed("AT_TIMESTAMP", Timestamp=before_resharding) == [S0, S1]
    assert listed("AT_TIMESTAMP", Timestamp=after_resharding) == [S2, s5]
    assert listed("FROM_TIMESTAMP", Timestamp=before_resharding) == [S0, S1, S2, S3, s5]
    assert listed("FROM_TIMESTAMP", Timestamp=after_resharding) == [S2, s5]
    merged = _shards(kinesis_client, stream)[s5]
    assert (merged["ParentShardId"], merged["AdjacentParentShardId"]) == (S3, S1)


def test_list_shards_pages_and_starts_after_a_shard(
    kinesis_client: Any, make_stream: Callable[..., str]
) -> None:
    stream = make_stream(shards=5)
    first = kinesis_client.list_shards(StreamName=stream, MaxResults=2)
    assert [s["ShardId"] for s in first["Shards"]] == [S0, S1]
    second = kinesis_client.list_shards(NextToken=first["NextToken"], MaxResults=10)
    assert [s["ShardId"] for s in second["Shards"]] == [S2, S3, "shardId-000000000004"]
    assert "NextToken" not in second
    after = kinesis_client.list_shards(StreamName=stream, ExclusiveStartShardId=S3)
    assert [s["ShardId"] for s in after["Shards"]] == ["shardId-000000000004"]
