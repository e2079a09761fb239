"""merge_avro_files and its rules: prefixes, schema checks, guards, and what a refusal leaves."""

from __future__ import annotations

import base64
import copy
import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import fastavro
import pytest
from returns.result import Success

from adapters.avro_container import FIRST_ARRIVAL_META, KEYS_META, ChunkReader, read_header
from adapters.lake_compactor import AvroLakeCompactor
from domain.lake import (
    FirstWins,
    FirstWinsIndex,
    LakeLayout,
    MergeKind,
    dedupe_key,
    parse_prefix,
    previous_period_prefix,
)
from domain.models import ObjectMismatch, ObjectRef
from domain.workers.merge_avro_files import MergeLimits, MergeRequest, merge_avro_files
from tests.support.lake_files import SCHEMAS, ban_record, lake_file, read_records
from tests.support.memory_compaction import MemoryMoveQueue
from tests.support.memory_objects import InMemoryObjectStore

BUCKET = "lake"
DAY = "2024/05/03"
LAYOUT = LakeLayout(BUCKET)
MERGED = LAYOUT.merged_ref("codeBan", DAY)


def source(number: int) -> ObjectRef:
    return ObjectRef(BUCKET, f"avro/codeBan/{DAY}/shardId-000000000000-{number}.avro")


def merge(
    store: InMemoryObjectStore,
    queue: MemoryMoveQueue | None = None,
    *,
    compactor: AvroLakeCompactor | None = None,
    **kwargs: Any,
) -> Any:
    compactor = compactor or AvroLakeCompactor(store)
    return merge_avro_files(
        MergeRequest(DAY, ("codeBan",)),
        store=store,
        compactor=compactor,
        manifests=compactor,
        queue=queue or MemoryMoveQueue(),
        layout=LAYOUT,
        **kwargs,
    )


def old_ban_schema() -> dict[str, Any]:
    """codeBan as it might have been before receivedAt existed: the current schema reads it
    (receivedAt has a default)."""
    schema: dict[str, Any] = copy.deepcopy(SCHEMAS.schema("codeBan"))
    schema.pop("__fastavro_parsed", None)
    schema.pop("__named_schemas", None)
    schema["fields"] = [f for f in schema["fields"] if f["name"] != "receivedAt"]
    return schema


@pytest.mark.parametrize(
    ("kind", "now", "prefix"),
    [
        (MergeKind.DAILY, datetime(2024, 5, 4, 10, tzinfo=UTC), "2024/05/03"),
        (MergeKind.DAILY, datetime(2024, 3, 1, 10, tzinfo=UTC), "2024/02/29"),
        (MergeKind.DAILY, datetime(2025, 1, 1, 0, 30, tzinfo=UTC), "2024/12/31"),
        (MergeKind.MONTHLY, datetime(2024, 5, 2, 9, tzinfo=UTC), "2024/04"),
        (MergeKind.MONTHLY, datetime(2025, 1, 2, 9, tzinfo=UTC), "2024/12"),
    ],
)
def test_the_schedules_merge_the_period_before_in_utc(
    kind: MergeKind, now: datetime, prefix: str
) -> None:
    assert previous_period_prefix(kind, now) == prefix


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("2024/05/03", "2024/05/03"),
        ("/2024/05/", "2024/05"),
        ("2024/02/30", None),
        ("2024/5/3", None),
        ("2024", None),
        ("2024/05/03/x", None),
        ("../etc", None),
    ],
)
def test_prefixes_are_dates_or_nothing(text: str, parsed: str | None) -> None:
    assert parse_prefix(text) == parsed


def test_merged_files_stay_out_of_the_daily_and_monthly_listings() -> None:
    daily, days_merged = LAYOUT.source_prefixes("registration", "2024/05/03")
    monthly, months_merged = LAYOUT.source_prefixes("registration", "2024/05")
    merged_day = LAYOUT.merged_ref("registration", "2024/05/03").key
    merged_month = LAYOUT.merged_ref("registration", "2024/05").key
    assert merged_day == "avro/registration/merged/2024/05/03.avro"
    assert not merged_day.startswith(daily) and not merged_day.startswith(monthly)
    assert merged_day.startswith(months_merged)  # the month's merge reads the days' files
    assert not merged_month.startswith(months_merged) and not merged_month.startswith(monthly)
    assert not merged_day.startswith(days_merged)
    archived = LAYOUT.archive_ref("registration", ObjectRef(BUCKET, f"{daily}s-1.avro"))
    assert archived.key == "avro/archived/registration/2024/05/03/s-1.avro"


