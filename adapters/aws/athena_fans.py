"""EligibleFans through Athena, for a lake too large to read on one machine.

The eligibility query runs in Athena over the lake's `scoring` and `codeAssignment` tables
(one row per fan: the latest scoring record by `receivedAt`, so a fan scored twice counts
once; `coded` = the fan holds a code in this campaign). The rules the query applies (verdict,
score bounds, codes unless reassign) are checked again by the domain.

Orchestration is the lake merge's AthenaQueryEngine (start with the campaign id as an
execution parameter, never pasted into the SQL; poll up to its deadline; page at 1,000 rows;
the header checked against COLUMNS), then the query's result objects are removed (they hold
people's contacts). On any failure or an abandoned read (a timeout, FAILED or CANCELLED, an
error while paging, the consumer stopping early) the query is stopped if it may still run and
its result objects are removed; the failure surfaces as BrokenSource (the query itself is
wrong) or DependencyUnavailable (Athena or S3 unreachable).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence

from returns.result import Failure, Result, Success

from adapters.aws.athena_engine import AthenaQueryEngine, UnexpectedResult
from domain.streaming import DependencyUnavailable
from domain.wave_prep.fans import BrokenSource, EligibilityQuery, EligibleFan

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


def fan_from_row(values: Sequence[str | None]) -> Result[EligibleFan, str]:
    if len(values) != len(COLUMNS):
        return Failure(f"result row with {len(values)} columns, expected {len(COLUMNS)}")
    # Unpacked in COLUMNS' order, no dict and no generator per row: 2 M rows a wave
    # (benchmarks/README.md). None (NULL) reads as "".
    gid, member, first, last, email, phone, locale, market, score_text, verdict, coded = values
    gid = gid.strip() if gid else ""
    if not gid:
        return Failure("result row without globalUserId")
    try:
        score = float(score_text or "")
    except ValueError:
        return Failure(f"result row {gid}: score is not a number")
    market = market.strip() if market else ""
    return Success(
        EligibleFan(
            gid,
            score,
            (market,) if market else (),
            (verdict or "true").lower() != "false",
            (coded or "").lower() == "true",
            member.strip() if member else "",
            first.strip() if first else "",
            last.strip() if last else "",
            email.strip() if email else "",
            phone.strip() if phone else "",
            locale.strip() if locale else "",
        )
    )


class AthenaEligibleFans:
    """EligibleFans over an AthenaQueryEngine (the lake merge's engine: one orchestration)."""

    def __init__(self, engine: AthenaQueryEngine) -> None:
        self._engine = engine

    def eligible_fans(
        self, campaign_id: str, query: EligibilityQuery
    ) -> Iterator[Result[EligibleFan, str]]:
        sql, params = eligibility_query(self._engine.database, campaign_id, query)
        execution_id = self._engine.start(sql, params)
        waited = False
        try:
            outcome = self._engine.wait(execution_id)
            waited = True  # the query has ended: wait() stops one it gave up on itself
            match outcome:
                case Failure(reason):
                    raise BrokenSource(f"athena {reason}")
            try:
                for values in self._engine.rows(execution_id, header=COLUMNS):
                    yield fan_from_row(values)
            except UnexpectedResult as wrong:
                raise BrokenSource(f"athena {wrong}") from None
        finally:
            # The result objects hold people's contacts: removed whatever happened, best
            # effort, so a clean-up failure never hides the failure that brought us here.
            if not waited:
                self._engine.stop(execution_id)
            with contextlib.suppress(DependencyUnavailable):
                self._engine.discard(execution_id)
