"""Runs of the same scored file at the same time, interleaved at every store and stream call,
some killed at any of them and run again: every accepted row is put once in all (but those a
killed run put since its last checkpoint, which a kill leaves ambiguous), a run refused because
another holds the file puts nothing, and the file ends with the CSV and counts of one
uninterrupted run (domain/scoring/lease.py; issue 6's left-out concurrent runs).

The interleaving is exact: every run is a thread, and every call it makes on the store or the
stream waits at a turnstile until the schedule (drawn by hypothesis) gives it the turn, so one
call runs at a time, in the drawn order. Time is the schedule's too: each turn may advance the
clock a little (the lease's renewals happen), and when every run has ended the clock jumps past
the lease's term before the next run starts (a retry comes after a dead run's lease ran out).
A live run is never kept waiting at a call for more than a few turns: that is the lease's
premise (a put finishes within half its term); a stalled holder is a crashed one, as the
module docstring of lease.py says.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Success

from adapters.clock import FixedClock
from domain.models import ObjectInfo, ObjectRef, OverlongLine, PutOutcome, StreamRecord
from tests.property.test_scored_file_resume import (
    LEASE_SECONDS,
    SCRUBBED,
    START,
    Crash,
    objects,
    report,
    rows_strategy,
    run_file,
    uninterrupted,
)
from tests.support.memory_objects import InMemoryObjectStore
from tests.support.memory_scored_files import InMemoryRecordStream, RecordingNotifier

LEASE = ObjectRef("b", "progress/c7.20261201/lease.json")
STEP = timedelta(seconds=LEASE_SECONDS / 12)
JUMP = timedelta(seconds=LEASE_SECONDS + 1)
FAIR = 2  # a run waiting at a call gets the turn after at most this many others' turns


@dataclass
class Run:
    name: str
    dead: bool = False
    crash_next: bool = False
    finished: bool = False
    outcome: Any = None
    puts: int = 0
    unrecorded: list[bytes] = field(default_factory=list)  # put since its last checkpoint


class Turnstile:
    """One call at a time, in the schedule's order (module docstring)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.turn: str | None = None
        self.waiting: dict[str, int] = {}  # run -> the turn it arrived at
        self.turns = 0

    def gate(self, run: Run) -> None:
        with self.cond:
            if run.dead:
                raise Crash("the process is dead")
            self.waiting[run.name] = self.turns
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.turn == run.name)
            self.turn = None
            del self.waiting[run.name]
            if run.crash_next:
                run.dead = True
                raise Crash(f"{run.name} killed")

    def settle(self, runs: list[Run]) -> None:
        """Waits until every unfinished run waits at a call."""
        with self.cond:
            self.cond.wait_for(
                lambda: (
                    self.turn is None and all(r.finished or r.name in self.waiting for r in runs)
                )
            )

    def grant(self, run: Run) -> None:
        with self.cond:
            self.turns += 1
            self.turn = run.name
            self.cond.notify_all()

    def finish(self, run: Run) -> None:
        with self.cond:
            run.finished = True
            self.cond.notify_all()