def test_first_wins_keeps_each_key_once_across_and_within_calls() -> None:
    index = FirstWins()
    a, b, c = (dedupe_key(x) for x in "abc")
    assert index.admit([a, b]) == []
    assert index.admit([c, a, c, b]) == [1, 2, 3]
    assert index.dropped == 3


def test_a_file_of_an_older_compatible_schema_is_read_into_the_current_one() -> None:
    store = InMemoryObjectStore()
    old = old_ban_schema()
    older = [{k: v for k, v in ban_record("x", copy=1).items() if k != "receivedAt"}]
    store.put_bytes(source(1), lake_file("codeBan", older, schema=old))
    store.put_bytes(source(2), lake_file("codeBan", [ban_record("x", copy=2), ban_record("y")]))

    counts = merge(store)

    assert counts.refusals == ()
    got = read_records(store.objects[MERGED])
    assert (got[0]["dedupeId"], got[0]["receivedAt"]) == ("x", None)
    assert [r["dedupeId"] for r in got] == ["x", "y"]
    assert counts.duplicates == 1


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        (lambda s: s.update(name="Registration"), "foreign_schema"),
        (
            lambda s: s["fields"].append({"name": "campaignId", "type": "string"}) or None,
            "resolve_reader_ignores_extra",
        ),
        (
            lambda s: [f.update(type="long") for f in s["fields"] if f["name"] == "payload"],
            "outdated_schema",
        ),
    ],
)
def test_a_schema_the_current_one_cannot_read_is_refused_naming_the_file(
    change: Any, kind: str
) -> None:
    store, queue = InMemoryObjectStore(), MemoryMoveQueue()
    schema = old_ban_schema()
    change(schema)
    record: dict[str, Any] = {k: v for k, v in ban_record("x").items() if k != "receivedAt"}
    for field in schema["fields"]:
        if field["type"] == "long":
            record[field["name"]] = 7
        elif field["name"] not in record:
            record[field["name"]] = "c"
    store.put_bytes(source(1), lake_file("codeBan", [ban_record("y")]))
    store.put_bytes(source(2), lake_file("codeBan", [record], schema=schema))

    counts = merge(store, queue)

    if kind == "resolve_reader_ignores_extra":  # a field the current schema dropped: fine
        assert counts.refusals == ()
        return
    (refused,) = counts.refusals
    assert refused.refusal is not None
    assert refused.refusal.kind == kind
    assert refused.refusal.file == source(2).key
    assert source(2).key in refused.refusal.message
    assert MERGED not in store.objects
    assert queue.requests == []


def test_a_file_that_is_not_avro_is_refused_and_nothing_is_written() -> None:
    store, queue = InMemoryObjectStore(), MemoryMoveQueue()
    store.put_bytes(source(1), lake_file("codeBan", [ban_record("y")]))
    store.put_bytes(source(2), b"not avro at all")

    (refused,) = merge(store, queue).refusals

    assert refused.refusal is not None
    assert (refused.refusal.kind, refused.refusal.file) == ("unreadable", source(2).key)
    assert MERGED not in store.objects and queue.requests == []


def test_header_keys_that_do_not_match_the_records_refuse_instead_of_dropping_wrong_ones() -> None:
    store, queue = InMemoryObjectStore(), MemoryMoveQueue()
    store.put_bytes(source(1), lake_file("codeBan", [ban_record("a"), ban_record("b")]))
    # A header claiming the second file holds "a" and "b" while it holds "a" and "c".
    data = lake_file("codeBan", [ban_record("a"), ban_record("c")], keyed=False)
    reader = fastavro.reader(io.BytesIO(data))
    records = list(reader)
    lied = io.BytesIO()
    keys = base64.b64encode(dedupe_key("a") + dedupe_key("b")).decode()
    fastavro.writer(lied, SCHEMAS.schema("codeBan"), records, metadata={KEYS_META: keys})
    store.put_bytes(source(2), lied.getvalue())

    (refused,) = merge(store, queue).refusals

    assert refused.refusal is not None
    assert "do not match" in refused.refusal.message
    assert MERGED not in store.objects and queue.requests == []


