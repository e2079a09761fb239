"""Merged files' sidecars: where they live, what they hold, how they are sealed, and what a crash
or a forgery leaves (docs/data-lake.md, "Sidecars")."""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest

from adapters.avro_container import MERGED_META, ChunkReader, header_bytes, read_header
from adapters.lake_compactor import AvroLakeCompactor
from adapters.lake_sidecar import SpooledKeyLog
from domain.lake import LakeLayout, MemoryKeyLog, dedupe_key
from domain.models import ObjectRef
from domain.ports import KeyLog
from tests.support.lake_files import ban_record, lake_file, merge_bans, read_records
from tests.support.memory_objects import InMemoryObjectStore

BUCKET = "lake"
DAY, MONTH = "2024/05/03", "2024/05"
LAYOUT = LakeLayout(BUCKET)


def merge(store: InMemoryObjectStore, prefix: str) -> Any:
    return merge_bans(store, prefix, LAYOUT, new_key_log=SpooledKeyLog)


def a_day(store: InMemoryObjectStore, day: str = DAY) -> None:
    for number, ids in enumerate([["a", "b", "c"], ["b", "d"], ["a", "e"]]):
        ref = ObjectRef(BUCKET, f"avro/codeBan/{day}/shardId-0-{number}.avro")
        records = [ban_record(i, arrival=number * 10 + n) for n, i in enumerate(ids)]
        store.put_bytes(ref, lake_file("codeBan", records))


@pytest.mark.parametrize(
    "new_log",
    [
        MemoryKeyLog,
        SpooledKeyLog,
        partial(SpooledKeyLog, in_memory_keys=3),  # spills to its file at the second add
        partial(SpooledKeyLog, in_memory_keys=0),  # on disk from the first
    ],
)
def test_a_key_log_reads_back_any_range_of_a_files_keys(new_log: Callable[[], KeyLog]) -> None:
    log = new_log()
    one = b"".join(dedupe_key(str(i)) for i in range(5))
    two = dedupe_key("x")
    log.add("one", one)
    log.add("empty", b"")
    log.add("two", two)

    assert log.read("one", 0, 5) == one
    assert log.read("one", 1, 3) == one[16:48]
    assert log.read("one", 4, 9) == one[64:]
    assert log.read("empty", 0, 1) == b""
    assert log.read("two", 0, 1) == two
    with pytest.raises(ValueError, match="twice"):
        log.add("one", one)
    log.close()


def test_a_key_log_past_its_memory_bound_holds_its_keys_on_disk_only() -> None:
    log = SpooledKeyLog(in_memory_keys=3)
    log.add("one", b"".join(dedupe_key(str(i)) for i in range(2)))
    assert not log.spilled
    log.add("two", b"".join(dedupe_key(str(i)) for i in range(2, 4)))
    assert log.spilled
    assert log.read("one", 0, 2) + log.read("two", 0, 2) == b"".join(
        dedupe_key(str(i)) for i in range(4)
    )
    log.close()


def test_sidecars_stay_out_of_every_listing_a_merge_or_athena_reads() -> None:
    for prefix in (DAY, MONTH):
        sidecar = LAYOUT.sidecar_ref("codeBan", prefix)
        assert sidecar.key == f"avro/merged-keys/codeBan/{prefix}.keys"
        # Not under the type's folder (Athena reads every object under a table's location),
        # so under no source listing of any day or month.
        assert not sidecar.key.startswith(LAYOUT.type_root("codeBan"))
        for listed in (
            *LAYOUT.source_prefixes("codeBan", DAY),
            *LAYOUT.source_prefixes("codeBan", MONTH),
        ):
            assert not sidecar.key.startswith(listed)
        assert LAYOUT.archive_ref("codeBan", sidecar).key == (
            f"avro/archived/merged-keys/codeBan/{prefix}.keys"
        )
    assert LAYOUT.sidecar_of("codeBan", LAYOUT.merged_ref("codeBan", DAY).key) == (
        LAYOUT.sidecar_ref("codeBan", DAY)
    )
    assert LAYOUT.sidecar_of("codeBan", f"avro/codeBan/{DAY}/shardId-0-1.avro") is None


def test_a_days_merge_writes_the_kept_keys_in_order_sealed_in_the_manifest() -> None:
    store = InMemoryObjectStore()
    a_day(store)

    counts = merge(store, DAY)

    assert (counts.records, counts.duplicates) == (5, 2)
    merged = store.objects[LAYOUT.merged_ref("codeBan", DAY)]
    sidecar = store.objects[LAYOUT.sidecar_ref("codeBan", DAY)]
    assert sidecar == b"".join(dedupe_key(r["dedupeId"]) for r in read_records(merged))
    manifest = AvroLakeCompactor(store).read_manifest(LAYOUT.merged_ref("codeBan", DAY))
    assert manifest is not None and manifest.sidecar is not None
    assert (manifest.sidecar.key, manifest.sidecar.count, manifest.sidecar.crc32) == (
        LAYOUT.sidecar_ref("codeBan", DAY).key,
        5,
        zlib.crc32(sidecar),
    )


