"""The fair per-market selection: who of the eligible fans gets a place in which market.

Semantics (the one rule every mode follows)
-------------------------------------------
Each fan *claims* the wave's markets they listed, in their order of preference: the primary
(rank 0) and up to four later ones (fans.MAX_PREFERENCES); a market id listed twice counts
once, at its first rank; markets that are not in this wave are skipped (the ranks of the others
do not move). With `single_market` a fan claims their primary market only. Every (fan, market)
claim has a priority, smaller = better:

- the fan's order: `(-score, fan id)` (band score, highest first), or with `random_selection`
  `(draw, fan id)`, draw = HMAC-SHA256(campaign salt, date key + fan id): the same for a re-run
  of the same campaign and date key, unpredictable without the salt;
- with `order_by_preference` the claim's rank comes first: `(rank, fan order)`, so every market
  is filled with the fans who named it primary before anyone who named it later.

The selection is what a greedy pass over every claim, sorted (by priority, then rank) would
give: a claim wins if its fan has no place yet and its market has room. So a market never takes
more than its capacity, a fan gets at most one place, and without `order_by_preference` a fan
gets the first of their markets that still has room when it is their turn (best fans first).
With `order_by_preference` that pass is the rounds the original ran: primaries first, then
second choices with what capacity is left, and so on.

How it runs in bounded memory
-----------------------------
Sorting every claim would hold every eligible fan. Instead fans are offered one at a time, in
any order, to a bounded heap per market (worst holder on top) with displacement: a fan tries
their markets in order; a market with room keeps them; a full market keeps them only if they
beat its worst holder, who is then displaced and tries *their next* market (a fan a market
turned away can never get in later: its worst holder only gets better). This is deferred
acceptance with fans proposing; with priorities that are the same order for every market (or
that order behind the rank), its outcome is the greedy pass above, whatever order the fans
come in (tests/property/test_wave_selection.py proves both against a reference that sorts
everything). Memory: one held entry per place (at most the total capacity), a few counters per
market; a fan who loses everywhere is forgotten at once.

Counts are of distinct fans, never records: per market, `eligible` fans claimed it (on any of
their records), `selected` got a place in it, `waitlisted` claimed it but got no place anywhere
(the market's waitlist); the rest of its `eligible` were placed in another market. Overall:
`eligible` distinct fans competing, `waitlisted` = eligible - selected. Keeping them distinct
costs one small entry per competing fan (fan id -> claimed markets as bits).

A source should deliver each fan once. If it does not (the lake before its merge), the selection
still never places a fan twice and counts them once: every further record of a competing fan is
a `duplicate`; one for a fan who holds a place is dropped, one for a fan turned away competes
again on its own record.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from domain.wave_prep.fans import MAX_PREFERENCES, EligibleFan

Priority = tuple[float | int | str, ...]


def draw(salt: bytes, date_key: str, fan_id: str) -> int:
    """The fan's keyed random draw for this wave: 64 bits of HMAC-SHA256 (smaller = earlier)."""
    digest = hmac.new(salt, f"{date_key}\x1f{fan_id}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass(frozen=True, slots=True)
class SelectionRules:
    order_by_preference: bool = False
    single_market: bool = False
    random_selection: bool = False
    salt: bytes = b""
    date_key: str = ""

    def __post_init__(self) -> None:
        if self.random_selection and not self.salt:
            # Without a salt the draw would be computable by anyone who knows the fan ids.
            raise ValueError("random selection needs the campaign's salt")

    def fan_order(self, fan: EligibleFan) -> Priority:
        if self.random_selection:
            return (draw(self.salt, self.date_key, fan.global_user_id), fan.global_user_id)
        return (-fan.score, fan.global_user_id)

    def claims(self, fan: EligibleFan, markets: Mapping[str, int]) -> list[tuple[str, int]]:
        """(market id, rank) in the order the fan tries them: listed, in the wave, once each."""
        listed = fan.market_ids[:1] if self.single_market else fan.market_ids[:MAX_PREFERENCES]
        seen: set[str] = set()
        claims = []
        for rank, market_id in enumerate(listed):
            if market_id in markets and market_id not in seen:
                claims.append((market_id, rank))
            seen.add(market_id)
        return claims


class Offer(StrEnum):
    COMPETES = "competes"
    NO_WAVE_MARKET = "no_wave_market"
    DUPLICATE = "duplicate"


class _Held:
    """A fan holding a place; ordered worst first, so a market's heap shows its worst holder."""

    __slots__ = ("claims", "fan", "order", "pos", "priority")

    def __init__(
        self,
        fan: EligibleFan,
        order: Priority,
        claims: list[tuple[str, int]],
        pos: int,
        priority: Priority,
    ) -> None:
        self.fan = fan
        self.order = order
        self.claims = claims
        self.pos = pos
        self.priority = priority

    def __lt__(self, other: _Held) -> bool:
        return self.priority > other.priority


@dataclass(frozen=True, slots=True)
class Placement:
    fan: EligibleFan
    market_id: str
    rank: int
    priority: Priority


@dataclass(frozen=True, slots=True)
class MarketSelection:
    market_id: str
    capacity: int
    eligible: int
    selected: tuple[Placement, ...]  # best first: the order codes are handed out in
    waitlisted: int


@dataclass(frozen=True, slots=True)
class SelectionOutcome:
    markets: tuple[MarketSelection, ...]  # in the order the capacities were given
    eligible: int
    duplicates: int

    @property
    def selected(self) -> int:
        return sum(len(m.selected) for m in self.markets)

    @property
    def waitlisted(self) -> int:
        return self.eligible - self.selected


class Selection:
    """Streaming selection; see the module docstring. Memory: O(total capacity + markets)."""

    def __init__(self, capacities: Mapping[str, int], rules: SelectionRules) -> None:
        for market_id, capacity in capacities.items():
            if capacity < 0:
                raise ValueError(f"market {market_id!r}: capacity {capacity} is negative")
        self._capacities = dict(capacities)
        self._rules = rules
        self._heaps: dict[str, list[_Held]] = {m: [] for m in capacities}
        self._eligible: dict[str, int] = dict.fromkeys(capacities, 0)
        self._holding: dict[str, _Held] = {}
        # Every competing fan's claimed markets as a bit set (one bit per market): the counts
        # are of fans, not records, so a lake read before its merge (a fan scored twice)
        # counts what it counts after. O(competing fans), the one structure that is.
        self._bit = {m: 1 << i for i, m in enumerate(capacities)}
        self._claimed: dict[str, int] = {}
        self._competing = 0
        self._duplicates = 0

    @property
    def held(self) -> int:
        """Places taken so far (never more than the total capacity)."""
        return len(self._holding)

    def offer_all(self, fans: Iterable[EligibleFan]) -> None:
        for fan in fans:
            self.offer(fan)

    def offer(self, fan: EligibleFan) -> Offer:
        claims = self._rules.claims(fan, self._capacities)
        if not claims:
            return Offer.NO_WAVE_MARKET
        fan_id, bit = fan.global_user_id, self._bit
        known = self._claimed.get(fan_id)
        mask = 0
        for market_id, _rank in claims:
            if not (known or 0) & bit[market_id]:
                self._eligible[market_id] += 1
            mask |= bit[market_id]
        self._claimed[fan_id] = mask | (known or 0)
        if known is None:
            self._competing += 1
        else:
            self._duplicates += 1
            if fan_id in self._holding:
                return Offer.DUPLICATE
        # A fan turned away before competes again on this record (counted once all the same).
        self._propose(fan, self._rules.fan_order(fan), claims, 0)
        return Offer.COMPETES if known is None else Offer.DUPLICATE

    def _priority(self, order: Priority, rank: int) -> Priority:
        return (rank, *order) if self._rules.order_by_preference else order

    def _propose(
        self, fan: EligibleFan, order: Priority, claims: list[tuple[str, int]], pos: int
    ) -> None:
        """Places `fan` from claim `pos` on; a displaced holder carries on from their next claim,
        until someone finds room or runs out of claims (then they are waitlisted)."""
        capacities, holding = self._capacities, self._holding
        while pos < len(claims):
            market_id, rank = claims[pos]
            heap = self._heaps[market_id]
            priority = self._priority(order, rank)
            if len(heap) < capacities[market_id]:
                entry = _Held(fan, order, claims, pos, priority)
                heapq.heappush(heap, entry)
                holding[fan.global_user_id] = entry
                return
            # Most fans of a big wave lose here: compare before building anything.
            if heap and priority < heap[0].priority:
                entry = _Held(fan, order, claims, pos, priority)
                out = heapq.heapreplace(heap, entry)
                holding[fan.global_user_id] = entry
                del holding[out.fan.global_user_id]
                fan, order, claims, pos = out.fan, out.order, out.claims, out.pos
            pos += 1

    def outcome(self) -> SelectionOutcome:
        elsewhere = dict.fromkeys(self._capacities, 0)
        market_ids = list(self._capacities)
        for fan_id, entry in self._holding.items():
            # Every market the fan claimed on any of their records, but the one they hold.
            others = self._claimed[fan_id] & ~self._bit[entry.claims[entry.pos][0]]
            while others:
                lowest = others & -others
                elsewhere[market_ids[lowest.bit_length() - 1]] += 1
                others ^= lowest
        markets = []
        for market_id, capacity in self._capacities.items():
            held = sorted(self._heaps[market_id], key=lambda e: e.priority)
            selected = tuple(
                Placement(e.fan, market_id, e.claims[e.pos][1], e.priority) for e in held
            )
            eligible = self._eligible[market_id]
            markets.append(
                MarketSelection(
                    market_id=market_id,
                    capacity=capacity,
                    eligible=eligible,
                    selected=selected,
                    waitlisted=eligible - len(selected) - elsewhere[market_id],
                )
            )
        return SelectionOutcome(tuple(markets), self._competing, self._duplicates)


def select(
    fans: Iterable[EligibleFan], capacities: Mapping[str, int], rules: SelectionRules
) -> SelectionOutcome:
    selection = Selection(capacities, rules)
    selection.offer_all(fans)
    return selection.outcome()