def test_the_size_guard_refuses_before_reading_anything() -> None:
    store = InMemoryObjectStore()
    store.put_bytes(source(1), lake_file("codeBan", [ban_record("a")]))

    (refused,) = merge(store, limits=MergeLimits(max_bytes=10)).refusals

    assert refused.refusal is not None and refused.refusal.kind == "too_large"
    assert "MERGE_MAX_BYTES" in refused.refusal.message


def test_the_records_guard_says_what_to_change() -> None:
    store = InMemoryObjectStore()
    store.put_bytes(source(1), lake_file("codeBan", [ban_record(str(i)) for i in range(5)]))

    (refused,) = merge(store, limits=MergeLimits(max_records=4)).refusals

    assert refused.refusal is not None and "MERGE_MAX_RECORDS" in refused.refusal.message


def test_with_a_duplicate_finder_only_the_ids_it_found_are_dropped() -> None:
    store = InMemoryObjectStore()
    store.put_bytes(source(1), lake_file("codeBan", [ban_record(str(i)) for i in range(5)]))
    store.put_bytes(
        source(2),
        lake_file("codeBan", [ban_record("3", copy=1), ban_record("4", copy=1), ban_record("9")]),
    )
    repeating = frozenset({dedupe_key("3")})

    counts = merge(store, duplicates=lambda record_type, prefix, files: Success(repeating))

    assert counts.refusals == () and counts.duplicates == 1
    # "4" repeats too, but the finder did not name it: a finder's miss keeps a copy too many,
    # never drops a record.
    assert [r["dedupeId"] for r in read_records(store.objects[MERGED])] == [
        "0",
        "1",
        "2",
        "3",
        "4",
        "4",
        "9",
    ]


def test_a_type_without_files_for_the_prefix_does_nothing() -> None:
    store, queue = InMemoryObjectStore(), MemoryMoveQueue()
    counts = merge(store, queue)
    assert (counts.files, counts.records, counts.already_merged) == (0, 0, False)
    assert store.objects == {} and queue.requests == []


def test_save_campaign_datas_files_list_their_dedupe_keys_and_first_arrival() -> None:
    arrived = datetime(2024, 5, 3, 12, tzinfo=UTC)
    records = [
        SCHEMAS.conform("codeBan", {"type": "codeBan", "dedupeId": f"d{i}"}, arrived).unwrap()
        for i in range(3)
    ]

    data = SCHEMAS.encode("codeBan", records)

    meta = fastavro.reader(io.BytesIO(data)).metadata
    assert base64.b64decode(meta[KEYS_META]) == b"".join(dedupe_key(f"d{i}") for i in range(3))
    assert meta[FIRST_ARRIVAL_META] == str(int(arrived.timestamp() * 1000))
    assert SCHEMAS.encode("codeBan", records) == data  # a replay still writes the same bytes


def test_a_header_longer_than_the_first_ranged_read_is_read_on() -> None:
    store = InMemoryObjectStore()
    big = [ban_record(str(i)) for i in range(4_000)]  # ~85 KB of listed keys: past 64 KiB
    data = lake_file("codeBan", big)
    assert data.index(b"campaign_workers.dedupe_keys") + 4_000 * 21 > 64 * 1024
    store.put_bytes(source(1), data)
    store.put_bytes(source(2), lake_file("codeBan", [ban_record("7", copy=1), ban_record("x")]))

    counts = merge(store)

    assert counts.refusals == () and (counts.records, counts.duplicates) == (4_001, 1)
    assert [r["dedupeId"] for r in read_records(store.objects[MERGED])][-2:] == ["3999", "x"]


def test_a_source_not_held_rewritten_between_inspection_and_writing_is_refused_not_merged() -> None:
    store = InMemoryObjectStore()
    store.put_bytes(source(1), lake_file("codeBan", [ban_record("a"), ban_record("b")]))
    store.put_bytes(source(2), lake_file("codeBan", [ban_record("b", copy=1), ban_record("c")]))
    compactor = AvroLakeCompactor(store, hold_bytes=0)  # read twice: its header compared
    rewrite = lake_file("codeBan", [ban_record("c", copy=2), ban_record("b", copy=2)])

    class RewritingIndex(FirstWinsIndex):
        def drops(self, order: Any, watch: Any = None) -> Any:
            plan = super().drops(order, watch)
            store.put_bytes(source(2), rewrite)  # a late replay lands while the merge runs
            return plan

    counts = merge_avro_files(
        MergeRequest(DAY, ("codeBan",)),
        store=store,
        compactor=compactor,
        manifests=compactor,
        queue=MemoryMoveQueue(),
        layout=LAYOUT,
        new_index=RewritingIndex,
    )

    (refused,) = counts.refusals
    assert refused.refusal is not None and "changed while the merge ran" in refused.refusal.message
    assert MERGED not in store.objects


