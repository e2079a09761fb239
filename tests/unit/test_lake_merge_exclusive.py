"""Two merges of one lake day (issue 17, item 3): today both merge fully and both queue a move.
With the merge lease the second merges nothing, queues nothing and says who holds the day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.clock import FixedClock
from adapters.lake_compactor import AvroLakeCompactor
from adapters.leases import MemoryLeases
from adapters.memory import InMemoryObjectStore, MemoryMoveQueue
from domain.lake import LakeLayout, MergeCounts
from domain.models import ObjectRef
from domain.workers.merge_avro_files import MergeRequest, merge_avro_files
from tests.support.lake_files import ban_record, lake_file

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
