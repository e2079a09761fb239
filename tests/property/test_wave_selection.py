"""The streaming selection against a reference that holds and sorts every claim.

The reference is the rule as the docs state it: sort every (fan, market) claim by (priority,
rank) and walk them greedily; a claim wins if its fan has no place and its market has room.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence

from hypothesis import given
from hypothesis import strategies as st

from domain.wave_prep.fans import EligibleFan
from domain.wave_prep.selection import Offer, Selection, SelectionRules, draw, select

MARKETS = ("m1", "m2", "m3", "m4", "m5", "m6")


def reference(
    fans: Sequence[EligibleFan], capacities: Mapping[str, int], rules: SelectionRules
) -> tuple[dict[str, list[str]], dict[str, int], dict[str, int]]:
    """(market -> fan ids best first, eligible per market, waitlisted per market)."""
    claims = []
    for fan in fans:
        for market_id, rank in rules.claims(fan, capacities):
            order = rules.fan_order(fan)
            priority = (rank, *order) if rules.order_by_preference else order
            claims.append((priority, rank, fan.global_user_id, market_id))
    claims.sort()
    placed: dict[str, str] = {}
    chosen: dict[str, list[str]] = {m: [] for m in capacities}
    for _priority, _rank, fan_id, market_id in claims:
        if fan_id not in placed and len(chosen[market_id]) < capacities[market_id]:
            placed[fan_id] = market_id
            chosen[market_id].append(fan_id)
    eligible = Counter(market_id for *_, market_id in claims)
    waitlisted = Counter(market_id for *_, fan_id, market_id in claims if fan_id not in placed)
    return (
        chosen,
        {m: eligible[m] for m in capacities},
        {m: waitlisted[m] for m in capacities},
    )


@st.composite
def fans_strategy(draw_: st.DrawFn) -> list[EligibleFan]:
    ids = draw_(st.lists(st.text("abcdef", min_size=1, max_size=4), unique=True, max_size=40))
    # Few distinct scores, so ties (broken by fan id) happen often.
    scores = st.sampled_from([0.1, 0.5, 0.5, 0.8, 0.95, 1.0])
    markets = st.lists(st.sampled_from((*MARKETS, "elsewhere")), max_size=7)
    return [EligibleFan(fan_id, draw_(scores), tuple(draw_(markets))) for fan_id in ids]


capacities_strategy = st.dictionaries(
    st.sampled_from(MARKETS), st.integers(min_value=0, max_value=6), min_size=1
)
rules_strategy = st.builds(
    SelectionRules,
    order_by_preference=st.booleans(),
    single_market=st.booleans(),
    random_selection=st.booleans(),
    salt=st.just(b"campaign-salt"),
    date_key=st.sampled_from(["2026-12-01", "2026-12-02"]),
)


@given(fans_strategy(), capacities_strategy, rules_strategy, st.randoms(use_true_random=False))
def test_streaming_selection_is_the_sorted_greedy_pass_in_any_order(
    fans: list[EligibleFan],
    capacities: dict[str, int],
    rules: SelectionRules,
    rnd: random.Random,
) -> None:
    shuffled = list(fans)
    rnd.shuffle(shuffled)
    outcome = select(shuffled, capacities, rules)
    chosen, eligible, waitlisted = reference(fans, capacities, rules)
    for market in outcome.markets:
        assert [p.fan.global_user_id for p in market.selected] == chosen[market.market_id]
        assert market.eligible == eligible[market.market_id]
        assert market.waitlisted == waitlisted[market.market_id]
    competing = {f.global_user_id for f in fans if rules.claims(f, capacities)}
    assert outcome.eligible == len(competing)
    assert outcome.waitlisted == len(competing) - sum(len(v) for v in chosen.values())


@given(
    st.lists(
        st.builds(
            EligibleFan,
            global_user_id=st.sampled_from(["a", "b", "c", "d", "e"]),
            score=st.floats(0, 1),
            market_ids=st.lists(st.sampled_from(MARKETS), max_size=6).map(tuple),
        ),
        max_size=60,
    ),
    capacities_strategy,
    rules_strategy,
)
def test_capacity_and_one_place_per_fan_hold_even_when_the_source_repeats_fans(
    fans: list[EligibleFan], capacities: dict[str, int], rules: SelectionRules
) -> None:
    selection = Selection(capacities, rules)
    most_held = 0
    for fan in fans:
        selection.offer(fan)
        most_held = max(most_held, selection.held)
    outcome = selection.outcome()
    placed = [p.fan.global_user_id for m in outcome.markets for p in m.selected]
    assert len(placed) == len(set(placed))
    for market in outcome.markets:
        assert len(market.selected) <= market.capacity
        for placement in market.selected:
            assert (placement.market_id, placement.rank) in rules.claims(placement.fan, capacities)
    assert most_held <= sum(capacities.values())


@given(fans_strategy(), capacities_strategy)
def test_single_market_places_fans_only_in_their_primary_market(
    fans: list[EligibleFan], capacities: dict[str, int]
) -> None:
    outcome = select(fans, capacities, SelectionRules(single_market=True))
    for market in outcome.markets:
        assert all(p.fan.market_ids[0] == market.market_id for p in market.selected)


@given(fans_strategy(), capacities_strategy)
def test_order_by_preference_fills_primaries_before_later_choices(
    fans: list[EligibleFan], capacities: dict[str, int]
) -> None:
    outcome = select(fans, capacities, SelectionRules(order_by_preference=True))
    placed = {p.fan.global_user_id for m in outcome.markets for p in m.selected}
    for market in outcome.markets:
        if any(p.rank > 0 for p in market.selected):
            # A later choice got in only because no unplaced primary claimant was left.
            primaries = [
                f
                for f in fans
                if f.market_ids[:1] == (market.market_id,) and f.global_user_id not in placed
            ]
            assert primaries == []


@given(st.lists(st.text(min_size=1, max_size=8), unique=True, min_size=20, max_size=40))
def test_the_draw_is_reproducible_and_depends_on_the_salt_and_the_date(ids: list[str]) -> None:
    def order(salt: bytes, date_key: str) -> list[str]:
        return sorted(ids, key=lambda i: draw(salt, date_key, i))

    assert order(b"salt", "2026-12-01") == order(b"salt", "2026-12-01")
    # 20+ distinct ids: the chance two keys give the same order is below 1 / 20!.
    assert order(b"salt", "2026-12-01") != order(b"other", "2026-12-01")
    assert order(b"salt", "2026-12-01") != order(b"salt", "2026-12-02")


def test_a_fan_without_a_wave_market_and_a_repeated_holder_are_told_apart() -> None:
    selection = Selection({"m1": 1}, SelectionRules())
    assert selection.offer(EligibleFan("a", 0.5, ("zz",))) is Offer.NO_WAVE_MARKET
    assert selection.offer(EligibleFan("a", 0.5, ("m1",))) is Offer.COMPETES
    assert selection.offer(EligibleFan("a", 0.9, ("m1",))) is Offer.DUPLICATE
    outcome = selection.outcome()
    assert (outcome.eligible, outcome.selected, outcome.duplicates) == (1, 1, 1)


@given(
    fans_strategy(),
    capacities_strategy,
    rules_strategy,
    st.data(),
    st.randoms(use_true_random=False),
)
def test_repeated_records_of_the_same_fan_never_change_the_counts(
    fans: list[EligibleFan],
    capacities: dict[str, int],
    rules: SelectionRules,
    data: st.DataObject,
    rnd: random.Random,
) -> None:
    """A lake read before a merge holds some fans twice or more; the counts are of fans, so
    they are the same as after the merge, when each fan is there once."""
    once = select(fans, capacities, rules)
    repeats = data.draw(st.lists(st.sampled_from(fans), max_size=30)) if fans else []
    repeated = fans + repeats
    rnd.shuffle(repeated)
    twice = select(repeated, capacities, rules)
    assert (twice.eligible, twice.selected, twice.waitlisted) == (
        once.eligible,
        once.selected,
        once.waitlisted,
    )
    for a, b in zip(twice.markets, once.markets, strict=True):
        assert (a.eligible, a.waitlisted) == (b.eligible, b.waitlisted)
        assert [p.fan.global_user_id for p in a.selected] == [
            p.fan.global_user_id for p in b.selected
        ]
    competing_repeats = sum(1 for f in repeats if rules.claims(f, capacities))
    assert twice.duplicates == competing_repeats


def test_a_fan_turned_away_twice_is_one_eligible_fan_on_the_waitlist() -> None:
    selection = Selection({"m1": 1}, SelectionRules())
    selection.offer(EligibleFan("best", 0.9, ("m1",)))
    assert selection.offer(EligibleFan("late", 0.1, ("m1",))) is Offer.COMPETES
    assert selection.offer(EligibleFan("late", 0.1, ("m1",))) is Offer.DUPLICATE
    outcome = selection.outcome()
    assert (outcome.eligible, outcome.waitlisted, outcome.duplicates) == (2, 1, 1)
    assert (outcome.markets[0].eligible, outcome.markets[0].waitlisted) == (2, 1)
