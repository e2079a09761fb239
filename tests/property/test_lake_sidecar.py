"""A month's merge over merged days, through their sidecars: it keeps exactly what the rule keeps
(each dedupeId once, the first by arrival, as the reference FirstWinsIndex finds from keys), and
a sidecar that is missing, truncated, longer, rewritten with the same count or another file's
makes the merge decode that day's keys instead: never a wrong drop."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from adapters.avro_container import MERGED_META, ChunkReader, header_bytes, read_header
from adapters.lake_keys import SpillingKeyIndex
from adapters.lake_sidecar import SpooledKeyLog
from domain.lake import FirstWinsIndex, LakeLayout, MemoryKeyLog, dedupe_key
from domain.models import ObjectRef
from tests.support.lake_files import ban_record, lake_file, merge_bans, read_records
from tests.support.memory_objects import InMemoryObjectStore

BUCKET = "lake"
MONTH = "2024/05"
LAYOUT = LakeLayout(BUCKET)
CORRUPTIONS = ("missing", "truncated", "longer", "same_count_other_bytes", "foreign", "unsealed")


@st.composite
def lake_month(draw: st.DrawFn) -> dict[str, Any]:
    """Days of keyed lake files (ids from one small pool, so repeats fall within a file, a day
    and across days), and late files of the month that arrived after their day was merged."""
    pool = draw(st.integers(1, 30))
    ids = st.lists(st.integers(0, pool - 1), min_size=1, max_size=20)
    days = {
        f"{MONTH}/{day:02d}": draw(
            st.lists(st.tuples(ids, st.lists(st.integers(1, 6))), min_size=1, max_size=3)
        )
        for day in draw(st.sets(st.integers(1, 28), min_size=1, max_size=3))
    }
    late = draw(st.lists(ids, max_size=2))
    return {"days": days, "late": late}


def put_file(
    store: InMemoryObjectStore, key: str, ids: list[int], cuts: list[int], tag: str
) -> None:
    records = [ban_record(f"id-{i}", copy=n, arrival=n) for n, i in enumerate(ids)]
    for n, record in enumerate(records):
        record["payload"] = f'{{"from":"{tag}","n":{n}}}'
    store.put_bytes(ObjectRef(BUCKET, key), lake_file("codeBan", records, blocks=cuts))


def merge(store: InMemoryObjectStore, prefix: str, production: bool) -> Any:
    return merge_bans(
        store,
        prefix,
        LAYOUT,
        new_index=partial(SpillingKeyIndex, in_memory_keys=7) if production else FirstWinsIndex,
        # A log held in memory for 5 keys: the month's spills, most days' do not.
        new_key_log=partial(SpooledKeyLog, in_memory_keys=5) if production else MemoryKeyLog,
    )


def merged_days(store: InMemoryObjectStore, month: dict[str, Any], production: bool) -> None:
    for day, files in month["days"].items():
        for number, (ids, cuts) in enumerate(files):
            put_file(
                store, f"avro/codeBan/{day}/shardId-0-{number}.avro", ids, cuts, f"{day}/{number}"
            )
        assert merge(store, day, production).refusals == ()
    for number, ids in enumerate(month["late"]):
        put_file(
            store, f"avro/codeBan/{MONTH}/28/shardId-1-{number}.avro", ids, [], f"late{number}"
        )


def expected_month(store: InMemoryObjectStore, month: dict[str, Any]) -> list[str]:
    """The rule's answer: the reference FirstWinsIndex over the month's sources' keys (the
    merged days' records as fastavro reads them, then the late files), in the merge's order."""
    sources = [
        info
        for listed in LAYOUT.source_prefixes("codeBan", MONTH)
        for info in store.list_objects(BUCKET, listed)
        if info.ref.key.endswith(".avro")
    ]
    # Merged days carry no arrival (they come first, by key); the late files arrive later.
    sources.sort(key=lambda info: ("/merged/" not in info.ref.key, info.ref.key))
    index = FirstWinsIndex()
    records = {}
    for info in sources:
        records[info.ref.key] = read_records(store.objects[info.ref])
        index.add(info.ref.key, b"".join(dedupe_key(r["dedupeId"]) for r in records[info.ref.key]))
    drops = index.drops([info.ref.key for info in sources])
    return [
        r["payload"]
        for info in sources
        for n, r in enumerate(records[info.ref.key])
        if n not in drops.of(info.ref.key)
    ]


@given(lake_month(), st.booleans())
def test_a_months_merge_by_sidecars_keeps_what_the_rule_keeps(
    month: dict[str, Any], production: bool
) -> None:
    store = InMemoryObjectStore()
    merged_days(store, month, production)
    expected = expected_month(store, month)

    counts = merge(store, MONTH, production)

    (merge_of_type,) = counts.types
    assert counts.refusals == ()
    assert merge_of_type.keys_from_sidecars == len(month["days"])
    assert merge_of_type.keys_decoded == 0
    merged = store.objects[LAYOUT.merged_ref("codeBan", MONTH)]
    assert [r["payload"] for r in read_records(merged)] == expected
    # The month's own sidecar lists its kept records' keys, in order.
    sidecar = store.objects[LAYOUT.sidecar_ref("codeBan", MONTH)]
    assert sidecar == b"".join(dedupe_key(r["dedupeId"]) for r in read_records(merged))


@given(lake_month(), st.data())
def test_a_bad_sidecar_is_not_trusted_and_the_days_keys_are_decoded(
    month: dict[str, Any], data: st.DataObject
) -> None:
    store = InMemoryObjectStore()
    merged_days(store, month, production=True)
    expected = expected_month(store, month)
    day = data.draw(st.sampled_from(sorted(month["days"])))
    how = data.draw(st.sampled_from(CORRUPTIONS))
    corrupt(store, day, how, data)

    counts = merge(store, MONTH, production=True)

    (merge_of_type,) = counts.types
    assert counts.refusals == ()
    merged = store.objects[LAYOUT.merged_ref("codeBan", MONTH)]
    assert [r["payload"] for r in read_records(merged)] == expected
    # Only the corrupted day's keys were decoded; every other day's came from its sidecar.
    assert (merge_of_type.keys_decoded, merge_of_type.keys_from_sidecars) == (
        1,
        len(month["days"]) - 1,
    )


def corrupt(store: InMemoryObjectStore, day: str, how: str, data: st.DataObject) -> None:
    ref = LAYOUT.sidecar_ref("codeBan", day)
    keys = store.objects[ref]
    if how == "missing":
        store.delete(ref)
    elif how == "truncated":
        store.put_bytes(ref, keys[: data.draw(st.integers(0, len(keys) - 1))])
    elif how == "longer":
        store.put_bytes(ref, keys + dedupe_key(data.draw(st.text(max_size=3))))
    elif how == "same_count_other_bytes":
        at = data.draw(st.integers(0, len(keys) - 1))
        store.put_bytes(ref, keys[:at] + bytes([keys[at] ^ 0x01]) + keys[at + 1 :])
    elif how == "foreign":
        # Another file's keys of the same length (the merged records' keys reversed, or a
        # stranger's when there is one key): the count matches, the checksum does not.
        other = b"".join(reversed([keys[i : i + 16] for i in range(0, len(keys), 16)]))
        if other == keys:
            other = b"".join(dedupe_key(f"stranger-{i}") for i in range(len(keys) // 16))
        store.put_bytes(ref, other)
    else:  # "unsealed": a merged file written before sidecars names none
        merged = LAYOUT.merged_ref("codeBan", day)
        store.put_bytes(merged, unsealed(store.objects[merged]))


def unsealed(merged: bytes) -> bytes:
    """The merged file with its manifest's sidecar entry removed (as before sidecars)."""
    reader = ChunkReader([merged])
    header = read_header(reader)
    manifest = json.loads(header.meta[MERGED_META])
    del manifest["sidecar"]
    meta = dict(header.meta)
    meta[MERGED_META] = json.dumps(manifest).encode()
    return header_bytes(meta, header.sync) + merged[header.size :]


