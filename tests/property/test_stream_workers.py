"""Rules of the stream workers, over generated batches: every record accounted for, replays
idempotent (same lake objects, no double assignment), however the batch is mixed or re-cut."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.avro import AvroSchemas
from adapters.clock import FixedClock
from domain.records import RECORD_TYPES, CodeAssignment, Verdict
from domain.streaming import BatchCounts, DeadLetter, DependencyUnavailable
from domain.workers.save_campaign_data import save_campaign_data
from domain.workers.save_selection import save_selection
from domain.workers.transform_code_assignments import transform_code_assignments
from tests.support.memory_scored_files import InMemoryCampaignDirectory, InMemoryRecordStream
from tests.support.memory_stream_workers import (
    MemoryDeadLetters,
    MemoryEntryDirectory,
    MemoryLake,
    MemoryUserDirectory,
    MemoryVerdictQueue,
)
from tests.support.stream_records import batch_of, code_assignment, enriched_assignment, raw
from tests.support.stream_records import sample_record as sample

SCHEMAS = AvroSchemas()
CLOCK = FixedClock(datetime(2030, 1, 1, tzinfo=UTC))
text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)


@st.composite
def input_record(draw: st.DrawFn, index: int) -> bytes:
    """One raw record of the input stream: valid of any type, or poison of any kind."""
    kind = draw(
        st.sampled_from(["valid", "valid", "valid", "garbage", "array", "unknown", "bad_field"])
    )
    record_type = draw(st.sampled_from(sorted(RECORD_TYPES)))
    record: dict[str, Any] = {**sample(record_type, index), "note": draw(text), "n": index}
    if kind == "garbage":
        return draw(st.binary(max_size=20)) + b"\xff"
    if kind == "array":
        return b"[" + str(index).encode() + b"]"
    if kind == "unknown":
        record["type"] = "x" + draw(text)
    if kind == "bad_field":
        record = {**sample("scoring", index), "score": draw(text)}
    return raw(record)


@st.composite
def input_batch(draw: st.DrawFn) -> list[bytes]:
    size = draw(st.integers(min_value=0, max_value=40))
    return [draw(input_record(i)) for i in range(size)]


def accounted(counts: BatchCounts, received: int) -> bool:
    return counts.received == received == counts.handled + counts.filtered + counts.dead_lettered


@given(input_batch())
@settings(max_examples=150, deadline=None)
def test_save_campaign_data_accounts_for_every_record_and_replays_identically(
    datas: list[bytes],
) -> None:
    lake, dead = MemoryLake(), MemoryDeadLetters()
    batch = batch_of(datas)
    counts = save_campaign_data(
        batch, archive=lake, schemas=SCHEMAS, dead_letters=dead, clock=CLOCK
    )

    assert accounted(counts, len(datas))
    assert counts.handled == len(lake.records())
    assert counts.dead_lettered == len(dead.letters)
    assert all(letter.reason for letter in dead.letters)
    first = dict(lake.objects)

    save_campaign_data(batch, archive=lake, schemas=SCHEMAS, dead_letters=dead, clock=CLOCK)
    assert lake.objects == first


def _archived_ns(lake: MemoryLake) -> Counter[int]:
    """How often each input record (by its `n`) is in the lake."""
    found: Counter[int] = Counter()
    for record in lake.records():
        if "payload" in record:
            found[json.loads(record["payload"])["n"]] += 1
        else:
            found[json.loads(record["extra"]["n"])] += 1
    return found


@given(
    input_batch(), st.integers(min_value=1, max_value=40), st.integers(min_value=0, max_value=40)
)
@settings(max_examples=150, deadline=None)
def test_a_replay_cut_differently_leaves_each_record_in_the_lake_exactly_once(
    datas: list[bytes], first_attempt: int, replay: int
) -> None:
    """Attempt 1 archives records [0, a) and dies before its checkpoint; the replay starts at the
    same record but ends at r (a longer or shorter page); the next batch goes on from r."""
    batch = batch_of(datas)
    lake = MemoryLake()

    def archive(part: list[Any]) -> None:
        save_campaign_data(
            part, archive=lake, schemas=SCHEMAS, dead_letters=MemoryDeadLetters(), clock=CLOCK
        )

    if batch:
        archive(batch[:first_attempt])
        archive(batch[:replay] if replay else batch[:1])
        archive(batch[max(replay, 1) :])

    valid = {i for i, data in enumerate(datas) if _is_valid_input(data)}
    found = _archived_ns(lake)
    assert set(found) == valid
    assert all(times == 1 for times in found.values())


def _is_valid_input(data: bytes) -> bool:
    try:
        record = json.loads(data)
    except ValueError:
        return False
    if not isinstance(record, dict) or record.get("type") not in RECORD_TYPES:
        return False
    return not isinstance(record.get("score", 0.0), str)


@st.composite
def code_assignment_batch(draw: st.DrawFn) -> list[bytes]:
    size = draw(st.integers(min_value=0, max_value=30))
    out = []
    for i in range(size):
        kind = draw(st.sampled_from(["ok", "ok", "no_user", "no_cat", "other", "poison", "bad"]))
        if kind == "ok":
            out.append(raw(code_assignment(draw(st.integers(0, 9)), code=f"C{i}")))
        elif kind == "no_user":
            out.append(raw(code_assignment(100 + i)))
        elif kind == "no_cat":
            out.append(raw(code_assignment(i % 10, categoryId="cat-unknown")))
        elif kind == "other":
            out.append(raw(sample(draw(st.sampled_from(["scoring", "codeBan"])), i)))
        elif kind == "poison":
            out.append(b"\x00not json")
        else:
            out.append(raw(code_assignment(i % 10, globalUserId=None)))
    return out


@given(code_assignment_batch(), st.booleans())
@settings(max_examples=150, deadline=None)
def test_transform_accounts_for_every_record_across_a_transient_failure(
    datas: list[bytes], fail_first: bool
) -> None:
    users = MemoryUserDirectory({f"g{i}": f"{i:024d}" for i in range(10)})
    campaigns = InMemoryCampaignDirectory.from_categories({"cat-1": "camp-1"})
    output, dead = InMemoryRecordStream(), MemoryDeadLetters()
    users.faults.fail_next = int(fail_first)
    batch = batch_of(datas)

    def run() -> BatchCounts:
        return transform_code_assignments(
            batch,
            users=users,
            campaigns=campaigns,
            schemas=SCHEMAS,
            output=output,
            encode=lambda r: json.dumps(r).encode(),
            dead_letters=dead,
        )

    try:
        counts = run()
    except DependencyUnavailable:
        assert output.records == [] and dead.letters == []
        counts = run()

    assert accounted(counts, len(datas))
    assert counts.handled == len(output.records)
    assert counts.dead_lettered == len(dead.letters)


@st.composite
def selection_batch(draw: st.DrawFn) -> list[bytes]:
    size = draw(st.integers(min_value=0, max_value=40))
    out = []
    for _ in range(size):
        fan = draw(st.integers(0, 5))
        kind = draw(st.sampled_from(["ok", "ok", "ok", "incomplete", "poison", "other"]))
        if kind == "ok":
            campaign = draw(st.sampled_from(["camp-1", "camp-2", "camp-x"]))
            code = draw(st.sampled_from(["A", "B", "C"]))
            out.append(raw(enriched_assignment(fan, campaign=campaign, code=code)))
        elif kind == "incomplete":
            out.append(raw(enriched_assignment(fan, userId=None)))
        elif kind == "poison":
            out.append(b"\xfe")
        else:
            out.append(raw(sample("scoring", fan)))
    return out


@given(
    selection_batch(), st.integers(min_value=0, max_value=3), st.integers(min_value=1, max_value=7)
)
@settings(max_examples=150, deadline=None)
def test_save_selection_assigns_each_code_once_however_often_it_is_replayed(
    datas: list[bytes], failures: int, per_call: int
) -> None:
    entries = MemoryEntryDirectory(
        max_assignments_per_call=per_call, known_campaigns={"camp-1", "camp-2"}
    )
    entries.faults.fail_next = failures
    verdicts, dead = MemoryVerdictQueue(fifo=True), MemoryDeadLetters()
    batch = batch_of(datas, stream="save-selection-stream")

    counts = None
    for _ in range(failures + 2):  # the runtime's replays, then one more to replay a success
        try:
            counts = save_selection(batch, entries=entries, verdicts=verdicts, dead_letters=dead)
        except DependencyUnavailable:
            continue
    assert counts is not None
    assert accounted(counts, len(datas))

    wanted = {
        (r["campaignId"], r["globalUserId"], r["code"])
        for r in (json.loads(d) for d in datas if d != b"\xfe")
        if r.get("type") == "codeAssignment" and r.get("userId") and r["campaignId"] != "camp-x"
    }
    held = {(c, g, code) for (c, g), codes in entries.codes.items() for code in codes}
    assert held == wanted
    assert all(size <= per_call for size in entries.call_sizes)
    assert len({v.dedupe_id for v in verdicts.verdicts}) == len(verdicts.verdicts)


@dataclass
class _CrashPlan:
    """Crashes the run at dependency call number `at` (0-based, across all ports), after that
    call's effect: the worst point, where the write happened but the worker never saw it."""

    at: int | None
    calls: int = 0

    def crash_now(self) -> bool:
        self.calls += 1
        return self.at is not None and self.calls - 1 == self.at


