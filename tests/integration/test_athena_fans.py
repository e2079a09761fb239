"""AthenaEligibleFans on the emulator (seeded results: moto runs no SQL and never pages) and,
for paging and clean-up, on a hand-written Athena that pages at 1,000 rows."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable
from types import GeneratorType
from typing import Any

import pytest
from botocore.exceptions import ClientError

from adapters.aws.athena_engine import PAGE_ROWS, AthenaQueryEngine
from adapters.aws.athena_fans import COLUMNS, AthenaEligibleFans, eligibility_query
from domain.streaming import DependencyUnavailable
from domain.wave_prep.fans import BrokenSource, EligibilityQuery

pytestmark = pytest.mark.integration


def _row(values: list[str]) -> dict[str, Any]:
    return {"Data": [{"VarCharValue": v} for v in values]}


def _fan_row(i: int) -> list[str]:
    return [f"g{i}", f"u{i}", "F", "L", f"f{i}@example.com", "+12125550100", "en", "m1",
            "0.5", "true", "false"]  # fmt: skip


def _seed(endpoint: str, rows: list[dict[str, Any]]) -> None:
    body = json.dumps({"region": "us-east-1", "results": [{"rows": rows}]}).encode()
    request = urllib.request.Request(
        f"{endpoint}/moto-api/static/athena/query-results", body, method="POST"
    )
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request) as response:
        assert response.status == 201


def test_a_seeded_query_streams_its_fans_and_removes_its_results(
    emulator: Any, aws: Any, make_bucket: Callable[[], str]
) -> None:
    bucket = make_bucket()
    _seed(emulator.endpoint_url, [_row(list(COLUMNS))] + [_row(_fan_row(i)) for i in range(2500)])
    athena, s3 = aws.client("athena"), aws.client("s3")
    source = AthenaEligibleFans(
        AthenaQueryEngine(
            athena, s3, database="lake", output_location=f"s3://{bucket}/athena/",
            sleep=lambda s: None,
        )
    )  # fmt: skip
    fans = [r.unwrap() for r in source.eligible_fans("c1", EligibilityQuery(min_score=0.2))]
    assert len(fans) == 2500 and fans[0].market_ids == ("m1",) and not fans[0].has_codes
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0  # result CSV removed


class PagingAthena:
    """Athena as it really pages: at most MaxResults rows a call, with NextToken."""

    def __init__(self, rows: list[dict[str, Any]], states: list[str]) -> None:
        self.rows, self.states = rows, states
        self.stopped: list[str] = []
        self.page_sizes: list[int] = []

    def start_query_execution(self, **kwargs: Any) -> dict[str, Any]:
        assert "?" in kwargs["QueryString"] and kwargs["ExecutionParameters"] == ["'c1'", "'c1'"]
        return {"QueryExecutionId": "q1"}

    def get_query_execution(self, QueryExecutionId: str) -> dict[str, Any]:
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return {"QueryExecution": {"Status": {"State": state, "StateChangeReason": "syntax"}}}

    def get_query_results(
        self, QueryExecutionId: str, MaxResults: int, NextToken: str = "0"
    ) -> dict[str, Any]:
        start = int(NextToken)
        page = self.rows[start : start + MaxResults]
        self.page_sizes.append(len(page))
        more = start + MaxResults < len(self.rows)
        return {"ResultSet": {"Rows": page}} | (
            {"NextToken": str(start + MaxResults)} if more else {}
        )

    def stop_query_execution(self, QueryExecutionId: str) -> None:
        self.stopped.append(QueryExecutionId)


class RecordingS3:
    def __init__(self) -> None:
        self.deleted: list[str] = []

    def delete_objects(self, Bucket: str, Delete: dict[str, Any]) -> None:
        self.deleted.extend(f"{Bucket}/{o['Key']}" for o in Delete["Objects"])


def _source(athena: PagingAthena, s3: RecordingS3, clock: list[float]) -> AthenaEligibleFans:
    def sleep(seconds: float) -> None:
        clock[0] += seconds

    return AthenaEligibleFans(
        AthenaQueryEngine(
            athena, s3, database="lake", output_location="s3://out/athena", max_wait_seconds=5,
            sleep=sleep, monotonic=lambda: clock[0],
        )
    )  # fmt: skip


def test_results_are_paged_at_1000_rows_after_polling() -> None:
    rows = [_row(list(COLUMNS))] + [_row(_fan_row(i)) for i in range(2500)]
    athena, s3 = PagingAthena(rows, ["QUEUED", "RUNNING", "SUCCEEDED"]), RecordingS3()
    fans = list(_source(athena, s3, [0.0]).eligible_fans("c1", EligibilityQuery()))
    assert len(fans) == 2500 and athena.page_sizes == [PAGE_ROWS, PAGE_ROWS, 501]
    assert athena.stopped == [] and s3.deleted == [
        "out/athena/q1.csv",
        "out/athena/q1.csv.metadata",
    ]


def test_a_query_that_never_finishes_is_stopped_and_cleaned_up() -> None:
    athena, s3 = PagingAthena([], ["RUNNING"]), RecordingS3()
    with pytest.raises(BrokenSource, match="still RUNNING"):
        list(_source(athena, s3, [0.0]).eligible_fans("c1", EligibilityQuery()))
    assert athena.stopped == ["q1"] and "out/athena/q1.csv" in s3.deleted


def test_a_failed_query_says_why_and_a_reader_that_stops_early_still_cleans_up() -> None:
    athena, s3 = PagingAthena([], ["FAILED"]), RecordingS3()
    with pytest.raises(BrokenSource, match="FAILED: syntax"):
        list(_source(athena, s3, [0.0]).eligible_fans("c1", EligibilityQuery()))
    rows = [_row(list(COLUMNS))] + [_row(_fan_row(i)) for i in range(10)]
    athena, s3 = PagingAthena(rows, ["SUCCEEDED"]), RecordingS3()
    stream = _source(athena, s3, [0.0]).eligible_fans("c1", EligibilityQuery())
    next(stream)
    assert isinstance(stream, GeneratorType)
    stream.close()
    assert "out/athena/q1.csv" in s3.deleted


def test_the_sql_applies_the_rules_and_never_holds_the_campaign_id() -> None:
    sql, params = eligibility_query("lake", "c'1", EligibilityQuery(min_score=0.5, max_score=0.9))
    assert "c'1" not in sql and params == ["'c''1'", "'c''1'", "'0.5'", "'0.9'"]
    assert "score >= CAST(? AS DOUBLE)" in sql and "NOT coded" in sql
    assert "NOT coded" not in eligibility_query("lake", "c1", EligibilityQuery(reassign=True))[0]
    with pytest.raises(ValueError, match="plain identifier"):
        eligibility_query('lake"; DROP', "c1", EligibilityQuery())


def test_a_result_with_other_columns_is_a_broken_source_and_is_cleaned_up() -> None:
    rows = [_row(["globalUserId", "score"]), _row(["g1", "0.5"])]
    athena, s3 = PagingAthena(rows, ["SUCCEEDED"]), RecordingS3()
    with pytest.raises(BrokenSource, match="answered columns"):
        list(_source(athena, s3, [0.0]).eligible_fans("c1", EligibilityQuery()))
    assert athena.stopped == [] and "out/athena/q1.csv" in s3.deleted


class WatchedAthena(PagingAthena):
    """PagingAthena that says when each page is asked for, and can fail one page."""

    def __init__(self, rows: list[dict[str, Any]], fail_at: str | None = None) -> None:
        super().__init__(rows, ["SUCCEEDED"])
        self.asked: dict[str, threading.Event] = {}
        self.fail_at = fail_at

    def asked_for(self, token: str) -> threading.Event:
        return self.asked.setdefault(token, threading.Event())

    def get_query_results(
        self, QueryExecutionId: str, MaxResults: int, NextToken: str = "0"
    ) -> dict[str, Any]:
        self.asked_for(NextToken).set()
        if NextToken == self.fail_at:
            error = {"Error": {"Code": "InternalServerException", "Message": "boom"}}
            raise ClientError(error, "GetQueryResults")  # type: ignore[arg-type]
        return super().get_query_results(QueryExecutionId, MaxResults, NextToken)


def test_the_next_page_is_fetched_while_the_reader_works_through_this_one() -> None:
    rows = [_row(list(COLUMNS))] + [_row(_fan_row(i)) for i in range(2500)]
    athena = WatchedAthena(rows)
    stream = _source(athena, RecordingS3(), [0.0]).eligible_fans("c1", EligibilityQuery())
    next(stream)  # the reader holds the first fan of the first page
    # Not a sleep as proof: a bounded wait for an event that, without read-ahead, never comes.
    assert athena.asked_for(str(PAGE_ROWS)).wait(timeout=30)
    assert not athena.asked_for(str(2 * PAGE_ROWS)).is_set()  # one page ahead, no more
    assert isinstance(stream, GeneratorType)
    stream.close()


def test_pages_fetched_ahead_arrive_in_order_none_lost_or_repeated() -> None:
    rows = [_row(list(COLUMNS))] + [_row(_fan_row(i)) for i in range(3500)]
    athena, s3 = WatchedAthena(rows), RecordingS3()
    fans = [f.unwrap() for f in _source(athena, s3, [0.0]).eligible_fans("c1", EligibilityQuery())]
    assert [f.global_user_id for f in fans] == [f"g{i}" for i in range(3500)]
    assert athena.page_sizes == [PAGE_ROWS] * 3 + [501]
    assert "out/athena/q1.csv" in s3.deleted


def test_a_page_that_fails_mid_way_is_reported_after_every_row_before_it() -> None:
    rows = [_row(list(COLUMNS))] + [_row(_fan_row(i)) for i in range(3500)]
    athena, s3 = WatchedAthena(rows, fail_at=str(2 * PAGE_ROWS)), RecordingS3()
    read: list[str] = []
    with pytest.raises(DependencyUnavailable, match="athena"):
        for fan in _source(athena, s3, [0.0]).eligible_fans("c1", EligibilityQuery()):
            read.append(fan.unwrap().global_user_id)
    # The header and 1,999 fans of the first two pages; nothing of the failed page or after it.
    assert read == [f"g{i}" for i in range(2 * PAGE_ROWS - 1)]
    assert athena.page_sizes == [PAGE_ROWS, PAGE_ROWS]
    assert "out/athena/q1.csv" in s3.deleted
