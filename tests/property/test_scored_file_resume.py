"""A scored file killed at any point and run again puts every accepted row once in total, and
ends with the CSV, counts and summary of an uninterrupted run (issue 6, items 1 and 2)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from returns.pipeline import is_successful

from adapters.clock import FixedClock
from domain.models import Campaign, ObjectRef, PutOutcome, StreamRecord
from domain.workers.process_scored_files import ScoredFileCounts, process_scored_files
from tests.support.memory_objects import InMemoryObjectStore
from tests.support.memory_scored_files import (
    InMemoryCampaignDirectory,
    InMemoryRecordStream,
    RecordingNotifier,
)

SOURCE = ObjectRef("b", "scored/c7.20261201.txt")
SCRUBBED = ObjectRef("b", "scrubbed/c7.20261201.csv")
BLACKLIST = ObjectRef("b", "blacklist")
HEADER = "globalUserId\temail\tphone\tscore"
CAMPAIGN = Campaign("c7", band_salt=b"salt")


class Crash(Exception):
    """The process died here (a Lambda timeout, an OOM kill, a lost connection)."""


class Fuse:
    """Blows on the n-th operation counted against it. After that the process is dead: every
    operation counted against it fails without effect (as after a kill -9: no `finally` of the
    dead run reaches the store, so its lease stays until it expires)."""

    def __init__(self, at: int | None) -> None:
        self.at = at
        self.count = 0
        self.dead = False

    def tick(self) -> None:
        if self.dead:
            raise Crash("the process is dead")
        self.count += 1
        if self.at is not None and self.count == self.at:
            self.at = None
            self.dead = True
            raise Crash(f"crash at operation {self.count}")


class CrashingStore(InMemoryObjectStore):
    """Writes (puts, completed writers, deletes) count against the fuse; a blown one has no
    effect, as a PutObject that never reached S3. A checkpoint written tells the stream
    (`on_checkpoint`): the records put before it are recorded, a crash no longer re-puts them."""

    def __init__(self, objects: dict[ObjectRef, bytes], fuse: Fuse, max_line_bytes: int) -> None:
        super().__init__(objects, max_line_bytes=max_line_bytes)
        self.fuse = fuse
        self.on_checkpoint: Any = lambda: None

    def _tick_write(self, ref: ObjectRef) -> None:
        self.fuse.tick()

    def put_bytes(self, ref: ObjectRef, data: bytes, content_type: str = "") -> None:
        self._tick_write(ref)
        super().put_bytes(ref, data, content_type)

    def put_versioned(
        self, ref: ObjectRef, data: bytes, expected_version: str | None
    ) -> str | None:
        self._tick_write(ref)  # checkpoints and the lease
        version = super().put_versioned(ref, data, expected_version)
        if version is not None and "/part-" in ref.key:
            self.on_checkpoint()
        return version

    @contextmanager
    def open_writer(self, ref: ObjectRef, content_type: str = "") -> Iterator[Any]:
        with super().open_writer(ref, content_type) as writer:
            yield writer
            self.fuse.tick()

    def delete(self, ref: ObjectRef) -> None:
        self.fuse.tick()
        super().delete(ref)


@dataclass
class CrashingStream(InMemoryRecordStream):
    """Each put counts against the fuse. `ambiguous`: a blown put landed but its answer was
    lost; otherwise it never landed. `strand_every`: records whose hash falls on it stay failing
    (stranded) for now. `unrecorded`: what landed since the last checkpoint; a crash makes it
    ambiguous (`crashed`): the next run cannot know the stream has it, and puts it again."""

    fuse: Fuse = field(default_factory=lambda: Fuse(None))
    ambiguous: bool = False
    strand_every: int = 0
    ambiguous_puts: Counter[bytes] = field(default_factory=Counter)
    unrecorded: list[bytes] = field(default_factory=list)
    on_crash: Any = lambda: None  # the process dies: its store writes stop too

    def put_records(self, records: Iterable[StreamRecord]) -> PutOutcome:
        batch = list(records)
        every = self.strand_every
        self.strand = (lambda r: sum(r.data) % every == 0) if every else None
        before = len(self.records)
        try:
            self.fuse.tick()
        except Crash:
            self.on_crash()
            if self.ambiguous:
                super().put_records(batch)
                self.unrecorded.extend(r.data for r in self.records[before:])
            raise
        outcome = super().put_records(batch)
        self.unrecorded.extend(r.data for r in self.records[before:])
        return outcome

    def checkpointed(self) -> None:
        self.unrecorded.clear()

    def crashed(self) -> None:
        self.ambiguous_puts.update(self.unrecorded)
        self.unrecorded.clear()


def assert_each_record_once_but_the_ambiguous(
    stream: CrashingStream, want_records: list[bytes]
) -> None:
    got, want = Counter(r.data for r in stream.records), Counter(want_records)
    assert set(got) == set(want)  # nothing lost, nothing foreign
    assert not (got - want) - stream.ambiguous_puts  # extras only from ambiguous puts


def rows_strategy() -> st.SearchStrategy[list[str]]:
    good = st.builds(
        lambda n, score, email: f"gu{n}\t{email}\t2125550{n % 1000:03d}\t{score}",
        st.integers(0, 9_999),
        st.sampled_from(["0.97", "0.5", "0.85", "2", "x"]),
        st.sampled_from(["a@gmail.com", "b@mailinator.com", "bad", "banned@x.org"]),
    )
    bad = st.sampled_from(["", "only\ttwo", "gu\tx@gmail.com\t\t0.3\textra", "L" * 120])
    return st.lists(st.one_of(good, good, good, bad), max_size=30)


LEASE_SECONDS = 120.0
START = datetime(2026, 12, 1, tzinfo=UTC)


def run_file(
    store: InMemoryObjectStore,
    stream: InMemoryRecordStream,
    notifier: Any,
    clock: FixedClock | None = None,
    run_id: str | None = None,
    rows_per_chunk: int = 4,
    checkpoint_rows: int = 1,
) -> Any:
    return process_scored_files(
        SOURCE,
        store=store,
        stream=stream,
        campaigns=InMemoryCampaignDirectory([CAMPAIGN]),
        notifier=notifier,
        clock=clock or FixedClock(START),
        encode=orjson.dumps,
        blacklist=BLACKLIST,
        rows_per_chunk=rows_per_chunk,
        checkpoint_rows=checkpoint_rows,
        lease_seconds=LEASE_SECONDS,
        run_id=run_id,
    )


def after_the_crashed_runs_lease(clock: FixedClock) -> None:
    """A killed run's lease stays until it expires: the retry comes after that."""
    clock.at += timedelta(seconds=LEASE_SECONDS + 1)


