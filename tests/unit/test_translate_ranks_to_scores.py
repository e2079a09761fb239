"""translate_ranks_to_scores on in-memory fakes: scores, bad rows, the manifest, once per upload."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Result

from adapters.clock import FixedClock
from domain.models import Campaign, ObjectRef
from domain.workers.translate_ranks_to_scores import (
    FanlistUpload,
    RanksFailure,
    RanksRun,
    checkpoint_key,
    manifest_key,
    translate_ranks_to_scores,
)
from tests.support.memory_leases import MemoryLeases
from tests.support.memory_scored_files import InMemoryCampaignDirectory, InMemoryRecordStream
from tests.support.wave_files import Crash, CrashingStore

BUCKET = "vf-scoring"
KEY = "fanlist/uploaded/camp1/list.csv"
SOURCE = ObjectRef(BUCKET, KEY)
AT = datetime(2026, 3, 1, 12, tzinfo=UTC)


def directory(scoring: str | None = "raw") -> InMemoryCampaignDirectory:
    return InMemoryCampaignDirectory([Campaign("camp1", scoring=scoring)])


def ranks_csv(n: int) -> bytes:
    return ("memberId,rank\n" + "".join(f"m{i},{i}\n" for i in range(1, n + 1))).encode()


def run(
    store: CrashingStore,
    stream: InMemoryRecordStream,
    scoring: str | None = "raw",
    chunk_rows: int = 2,
    leases: MemoryLeases | None = None,
) -> Result[RanksRun, RanksFailure]:
    return translate_ranks_to_scores(
        FanlistUpload.parse({"key": KEY}, BUCKET).unwrap(),
        store=store,
        campaigns=directory(scoring),
        stream=stream,
        clock=FixedClock(AT),
        encode=lambda r: json.dumps(r, sort_keys=True).encode(),
        leases=leases or MemoryLeases(FixedClock(AT)),
        chunk_rows=chunk_rows,
    )


def sent(stream: InMemoryRecordStream) -> list[dict[str, Any]]:
    return [json.loads(r.data) for r in stream.records]


def test_a_spreadsheet_saved_file_is_scored_and_its_bad_rows_are_counted_with_row_and_reason() -> (
    None
):
    store = CrashingStore()
    body = (
        '\ufeffName,MemberId,Rank\r\n"Smith, Jo",m1,1\r\n"Doe, Al",m2,2\r\n'
        '"No, Rank",m3,\r\n"Bad",m4,x\r\n"Short"\r\n"",,3\r\n"Zero",m7,0\r\n"Tie",m8,2\r\n'
    )
    store.put_bytes(SOURCE, body.encode())
    stream = InMemoryRecordStream()
    done = run(store, stream).unwrap()
    records = sent(stream)
    assert [(r["MemberId"], r["rank"], r["score"], r["row"]) for r in records] == [
        ("m1", 1, 1.0, 1), ("m2", 2, 0.5, 2), ("m8", 2, 0.5, 8),
    ]  # fmt: skip
    assert done.rows == 8 and done.streamed == 3 and done.bad == 5
    manifest = json.loads(store.read_bytes(ObjectRef(BUCKET, manifest_key("camp1"))))
    assert manifest["count"] == {"rows": 8, "streamed": 3, "bad": 5, "rejected": 0}
    assert manifest["badRows"] == [
        {"row": 3, "reason": "rank_missing"},
        {"row": 4, "reason": "rank_not_an_integer"},
        {"row": 5, "reason": "wrong_field_count"},
        {"row": 6, "reason": "identifier_missing"},
        {"row": 7, "reason": "rank_not_positive"},
    ]
    assert "m3" not in json.dumps(manifest)  # reasons, never values


def test_xnum_scores_by_position_in_the_list_and_keeps_n_in_the_manifest() -> None:
    store = CrashingStore()
    store.put_bytes(SOURCE, ranks_csv(4))
    stream = InMemoryRecordStream()
    done = run(store, stream, scoring="xnum").unwrap()
    assert [r["score"] for r in sent(stream)] == [1.0, 0.75, 0.5, 0.25]
    assert done.max_rank == 4
    assert json.loads(store.read_bytes(ObjectRef(BUCKET, manifest_key("camp1"))))["maxRank"] == 4


def test_the_same_upload_again_puts_nothing_and_says_so() -> None:
    store = CrashingStore()
    store.put_bytes(SOURCE, ranks_csv(5))
    stream = InMemoryRecordStream()
    run(store, stream).unwrap()
    again = run(store, stream).unwrap()
    assert again.already_processed and len(stream.records) == 5


def test_a_new_upload_of_the_file_is_translated_afresh() -> None:
    store = CrashingStore()
    store.put_bytes(SOURCE, ranks_csv(2))
    stream = InMemoryRecordStream()
    run(store, stream).unwrap()
    store.put_bytes(SOURCE, ranks_csv(3))
    assert run(store, stream).unwrap().streamed == 3


def test_partition_keys_name_no_fan() -> None:
    store = CrashingStore()
    store.put_bytes(SOURCE, b"email,rank\nfan@example.com,1\n")
    stream = InMemoryRecordStream()
    run(store, stream).unwrap()
    assert "example" not in stream.records[0].partition_key


@pytest.mark.parametrize(
    ("scoring", "kind", "retryable"),
    [(None, "no_scoring_type", False), ("weird", "no_scoring_type", False)],
)
def test_a_campaign_without_a_fanlist_scoring_type_is_refused_having_put_nothing(
    scoring: str | None, kind: str, retryable: bool
) -> None:
    store = CrashingStore()
    store.put_bytes(SOURCE, ranks_csv(2))
    stream = InMemoryRecordStream()
    outcome = run(store, stream, scoring=scoring)
    assert isinstance(outcome, Failure)
    assert (outcome.failure().kind, outcome.failure().retryable) == (kind, retryable)
    assert stream.records == []


def test_a_file_without_a_rank_column_is_refused_naming_it() -> None:
    store = CrashingStore()
    store.put_bytes(SOURCE, b"memberId,position\nm1,1\n")
    failure = run(store, InMemoryRecordStream()).failure()
    assert failure.kind == "missing_columns" and "rank" in failure.message


def test_a_second_run_while_the_first_holds_the_file_is_busy() -> None:
    store = CrashingStore()
    store.put_bytes(SOURCE, ranks_csv(2))
    leases = MemoryLeases(FixedClock(AT))
    leases.sharing("other").acquire("camp1/list").unwrap()
    assert run(store, InMemoryRecordStream(), leases=leases).failure().kind == "busy"


def test_stranded_records_fail_retryably_and_the_retry_puts_them_with_the_same_ids() -> None:
    store = CrashingStore()
    store.put_bytes(SOURCE, ranks_csv(4))
    stream = InMemoryRecordStream()
    stream.strand_next = 1
    failure = run(store, stream).failure()
    assert failure.kind == "stranded" and failure.retryable
    assert run(store, stream).unwrap().streamed == 4
    ids = [r["dedupeId"] for r in sent(stream)]
    assert len(set(ids)) == 4


@settings(max_examples=40)
@given(rows=st.integers(1, 12), crash_at=st.integers(1, 12), chunk=st.integers(1, 5))
def test_killed_anywhere_and_re_run_every_row_reaches_the_lake_once_by_its_dedupe_id(
    rows: int, crash_at: int, chunk: int
) -> None:
    store = CrashingStore()
    store.put_bytes(SOURCE, ranks_csv(rows))
    store.steps, store.crash_at = 0, crash_at
    stream = InMemoryRecordStream()
    with contextlib.suppress(Crash):
        run(store, stream, chunk_rows=chunk, leases=MemoryLeases(FixedClock(AT), seconds=0))
    store.crash_at = None
    done = run(store, stream, chunk_rows=chunk, leases=MemoryLeases(FixedClock(AT), seconds=0))
    assert done.unwrap().done
    by_id = {r["dedupeId"]: r for r in sent(stream)}
    assert sorted(r["row"] for r in by_id.values()) == list(range(1, rows + 1))
    # A record put twice is the same record (same id, same score).
    assert {(r["dedupeId"], r["score"]) for r in sent(stream)} == {
        (i, r["score"]) for i, r in by_id.items()
    }
    assert store.head(ObjectRef(BUCKET, checkpoint_key("camp1", "list"))) is not None
