"""The poller over a stream that is split and merged (the emulator reshards as Kinesis does):
every record handled exactly once, and in order per partition key from parent to child."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from domain.streaming import BatchCounts, IncomingRecord
from streams.poller import DynamoCheckpoints, FileCheckpoints, ShardPoller

pytestmark = pytest.mark.integration

KEYS = [f"fan-{n}" for n in range(40)]
HALF = 2**127


class Recorder:
    """Keeps (partition key, n) of every record handled, in the order handled."""

    name = "recorder"

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []
        self.shards: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, batch: Sequence[IncomingRecord]) -> BatchCounts:
        with self.lock:
            self.seen += [(r.partition_key, int(r.data)) for r in batch]
            self.shards |= {r.shard_id for r in batch}
        return BatchCounts(received=len(batch), handled=len(batch))


class Producer:
    """Puts rounds of records, one per key per round, numbered per key in put order."""

    def __init__(self, kinesis: Any, stream: str) -> None:
        self.kinesis, self.stream = kinesis, stream
        self.next: Counter[str] = Counter()
        self.placed: list[tuple[str, int]] = []

    def put(self, rounds: int, keys: Sequence[str] = KEYS) -> None:
        for _ in range(rounds):
            entries = []
            for key in keys:
                self.next[key] += 1
                entries.append({"PartitionKey": key, "Data": str(self.next[key]).encode()})
                self.placed.append((key, self.next[key]))
            assert (
                self.kinesis.put_records(StreamName=self.stream, Records=entries)[
                    "FailedRecordCount"
                ]
                == 0
            )


def assert_once_and_in_order(seen: list[tuple[str, int]], placed: list[tuple[str, int]]) -> None:
    copies = Counter(seen)
    assert set(copies) == set(placed), f"{len(set(placed) - set(copies))} records never handled"
    assert [r for r, n in copies.items() if n > 1] == [], "records handled twice"
    for key in KEYS:
        numbers = [n for k, n in seen if k == key]
        assert numbers == sorted(numbers), f"{key} out of order: {numbers}"


def _open_shards(kinesis: Any, stream: str) -> list[dict[str, Any]]:
    shards = kinesis.list_shards(StreamName=stream, ShardFilter={"Type": "AT_LATEST"})["Shards"]
    return sorted(shards, key=lambda s: int(s["HashKeyRange"]["StartingHashKey"]))


def _hash(key: str) -> int:
    return int(hashlib.md5(key.encode()).hexdigest(), 16)


def split_first(producer: Producer) -> None:
    kinesis, stream = producer.kinesis, producer.stream
    shard = _open_shards(kinesis, stream)[0]
    low, high = (int(shard["HashKeyRange"][k]) for k in ("StartingHashKey", "EndingHashKey"))
    kinesis.split_shard(
        StreamName=stream, ShardToSplit=shard["ShardId"], NewStartingHashKey=str((low + high) // 2)
    )


def merge_first_two(producer: Producer) -> None:
    kinesis, stream = producer.kinesis, producer.stream
    low, high = _open_shards(kinesis, stream)[:2]
    # The adjacent parent gets a longer tail, so a child started after one parent only would
    # interleave with the other's last records.
    start, end = (int(low["HashKeyRange"][k]) for k in ("StartingHashKey", "EndingHashKey"))
    producer.put(6, keys=[k for k in KEYS if start <= _hash(k) <= end])
    # The higher one is ShardToMerge: the child's ParentShardId is then not the first listed.
    kinesis.merge_shards(
        StreamName=stream, ShardToMerge=high["ShardId"], AdjacentShardToMerge=low["ShardId"]
    )


PLANS: dict[str, list[Callable[[Producer], None]]] = {
    "split": [split_first],
    "merge": [merge_first_two],
    "split-then-merge": [split_first, merge_first_two],
}


@pytest.mark.parametrize("plan", list(PLANS))
def test_a_cold_start_on_a_resharded_stream_reads_parents_before_children(
    plan: str, kinesis_client: Any, make_stream: Callable[..., str], tmp_path: Path
) -> None:
    stream = make_stream(shards=2)
    producer = Producer(kinesis_client, stream)
    for reshard in PLANS[plan]:
        producer.put(3)
        reshard(producer)
    producer.put(3)
    recorder = Recorder()
    counts = ShardPoller(
        kinesis_client, stream, recorder, FileCheckpoints(tmp_path / "cp.json"), limit=17
    ).run()
    assert_once_and_in_order(recorder.seen, producer.placed)
    closed = [
        s["ShardId"]
        for s in kinesis_client.list_shards(StreamName=stream)["Shards"]
        if "EndingSequenceNumber" in s["SequenceNumberRange"]
    ]
    assert sorted(counts.finished_shards) == sorted(closed)

    again = Recorder()  # a rerun finds everything checkpointed, parents SHARD_END
    ShardPoller(kinesis_client, stream, again, FileCheckpoints(tmp_path / "cp.json")).run()
    assert again.seen == []


def _follow(poller: ShardPoller, stop: threading.Event) -> threading.Thread:
    failures: list[BaseException] = []

    def run() -> None:
        try:
            poller.run(until_caught_up=False, should_stop=stop.is_set)
        except BaseException as error:
            failures.append(error)
            raise

    thread = threading.Thread(target=run, daemon=True)
    thread.failures = failures  # type: ignore[attr-defined]
    thread.start()
    return thread


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_following_a_stream_that_is_split_and_merged_while_it_runs(
    kinesis_client: Any, make_stream: Callable[..., str], tmp_path: Path
) -> None:
    stream = make_stream(shards=2)
    producer = Producer(kinesis_client, stream)
    recorder = Recorder()
    stop = threading.Event()
    poller = ShardPoller(
        kinesis_client,
        stream,
        recorder,
        FileCheckpoints(tmp_path / "cp.json"),
        limit=25,
        idle_seconds=0.05,
        relist_seconds=0.5,
    )
    thread = _follow(poller, stop)
    try:
        for reshard in (split_first, merge_first_two, split_first):
            producer.put(4)
            time.sleep(0.1)  # mid-read, as in production
            reshard(producer)
        producer.put(4)
        _wait_for(lambda: len(recorder.seen) >= len(producer.placed), "every record")
        time.sleep(0.3)  # a duplicate (there must be none) would land now
    finally:
        stop.set()
        thread.join(30)
    assert not thread.failures  # type: ignore[attr-defined]
    assert_once_and_in_order(recorder.seen, producer.placed)


def test_two_pollers_share_a_stream_by_shard_and_a_merged_child_waits_for_both_parents(
    emulator: Any, aws: Any, kinesis_client: Any, make_stream: Callable[..., str]
) -> None:
    stream = make_stream(shards=2)
    dynamodb = aws.client("dynamodb")
    table = f"checkpoints-{stream}"
    producer = Producer(kinesis_client, stream)
    producer.put(3)
    merge_first_two(producer)  # ShardToMerge = shard 1: the child is its poller's
    producer.put(3)

    first, second = Recorder(), Recorder()
    pollers = [
        ShardPoller(
            kinesis_client,
            stream,
            recorder,
            DynamoCheckpoints(dynamodb, table),
            limit=10,
            shards=[shard],
            idle_seconds=0.05,
            relist_seconds=0.5,
        )
        for recorder, shard in ((first, "shardId-000000000000"), (second, "shardId-000000000001"))
    ]
    # The owner of the child runs alone first: it reads its parent, then must wait for the
    # other parent, which is not its own, and stop saying so rather than read the child early.
    pollers[1].run()
    assert second.seen, "it reads its own parent"
    assert second.shards == {"shardId-000000000001"}, "read the child before its other parent"
    stop = threading.Event()
    threads = [_follow(poller, stop) for poller in pollers]
    try:
        _wait_for(
            lambda: len(first.seen) + len(second.seen) >= len(producer.placed), "every record"
        )
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert_once_and_in_order(first.seen + second.seen, producer.placed)
    assert first.shards == {"shardId-000000000000"}, "the child read by the poller not owning it"
    assert second.shards == {"shardId-000000000001", "shardId-000000000002"}


def test_a_shard_the_stream_does_not_have_is_a_clear_error(
    kinesis_client: Any, make_stream: Callable[..., str], tmp_path: Path
) -> None:
    stream = make_stream(shards=1)
    poller = ShardPoller(
        kinesis_client,
        stream,
        Recorder(),
        FileCheckpoints(tmp_path / "cp.json"),
        shards=["shardId-000000000007"],
    )
    with pytest.raises(ValueError, match="no shard shardId-000000000007"):
        poller.run()