def dies_with(stream: CrashingStream, store: CrashingStore) -> None:
    stream.on_crash = lambda: setattr(store.fuse, "dead", True)
    store.on_checkpoint = stream.checkpointed


def report(counts: ScoredFileCounts) -> tuple[object, ...]:
    return (
        counts.rows_in,
        counts.rows_out,
        counts.rows_rejected,
        counts.tagged,
        dict(counts.rejected_by_reason),
        dict(counts.by_tag),
        dict(counts.by_band),
    )


def objects(rows: list[str]) -> dict[ObjectRef, bytes]:
    body = (HEADER + "\n" + "".join(row + "\n" for row in rows)).encode()
    return {SOURCE: body, BLACKLIST: b"banned@x.org\n"}


def uninterrupted(rows: list[str]) -> tuple[ScoredFileCounts, list[bytes], bytes, Any]:
    store = InMemoryObjectStore(objects(rows), max_line_bytes=100)
    stream, notifier = InMemoryRecordStream(), RecordingNotifier()
    counts = run_file(store, stream, notifier).unwrap()
    return counts, [r.data for r in stream.records], store.objects[SCRUBBED], notifier


TWELVE_ROWS = [f"gu{n}\ta@gmail.com\t2125550{n:03d}\t0.97" for n in range(12)]


