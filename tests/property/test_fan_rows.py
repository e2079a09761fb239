"""The lake's and Athena's rows become the same fans as the field-by-field readers they replaced
(2026-12-07, for speed): any values, missing, empty, padded or of the wrong type."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from returns.result import Failure, Result, Success

from adapters.aws.athena_fans import COLUMNS, fan_from_row
from adapters.aws.lake_fans import fan_from_scoring
from domain.wave_prep.fans import EligibleFan

texts = st.one_of(st.none(), st.sampled_from(["", " ", "true", "FALSE", "0.5", " m1 "]), st.text())


def reference_row(values: list[str | None]) -> Result[EligibleFan, str]:
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


def _text(record: dict[str, Any], name: str) -> str:
    value = record.get(name)
    return value.strip() if isinstance(value, str) else ""


def reference_scoring(record: dict[str, Any], coded: set[str]) -> Result[EligibleFan, str]:
    gid = _text(record, "globalUserId")
    if not gid:
        return Failure("scoring record without globalUserId")
    score = record.get("band_score")
    if score is None:
        score = record.get("score")
    if not isinstance(score, int | float) or isinstance(score, bool):
        return Failure(f"scoring record {gid}: neither band_score nor score is a number")
    market = _text(record, "marketId")
    return Success(
        EligibleFan(
            global_user_id=gid,
            score=float(score),
            market_ids=(market,) if market else (),
            verdict=record.get("verdict") is not False,
            has_codes=gid in coded,
            user_id=_text(record, "memberId"),
            first_name=_text(record, "firstName"),
            last_name=_text(record, "lastName"),
            email=_text(record, "email"),
            phone=_text(record, "phone"),
            locale=_text(record, "locale"),
        )
    )


def same(a: Result[EligibleFan, str], b: Result[EligibleFan, str]) -> bool:
    # NaN scores are equal to themselves here: both readers pass them on for the domain to refuse.
    return repr(a) == repr(b)


@given(st.lists(texts, min_size=9, max_size=13))
def test_an_athena_row_becomes_the_fan_the_dict_reader_made(values: list[str | None]) -> None:
    assert same(fan_from_row(values), reference_row(values))


fields = ["globalUserId", "memberId", "firstName", "lastName", "email", "phone", "locale",
          "marketId", "score", "band_score", "verdict"]  # fmt: skip
values = st.one_of(texts, st.booleans(), st.integers(), st.floats())


@given(st.dictionaries(st.sampled_from(fields), values), st.sets(st.text(max_size=3)))
def test_a_scoring_record_becomes_the_fan_the_field_reader_made(
    record: dict[str, Any], coded: set[str]
) -> None:
    assert same(fan_from_scoring(record, coded), reference_scoring(record, coded))