def _crash() -> NoReturn:
    raise DependencyUnavailable("crash", "the process died here")


@dataclass
class _CrashingEntries:
    inner: MemoryEntryDirectory
    plan: _CrashPlan

    @property
    def max_assignments_per_call(self) -> int:
        return self.inner.max_assignments_per_call

    def assign_codes(self, campaign_id: str, assignments: Sequence[CodeAssignment]) -> Any:
        crash = self.plan.crash_now()
        outcome = self.inner.assign_codes(campaign_id, assignments)
        if crash:
            _crash()
        return outcome


@dataclass
class _CrashingVerdicts:
    """Delivers part of the verdicts, then crashes (SendMessageBatch goes out 10 at a time)."""

    inner: MemoryVerdictQueue
    plan: _CrashPlan
    delivered_before_crash: int

    def send(self, verdicts: Sequence[Verdict]) -> None:
        if self.plan.crash_now():
            self.inner.send(verdicts[: self.delivered_before_crash])
            _crash()
        self.inner.send(verdicts)


@dataclass
class _CrashingDeadLetters:
    inner: MemoryDeadLetters
    plan: _CrashPlan

    def send(self, letters: Sequence[DeadLetter]) -> None:
        crash = self.plan.crash_now()
        self.inner.send(letters)
        if crash:
            _crash()


