"""Two merges of one lake day (issue 17, item 3): today both merge fully and both queue a move.
With the merge lease the second merges nothing, queues nothing and says who holds the day."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from returns.result import Success

from adapters.clock import FixedClock
from adapters.lake_compactor import AvroLakeCompactor
from domain.lake import LakeLayout, MergeCounts
from domain.models import ObjectRef
from domain.workers.merge_avro_files import MergeRequest, merge_avro_files
from tests.support.lake_files import ban_record, lake_file
from tests.support.memory_compaction import MemoryMoveQueue
from tests.support.memory_leases import MemoryLeases
from tests.support.memory_objects import InMemoryObjectStore

BUCKET, DAY = "lake", "2024/05/03"
T0 = datetime(2024, 5, 4, 10, tzinfo=UTC)


def merge(store: InMemoryObjectStore, queue: MemoryMoveQueue, leases: MemoryLeases) -> MergeCounts:
    compactor = AvroLakeCompactor(store)
    return merge_avro_files(
        MergeRequest(DAY, ("codeBan",)),
        store=store,
        compactor=compactor,
        manifests=compactor,
        queue=queue,
        layout=LakeLayout(BUCKET),
        leases=leases,
    )


def test_a_second_merge_of_a_day_merges_and_queues_nothing_and_names_the_holder() -> None:
    store, queue = InMemoryObjectStore(), MemoryMoveQueue()
    store.put_bytes(
        ObjectRef(BUCKET, f"avro/codeBan/{DAY}/shardId-000000000000-1.avro"),
        lake_file("codeBan", [ban_record("x"), ban_record("y")]),
    )
    clock = FixedClock(T0)
    leases = MemoryLeases(clock, seconds=600)
    leases.sharing("merger-a/77/f00").acquire(DAY).unwrap()  # a merge of the day, running
    before = dict(store.objects)
    busy = merge(store, queue, leases)
    assert busy.busy is not None and "merger-a/77/f00" in busy.busy
    assert "since 2024-05-04T10:00:00Z" in busy.busy
    assert store.objects == before and queue.requests == []
    clock.at = T0 + timedelta(seconds=600)  # the first merge was killed: its term runs out
    done = merge(store, queue, leases)
    assert done.busy is None and done.records == 2
    assert len(queue.requests) == 1


class SlowSources(InMemoryObjectStore):
    """Each whole read of a source file takes `seconds` on the fake clock; after it, another
    run tries to take the day's lease (a retry of the merge, arriving while this one works)."""

    def __init__(self, clock: FixedClock, leases: MemoryLeases, seconds: list[int]) -> None:
        super().__init__()
        self.clock, self.rival, self.seconds = clock, leases.sharing("merger-b/8/b"), seconds
        self.rival_got_it = False

    def iter_chunks(
        self, ref: ObjectRef, start: int = 0, end: int | None = None
    ) -> Iterator[bytes]:
        if end is None and ref.key.startswith(f"avro/codeBan/{DAY}/") and self.seconds:
            self.clock.at += timedelta(seconds=self.seconds.pop(0))
            self.rival_got_it |= isinstance(self.rival.acquire(DAY), Success)
        return super().iter_chunks(ref, start, end)


def slow_merge(seconds: list[int]) -> tuple[MergeCounts, SlowSources, MemoryMoveQueue]:
    clock = FixedClock(T0)
    leases = MemoryLeases(clock, seconds=600)
    store, queue = SlowSources(clock, leases, seconds), MemoryMoveQueue()
    for i in range(3):
        store.put_bytes(
            ObjectRef(BUCKET, f"avro/codeBan/{DAY}/shardId-000000000000-{i}.avro"),
            lake_file("codeBan", [ban_record(f"r{i}")]),
        )
    compactor = AvroLakeCompactor(store, read_ahead=0)  # reads in turn, on the fake clock
    counts = merge_avro_files(
        MergeRequest(DAY, ("codeBan",)),
        store=store,
        compactor=compactor,
        manifests=compactor,
        queue=queue,
        layout=LakeLayout(BUCKET),
        leases=leases,
    )
    return counts, store, queue


def test_a_type_merge_longer_than_half_the_lease_renews_it_inside_and_keeps_the_day() -> None:
    """Three sources of 250 s each: 750 s in one type, longer than the 600 s lease. The lease
    is renewed before each source, so a rival arriving meanwhile is refused every time."""
    counts, store, queue = slow_merge([250, 250, 250])
    assert counts.busy is None and counts.records == 3
    assert not store.rival_got_it and len(queue.requests) == 1


def test_a_source_slower_than_the_lease_stops_the_merge_saying_the_lease_was_lost() -> None:
    """One read outlasts the whole term and the rival takes the day over: the stalled merge
    stops at its next heartbeat, writes no merged file and queues no move."""
    counts, store, queue = slow_merge([10, 700, 10])
    assert store.rival_got_it
    assert counts.busy is not None and "lost its lease" in counts.busy
    assert queue.requests == []
    assert not [r for r in store.objects if "/merged/" in r.key]
