"""merge_avro_files, over generated lakes: the merged file holds each dedupeId once, the first by
arrival, whatever the split of records into files and blocks, the placement of duplicates, the
codec, and whether a file's header lists its keys."""

from __future__ import annotations

from functools import partial
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from adapters.avro_container import ChunkReader, iter_blocks, read_header
from adapters.lake_compactor import AvroLakeCompactor
from adapters.lake_keys import SpillingKeyIndex
from domain.lake import FirstWinsIndex, LakeLayout, MoveRequest
from domain.models import ObjectRef
from domain.workers.merge_avro_files import MergeRequest, merge_avro_files
from tests.support.lake_files import ban_record, lake_file, read_records
from tests.support.memory_compaction import MemoryMoveQueue
from tests.support.memory_objects import InMemoryObjectStore

BUCKET = "lake"
PREFIX = "2024/05/03"
LAYOUT = LakeLayout(BUCKET)


@st.composite
def lake_day(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Files of one day: each a list of ids from a small pool (so duplicates fall anywhere: in
    one block, across blocks, across files), its block cuts, codec, keyed or not, arrival."""
    pool = draw(st.integers(1, 40))
    files = []
    for number in range(draw(st.integers(1, 6))):
        ids = draw(st.lists(st.integers(0, pool - 1), min_size=1, max_size=30))
        cuts = draw(st.lists(st.integers(1, 8), max_size=5))
        files.append(
            {
                "key": f"avro/codeBan/{PREFIX}/shardId-000000000000-{number:04d}.avro",
                "ids": ids,
                "cuts": cuts,
                "keyed": draw(st.booleans()),
                "codec": draw(st.sampled_from(["deflate", "null"])),
                "arrival": draw(st.integers(1, 5)),
            }
        )
    return files


SHARED_SYNC = bytes(range(16))


def write_day(
    store: InMemoryObjectStore, files: list[dict[str, Any]], shared_sync: bool = False
) -> list[dict[str, Any]]:
    """Writes the files; returns every record in the order the rule reads them (files by first
    arrival then key, a file without header keys first as it carries no arrival either).
    `shared_sync`: every file with one sync marker, as lake files of a schema have (the merge
    then copies a file with nothing to drop whole); else fastavro's random one each."""
    copy = 0
    order = []
    for spec in files:
        records = []
        for position, dedupe in enumerate(spec["ids"]):
            copy += 1
            records.append(
                ban_record(f"id-{dedupe}", copy=copy, arrival=spec["arrival"] * 1000 + position)
            )
        data = lake_file(
            "codeBan", records, blocks=spec["cuts"], keyed=spec["keyed"], codec=spec["codec"]
        )
        if shared_sync:
            data = data.replace(read_header(ChunkReader([data])).sync, SHARED_SYNC)
        store.put_bytes(ObjectRef(BUCKET, spec["key"]), data)
        arrival = records[0]["receivedAt"].timestamp() if spec["keyed"] else 0
        order.append(((arrival, spec["key"]), records))
    return [record for _, records in sorted(order, key=lambda item: item[0]) for record in records]


def merge(
    store: InMemoryObjectStore, queue: MemoryMoveQueue, *, in_memory_keys: int | None = None
) -> Any:
    """The merge with production's index (spilling past `in_memory_keys`), or with the rule's
    plain-Python reference when None."""
    compactor = AvroLakeCompactor(store)
    return merge_avro_files(
        MergeRequest(PREFIX, ("codeBan",)),
        store=store,
        compactor=compactor,
        manifests=compactor,
        queue=queue,
        layout=LAYOUT,
        new_index=(
            FirstWinsIndex
            if in_memory_keys is None
            else partial(SpillingKeyIndex, in_memory_keys=in_memory_keys)
        ),
    )


@given(lake_day(), st.one_of(st.none(), st.integers(1, 40)), st.booleans())
def test_merged_file_holds_each_dedupe_id_once_the_first_by_arrival(
    files: list[dict[str, Any]], in_memory_keys: int | None, shared_sync: bool
) -> None:
    store, queue = InMemoryObjectStore(), MemoryMoveQueue()
    arrived = write_day(store, files, shared_sync)
    first: dict[str, dict[str, Any]] = {}
    for record in arrived:
        first.setdefault(record["dedupeId"], record)

    counts = merge(store, queue, in_memory_keys=in_memory_keys)

    merged = store.objects[LAYOUT.merged_ref("codeBan", PREFIX)]
    got = read_records(merged)
    assert [r["payload"] for r in got] == [r["payload"] for r in first.values()]
    assert counts.refusals == ()
    assert (counts.files, counts.records, counts.duplicates) == (
        len(files),
        len(first),
        len(arrived) - len(first),
    )
    assert queue.requests == [MoveRequest("codeBan", PREFIX)]
    reader = ChunkReader([merged])
    header = read_header(reader)
    assert sum(block.count for block in iter_blocks(reader, header.sync)) == len(first)


@given(lake_day())
def test_a_rerun_of_a_merged_prefix_writes_nothing_and_says_so(files: list[dict[str, Any]]) -> None:
    store, queue = InMemoryObjectStore(), MemoryMoveQueue()
    write_day(store, files)
    first = merge(store, queue)
    before = dict(store.objects)

    again = merge(store, queue)

    assert store.objects == before
    assert again.already_merged
    assert (again.files, again.records, again.duplicates) == (
        first.files,
        first.records,
        first.duplicates,
    )
    # Queued again: a crash between the merged file and the queue heals on the re-run.
    assert queue.requests == [MoveRequest("codeBan", PREFIX)] * 2