class GatedStore:
    """One run's view of the shared store: each call waits for the run's turn."""

    def __init__(
        self, inner: InMemoryObjectStore, run: Run, gates: Turnstile, world: World
    ) -> None:
        self.inner, self.run, self.gates, self.world = inner, run, gates, world

    def iter_lines(self, ref: ObjectRef) -> Iterator[bytes | OverlongLine]:
        self.gates.gate(self.run)
        return self.inner.iter_lines(ref)

    def iter_chunks(
        self, ref: ObjectRef, start: int = 0, end: int | None = None
    ) -> Iterator[bytes]:
        self.gates.gate(self.run)
        return self.inner.iter_chunks(ref, start, end)

    def read_bytes(self, ref: ObjectRef) -> bytes:
        self.gates.gate(self.run)
        return self.inner.read_bytes(ref)

    def head(self, ref: ObjectRef) -> ObjectInfo | None:
        self.gates.gate(self.run)
        return self.inner.head(ref)

    def list_objects(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        self.gates.gate(self.run)
        return iter(list(self.inner.list_objects(bucket, prefix)))

    def put_bytes(self, ref: ObjectRef, data: bytes, content_type: str = "") -> None:
        self.gates.gate(self.run)
        self.inner.put_bytes(ref, data, content_type)

    @contextmanager
    def open_writer(self, ref: ObjectRef, content_type: str = "") -> Iterator[Any]:
        with self.inner.open_writer(ref, content_type) as writer:
            yield writer
            self.gates.gate(self.run)  # the upload completes here, or never

    def copy(self, source: ObjectRef, target: ObjectRef) -> None:
        self.gates.gate(self.run)
        self.inner.copy(source, target)

    def delete(self, ref: ObjectRef) -> None:
        self.gates.gate(self.run)
        self.inner.delete(ref)

    def delete_many(self, refs: Sequence[ObjectRef]) -> None:
        for ref in refs:
            self.delete(ref)

    def read_versioned(self, ref: ObjectRef) -> tuple[bytes, str] | None:
        self.gates.gate(self.run)
        return self.inner.read_versioned(ref)

    def put_versioned(
        self, ref: ObjectRef, data: bytes, expected_version: str | None
    ) -> str | None:
        self.gates.gate(self.run)
        version = self.inner.put_versioned(ref, data, expected_version)
        if version is not None and "/part-" in ref.key:
            self.run.unrecorded.clear()
        return version


class GatedStream:
    def __init__(self, inner: InMemoryRecordStream, run: Run, gates: Turnstile) -> None:
        self.inner, self.run, self.gates = inner, run, gates
        self.max_record_bytes = inner.max_record_bytes

    def put_records(self, records: Iterable[StreamRecord]) -> PutOutcome:
        batch = list(records)
        self.gates.gate(self.run)
        before = len(self.inner.records)
        outcome = self.inner.put_records(batch)
        self.run.puts += 1
        self.run.unrecorded.extend(r.data for r in self.inner.records[before:])
        return outcome


class World:
    """The shared store, stream and clock, the runs, and the schedule's hand."""

    def __init__(self, rows: list[str], checkpoint_rows: int = 1) -> None:
        self.checkpoint_rows = checkpoint_rows
        self.store = InMemoryObjectStore(objects(rows), max_line_bytes=100)
        self.stream = InMemoryRecordStream()
        self.notifier = RecordingNotifier()
        self.clock = FixedClock(START)
        self.gates = Turnstile()
        self.runs: list[Run] = []
        self.ambiguous: Counter[bytes] = Counter()

    def launch(self) -> Run:
        run = Run(f"run-{len(self.runs) + 1}")
        self.runs.append(run)
        store = GatedStore(self.store, run, self.gates, self)
        stream = GatedStream(self.stream, run, self.gates)

        def body() -> None:
            try:
                run.outcome = run_file(
                    store,  # type: ignore[arg-type]
                    stream,  # type: ignore[arg-type]
                    self.notifier,
                    self.clock,
                    run.name,
                    checkpoint_rows=self.checkpoint_rows,
                )
            except Crash:
                # Killed: what it put since its last checkpoint, a re-run puts again.
                self.ambiguous.update(run.unrecorded)
                run.outcome = "crashed"
            finally:
                self.gates.finish(run)

        threading.Thread(target=body, daemon=True).start()
        return run

    def live(self) -> list[Run]:
        return [r for r in self.runs if not r.finished]

    def relaunch(self) -> None:
        """A retry, after every run ended: it comes once a dead run's lease has expired."""
        assert not self.live()
        self.clock.at += JUMP
        self.launch()

    def step(self, pick: int, kill: bool, tick: bool) -> bool:
        """One turn; False when no run is waiting."""
        self.gates.settle(self.runs)
        waiting = [r for r in self.live() if r.name in self.gates.waiting]
        if not waiting:
            return False
        overdue = [r for r in waiting if self.gates.turns - self.gates.waiting[r.name] >= FAIR]
        run = overdue[0] if overdue else waiting[pick % len(waiting)]
        if tick:
            self.clock.at += STEP
        run.crash_next = kill
        self.gates.grant(run)
        return True


def succeeded(run: Run) -> bool:
    match run.outcome:
        case Success(_):
            return True
    return False


turns = st.lists(
    st.tuples(st.integers(0, 5), st.booleans() | st.just(False), st.booleans()),
    max_size=120,
)


@settings(max_examples=150)
@given(
    rows_strategy(),
    st.integers(2, 3),
    turns,
    st.integers(0, 4),
    st.sampled_from([1, 1, 3, 10_000]),
)
def test_concurrent_and_killed_runs_of_one_file_put_each_row_once(
    rows: list[str],
    at_once: int,
    schedule: list[tuple[int, bool, bool]],
    retries: int,
    checkpoint_rows: int,
) -> None:
    """`checkpoint_rows`: SCORED_FILE_CHECKPOINT_ROWS; a kill makes the rows its run put since
    its last checkpoint ambiguous."""
    want_counts, want_records, want_csv, want_notifier = uninterrupted(rows)
    world = World(rows, checkpoint_rows)
    for _ in range(at_once):
        world.launch()
    relaunches = at_once + retries
    for pick, kill, tick in schedule:
        if not world.step(pick, kill and len(world.runs) < 8, tick):
            if len(world.runs) >= relaunches:
                break
            world.relaunch()
    # Then no more kills: the retries go on until a run completes the file.
    for _ in range(10_000):
        done = any(r.finished and succeeded(r) for r in world.runs)
        if done and not world.live():
            break
        if not world.step(0, False, True) and not done:  # time passes: renewals
            world.relaunch()
    assert not world.live()

    got, want = Counter(r.data for r in world.stream.records), Counter(want_records)
    assert set(got) == set(want)  # nothing lost, nothing foreign
    assert not (got - want) - world.ambiguous  # extras only from what a kill left unrecorded
    if not world.ambiguous:
        assert got == want
    for run in world.runs:
        match run.outcome:
            case Success(counts):
                assert report(counts) == report(want_counts)
            case Failure(refused) if refused.kind == "in_progress":
                assert run.puts == 0, f"{run.name} was refused the file but streamed"
            case Failure(other):  # a live run is never taken over: its puts end in time
                raise AssertionError(f"{run.name}: {other}")
    assert world.store.objects[SCRUBBED] == want_csv
    assert world.notifier.notifications[-1] == want_notifier.notifications[-1]
