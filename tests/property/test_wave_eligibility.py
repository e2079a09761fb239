"""Who may compete in a wave: verdict, inclusive score bounds, codes only with reassign."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from domain.wave_prep.fans import EligibilityQuery, EligibleFan, Ineligible, ineligibility

scores = st.floats(min_value=0, max_value=1)


@given(
    scores,
    st.booleans(),
    st.booleans(),
    st.none() | scores,
    st.none() | scores,
    st.booleans(),
    st.sampled_from(["", "+15551234567"]),
    st.sampled_from(["", "fan@example.com"]),
)
def test_a_fan_competes_exactly_when_every_rule_lets_them(
    score: float,
    verdict: bool,
    has_codes: bool,
    min_score: float | None,
    max_score: float | None,
    reassign: bool,
    phone: str,
    email: str,
) -> None:
    fan = EligibleFan(
        "g1", score, ("m1",), verdict=verdict, has_codes=has_codes, phone=phone, email=email
    )
    query = EligibilityQuery(min_score=min_score, max_score=max_score, reassign=reassign)
    competes = (
        verdict
        and (min_score is None or score >= min_score)
        and (max_score is None or score <= max_score)
        and (reassign or not has_codes)
        and bool(phone or email)
    )
    assert (ineligibility(fan, query) is None) == competes


def test_bounds_are_inclusive_and_reasons_name_the_rule() -> None:
    query = EligibilityQuery(min_score=0.5, max_score=0.9)
    fan = EligibleFan("g1", 0.5, ("m1",), email="a@example.com")
    assert ineligibility(fan, query) is None
    assert ineligibility(EligibleFan("g1", 0.9, (), email="a@b.co"), query) is None
    assert ineligibility(EligibleFan("g1", 0.49, (), email="a@b.co"), query) is (
        Ineligible.BELOW_MIN_SCORE
    )
    assert ineligibility(EligibleFan("g1", 0.91, (), email="a@b.co"), query) is (
        Ineligible.ABOVE_MAX_SCORE
    )
    assert ineligibility(EligibleFan("g1", float("nan"), ()), query) is Ineligible.BAD_RECORD
    assert ineligibility(EligibleFan("g1", 0.6, ()), query) is Ineligible.NO_CONTACT
