"""process_scheduled_wave and load_code_assignments_to_stream on in-memory fakes."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Result

from adapters.clock import FixedClock
from domain.codes import CodeType
from domain.models import LeaseHeld, ObjectRef
from domain.ports import Clock, Lease, Leases
from domain.workers.load_code_assignments_to_stream import (
    StreamedWave,
    StreamFailure,
    WaveConfigRef,
    load_code_assignments_to_stream,
)
from domain.workers.process_scheduled_wave import ScheduledWave, process_scheduled_wave
from entrypoints.events import unwrap
from tests.support.memory_codes import MemoryCodeInventory
from tests.support.memory_leases import MemoryLeases
from tests.support.memory_scored_files import InMemoryRecordStream
from tests.support.wave_files import HEADER, Crash, CrashingStore, fan, wave_csv

BUCKET = "vf-scoring"
KEY = "smsWaves/csv/camp1_w1.csv"
WAVE = ObjectRef(BUCKET, KEY)
AT = datetime(2026, 3, 1, 12, tzinfo=UTC)


def coded(i: int, code: str | None = None) -> list[str]:
    return [*fan(i), f"C{i:05d}" if code is None else code]


def wave_with_codes(rows: list[list[str]]) -> bytes:
    return wave_csv(rows, header=[*HEADER, "code"])


# --- process_scheduled_wave -----------------------------------------------------------------


def test_assigns_real_codes_in_batches_and_a_second_run_updates_none() -> None:
    store = CrashingStore()
    rows = [coded(i) for i in range(7)] + [coded(8, ""), coded(9, "TM"), coded(10, " TM ")]
    store.put_bytes(WAVE, wave_with_codes(rows))
    inventory = MemoryCodeInventory()
    wave = ScheduledWave.parse({"key": KEY}, BUCKET).unwrap()
    assert wave.campaign_id == "camp1"
    first = process_scheduled_wave(wave, store=store, inventory=inventory, batch_size=3).unwrap()
    assert first.to_json() | {} == {
        "key": KEY, "campaignId": "camp1", "in": 10, "valid": 7, "updated": 7,
        "alreadyAssigned": 0, "conflicts": 0, "dropped": {"empty": 1, "placeholder": 2},
    }  # fmt: skip
    assert inventory.assign_calls == [3, 3, 1]
    again = process_scheduled_wave(wave, store=store, inventory=inventory).unwrap()
    assert (again.updated, again.already_assigned) == (0, 7)
    assert inventory.assigned_to("camp1") == {f"C{i:05d}" for i in range(7)}


class OnlyChunks:
    """The one part of the object store process_scheduled_wave needs: the CSV streamed."""

    def __init__(self, data: bytes, size: int) -> None:
        self.data, self.size = data, size

    def iter_chunks(
        self, ref: ObjectRef, start: int = 0, end: int | None = None
    ) -> Iterator[bytes]:
        assert ref == WAVE
        data = self.data[start:end]
        for first in range(0, len(data), self.size):
            yield data[first : first + self.size]


def test_the_scheduled_wave_only_streams_its_csv() -> None:
    rows = [coded(i) for i in range(5)] + [coded(5, "TM")]
    store = OnlyChunks(wave_with_codes(rows), size=7)  # rows cut across chunks
    wave = ScheduledWave.parse({"key": KEY}, BUCKET).unwrap()
    counts = process_scheduled_wave(wave, store=store, inventory=MemoryCodeInventory()).unwrap()
    assert (counts.rows_in, counts.updated, counts.dropped_placeholder) == (6, 5, 1)


def test_codes_of_another_campaign_are_conflicts() -> None:
    store = CrashingStore()
    store.put_bytes(WAVE, wave_with_codes([coded(1), coded(2)]))
    inventory = MemoryCodeInventory()
    inventory.stock("camp2", CodeType.EXTERNAL, ["C00002"])
    wave = ScheduledWave.parse(unwrap({"data": {"key": KEY}}), BUCKET).unwrap()
    counts = process_scheduled_wave(wave, store=store, inventory=inventory).unwrap()
    assert (counts.updated, counts.conflicts) == (1, 1)


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"key": "smsWaves/csv/nounderscore.csv"}, "is not smsWaves/csv/{campaignId}_{suffix}.csv"),
        ({"key": "elsewhere/camp_1.csv"}, "'elsewhere/camp_1.csv'"),
        ({}, "no wave key"),
    ],
)
def test_a_key_that_does_not_match_is_named(event: object, reason: str) -> None:
    parsed = ScheduledWave.parse(unwrap(event), BUCKET)
    assert isinstance(parsed, Failure) and reason in parsed.failure()


def test_an_s3_event_key_is_url_decoded() -> None:
    event = {
        "Records": [
            {"s3": {"bucket": {"name": "b"}, "object": {"key": "smsWaves/csv/c%3D1_w+1.csv"}}}
        ]
    }
    wave = ScheduledWave.parse(unwrap(event), BUCKET).unwrap()
    assert (wave.source, wave.campaign_id) == (ObjectRef("b", "smsWaves/csv/c=1_w 1.csv"), "c=1")


def test_an_unavailable_inventory_fails_retryably_with_counts() -> None:
    store = CrashingStore()
    store.put_bytes(WAVE, wave_with_codes([coded(1)]))
    inventory = MemoryCodeInventory()
    inventory.unavailable = True
    wave = ScheduledWave.parse(KEY, BUCKET).unwrap()
    outcome = process_scheduled_wave(wave, store=store, inventory=inventory)
    assert isinstance(outcome, Failure)
    assert outcome.failure().retryable and outcome.failure().counts.rows_in == 1


def test_a_wave_without_a_code_column_fails() -> None:
    store = CrashingStore()
    store.put_bytes(WAVE, wave_csv([fan(1)]))
    wave = ScheduledWave.parse(KEY, BUCKET).unwrap()
    outcome = process_scheduled_wave(wave, store=store, inventory=MemoryCodeInventory())
    assert isinstance(outcome, Failure) and outcome.failure().kind == "missing_columns"


# --- load_code_assignments_to_stream --------------------------------------------------------

CONFIG = {"campaignId": "camp1", "categoryId": "42", "notifyDate": "2026-03-02"}


def config_event(state: str, wave: str = "camp1_w1") -> dict[str, object]:
    key = f"smsWaves/{state}/{wave}_csv.json".replace("_", "%5F")
    return {"Records": [{"s3": {"bucket": {"name": BUCKET}, "object": {"key": key}}}]}


def world(rows: list[list[str]]) -> CrashingStore:
    store = CrashingStore()
    store.put_bytes(WAVE, wave_with_codes(rows))
    for state in ("triggered", "completed"):
        store.put_bytes(
            ObjectRef(BUCKET, f"smsWaves/{state}/camp1_w1_csv.json"), json.dumps(CONFIG).encode()
        )
    return store


def load(
    store: CrashingStore,
    stream: InMemoryRecordStream,
    state: str = "triggered",
    chunk: int = 2,
    *,
    leases: Leases | None = None,
    clock: Clock | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Result[StreamedWave, StreamFailure]:
    """One run; by default with leases of its own (a run after the last one's ended)."""
    source = WaveConfigRef.parse(unwrap(config_event(state)), BUCKET).unwrap()
    return load_code_assignments_to_stream(
        source, store=store, stream=stream, clock=clock or FixedClock(AT),
        encode=lambda r: json.dumps(r).encode(), chunk_rows=chunk,
        leases=leases or MemoryLeases(FixedClock(AT)), on_progress=on_progress,
    )  # fmt: skip


def test_codes_become_code_assignment_records_keyed_by_code() -> None:
    store = world([coded(1), coded(2, ""), coded(3, "TM"), coded(4)])
    stream = InMemoryRecordStream()
    counts = load(store, stream).unwrap()
    assert counts.to_json()["count"] == {"rows": 4, "streamed": 2}
    assert counts.to_json()["skipped"] == {"withoutCode": 1, "placeholder": 1}
    assert [r.partition_key for r in stream.records] == ["C00001", "C00004"]
    assert json.loads(stream.records[0].data) == {
        "type": "codeAssignment", "date": {"created": "2026-03-01T12:00:00.000Z"},
        "campaignId": "camp1", "categoryId": "42", "globalUserId": "g0000001",
        "memberId": "m1", "marketId": "2", "code": "C00001",
    }  # fmt: skip


def test_triggered_then_completed_publishes_each_code_once() -> None:
    store = world([coded(i) for i in range(5)])
    stream = InMemoryRecordStream()
    load(store, stream, "triggered").unwrap()
    again = load(store, stream, "completed").unwrap()
    assert again.already_streamed and again.streamed == 5
    assert sorted(r.partition_key for r in stream.records) == [f"C{i:05d}" for i in range(5)]


def test_a_new_upload_of_the_wave_is_streamed_afresh() -> None:
    store = world([coded(1)])
    stream = InMemoryRecordStream()
    load(store, stream).unwrap()
    store.put_bytes(WAVE, wave_with_codes([coded(1), coded(2)]))
    assert load(store, stream, "completed").unwrap().streamed == 2


def test_stranded_records_fail_retryably_and_the_retry_continues_at_that_chunk() -> None:
    store = world([coded(i) for i in range(6)])
    stream = InMemoryRecordStream()
    stream.strand = lambda r: r.partition_key == "C00003"
    failed = load(store, stream)
    assert isinstance(failed, Failure) and failed.failure().retryable
    assert failed.failure().counts.next_row == 3  # type: ignore[union-attr]
    stream.strand = None
    done = load(store, stream).unwrap()
    assert done.resumed_at_row == 3 and done.streamed == 6
    keys = [r.partition_key for r in stream.records]
    # C00002 (the stranded chunk's other record) is the one ambiguous resend, identical bytes.
    assert sorted(set(keys)) == [f"C{i:05d}" for i in range(6)] and keys.count("C00002") == 2


@settings(max_examples=80)
@given(n=st.integers(0, 12), crash=st.integers(1, 10), chunk=st.integers(1, 4))
def test_a_crash_at_any_step_then_a_rerun_streams_every_code_and_resends_at_most_a_chunk(
    n: int, crash: int, chunk: int
) -> None:
    store = world([coded(i) for i in range(n)])
    stream = InMemoryRecordStream()
    store.crash_at = store.steps + crash
    with contextlib.suppress(Crash):
        load(store, stream, chunk=chunk)
    store.crash_at = None
    counts = load(store, stream, "completed", chunk=chunk).unwrap()
    keys = [r.partition_key for r in stream.records]
    assert sorted(set(keys)) == [f"C{i:05d}" for i in range(n)]
    assert len(keys) - len(set(keys)) <= chunk
    assert len({r.data for r in stream.records}) == n  # a resend is the same record
    assert counts.rows == n


def test_a_second_run_while_the_first_streams_the_wave_is_refused_and_puts_nothing() -> None:
    store = world([coded(i) for i in range(5)])
    stream = InMemoryRecordStream()
    leases = MemoryLeases(FixedClock(AT), holder="first", seconds=600)
    refused: list[Result[StreamedWave, StreamFailure]] = []

    def meanwhile(_: int) -> None:  # a second delivery of the event, mid-run
        if not refused:
            refused.append(load(store, stream, "completed", leases=leases.sharing("second")))

    assert load(store, stream, leases=leases, on_progress=meanwhile).unwrap().streamed == 5
    assert isinstance(refused[0], Failure) and refused[0].failure().kind == "busy"
    assert not refused[0].failure().retryable and "first" in refused[0].failure().message
    assert sorted(r.partition_key for r in stream.records) == [f"C{i:05d}" for i in range(5)]


class AlwaysGranted:
    """Leases that never refuse: two runs at once, to show the checkpoint alone is a
    compare-and-set (what a run stalled past its lease meets)."""

    def acquire(self, name: str) -> Result[Lease, LeaseHeld]:
        return MemoryLeases(FixedClock(AT), holder=name).acquire(name)


def test_a_run_whose_cursor_another_run_moved_stops_without_writing_over_it() -> None:
    store = world([coded(i) for i in range(6)])
    stream = InMemoryRecordStream()
    other: list[StreamedWave] = []

    def overtaken(_: int) -> None:
        if not other:
            other.append(load(store, stream, "completed", leases=AlwaysGranted()).unwrap())

    stalled = load(store, stream, leases=AlwaysGranted(), on_progress=overtaken)
    assert isinstance(stalled, Failure) and stalled.failure().kind == "taken_over"
    checkpoint = json.loads(store.read_bytes(ObjectRef(BUCKET, "smsWaves/streamed/camp1_w1.json")))
    assert checkpoint["done"] and checkpoint["streamed"] == other[0].streamed == 6


def test_a_run_that_stalled_past_its_lease_stops_and_the_one_that_took_over_finishes() -> None:
    clock = FixedClock(AT)
    store = world([coded(i) for i in range(6)])
    stream = InMemoryRecordStream()
    leases = MemoryLeases(clock, holder="stalled", seconds=60)
    took_over: list[StreamedWave] = []

    def stall(_: int) -> None:
        if not took_over:
            clock.at = AT + timedelta(seconds=61)
            run = load(store, stream, leases=leases.sharing("next"), clock=clock)
            took_over.append(run.unwrap())

    stalled = load(store, stream, leases=leases, clock=clock, on_progress=stall)
    assert isinstance(stalled, Failure) and stalled.failure().kind == "taken_over"
    assert took_over[0].done and took_over[0].resumed_at_row == 3
    keys = [r.partition_key for r in stream.records]
    assert sorted(keys) == [f"C{i:05d}" for i in range(6)]  # nothing twice, nothing lost


@settings(max_examples=60)
@given(n=st.integers(0, 10), crash=st.integers(1, 10), chunk=st.integers(1, 4))
def test_a_run_killed_holding_the_lease_is_taken_over_after_its_term_and_nothing_is_lost(
    n: int, crash: int, chunk: int
) -> None:
    clock = FixedClock(AT)
    store = world([coded(i) for i in range(n)])
    stream = InMemoryRecordStream()
    leases = MemoryLeases(clock, holder="killed", seconds=60)
    store.crash_at = store.steps + crash
    with contextlib.suppress(Crash):
        load(store, stream, chunk=chunk, leases=leases, clock=clock)
    store.crash_at = None
    rerun = leases.sharing("rerun")
    early = load(store, stream, "completed", chunk=chunk, leases=rerun, clock=clock)
    killed_holding = isinstance(early, Failure)
    if killed_holding:  # the killed run's lease holds until its term is out
        assert early.failure().kind == "busy"
        clock.at = AT + timedelta(seconds=61)
        assert load(store, stream, "completed", chunk=chunk, leases=rerun, clock=clock).unwrap()
    keys = [r.partition_key for r in stream.records]
    assert sorted(set(keys)) == [f"C{i:05d}" for i in range(n)]
    assert len(keys) - len(set(keys)) <= chunk  # only the chunk in flight at the kill, resent
    assert len({r.data for r in stream.records}) == n  # and resent as the same record


@pytest.mark.parametrize(
    ("config", "kind"),
    [(b"{nope", "bad_config"), (b'{"categoryId": 1}', "bad_config"), (b"[]", "bad_config")],
)
def test_a_bad_config_is_named(config: bytes, kind: str) -> None:
    store = world([coded(1)])
    store.put_bytes(ObjectRef(BUCKET, "smsWaves/triggered/camp1_w1_csv.json"), config)
    outcome = load(store, InMemoryRecordStream())
    assert isinstance(outcome, Failure) and outcome.failure().kind == kind
    assert "smsWaves/triggered/camp1_w1_csv.json" in outcome.failure().message


def test_a_key_that_is_not_a_wave_config_is_named() -> None:
    parsed = WaveConfigRef.parse({"key": "smsWaves/triggered/x.json"}, BUCKET)
    assert isinstance(parsed, Failure) and "x.json" in parsed.failure()


# --- the one reading of a worker's input object (domain/waves.event_object) ------------------

CONFIG_KEY = "smsWaves/triggered/camp1_w1_csv.json"


def s3_event(bucket: str, key: str) -> dict[str, object]:
    return {"Records": [{"s3": {"bucket": {"name": bucket}, "object": {"key": key}}}]}


@pytest.mark.parametrize(
    ("event", "where"),
    [
        (s3_event("other", CONFIG_KEY), ObjectRef("other", CONFIG_KEY)),
        ({"key": CONFIG_KEY}, ObjectRef(BUCKET, CONFIG_KEY)),
        ({"bucket": "other", "key": CONFIG_KEY}, ObjectRef("other", CONFIG_KEY)),
        ({"key": f"s3://other/{CONFIG_KEY}"}, ObjectRef("other", CONFIG_KEY)),
        (f"s3://other/{CONFIG_KEY}", ObjectRef("other", CONFIG_KEY)),
        (CONFIG_KEY, ObjectRef(BUCKET, CONFIG_KEY)),
        ({"data": {"key": CONFIG_KEY}}, ObjectRef(BUCKET, CONFIG_KEY)),
    ],
)
def test_a_wave_config_is_found_in_every_input_shape(event: object, where: ObjectRef) -> None:
    assert WaveConfigRef.parse(unwrap(event), BUCKET).unwrap() == WaveConfigRef(where, "camp1_w1")


def test_a_wave_config_key_in_an_s3_event_is_url_decoded() -> None:
    event = s3_event("b", "smsWaves/completed/c%3D1_w+1_csv.json")
    parsed = WaveConfigRef.parse(unwrap(event), BUCKET).unwrap()
    assert parsed == WaveConfigRef(ObjectRef("b", "smsWaves/completed/c=1_w 1_csv.json"), "c=1_w 1")


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"key": "s3://"}, "s3://"),
        ([CONFIG_KEY], "not an S3 event"),
        ({"Records": [{"s3": None}]}, "key ''"),
        ({"Records": ["not a record"]}, "key ''"),
    ],
)
def test_a_wave_config_input_that_names_none_is_refused(event: object, reason: str) -> None:
    parsed = WaveConfigRef.parse(unwrap(event), BUCKET)
    assert isinstance(parsed, Failure) and reason in parsed.failure()


@pytest.mark.parametrize(
    "event",
    [
        {"bucket": "other", "key": KEY},
        {"fileKey": f"s3://other/{KEY}"},
        {"Key": KEY, "bucket": "other"},
        s3_event("other", KEY),
    ],
)
def test_a_scheduled_wave_names_its_own_bucket_in_any_shape(event: object) -> None:
    assert ScheduledWave.parse(unwrap(event), BUCKET).unwrap().source == ObjectRef("other", KEY)


@pytest.mark.parametrize("event", [{"Records": [{"s3": None}]}, {"Records": [7]}, {"key": 7}])
def test_a_scheduled_wave_input_without_a_key_is_refused(event: object) -> None:
    parsed = ScheduledWave.parse(unwrap(event), BUCKET)
    assert isinstance(parsed, Failure) and "no wave key" in parsed.failure()
