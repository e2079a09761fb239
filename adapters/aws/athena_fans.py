"""EligibleFans through Athena, for a lake too large to read on one machine.

The eligibility query runs in Athena over the lake's `scoring` and `codeAssignment` tables
(one row per fan: the latest scoring record by `receivedAt`, so a fan scored twice counts
once; `coded` = the fan holds a code in this campaign). The rules the query applies (verdict,
score bounds, codes unless reassign) are checked again by the domain.

Orchestration: StartQueryExecution (the campaign id as an execution parameter, never pasted
into the SQL) -> GetQueryExecution polled with a growing wait until SUCCEEDED, up to
`max_wait_seconds` -> GetQueryResults paged at 1,000 rows (Athena's maximum; the first row of
the first page is the header) -> the query's result objects removed from the output location
(they hold people's contacts). On any failure or an abandoned read (a timeout, FAILED or
CANCELLED, an error while paging, the consumer stopping early) the query is stopped if it is
still running and its result objects are removed; the failure surfaces as BrokenSource
(the query itself is wrong) or DependencyUnavailable (Athena or S3 unreachable).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

from returns.result import Failure, Result, Success

from adapters.aws.errors import AWS_ERRORS, unavailable
from domain.wave_prep.fans import BrokenSource, EligibilityQuery, EligibleFan

PAGE_ROWS = 1000
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
COLUMNS = (
    "globalUserId",
    "memberId",
    "firstName",
    "lastName",
    "email",
    "phone",
    "locale",
    "marketId",
    "score",
    "verdict",
    "coded",
)


def eligibility_query(
    database: str, campaign_id: str, query: EligibilityQuery
) -> tuple[str, list[str]]:
    """The SQL and its execution parameters (campaign id, score bounds: never in the SQL)."""
    if not _IDENTIFIER.match(database):
        raise ValueError(f"Athena database {database!r} is not a plain identifier")
    quoted = "'" + campaign_id.replace("'", "''") + "'"
    params = [quoted, quoted]
    bounds = []
    if query.min_score is not None:
        bounds.append("AND score >= CAST(? AS DOUBLE)")
        params.append(f"'{float(query.min_score)!r}'")
    if query.max_score is not None:
        bounds.append("AND score <= CAST(? AS DOUBLE)")
        params.append(f"'{float(query.max_score)!r}'")
    coded_filter = "" if query.reassign else "AND NOT coded"
    # Only the configured database name (checked above) and fixed fragments are formatted in.
    sql = f"""