class CountingStore(InMemoryObjectStore):
    """Counts the reads (GETs, ranged or not) of each object."""

    def __init__(self) -> None:
        super().__init__()
        self.gets: dict[ObjectRef, int] = {}

    def iter_chunks(self, ref: ObjectRef, start: int = 0, end: int | None = None) -> Any:
        self.gets[ref] = self.gets.get(ref, 0) + 1
        return super().iter_chunks(ref, start, end)


def test_each_small_source_is_read_once_held_from_its_inspection_to_the_writing() -> None:
    store = CountingStore()
    for number in range(1, 4):
        records = [ban_record(f"{number}-{i}") for i in range(3)] + [ban_record("dup")]
        store.put_bytes(source(number), lake_file("codeBan", records))

    counts = merge(store)

    assert counts.refusals == () and (counts.records, counts.duplicates) == (10, 2)
    assert [store.gets[source(n)] for n in range(1, 4)] == [1, 1, 1]


@pytest.mark.parametrize("shared_sync", [False, True])
def test_sources_held_or_read_twice_merge_into_the_same_bytes(shared_sync: bool) -> None:
    """With a shared sync marker (lake files of one schema) a held source with nothing to drop
    is copied whole, its blocks walked only by the merged bytes' count check."""
    files = {
        source(n): lake_file(
            "codeBan", [ban_record(f"{n % 3}-{i}", copy=n) for i in range(5)], blocks=[2, 3]
        )
        for n in range(1, 5)
    }
    if shared_sync:
        files = {ref: with_sync(data) for ref, data in files.items()}
    stores = [InMemoryObjectStore(files), InMemoryObjectStore(files)]
    budgets = (AvroLakeCompactor.__init__.__kwdefaults__ or {})["hold_bytes"], 0

    results = [
        merge(store, compactor=AvroLakeCompactor(store, hold_bytes=budget))
        for store, budget in zip(stores, budgets, strict=True)
    ]

    assert [(r.records, r.duplicates, r.refusals) for r in results] == [(15, 5, ())] * 2
    assert stores[0].objects[MERGED] == stores[1].objects[MERGED]
    sidecar = LAYOUT.sidecar_ref("codeBan", DAY)
    assert stores[0].objects[sidecar] == stores[1].objects[sidecar]


def test_a_held_source_rewritten_after_its_inspection_is_merged_as_inspected() -> None:
    store = InMemoryObjectStore()
    store.put_bytes(source(1), lake_file("codeBan", [ban_record("a"), ban_record("b")]))
    inspected = lake_file("codeBan", [ban_record("b", copy=1), ban_record("c")])
    store.put_bytes(source(2), inspected)
    listed = {info.ref: info.etag for info in store.list_objects(BUCKET, "avro/")}
    rewrite = lake_file("codeBan", [ban_record("c", copy=2), ban_record("b", copy=2)])

    class RewritingIndex(FirstWinsIndex):
        def drops(self, order: Any, watch: Any = None) -> Any:
            plan = super().drops(order, watch)
            store.put_bytes(source(2), rewrite)  # a late replay lands while the merge runs
            return plan

    counts = merge(store, new_index=RewritingIndex)

    assert counts.refusals == () and (counts.records, counts.duplicates) == (3, 1)
    merged = store.objects[MERGED]
    assert [(r["dedupeId"], r["payload"]) for r in read_records(merged)] == [
        (r["dedupeId"], r["payload"]) for r in [ban_record("a"), ban_record("b"), ban_record("c")]
    ]
    # The manifest names the ETag the source was listed (and read) with: the move, which
    # archives a source only while it has that ETag, leaves the rewrite for the next merge.
    manifest = AvroLakeCompactor(store).read_manifest(MERGED)
    assert manifest is not None
    named = {entry.key: entry.etag for entry in manifest.sources}
    assert named[source(2).key] == listed[source(2)] != store.head(source(2)).etag  # type: ignore[union-attr]


class PublishLog(CountingStore):
    """Records every object published (a completed upload), even one deleted again."""

    def __init__(self) -> None:
        super().__init__()
        self.published: list[ObjectRef] = []

    def _store(self, ref: ObjectRef, data: bytes) -> None:
        self.published.append(ref)
        super()._store(ref, data)


