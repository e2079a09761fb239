from __future__ import annotations

import json
from typing import Any

import pytest

from adapters.avro import AvroSchemas
from domain.records import RecordType
from domain.streaming import DependencyUnavailable
from domain.workers.transform_code_assignments import (
    LOOKUP_CHUNK,
    TransformCodeAssignments,
    transform_code_assignments,
)
from tests.support.memory_scored_files import InMemoryCampaignDirectory, InMemoryRecordStream
from tests.support.memory_stream_workers import MemoryDeadLetters, MemoryUserDirectory
from tests.support.stream_records import batch_of, code_assignment, raw, sample_record

SCHEMAS = AvroSchemas()


def encode(record: Any) -> bytes:
    return json.dumps(record, sort_keys=True).encode()


class World:
    def __init__(self, n_users: int = 50) -> None:
        self.users = MemoryUserDirectory({f"g{i}": f"{i:024d}" for i in range(n_users)})
        self.campaigns = InMemoryCampaignDirectory.from_categories(
            {"cat-1": "camp-1", "cat-2": "camp-2"}
        )
        self.output = InMemoryRecordStream()
        self.dead = MemoryDeadLetters()

    def run(self, batch):  # type: ignore[no-untyped-def]
        return transform_code_assignments(
            batch,
            users=self.users,
            campaigns=self.campaigns,
            schemas=SCHEMAS,
            output=self.output,
            encode=encode,
            dead_letters=self.dead,
        )

    def sent(self) -> list[dict[str, Any]]:
        return [json.loads(r.data) for r in self.output.records]


def test_assignments_are_completed_and_put_on_the_stream_keyed_by_code() -> None:
    world = World()
    counts = world.run(batch_of([raw(code_assignment(i)) for i in range(3)]))

    assert (counts.received, counts.handled, counts.filtered, counts.dead_lettered) == (3, 3, 0, 0)
    sent = world.sent()
    assert [r["userId"] for r in sent] == [f"{i:024d}" for i in range(3)]
    assert {r["campaignId"] for r in sent} == {"camp-1"}
    assert [r.partition_key for r in world.output.records] == [
        "CODE00000",
        "CODE00001",
        "CODE00002",
    ]
    assert all(r["dedupeId"] and r["__meta"] for r in sent)


def test_other_types_and_undecodable_records_are_filtered_and_counted() -> None:
    world = World()
    batch = batch_of(
        [raw(sample_record(RecordType.SCORING)), b"\xff", raw(code_assignment(1)), b"[]"]
    )
    counts = world.run(batch)
    assert (counts.handled, counts.filtered, counts.dead_lettered) == (1, 3, 0)
    assert counts.detail["filtered:other_type"] == 1
    assert counts.detail["filtered:undecodable"] == 2


def test_the_tm_placeholder_code_is_never_passed_on() -> None:
    world = World()
    counts = world.run(batch_of([raw(code_assignment(1, code=" TM "))]))
    assert counts.filtered == 1 and world.output.records == []


def test_existing_ids_are_kept_and_not_looked_up() -> None:
    world = World()
    record = code_assignment(1, userId="u" * 24, campaignId="camp-9")
    world.run(batch_of([raw(record)]))
    assert world.users.requests == [] and world.campaigns.requests == []
    assert world.sent()[0]["campaignId"] == "camp-9"


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (code_assignment(999), "no user for this globalUserId"),
        (code_assignment(1, categoryId="cat-unknown"), "no campaign for this categoryId"),
        (code_assignment(1, categoryId=None), "no campaignId and no categoryId to look it up by"),
    ],
)
def test_records_that_cannot_be_completed_are_dead_lettered(
    record: dict[str, Any], reason: str
) -> None:
    world = World()
    counts = world.run(batch_of([raw(record), raw(code_assignment(2))]))
    assert (counts.handled, counts.dead_lettered) == (1, 1)
    assert world.dead.reasons() == [reason]


def test_records_that_fail_the_schema_are_dead_lettered_with_the_field() -> None:
    world = World()
    counts = world.run(batch_of([raw(code_assignment(1, code=17)), raw(code_assignment(2))]))
    assert (counts.handled, counts.dead_lettered) == (1, 1)
    assert world.dead.reasons() == [
        "does not fit the codeAssignment schema: field 'code': expected a string, got a number"
    ]


def test_lookups_go_in_chunks_of_distinct_ids() -> None:
    world = World(n_users=LOOKUP_CHUNK * 3)
    records = [code_assignment(i % (LOOKUP_CHUNK * 2)) for i in range(LOOKUP_CHUNK * 2 + 5)]
    counts = world.run(batch_of([raw(r) for r in records]))

    assert counts.handled == len(records)
    assert [len(r) for r in world.users.requests] == [LOOKUP_CHUNK, LOOKUP_CHUNK, 5]
    assert world.campaigns.requests == [("cat-1",)] * 3


def test_an_unavailable_lookup_raises_and_nothing_goes_out() -> None:
    world = World()
    world.campaigns.faults.fail_next = 1
    batch = batch_of([raw(code_assignment(1)), raw(code_assignment(1, code=5))])
    with pytest.raises(DependencyUnavailable):
        world.run(batch)
    assert world.output.records == [] and world.dead.letters == []

    counts = world.run(batch)
    assert (counts.handled, counts.dead_lettered) == (1, 1)


def test_stranded_output_raises_for_a_replay() -> None:
    world = World()
    world.output.strand_next = 1
    with pytest.raises(DependencyUnavailable, match="stranded"):
        world.run(batch_of([raw(code_assignment(i)) for i in range(3)]))


def test_records_the_stream_rejects_for_good_are_dead_lettered() -> None:
    world = World()
    world.output.reject_keys = {"CODE00001"}
    counts = world.run(batch_of([raw(code_assignment(i)) for i in range(3)]))
    assert (counts.handled, counts.dead_lettered) == (2, 1)
    assert world.dead.letters[0].record.sequence_number == "1001"


def test_records_too_large_for_the_stream_are_dead_lettered() -> None:
    world = World()
    world.output.max_record_bytes = 600
    big = code_assignment(1, memberId="x" * 700)
    counts = world.run(batch_of([raw(big), raw(code_assignment(2))]))
    assert (counts.handled, counts.dead_lettered) == (1, 1)
    assert "over 600" in world.dead.reasons()[0]


def test_the_bound_worker_has_a_name() -> None:
    world = World()
    worker = TransformCodeAssignments(
        users=world.users,
        campaigns=world.campaigns,
        schemas=SCHEMAS,
        output=world.output,
        encode=encode,
        dead_letters=world.dead,
    )
    assert worker.name == "transform_code_assignments"
    assert worker(batch_of([raw(code_assignment(1))])).handled == 1