@settings(max_examples=120, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows_strategy(),
    st.lists(st.integers(1, 40), max_size=6),
    st.lists(st.integers(1, 15), max_size=4),
    st.sampled_from([0, 0, 3, 5]),
    st.lists(st.integers(1, 9), max_size=6),
    st.lists(st.integers(1, 12), max_size=4),
)
# Acknowledged, not yet checkpointed, then a crash: the re-run puts those records again.
@example(TWELVE_ROWS, [], [3], 0, [], [10])
@example(TWELVE_ROWS, [], [2], 0, [], [1])  # a checkpoint a chunk: nothing put twice
def test_crashes_anywhere_then_reruns_put_each_row_once_and_end_as_one_run(
    rows: list[str],
    store_crashes: list[int],
    stream_crashes: list[int],
    strand_every: int,
    chunk_sizes: list[int],
    checkpoint_sizes: list[int],
) -> None:
    """`chunk_sizes` and `checkpoint_sizes`: SCORED_FILE_CHUNK_ROWS and
    SCORED_FILE_CHECKPOINT_ROWS changed between a crash and the re-run (a deploy). Each row is
    put once but those put since the last checkpoint when a run crashed."""
    want_counts, want_records, want_csv, want_notifier = uninterrupted(rows)
    store_fuses, stream_fuses = list(store_crashes), list(stream_crashes)
    store = CrashingStore(objects(rows), Fuse(None), max_line_bytes=100)
    stream = CrashingStream()
    dies_with(stream, store)
    notifier, clock = RecordingNotifier(), FixedClock(START)
    outcome = None
    for attempt in range(40):
        store.fuse = Fuse(store_fuses.pop(0) if store_fuses else None)
        stream.fuse = Fuse(stream_fuses.pop(0) if stream_fuses else None)
        stream.strand_every = strand_every if attempt < 3 else 0  # the stream recovers
        size = chunk_sizes[attempt % len(chunk_sizes)] if chunk_sizes else 4
        every = checkpoint_sizes[attempt % len(checkpoint_sizes)] if checkpoint_sizes else 1
        try:
            outcome = run_file(
                store, stream, notifier, clock, rows_per_chunk=size, checkpoint_rows=every
            )
        except Crash:
            stream.crashed()
            after_the_crashed_runs_lease(clock)
            continue
        if is_successful(outcome):
            break
        assert outcome.failure().kind == "stranded"  # the only failure a run of this file has
    assert outcome is not None and is_successful(outcome)
    counts = outcome.unwrap()
    assert_each_record_once_but_the_ambiguous(stream, want_records)
    if not store_crashes and max(checkpoint_sizes, default=1) == 1:
        # A checkpoint a chunk, and none lost: a put that never landed is all a crash costs.
        assert Counter(r.data for r in stream.records) == Counter(want_records)  # exactly once
    assert report(counts) == report(want_counts)
    assert store.objects[SCRUBBED] == want_csv
    assert notifier.notifications[-1] == want_notifier.notifications[-1]
    # Nothing of the run's progress is left but the done marker and the released lease.
    assert sorted(r.key for r in store.objects if r.key.startswith("progress/")) == [
        "progress/c7.20261201/done.json",
        "progress/c7.20261201/lease.json",
    ]


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows_strategy(),
    st.lists(st.integers(1, 10), min_size=1, max_size=4),
    st.sampled_from([1, 1, 2, 5, 10_000]),
)
@example(TWELVE_ROWS, [3], 10_000)
@example(TWELVE_ROWS, [2], 1)
def test_a_crash_re_puts_at_most_the_rows_since_the_last_checkpoint_and_the_put_in_flight(
    rows: list[str], crashes: list[int], checkpoint_rows: int
) -> None:
    """A checkpoint a chunk (1): only the put in flight; else fewer than `checkpoint_rows` lines
    acknowledged since the last checkpoint, and the chunk in flight (4 lines)."""
    _, want_records, want_csv, _ = uninterrupted(rows)
    store = CrashingStore(objects(rows), Fuse(None), max_line_bytes=100)
    stream = CrashingStream(ambiguous=True)
    dies_with(stream, store)
    clock = FixedClock(START)
    crashed = 0
    for attempt in range(20):
        store.fuse = Fuse(None)
        stream.fuse = Fuse(crashes[attempt] if attempt < len(crashes) else None)
        try:
            outcome = run_file(
                store, stream, RecordingNotifier(), clock, checkpoint_rows=checkpoint_rows
            )
        except Crash:
            crashed += 1
            stream.crashed()
            after_the_crashed_runs_lease(clock)
            continue
        break
    assert outcome.unwrap().rows_out == len(want_records)
    assert_each_record_once_but_the_ambiguous(stream, want_records)
    extras = Counter(r.data for r in stream.records) - Counter(want_records)
    assert extras.total() <= crashed * (min(checkpoint_rows, len(rows)) - 1 + 4)
    assert store.objects[SCRUBBED] == want_csv
