from __future__ import annotations

from typing import Any

import pytest

from domain.records import CodeAssignment, RecordType, verdict_for
from domain.streaming import DependencyUnavailable
from domain.workers.save_selection import SaveSelection, save_selection
from tests.support.memory_stream_workers import (
    MemoryDeadLetters,
    MemoryEntryDirectory,
    MemorySelectionLedger,
    MemoryVerdictQueue,
)
from tests.support.stream_records import batch_of, enriched_assignment, raw, sample_record


class World:
    def __init__(self, per_call: int = 1000, fifo: bool = True) -> None:
        self.entries = MemoryEntryDirectory(max_assignments_per_call=per_call)
        self.ledger = MemorySelectionLedger()
        self.verdicts = MemoryVerdictQueue(fifo=fifo)
        self.dead = MemoryDeadLetters()

    def run(self, batch):  # type: ignore[no-untyped-def]
        return save_selection(
            batch,
            entries=self.entries,
            verdicts=self.verdicts,
            dead_letters=self.dead,
            ledger=self.ledger,
        )


def _assignments(records: list[dict[str, Any]]) -> list[CodeAssignment]:
    return [
        CodeAssignment(r["campaignId"], r["userId"], r["globalUserId"], r["code"]) for r in records
    ]


def test_codes_are_assigned_per_campaign_and_a_verdict_sent_for_each() -> None:
    world = World()
    records = [enriched_assignment(i, campaign=f"camp-{i % 2}") for i in range(6)]
    counts = world.run(batch_of([raw(r) for r in records]))

    assert (counts.received, counts.handled, counts.filtered, counts.dead_lettered) == (6, 6, 0, 0)
    assert world.entries.codes[("camp-0", "g0")] == {"CODE00000"}
    assert world.entries.total_codes() == 6
    assert world.verdicts.counts() == {"camp-0": 3, "camp-1": 3}
    assert {v.dedupe_id for v in world.verdicts.verdicts} == {
        verdict_for(a).dedupe_id for a in _assignments(records)
    }
    assert world.ledger.selected[("camp-1", "g1")] == {"m1"}


def test_calls_hold_at_most_the_directory_limit() -> None:
    world = World(per_call=1000)
    records = [enriched_assignment(i) for i in range(2345)]
    counts = world.run(batch_of([raw(r) for r in records]))
    assert world.entries.call_sizes == [1000, 1000, 345]
    assert counts.handled == 2345
    assert world.verdicts.counts() == {"camp-1": 2345}


def test_a_smaller_directory_limit_is_honoured() -> None:
    world = World(per_call=25)
    world.run(batch_of([raw(enriched_assignment(i)) for i in range(60)]))
    assert world.entries.call_sizes == [25, 25, 10]


def test_the_same_assignment_twice_in_a_batch_is_assigned_once_and_both_handled() -> None:
    world = World()
    record = raw(enriched_assignment(1))
    counts = world.run(batch_of([record, record]))
    assert counts.handled == 2 and counts.detail["duplicate_in_batch"] == 1
    assert world.entries.call_sizes == [1]
    assert world.verdicts.counts() == {"camp-1": 1}


def test_a_replay_assigns_nothing_twice_and_the_fifo_drops_the_second_verdict() -> None:
    world = World(fifo=True)
    batch = batch_of([raw(enriched_assignment(i)) for i in range(10)])
    first = world.run(batch)
    second = world.run(batch)

    assert first.detail["assigned"] == 10 and "already_assigned" not in first.detail
    assert second.detail["already_assigned"] == 10 and "assigned" not in second.detail
    assert world.entries.total_codes() == 10
    assert world.verdicts.counts() == {"camp-1": 10}
    assert len(world.verdicts.verdicts) == 10


def test_other_types_and_the_placeholder_code_are_filtered() -> None:
    world = World()
    batch = batch_of(
        [
            raw(sample_record(RecordType.SCORING)),
            raw(enriched_assignment(1, code="TM")),
            raw(enriched_assignment(2)),
        ]
    )
    counts = world.run(batch)
    assert (counts.handled, counts.filtered) == (1, 2)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xc3\x28", "not UTF-8: invalid byte at offset 0"),
        (raw(enriched_assignment(1, userId=None)), "incomplete code assignment: missing userId"),
        (
            raw(enriched_assignment(1, campaignId="  ", code="")),
            "incomplete code assignment: missing campaignId, code",
        ),
    ],
)
def test_bad_records_are_dead_lettered(data: bytes, reason: str) -> None:
    world = World()
    counts = world.run(batch_of([data, raw(enriched_assignment(2))]))
    assert (counts.handled, counts.dead_lettered) == (1, 1)
    assert world.dead.reasons() == [reason]


def test_an_unknown_campaign_dead_letters_its_records_only() -> None:
    world = World()
    world.entries.known_campaigns = {"camp-1"}
    records = [enriched_assignment(1), enriched_assignment(2, campaign="camp-x")]
    counts = world.run(batch_of([raw(r) for r in records]))
    assert (counts.handled, counts.dead_lettered) == (1, 1)
    assert world.dead.reasons() == [
        "entry directory refused the assignment: campaign camp-x: not_found"
    ]
    assert [v.campaign_id for v in world.verdicts.verdicts] == ["camp-1"]


@pytest.mark.parametrize("failing", ["entries", "ledger", "verdicts", "dead"])
def test_a_transient_failure_anywhere_raises_and_the_replay_completes_once(failing: str) -> None:
    world = World(fifo=True)
    getattr(world, failing).faults.fail_next = 1
    batch = batch_of([raw(enriched_assignment(i)) for i in range(5)] + [b"junk"])

    with pytest.raises(DependencyUnavailable):
        world.run(batch)
    counts = world.run(batch)

    assert (counts.handled, counts.dead_lettered) == (5, 1)
    assert world.entries.total_codes() == 5
    assert world.verdicts.counts() == {"camp-1": 5}
    assert len(world.dead.letters) == 1


def test_the_bound_worker_works_without_a_ledger() -> None:
    world = World()
    worker = SaveSelection(entries=world.entries, verdicts=world.verdicts, dead_letters=world.dead)
    assert worker.name == "save_selection"
    assert worker(batch_of([raw(enriched_assignment(1))])).handled == 1
    assert world.ledger.selected == {}


def test_a_replay_that_ends_later_counts_each_assignment_once() -> None:
    """Issue 6 item 3: a replay from the same checkpoint ending one record later counted
    2 + 3 = 5 verdicts for 3 assignments under batch-keyed ids."""
    world = World(fifo=True)
    batch = batch_of([raw(enriched_assignment(i)) for i in range(3)])
    world.run(batch[:2])
    world.run(batch)
    assert world.verdicts.counts() == {"camp-1": 3}
