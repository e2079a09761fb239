"""Whatever batches Lambda sends a shard (retries of a whole batch, bisected halves, retries
that start inside an earlier batch, with failures after the lake write, before it, or at the
watermark), every record ends in the lake exactly once."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.avro import AvroSchemas
from adapters.clock import FixedClock
from domain.backoff import no_wait
from domain.records import DEDUPE_FIELD, formatted
from domain.streaming import BatchCounts, DependencyUnavailable, IncomingRecord
from domain.workers.save_campaign_data import SaveCampaignData
from streams.lambda_kinesis import handle_kinesis_event
from tests.support.memory_stream_workers import MemoryDeadLetters, MemoryLake
from tests.support.stream_fakes import MemoryCheckpoints, kinesis_event
from tests.support.stream_records import raw, sample_record

SHARD = "shardId-000000000000"
SCHEMAS = AvroSchemas()
TYPES = ("registration", "scoring", "codeAssignment")


def payloads_of(count: int) -> list[bytes]:
    """Valid records of three types (one lake object per type per batch), all different."""
    return [raw({**sample_record(TYPES[n % 3], n), "n": n}) for n in range(count)]


@dataclass
class Faulty:
    """The real lake worker, failing as scripted: `after` fails a call once its lake write is
    done (a dead-letter queue down, a timeout), `before` fails it before anything is written."""

    inner: SaveCampaignData
    after: set[int] = field(default_factory=set)
    before: set[int] = field(default_factory=set)
    calls: int = 0
    name: str = "save_campaign_data"

    def __call__(self, batch: Sequence[IncomingRecord]) -> BatchCounts:
        self.calls += 1
        if self.calls in self.before:
            raise DependencyUnavailable("fake", "down before the write")
        counts = self.inner(batch)
        if self.calls in self.after:
            raise DependencyUnavailable("fake", "down after the write")
        return counts


step = st.tuples(
    st.floats(0, 1),  # where the event starts, at or before Lambda's position
    st.floats(0, 1),  # where it ends
    st.one_of(st.none(), st.integers(1, 8)),  # chunk size
    st.sets(st.integers(1, 6), max_size=3),  # calls failing after their write
    st.sets(st.integers(1, 6), max_size=2),  # calls failing before it
    st.integers(0, 2),  # watermark writes failing
)


@settings(max_examples=80, deadline=None)
@given(count=st.integers(1, 40), steps=st.lists(step, max_size=8), final_start=st.floats(0, 1))
def test_every_record_is_archived_once_whatever_batches_lambda_sends(
    count: int,
    steps: list[tuple[float, float, int | None, set[int], set[int], int]],
    final_start: float,
) -> None:
    payloads = payloads_of(count)
    full, per_shard = kinesis_event({SHARD: payloads})
    entries = full["Records"]
    assert isinstance(entries, list)
    lake = MemoryLake()
    worker = Faulty(
        SaveCampaignData(
            archive=lake,
            schemas=SCHEMAS,
            dead_letters=MemoryDeadLetters(),
            clock=FixedClock(datetime(2030, 1, 1, tzinfo=UTC)),
        )
    )
    watermarks = MemoryCheckpoints()
    position = 0  # Lambda's own position in the shard: it never skips a record past it

    def send(start: int, end: int, chunk: int | None) -> list[str]:
        result = handle_kinesis_event(
            {"Records": entries[start:end]},
            worker,
            chunk_size=chunk,
            backoff=no_wait(retries=0),
            watermarks=watermarks,
        )
        return result.failed_sequence_numbers

    for start_at, end_at, chunk, after, before, failing_marks in steps:
        if position >= count:
            break
        start = int(start_at * position)
        end = max(position + 1, start + 1 + int(end_at * (count - start)))
        end = min(end, count)
        worker.calls, worker.after, worker.before = 0, after, before
        watermarks.fail_puts = failing_marks
        failed = send(start, end, chunk)
        # Lambda resumes from the first reported record, or after a batch that succeeded.
        position = per_shard[SHARD].index(failed[0]) if failed else max(position, end)
    worker.after, worker.before, watermarks.fail_puts = set(), set(), 0
    assert send(int(final_start * position), count, None) == []

    archived = Counter(str(record[DEDUPE_FIELD]) for record in lake.records())
    expected = {formatted(json.loads(data))[DEDUPE_FIELD] for data in payloads}
    assert set(archived) == expected, "records lost"
    assert [key for key, n in archived.items() if n > 1] == [], "records archived twice"


def test_the_overlap_of_issue_7_archives_each_record_once() -> None:
    """0-99 handled, then 50-149 arrives: before, records 50-99 were in two objects."""
    payloads = payloads_of(150)
    event, _ = kinesis_event({SHARD: payloads})
    entries = event["Records"]
    assert isinstance(entries, list)
    lake = MemoryLake()
    worker = SaveCampaignData(
        archive=lake,
        schemas=SCHEMAS,
        dead_letters=MemoryDeadLetters(),
        clock=FixedClock(datetime(2030, 1, 1, tzinfo=UTC)),
    )
    watermarks = MemoryCheckpoints()
    for start, end in ((0, 100), (50, 150)):
        result = handle_kinesis_event(
            {"Records": entries[start:end]}, worker, watermarks=watermarks
        )
        assert result.failed_sequence_numbers == []
    assert result.skipped == 50
    assert len(lake.records()) == 150