class DiesWritingMerged(InMemoryObjectStore):
    """The process dies while the merged file is being uploaded (after its sidecar)."""

    def open_writer(self, ref: ObjectRef, content_type: str = "") -> Any:
        if ref.key.endswith(".avro") and "/merged/" in ref.key:
            raise KeyboardInterrupt
        return super().open_writer(ref, content_type)


def test_a_crash_between_the_sidecar_and_the_merged_file_heals_on_the_rerun() -> None:
    store = DiesWritingMerged()
    a_day(store)
    with pytest.raises(KeyboardInterrupt):
        merge(store, DAY)
    orphan = LAYOUT.sidecar_ref("codeBan", DAY)
    assert orphan in store.objects
    assert LAYOUT.merged_ref("codeBan", DAY) not in store.objects
    # The orphan is nobody's: a month merged now does not see it (no merged day names it).
    healthy = InMemoryObjectStore()
    healthy.objects = dict(store.objects)
    store.objects[orphan] = b"\x00" * len(store.objects[orphan])  # and garbage at that
    healthy.objects[orphan] = store.objects[orphan]

    again = merge(healthy, DAY)

    assert again.refusals == () and not again.already_merged
    merged = healthy.objects[LAYOUT.merged_ref("codeBan", DAY)]
    assert healthy.objects[orphan] == b"".join(
        dedupe_key(r["dedupeId"]) for r in read_records(merged)
    )
    month = merge(healthy, MONTH)
    assert (month.types[0].keys_from_sidecars, month.types[0].keys_decoded) == (1, 0)


def rewritten_manifest(merged: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    reader = ChunkReader([merged])
    header = read_header(reader)
    manifest = json.loads(header.meta[MERGED_META])
    change(manifest)
    meta = {**header.meta, MERGED_META: json.dumps(manifest).encode()}
    return header_bytes(meta, header.sync) + merged[header.size :]


def test_a_forged_sidecar_with_a_matching_seal_cannot_drop_a_record() -> None:
    """Even a sidecar and its seal rewritten to agree (2^-32 by accident, or on purpose) are
    checked against the records of every block they would drop from: the merge refuses."""
    store = InMemoryObjectStore()
    a_day(store)
    merge(store, DAY)
    sidecar = LAYOUT.sidecar_ref("codeBan", DAY)
    keys = store.objects[sidecar]
    forged = keys[:-16] + keys[:16]  # the day's last record claims to repeat its first
    store.objects[sidecar] = forged
    merged_ref = LAYOUT.merged_ref("codeBan", DAY)

    def reseal(manifest: dict[str, Any]) -> None:
        manifest["sidecar"]["crc32"] = zlib.crc32(forged)

    store.objects[merged_ref] = rewritten_manifest(store.objects[merged_ref], reseal)

    counts = merge(store, MONTH)

    (refused,) = counts.refusals
    assert refused.refusal is not None and refused.refusal.kind == "unreadable"
    assert "do not match" in refused.refusal.message
    assert LAYOUT.merged_ref("codeBan", MONTH) not in store.objects
    assert LAYOUT.sidecar_ref("codeBan", MONTH) not in store.objects


def test_the_log_says_where_a_merged_sources_keys_came_from(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = InMemoryObjectStore()
    a_day(store, f"{MONTH}/01")
    a_day(store, f"{MONTH}/02")
    merge(store, f"{MONTH}/01")
    merge(store, f"{MONTH}/02")
    store.delete(LAYOUT.sidecar_ref("codeBan", f"{MONTH}/02"))

    with caplog.at_level(logging.INFO, logger="adapters.lake_sidecar"):
        counts = merge(store, MONTH)

    assert (counts.types[0].keys_from_sidecars, counts.types[0].keys_decoded) == (1, 1)
    said = {
        (r.getMessage(), getattr(r, "source", None), getattr(r, "why", None))
        for r in caplog.records
    }
    assert said == {
        (
            "merge source keys from its sidecar",
            "avro/codeBan/merged/2024/05/01.avro",
            "sidecar avro/merged-keys/codeBan/2024/05/01.keys matches its seal (5 keys)",
        ),
        (
            "merge source keys decoded (projection on dedupeId)",
            "avro/codeBan/merged/2024/05/02.avro",
            "sidecar avro/merged-keys/codeBan/2024/05/02.keys is missing",
        ),
    }
