"""Band scores: inside their tier, deterministic, keyed; tiers monotonic in the raw score."""

from __future__ import annotations

import math
from itertools import pairwise

from hypothesis import assume, given
from hypothesis import strategies as st

from domain.models import DEFAULT_BAND_TIERS, BandTier
from domain.scoring.bands import NO_BAND, BandScale

SCORES = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
IDS = st.text(min_size=1, max_size=40)
SALTS = st.binary(min_size=1, max_size=100)


@st.composite
def tier_sets(draw: st.DrawFn) -> tuple[BandTier, ...]:
    """Contiguous tiers ending at 1.0, like a campaign could configure them."""
    cuts = draw(
        st.lists(
            st.floats(min_value=0.0, max_value=0.999, allow_nan=False), min_size=1, max_size=5,
            unique=True,
        )
    )  # fmt: skip
    edges = [*sorted(cuts), 1.0]
    return tuple(BandTier(f"t{i}", lo, hi) for i, (lo, hi) in enumerate(pairwise(edges)))


def scale(tiers: tuple[BandTier, ...], salt: bytes) -> BandScale:
    return BandScale.build("c", tiers, salt).unwrap()


@given(tier_sets(), SALTS, SCORES, IDS)
def test_band_score_lies_inside_the_tier_of_the_raw_score(
    tiers: tuple[BandTier, ...], salt: bytes, score: float, gid: str
) -> None:
    band = scale(tiers, salt).band_for(score, gid)
    if band.name == NO_BAND:
        assert score < min(t.low for t in tiers)
        assert band.band_score == score
        return
    (tier,) = [t for t in tiers if t.name == band.name]
    assert tier.low <= score <= tier.high
    assert tier.low <= band.band_score < tier.high


@given(SALTS, SCORES, IDS)
def test_band_score_is_deterministic_for_the_same_salt_and_fan(
    salt: bytes, score: float, gid: str
) -> None:
    assert scale(DEFAULT_BAND_TIERS, salt).band_for(score, gid) == scale(
        DEFAULT_BAND_TIERS, bytes(salt)
    ).band_for(score, gid)


@given(tier_sets(), SALTS, SCORES, SCORES)
def test_tier_is_monotonic_in_the_raw_score(
    tiers: tuple[BandTier, ...], salt: bytes, a: float, b: float
) -> None:
    low, high = sorted((a, b))
    bands = scale(tiers, salt)
    assert bands.tier_index(high) <= bands.tier_index(low)  # index 0 is the top tier


@given(SCORES, IDS)
def test_a_banded_fan_always_sorts_above_an_unbanded_one(score: float, gid: str) -> None:
    bands = scale(DEFAULT_BAND_TIERS, b"salt")
    assume(score >= 0.22)
    assert bands.band_for(score, gid).band_score >= 0.22 > bands.band_for(0.21, gid).band_score


@given(st.lists(IDS, min_size=50, max_size=50, unique=True))
def test_a_different_salt_draws_a_different_order(gids: list[str]) -> None:
    one, two = scale(DEFAULT_BAND_TIERS, b"salt-a"), scale(DEFAULT_BAND_TIERS, b"salt-b")
    assert [one.unit_draw(g) for g in gids] != [two.unit_draw(g) for g in gids]


def test_the_default_tiers_place_the_edges_as_documented() -> None:
    bands = scale(DEFAULT_BAND_TIERS, b"s")
    names = [bands.band_for(s, "g").name for s in (1.0, 0.95, 0.9499, 0.8, 0.7999, 0.22, 0.2199)]
    assert names == ["high", "high", "mid", "mid", "low", "low", NO_BAND]


def test_misconfigured_tiers_are_refused_with_a_reason() -> None:
    gap = (BandTier("high", 0.9, 1.0), BandTier("low", 0.2, 0.8))
    assert "gap or overlap" in BandScale.build("c", gap, b"s").failure()
    short = (BandTier("mid", 0.5, 0.9),)
    assert "reach 1.0" in BandScale.build("c", short, b"s").failure()
    assert BandScale.build("c", DEFAULT_BAND_TIERS, b"").failure() == "campaign c has no band salt"


@given(tier_sets(), SALTS, SCORES, IDS)
def test_band_for_agrees_with_tier_index_and_unit_draw(
    tiers: tuple[BandTier, ...], salt: bytes, score: float, gid: str
) -> None:
    bands = scale(tiers, salt)
    index = bands.tier_index(score)
    band = bands.band_for(score, gid)
    if index == len(bands.tiers):
        assert band.name == NO_BAND
    else:
        tier = bands.tiers[index]
        assert band.name == tier.name
        expected = tier.low + bands.unit_draw(gid) * (tier.high - tier.low)
        assert band.band_score == min(expected, math.nextafter(tier.high, tier.low))
