"""Dedupe ids and phone tags."""

from __future__ import annotations

from domain.scoring.phones import check_phone, country_code_for_region
from domain.scoring.records import DedupeIds, dedupe_id


def test_dedupe_id_is_stable_and_depends_on_campaign_fan_and_score() -> None:
    base = dedupe_id("c1", "gu1", 0.5)
    assert base == dedupe_id("c1", "gu1", float("0.50"))
    assert base == DedupeIds("c1")("gu1", 0.5)
    assert len({base, dedupe_id("c2", "gu1", 0.5), dedupe_id("c1", "gu2", 0.5)}) == 3
    assert base != dedupe_id("c1", "gu1", 0.51)


def test_phone_checks_give_e164_region_and_validity() -> None:
    assert check_phone("(212) 555-0123", "US")[:3] == ("+12125550123", 1, "US")
    assert check_phone("020 7946 0958", "GB").e164 == "+442079460958"
    assert not check_phone("555-1234", "US").valid
    assert check_phone("call me", "US").e164 is None
    assert country_code_for_region("gb") == 44
