"""AthenaEligibleFans on the emulator (seeded results: moto runs no SQL and never pages; the
result file put into the emulator's S3 as Athena writes it) and, for paging, the fallback and
clean-up, on a hand-written Athena that pages at 1,000 rows."""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from collections.abc import Callable, Sequence
from types import GeneratorType
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    """S3 where the results bucket refuses reads (AccessDenied): the rows come as pages."""

    def __init__(self) -> None:
        self.deleted: list[str] = []
        self.asked: list[str] = []

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        self.asked.append(f"{Bucket}/{Key}")
        error = {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}
        raise ClientError(error, "GetObject")  # type: ignore[arg-type]

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


def test_a_header_in_other_letter_case_is_the_same_columns() -> None:
    # Athena lowercases names it stores; a view or engine version may answer `globaluserid`.
    rows = [_row([c.lower() for c in COLUMNS])] + [_row(_fan_row(i)) for i in range(3)]
    athena, s3 = PagingAthena(rows, ["SUCCEEDED"]), RecordingS3()
    fans = list(_source(athena, s3, [0.0]).eligible_fans("c1", EligibilityQuery()))
    assert [fan.unwrap().global_user_id for fan in fans] == ["g0", "g1", "g2"]


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


# --- the result file read from S3 (the emulator's, over HTTP) ----------------------------------


def _athena_csv(rows: Sequence[Sequence[str | None]]) -> bytes:
    """As Athena writes a SELECT's result file: every value quoted, quotes doubled, NULL an
    empty unquoted field (tests/property/test_athena_result_csv.py)."""
    return "".join(
        ",".join("" if v is None else '"' + v.replace('"', '""') + '"' for v in row) + "\n"
        for row in rows
    ).encode()


def _cells(values: list[str | None]) -> dict[str, Any]:
    return {"Data": [{} if v is None else {"VarCharValue": v} for v in values]}


def test_the_rows_are_read_from_the_result_file_not_through_get_query_results(
    emulator: Any, aws: Any, make_bucket: Callable[[], str]
) -> None:
    bucket = make_bucket()
    athena, s3 = aws.client("athena"), aws.client("s3")
    body = _athena_csv([list(COLUMNS)] + [list(_fan_row(i)) for i in range(2500)])
    pages: list[str] = []
    athena.meta.events.register(
        "before-call.athena.GetQueryResults", lambda **kw: pages.append("asked")
    )

    def athena_writes_its_result(parsed: dict[str, Any], **_kw: Any) -> None:
        key = f"athena/{parsed['QueryExecutionId']}.csv"
        s3.put_object(Bucket=bucket, Key=key, Body=body)

    athena.meta.events.register(
        "after-call.athena.StartQueryExecution",
        lambda http_response, parsed, **kw: athena_writes_its_result(parsed),
    )
    engine = AthenaQueryEngine(
        athena, s3, database="lake", output_location=f"s3://{bucket}/athena/",
        sleep=lambda s: None,
    )  # fmt: skip
    fans = [r.unwrap() for r in AthenaEligibleFans(engine).eligible_fans("c1", EligibilityQuery())]
    assert [f.global_user_id for f in fans] == [f"g{i}" for i in range(2500)]
    assert pages == []  # no GetQueryResults call at all
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0  # result file removed


HOSTILE = st.one_of(
    st.none(),
    st.just(""),
    st.sampled_from(['"', ",", "\n", "\r\n", '","', " padded ", "é", "名前", "🎉", "true"]),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")),
)
ROWS = st.lists(
    st.tuples(
        st.text(min_size=1).filter(str.strip) | HOSTILE,  # globalUserId
        *[HOSTILE] * 7,  # memberId .. marketId
        st.floats(allow_nan=False).map(repr) | HOSTILE,  # score
        st.sampled_from(["true", "false", "FALSE", ""]) | HOSTILE,  # verdict
        st.sampled_from(["true", "false"]) | HOSTILE,  # coded
    ),
    max_size=15,
)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=ROWS)
def test_the_result_file_gives_the_same_rows_and_fans_as_the_pages(
    aws: Any, make_bucket: Callable[[], str], rows: list[tuple[str | None, ...]]
) -> None:
    bucket = make_bucket()
    s3 = aws.client("s3")
    table: list[list[str | None]] = [list(COLUMNS), *(list(r) for r in rows)]
    s3.put_object(Bucket=bucket, Key="athena/q1.csv", Body=_athena_csv(table))

    def engine(from_s3: bool) -> AthenaQueryEngine:
        paging = PagingAthena([_cells(r) for r in table], ["SUCCEEDED"])
        return AthenaQueryEngine(
            paging, s3, database="lake", output_location=f"s3://{bucket}/athena/",
            results_from_s3=from_s3,
        )  # fmt: skip

    from_file, from_pages = engine(True), engine(False)
    assert list(from_file.rows("q1")) == list(from_pages.rows("q1")) == [tuple(r) for r in rows]
    s3.put_object(Bucket=bucket, Key="athena/q1.csv", Body=_athena_csv(table))  # read again

    def fans(source: AthenaQueryEngine) -> list[Any]:
        return list(AthenaEligibleFans(source).eligible_fans("c1", EligibilityQuery()))

    assert fans(engine(True)) == fans(engine(False))


def test_a_refused_result_file_falls_back_to_pages_and_says_so_without_contacts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rows = [_row(list(COLUMNS))] + [_row(_fan_row(i)) for i in range(1500)]
    athena, s3 = PagingAthena(rows, ["SUCCEEDED"]), RecordingS3()
    with caplog.at_level(logging.WARNING, logger="adapters.aws.athena_engine"):
        fans = list(_source(athena, s3, [0.0]).eligible_fans("c1", EligibilityQuery()))
    assert len(fans) == 1500 and s3.asked == ["out/athena/q1.csv"]
    assert athena.page_sizes == [PAGE_ROWS, 501]
    logged = [r for r in caplog.records if "GetQueryResults" in r.getMessage()]
    assert len(logged) == 1 and "AccessDenied" in logged[0].getMessage()
    assert "example.com" not in caplog.text and "+1212" not in caplog.text


def test_a_malformed_result_file_is_a_broken_source_naming_no_contact(
    aws: Any, make_bucket: Callable[[], str]
) -> None:
    bucket = make_bucket()
    s3 = aws.client("s3")
    good = _athena_csv([list(COLUMNS), list(_fan_row(0))])
    s3.put_object(Bucket=bucket, Key="athena/q1.csv", Body=good + b'"g1","jane@example.com"x\n')
    engine = AthenaQueryEngine(
        PagingAthena([], ["SUCCEEDED"]), s3, database="lake",
        output_location=f"s3://{bucket}/athena/",
    )  # fmt: skip
    read: list[str] = []
    with pytest.raises(BrokenSource, match="line 3") as raised:
        for fan in AthenaEligibleFans(engine).eligible_fans("c1", EligibilityQuery()):
            read.append(fan.unwrap().global_user_id)
    assert read == ["g0"] and "jane" not in str(raised.value)
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0  # removed all the same
