"""move_merged_avro_files against a crash at any point (a model-based test): whatever step the
process dies at, and however often, running it again finishes the job, no source's bytes are
ever lost, and no archive object is written twice. A day's move leaves the day's sidecar with
the day's merged file; a month's move archives the days' merged files with their sidecars."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from adapters.lake_compactor import AvroLakeCompactor
from domain.lake import LakeLayout, MoveRequest
from domain.models import ObjectInfo, ObjectRef
from domain.workers.merge_avro_files import MergeRequest, merge_avro_files
from domain.workers.move_merged_avro_files import move_merged_avro_files
from tests.support.lake_files import ban_record, lake_file
from tests.support.memory_compaction import MemoryMoveQueue
from tests.support.memory_objects import InMemoryObjectStore

BUCKET = "lake"
DAY = "2024/05/03"
LAYOUT = LakeLayout(BUCKET)
REQUEST = MoveRequest("codeBan", DAY)


class Crash(BaseException):
    """The process dies (BaseException: nothing in the worker may swallow it)."""


class CrashingStore(InMemoryObjectStore):
    """The in-memory store, dying at its `crash_at`-th call: before the call's effect, or after
    it (the effect happened, the answer was lost)."""

    def __init__(self) -> None:
        super().__init__()
        self.crash_at: int | None = None
        self.after = False
        self.calls = 0
        self.copies: Counter[tuple[str, str]] = Counter()

    def _step(self) -> bool:
        """True when this call must crash after its effect; raises when before."""
        self.calls += 1
        if self.crash_at is None or self.calls != self.crash_at:
            return False
        if not self.after:
            raise Crash
        return True

    def head(self, ref: ObjectRef) -> ObjectInfo | None:
        crash = self._step()
        found = super().head(ref)
        if crash:
            raise Crash
        return found

    def list_objects(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        crash = self._step()
        listed = list(super().list_objects(bucket, prefix))
        if crash:
            raise Crash
        return iter(listed)

    def copy(self, source: ObjectRef, target: ObjectRef) -> None:
        crash = self._step()
        super().copy(source, target)
        self.copies[(target.key, self.objects[target].hex()[:64])] += 1
        if crash:
            raise Crash

    def delete(self, ref: ObjectRef) -> None:
        crash = self._step()
        super().delete(ref)
        if crash:
            raise Crash

    def iter_chunks(
        self, ref: ObjectRef, start: int = 0, end: int | None = None
    ) -> Iterator[bytes]:
        crash = self._step()
        chunks = list(super().iter_chunks(ref, start, end))
        if crash:
            raise Crash
        return iter(chunks)


class MoveUnderCrashes(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.store = CrashingStore()
        self.compactor = AvroLakeCompactor(self.store)
        self.originals: dict[str, bytes] = {}  # every source's bytes as last written
        self.done = False

    @initialize(
        files=st.lists(st.lists(st.integers(0, 9), min_size=1, max_size=5), min_size=1, max_size=5)
    )
    def merge_a_day(self, files: list[list[int]]) -> None:
        for number, ids in enumerate(files):
            ref = ObjectRef(BUCKET, f"avro/codeBan/{DAY}/shardId-000000000000-{number}.avro")
            data = lake_file("codeBan", [ban_record(f"id-{i}") for i in ids])
            self.store.put_bytes(ref, data)
            self.originals[ref.key] = data
        counts = merge_avro_files(
            MergeRequest(DAY, ("codeBan",)),
            store=self.store,
            compactor=self.compactor,
            manifests=self.compactor,
            queue=MemoryMoveQueue(),
            layout=LAYOUT,
        )
        assert counts.refusals == ()
        self.sidecar = self.store.objects[LAYOUT.sidecar_ref("codeBan", DAY)]

    @rule()
    def a_late_file_arrives(self) -> None:
        ref = ObjectRef(
            BUCKET, f"avro/codeBan/{DAY}/shardId-000000000001-{len(self.originals)}.avro"
        )
        data = lake_file("codeBan", [ban_record("late")])
        self.store.put_bytes(ref, data)
        self.originals[ref.key] = data

    @rule(at=st.integers(1, 40), after=st.booleans())
    def move_and_crash(self, at: int, after: bool) -> None:
        self.store.crash_at, self.store.after = self.store.calls + at, after
        try:
            self.run_move()
        except Crash:
            pass
        finally:
            self.store.crash_at = None

    @rule()
    def move(self) -> None:
        self.run_move()
        self.done = True

    def run_move(self) -> None:
        outcome = move_merged_avro_files(
            REQUEST, store=self.store, manifests=self.compactor, layout=LAYOUT
        )
        assert outcome.unwrap().merged_missing is False

    @invariant()
    def no_source_is_ever_lost(self) -> None:
        for key, data in self.originals.items():
            here = self.store.objects.get(ObjectRef(BUCKET, key))
            archived = self.store.objects.get(LAYOUT.archive_ref("codeBan", ObjectRef(BUCKET, key)))
            assert data in (here, archived), f"{key} lost"

    @invariant()
    def nothing_is_archived_twice(self) -> None:
        assert all(n == 1 for n in self.store.copies.values()), self.store.copies

    @invariant()
    def the_days_sidecar_stays_with_the_days_merged_file(self) -> None:
        sidecar = LAYOUT.sidecar_ref("codeBan", DAY)
        assert self.store.objects.get(sidecar) == self.sidecar
        assert LAYOUT.archive_ref("codeBan", sidecar) not in self.store.objects

    @precondition(lambda self: self.done)
    @invariant()
    def a_finished_move_archived_every_merged_source_and_left_the_late_ones(self) -> None:
        manifest = self.compactor.read_manifest(LAYOUT.merged_ref("codeBan", DAY))
        assert manifest is not None
        merged = {entry.key for entry in manifest.sources}
        for key in self.originals:
            source = ObjectRef(BUCKET, key)
            archived = LAYOUT.archive_ref("codeBan", source) in self.store.objects
            assert (source in self.store.objects) is (key not in merged)
            assert archived is (key in merged)


TestMoveUnderCrashes = MoveUnderCrashes.TestCase

MONTH = "2024/05"


class MonthMoveUnderCrashes(RuleBasedStateMachine):
    """A month's move, whose sources are the days' merged files (each with its sidecar) and
    files that arrived after their day was merged, crashed anywhere, any number of times."""

    def __init__(self) -> None:
        super().__init__()
        self.store = CrashingStore()
        self.compactor = AvroLakeCompactor(self.store)
        self.originals: dict[str, bytes] = {}  # the month's sources and the days' sidecars
        self.merged_days: list[str] = []
        self.done = False

    def merge(self, prefix: str) -> None:
        counts = merge_avro_files(
            MergeRequest(prefix, ("codeBan",)),
            store=self.store,
            compactor=self.compactor,
            manifests=self.compactor,
            queue=MemoryMoveQueue(),
            layout=LAYOUT,
        )
        assert counts.refusals == ()

    @initialize(
        days=st.lists(
            st.lists(st.lists(st.integers(0, 9), min_size=1, max_size=4), min_size=1, max_size=3),
            min_size=1,
            max_size=3,
        ),
        late=st.lists(st.integers(0, 9), max_size=3),
    )
    def merge_the_days_then_the_month(self, days: list[list[list[int]]], late: list[int]) -> None:
        for number, files in enumerate(days):
            day = f"{MONTH}/{number + 1:02d}"
            for shard, ids in enumerate(files):
                ref = ObjectRef(BUCKET, f"avro/codeBan/{day}/shardId-{shard}-1.avro")
                self.store.put_bytes(ref, lake_file("codeBan", [ban_record(f"i{i}") for i in ids]))
            self.merge(day)
            # The day's own move archives its sources and leaves its merged file and sidecar.
            moved = move_merged_avro_files(
                MoveRequest("codeBan", day),
                store=self.store,
                manifests=self.compactor,
                layout=LAYOUT,
            ).unwrap()
            assert (moved.moved, moved.sidecars_moved) == (len(files), 0)
            for ref in (LAYOUT.merged_ref("codeBan", day), LAYOUT.sidecar_ref("codeBan", day)):
                self.originals[ref.key] = self.store.objects[ref]
            self.merged_days.append(day)
        for n, i in enumerate(late):
            ref = ObjectRef(BUCKET, f"avro/codeBan/{MONTH}/01/shardId-9-{n}.avro")
            data = lake_file("codeBan", [ban_record(f"i{i}")])
            self.store.put_bytes(ref, data)
            self.originals[ref.key] = data
        self.merge(MONTH)
        self.store.copies.clear()  # the days' moves copied their own sources

    @rule(at=st.integers(1, 40), after=st.booleans())
    def move_and_crash(self, at: int, after: bool) -> None:
        self.store.crash_at, self.store.after = self.store.calls + at, after
        try:
            self.run_move()
        except Crash:
            pass
        finally:
            self.store.crash_at = None

    @rule()
    def move(self) -> None:
        self.run_move()
        self.done = True

    def run_move(self) -> None:
        outcome = move_merged_avro_files(
            MoveRequest("codeBan", MONTH), store=self.store, manifests=self.compactor, layout=LAYOUT
        )
        assert outcome.unwrap().merged_missing is False

    @invariant()
    def nothing_is_lost(self) -> None:
        for key, data in self.originals.items():
            ref = ObjectRef(BUCKET, key)
            here = self.store.objects.get(ref)
            archived = self.store.objects.get(LAYOUT.archive_ref("codeBan", ref))
            assert data in (here, archived), f"{key} lost"

    @invariant()
    def nothing_is_archived_twice(self) -> None:
        assert all(n == 1 for n in self.store.copies.values()), self.store.copies

    @invariant()
    def a_sidecar_in_place_has_its_merged_file_beside_it(self) -> None:
        for day in self.merged_days:
            if LAYOUT.sidecar_ref("codeBan", day) in self.store.objects:
                assert LAYOUT.merged_ref("codeBan", day) in self.store.objects

    @invariant()
    def the_months_own_merged_file_and_sidecar_stay(self) -> None:
        for ref in (LAYOUT.merged_ref("codeBan", MONTH), LAYOUT.sidecar_ref("codeBan", MONTH)):
            assert ref in self.store.objects
            assert LAYOUT.archive_ref("codeBan", ref) not in self.store.objects

    @precondition(lambda self: self.done)
    @invariant()
    def a_finished_move_archived_every_merged_day_with_its_sidecar(self) -> None:
        for key in self.originals:
            ref = ObjectRef(BUCKET, key)
            assert ref not in self.store.objects, f"{key} still in place"
            assert LAYOUT.archive_ref("codeBan", ref) in self.store.objects


TestMonthMoveUnderCrashes = MonthMoveUnderCrashes.TestCase


def test_without_a_merged_file_nothing_moves() -> None:
    store = InMemoryObjectStore()
    ref = ObjectRef(BUCKET, f"avro/codeBan/{DAY}/shardId-000000000000-1.avro")
    store.put_bytes(ref, lake_file("codeBan", [ban_record("a")]))
    compactor = AvroLakeCompactor(store)

    outcome = move_merged_avro_files(REQUEST, store=store, manifests=compactor, layout=LAYOUT)

    assert outcome.unwrap().merged_missing
    assert list(store.objects) == [ref]