@given(selection_batch(), st.integers(min_value=1, max_value=7), st.data())
@settings(max_examples=200, deadline=None)
def test_verdict_counts_add_up_to_the_distinct_assignments_across_crashes_and_recuts(
    datas: list[bytes], per_call: int, data: st.DataObject
) -> None:
    """A runtime's life: each attempt starts at the checkpoint, ends wherever (a longer or
    shorter page), and may crash at any dependency call; only a finished attempt moves the
    checkpoint. However it goes, the counts the FIFO verdict queue kept add up, per campaign,
    to the distinct (campaign, fan, code) assignments made."""
    entries = MemoryEntryDirectory(
        max_assignments_per_call=per_call, known_campaigns={"camp-1", "camp-2"}
    )
    verdicts, dead = MemoryVerdictQueue(fifo=True), MemoryDeadLetters()
    batch = batch_of(datas, stream="save-selection-stream")
    start, crashes_left = 0, 6
    while start < len(batch):
        end = data.draw(st.integers(min_value=start + 1, max_value=len(batch)), label="end")
        crash_at = (
            data.draw(st.none() | st.integers(0, 12), label="crash_at") if crashes_left else None
        )
        plan = _CrashPlan(crash_at)
        try:
            save_selection(
                batch[start:end],
                entries=_CrashingEntries(entries, plan),
                verdicts=_CrashingVerdicts(verdicts, plan, data.draw(st.integers(0, 12))),
                dead_letters=_CrashingDeadLetters(dead, plan),
            )
        except DependencyUnavailable:
            crashes_left -= 1
            continue
        start = end

    made: Counter[str] = Counter(
        campaign for (campaign, _fan), codes in entries.codes.items() for _ in codes
    )
    assert verdicts.counts() == made
    assert len({v.dedupe_id for v in verdicts.verdicts}) == len(verdicts.verdicts)
