"""The merge's Athena engine on the emulator (moto runs no SQL: the duplicate ids are seeded),
then the block merge with only those ids tracked; and its clean-up when a query fails."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from returns.result import Failure, Result, Success

from adapters.aws.athena_engine import AthenaQueryEngine
from adapters.aws.s3 import S3ObjectStore
from domain.lake import LakeLayout
from domain.lake_athena import AthenaDuplicates
from domain.models import ObjectRef
from tests.support.lake_files import ban_record, lake_file, merge_bans, read_records

pytestmark = pytest.mark.integration
DAY = "2024/05/03"


def seed(endpoint: str, *results: list[list[str]]) -> None:
    """One seeded result per query execution, in the order they start."""
    seeded = [
        {"rows": [{"Data": [{"VarCharValue": v} for v in row]} for row in rows]} for rows in results
    ]
    body = json.dumps({"region": "us-east-1", "results": seeded}).encode()
    request = urllib.request.Request(
        f"{endpoint}/moto-api/static/athena/query-results", body, method="POST"
    )
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request) as response:
        assert response.status == 201


def merge(store: Any, finder: Any, layout: LakeLayout) -> Any:
    return merge_bans(store, DAY, layout, duplicates=finder)


def test_athena_finds_the_repeating_ids_and_its_tables_are_dropped(
    emulator: Any, aws: Any, s3_client: Any, make_bucket: Callable[[], str]
) -> None:
    bucket = make_bucket()
    store = S3ObjectStore(s3_client)
    for number, ids in enumerate([["a", "b", "c"], ["c", "d", "a"]]):
        ref = ObjectRef(bucket, f"avro/codeBan/{DAY}/shardId-000000000000-{number}.avro")
        store.put_bytes(ref, lake_file("codeBan", [ban_record(i, copy=number) for i in ids]))
    # CREATE TABLE, the SELECT (header, then the repeating ids), DROP TABLE.
    seed(emulator.endpoint_url, [], [["dedupeid"], ["a"], ["c"]], [])
    athena = aws.client("athena")
    engine = AthenaQueryEngine(
        athena, s3_client, database="lake", output_location=f"s3://{bucket}/athena-output/",
        sleep=lambda s: None,
    )  # fmt: skip
    layout = LakeLayout(bucket)
    finder = AthenaDuplicates(engine, "lake", layout, projection=lambda t: '{"type":"record"}')
    before = set(athena.list_query_executions()["QueryExecutionIds"])

    counts = merge(store, finder, layout)

    assert counts.refusals == ()
    assert (counts.records, counts.duplicates) == (4, 2)
    got = read_records(
        s3_client.get_object(Bucket=bucket, Key=layout.merged_ref("codeBan", DAY).key)[
            "Body"
        ].read()
    )
    assert [r["payload"] for r in got] == [ban_record(i, copy=c)["payload"] for i, c in
                                           [("a", 0), ("b", 0), ("c", 0), ("d", 1)]]  # fmt: skip
    ran = [
        athena.get_query_execution(QueryExecutionId=q)["QueryExecution"]["Query"]
        for q in set(athena.list_query_executions()["QueryExecutionIds"]) - before
    ]
    creates = [q for q in ran if q.startswith("CREATE EXTERNAL TABLE")]
    drops = [q for q in ran if q.startswith("DROP TABLE IF EXISTS")]
    assert len(creates) == 1 and len(drops) == 1
    assert f"LOCATION 's3://{bucket}/avro/codeBan/{DAY}/'" in creates[0]
    assert any("HAVING count(*) > 1" in q for q in ran)
    # moto writes each execution's results under the output location: all removed.
    assert s3_client.list_objects_v2(Bucket=bucket, Prefix="athena-output/")["KeyCount"] == 0


class FailingSelect:
    """A QueryEngine whose SELECT fails (as Athena's FAILED state): records what it ran."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.discarded: list[str] = []

    def execute(self, sql: str) -> Result[str, str]:
        self.ran.append(sql)
        if sql.startswith("SELECT"):
            return Failure("FAILED: HIVE_BAD_DATA")
        return Success(f"q{len(self.ran)}")

    def rows(self, execution_id: str) -> Iterator[tuple[str | None, ...]]:
        raise AssertionError("no rows of a failed query")

    def discard(self, execution_id: str) -> None:
        self.discarded.append(execution_id)


def test_a_failed_query_refuses_the_merge_and_still_drops_its_tables(
    s3_client: Any, make_bucket: Callable[[], str]
) -> None:
    bucket = make_bucket()
    store = S3ObjectStore(s3_client)
    ref = ObjectRef(bucket, f"avro/codeBan/{DAY}/shardId-000000000000-1.avro")
    store.put_bytes(ref, lake_file("codeBan", [ban_record("a")]))
    engine = FailingSelect()
    layout = LakeLayout(bucket)

    counts = merge(store, AthenaDuplicates(engine, "lake", layout, lambda t: "{}"), layout)

    (refused,) = counts.refusals
    assert refused.refusal is not None and refused.refusal.kind == "query_failed"
    assert "HIVE_BAD_DATA" in refused.refusal.message
    assert [q.split(" ")[0] for q in engine.ran] == ["CREATE", "SELECT", "DROP"]
    assert engine.discarded == ["q1", "q3"]  # every execution that ran, the DROP's too
    assert s3_client.list_objects_v2(Bucket=bucket, Prefix="avro/codeBan/merged/")["KeyCount"] == 0
