"""An eligible fan as the entry sources deliver it, and the rules that decide who may compete.

The sources (entry service, lake, Athena) filter on their side where they can; the domain checks
every rule again, so a source that filters loosely or not at all never lets a fan through that
the rules exclude. Every fan read is accounted for: eligible, or ineligible with a reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

# The primary market and up to four later preferences (the entry service's ranks 0..4): a
# market listed after the fifth is never considered.
MAX_PREFERENCES = 5


@dataclass(frozen=True, slots=True)
class EligibleFan:
    """One fan's scoring entry for a campaign. `market_ids` in the fan's order of preference
    (index = rank, 0 = primary). `has_codes`: the fan already holds a code in this campaign."""

    global_user_id: str
    score: float
    market_ids: tuple[str, ...]
    verdict: bool = True
    has_codes: bool = False
    user_id: str = ""
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    phone: str = ""  # E.164 when the source validated it; normalised again before writing
    locale: str = ""


@dataclass(frozen=True, slots=True)
class EligibilityQuery:
    """The wave's filters, as the entry service's `GET /{campaignId}/entries/scoring` takes them.
    Bounds are inclusive; None = unbounded."""

    min_score: float | None = None
    max_score: float | None = None
    reassign: bool = False
    single_market: bool = False
    order_by_preference: bool = False
    random_selection: bool = False
    market_ids: tuple[str, ...] = ()


class Ineligible(StrEnum):
    VERDICT_FALSE = "verdict_false"
    BELOW_MIN_SCORE = "below_min_score"
    ABOVE_MAX_SCORE = "above_max_score"
    ALREADY_CODED = "already_coded"
    NO_WAVE_MARKET = "no_wave_market"
    NO_CONTACT = "no_phone_or_email"
    BAD_RECORD = "bad_record"


def ineligibility(fan: EligibleFan, query: EligibilityQuery) -> Ineligible | None:
    """Why `fan` may not compete in this wave, or None. Markets are checked by the selection."""
    if not fan.global_user_id or math.isnan(fan.score):
        return Ineligible.BAD_RECORD
    if not fan.verdict:
        return Ineligible.VERDICT_FALSE
    if query.min_score is not None and fan.score < query.min_score:
        return Ineligible.BELOW_MIN_SCORE
    if query.max_score is not None and fan.score > query.max_score:
        return Ineligible.ABOVE_MAX_SCORE
    if fan.has_codes and not query.reassign:
        return Ineligible.ALREADY_CODED
    if not fan.phone and not fan.email:
        return Ineligible.NO_CONTACT
    return None


class BrokenSource(Exception):
    """The fan source answered with something no retry can fix (pages that never end, a body
    that is not the contract's): the wave fails with this message, nothing is published."""