WITH latest AS (
  SELECT s.*, ROW_NUMBER() OVER (PARTITION BY globalUserId ORDER BY receivedAt DESC) AS n
  FROM "{database}"."scoring" s WHERE campaignId = ?
), coded AS (
  SELECT DISTINCT globalUserId FROM "{database}"."codeassignment"
  WHERE campaignId = ? AND code IS NOT NULL
), fans AS (
  SELECT l.globalUserId, l.memberId, l.firstName, l.lastName, l.email, l.phone, l.locale,
         l.marketId, COALESCE(l.band_score, l.score) AS score,
         COALESCE(l.verdict, true) AS verdict, c.globalUserId IS NOT NULL AS coded
  FROM latest l LEFT JOIN coded c ON l.globalUserId = c.globalUserId WHERE l.n = 1
)
SELECT {", ".join(COLUMNS)} FROM fans
WHERE verdict {" ".join(bounds)} {coded_filter}
""".strip()  # noqa: S608
    return sql, params


def fan_from_row(values: list[str | None]) -> Result[EligibleFan, str]:
    if len(values) != len(COLUMNS):
        return Failure(f"result row with {len(values)} columns, expected {len(COLUMNS)}")
    row = dict(zip(COLUMNS, values, strict=True))
    gid = (row["globalUserId"] or "").strip()
    if not gid:
        return Failure("result row without globalUserId")
    try:
        score = float(row["score"] or "")
    except ValueError:
        return Failure(f"result row {gid}: score is not a number")
    market = (row["marketId"] or "").strip()
    return Success(
        EligibleFan(
            global_user_id=gid,
            score=score,
            market_ids=(market,) if market else (),
            verdict=(row["verdict"] or "true").lower() != "false",
            has_codes=(row["coded"] or "false").lower() == "true",
            user_id=(row["memberId"] or "").strip(),
            first_name=(row["firstName"] or "").strip(),
            last_name=(row["lastName"] or "").strip(),
            email=(row["email"] or "").strip(),
            phone=(row["phone"] or "").strip(),
            locale=(row["locale"] or "").strip(),
        )
    )


class AthenaEligibleFans:
    def __init__(
        self,
        athena: Any,
        s3: Any,
        *,
        database: str,
        output_location: str,
        workgroup: str = "primary",
        max_wait_seconds: float = 600.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._athena = athena
        self._s3 = s3
        self._database = database
        self._output = output_location.rstrip("/") + "/"
        self._workgroup = workgroup
        self._max_wait = max_wait_seconds
        self._sleep = sleep
        self._monotonic = monotonic

    def eligible_fans(
        self, campaign_id: str, query: EligibilityQuery
    ) -> Iterator[Result[EligibleFan, str]]:
        sql, params = eligibility_query(self._database, campaign_id, query)
        try:
            started = self._athena.start_query_execution(
                QueryString=sql,
                ExecutionParameters=params,
                QueryExecutionContext={"Database": self._database},
                ResultConfiguration={"OutputLocation": self._output},
                WorkGroup=self._workgroup,
            )
        except AWS_ERRORS as error:
            raise unavailable("athena", error) from error
        execution_id = str(started["QueryExecutionId"])
        finished = False
        try:
            self._wait(execution_id)
            finished = True
            yield from self._rows(execution_id)
        finally:
            self._clean_up(execution_id, stop=not finished)

    def _wait(self, execution_id: str) -> None:
        deadline = self._monotonic() + self._max_wait
        delay = 0.2
        while True:
            try:
                execution = self._athena.get_query_execution(QueryExecutionId=execution_id)
            except AWS_ERRORS as error:
                raise unavailable("athena", error) from error
            status = execution["QueryExecution"]["Status"]
            state = status["State"]
            if state == "SUCCEEDED":
                return
            if state in ("FAILED", "CANCELLED"):
                reason = status.get("StateChangeReason", "no reason given")
                raise BrokenSource(f"athena query {execution_id} {state}: {reason}")
            if self._monotonic() + delay > deadline:
                raise BrokenSource(
                    f"athena query {execution_id} still {state} after {self._max_wait:.0f} s"
                )
            self._sleep(delay)
            delay = min(delay * 2, 5.0)

    def _rows(self, execution_id: str) -> Iterator[Result[EligibleFan, str]]:
        token: str | None = None
        header_seen = False
        while True:
            params: dict[str, Any] = {"QueryExecutionId": execution_id, "MaxResults": PAGE_ROWS}
            if token:
                params["NextToken"] = token
            try:
                page = self._athena.get_query_results(**params)
            except AWS_ERRORS as error:
                raise unavailable("athena", error) from error
            for row in page["ResultSet"]["Rows"]:
                values = [cell.get("VarCharValue") for cell in row["Data"]]
                if not header_seen:
                    header_seen = True
                    if [v or "" for v in values] != list(COLUMNS):
                        raise BrokenSource(f"athena result header {values}, expected {COLUMNS}")
                    continue
                yield fan_from_row(values)
            token = page.get("NextToken")
            if not token:
                return

    def _clean_up(self, execution_id: str, *, stop: bool) -> None:
        """Stops a query still running and removes its result objects (they hold contacts).
        Best effort: a failure here must not hide the failure that brought us here."""
        if stop:
            with contextlib.suppress(*AWS_ERRORS):
                self._athena.stop_query_execution(QueryExecutionId=execution_id)
        bucket, _, prefix = self._output.removeprefix("s3://").partition("/")
        for key in (f"{prefix}{execution_id}.csv", f"{prefix}{execution_id}.csv.metadata"):
            with contextlib.suppress(*AWS_ERRORS):
                self._s3.delete_object(Bucket=bucket, Key=key)