class Crash(BaseException):
    """The process dies (BaseException: nothing in the worker may swallow it)."""


class CrashingStore(InMemoryObjectStore):
    """Dies at its `crash_at`-th call (reads, listings, writes, deletes), before its effect."""

    def __init__(self) -> None:
        super().__init__()
        self.crash_at: int | None = None
        self.calls = 0

    def _step(self) -> None:
        self.calls += 1
        if self.crash_at is not None and self.calls == self.crash_at:
            raise Crash

    def iter_chunks(self, ref: ObjectRef, start: int = 0, end: int | None = None) -> Any:
        self._step()
        return super().iter_chunks(ref, start, end)

    def read_bytes(self, ref: ObjectRef) -> bytes:
        self._step()
        return super().read_bytes(ref)

    def list_objects(self, bucket: str, prefix: str) -> Any:
        self._step()
        return super().list_objects(bucket, prefix)

    def delete(self, ref: ObjectRef) -> None:
        self._step()
        super().delete(ref)

    @contextmanager
    def open_writer(self, ref: ObjectRef, content_type: str = "") -> Iterator[Any]:
        self._step()  # dies before the upload starts
        with super().open_writer(ref, content_type) as out:
            yield out
            self._step()  # dies with the parts uploaded, before the object is completed


@given(lake_month(), st.integers(1, 60))
def test_a_days_merge_killed_anywhere_and_run_again_leaves_a_sidecar_the_month_trusts(
    month: dict[str, Any], crash_at: int
) -> None:
    store = CrashingStore()
    days = sorted(month["days"])
    for number, (ids, cuts) in enumerate(month["days"][days[0]]):
        put_file(store, f"avro/codeBan/{days[0]}/shardId-0-{number}.avro", ids, cuts, str(number))
    store.crash_at = crash_at
    with contextlib.suppress(Crash):
        merge(store, days[0], production=True)
    store.crash_at = None
    # The re-run overwrites an orphan sidecar or finds the day merged with its sidecar.
    assert merge(store, days[0], production=True).refusals == ()
    for day in days[1:]:
        for number, (ids, cuts) in enumerate(month["days"][day]):
            put_file(store, f"avro/codeBan/{day}/shardId-0-{number}.avro", ids, cuts, day)
        assert merge(store, day, production=True).refusals == ()
    for day in days:  # the days' moves
        for info in list(store.list_objects(BUCKET, f"avro/codeBan/{day}/")):
            store.delete(info.ref)
    expected = expected_month(store, month)

    counts = merge(store, MONTH, production=True)

    assert counts.refusals == ()
    assert (counts.types[0].keys_from_sidecars, counts.types[0].keys_decoded) == (len(days), 0)
    merged = store.objects[LAYOUT.merged_ref("codeBan", MONTH)]
    assert [r["payload"] for r in read_records(merged)] == expected