def test_the_merged_file_is_counted_as_written_not_read_back() -> None:
    store = PublishLog()
    for number in range(1, 4):
        records = [ban_record(f"{number}-{i}") for i in range(3)] + [ban_record("dup")]
        store.put_bytes(source(number), lake_file("codeBan", records, blocks=[2, 2]))

    counts = merge(store)

    assert counts.refusals == () and (counts.records, counts.duplicates) == (10, 2)
    # One GET, the manifest looked for before the merge (none yet): none after, to count it.
    assert store.gets[MERGED] == 1, "the count check read the merged file back"
    assert sorted(r["dedupeId"] for r in read_records(store.objects[MERGED])) == sorted(
        [f"{n}-{i}" for n in range(1, 4) for i in range(3)] + ["dup"]
    )


def test_a_merged_file_whose_written_blocks_miscount_never_appears() -> None:
    """The walk of the bytes as written stands in for the read-back: a writer that wrote other
    blocks than it counted (here one block written twice) is refused before the upload
    completes, where the read-back refused it only after the merged file had appeared."""
    store, queue = PublishLog(), MemoryMoveQueue()
    for number in range(1, 3):
        store.put_bytes(source(number), lake_file("codeBan", [ban_record(f"{number}")]))

    class Stutters(AvroLakeCompactor):
        def _copy_file(self, *args: Any) -> None:
            write = args[6]

            def twice(data: Any) -> int:
                write(data)
                return int(write(data))

            super()._copy_file(*args[:6], twice, *args[7:])  # type: ignore[call-arg]

    (refused,) = merge(store, queue, compactor=Stutters(store)).refusals

    assert refused.refusal is not None and refused.refusal.kind == "count_mismatch"
    assert MERGED not in store.published and queue.requests == []
    assert LAYOUT.sidecar_ref("codeBan", DAY) not in store.objects


def test_a_merged_file_stored_otherwise_than_written_is_removed_and_refused() -> None:
    """S3's writer checks the stored object's size and CRC-32 after the upload (ObjectMismatch):
    the merge then removes it and its sidecar, and queues no move."""
    store, queue = PublishLog(), MemoryMoveQueue()
    for number in range(1, 3):
        store.put_bytes(source(number), lake_file("codeBan", [ban_record(f"{number}")]))

    class Mismatching(PublishLog):
        @contextmanager
        def open_writer(self, ref: ObjectRef, content_type: str = "") -> Iterator[Any]:
            with super().open_writer(ref, content_type) as writer:
                yield writer
            if ref == MERGED:
                raise ObjectMismatch(f"{ref.uri} holds other bytes than were written")

    mismatching = Mismatching()
    mismatching.objects = dict(store.objects)
    (refused,) = merge(mismatching, queue).refusals

    assert refused.refusal is not None and refused.refusal.kind == "count_mismatch"
    assert "holds other bytes" in refused.refusal.message
    assert MERGED in mismatching.published and MERGED not in mismatching.objects
    assert LAYOUT.sidecar_ref("codeBan", DAY) not in mismatching.objects
    assert queue.requests == []


def with_sync(data: bytes, sync: bytes = bytes(range(16))) -> bytes:
    """The file with `sync` as its sync marker: lake files of a schema share one (adapters/
    avro.sync_marker), so the merge copies them whole; fastavro's writer draws one at random."""
    return data.replace(read_header(ChunkReader([data])).sync, sync)


def test_a_held_source_whose_block_is_damaged_is_refused_naming_the_file_and_its_byte() -> None:
    """A source copied whole is walked by the merged bytes' walk: its errors still name the
    source's bytes, not the merged file's."""
    store, queue = InMemoryObjectStore(), MemoryMoveQueue()
    store.put_bytes(source(1), with_sync(lake_file("codeBan", [ban_record("a")])))
    two_blocks = lake_file("codeBan", [ban_record("b"), ban_record("c")], blocks=[1, 1])
    damaged = bytearray(with_sync(two_blocks))
    damaged[-1] ^= 0xFF  # the last block's sync marker
    store.put_bytes(source(2), bytes(damaged))

    (refused,) = merge(store, queue).refusals

    assert refused.refusal is not None and refused.refusal.file == source(2).key
    assert (
        f"a block not followed by the sync marker at byte {len(damaged) - 16}"
        in refused.refusal.message
    )
    assert MERGED not in store.objects and queue.requests == []
