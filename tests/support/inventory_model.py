"""A model-based (hypothesis stateful) test of a CodeInventory: any interleaving of stocking,
reserving (also two at once, in threads), assigning and the clock passing 24 h.

The invariants, checked after every step against the model:
- a reservation holds only codes stocked for its campaign and type, each once;
- two live reservations under different keys never share a code;
- the same key while its reservation is live returns the same codes (topped up when it was
  short and stock came in);
- a code is counted `updated` by at most one assign call, ever, and only for its own campaign;
  an assign by another campaign is a conflict (received = updated + already + conflicts).

`build(clock)` makes the inventory under test; subclasses bind it (memory fake, DynamoDB).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from domain.codes import CodeType

CAMPAIGNS = ("camp-a", "camp-b")
KEYS = ("k1", "k2", "k3")
START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
_RUNS = itertools.count()


def count_for(key: str) -> int:
    return 2 + KEYS.index(key)  # a key always asks for the same number of codes


class InventoryModel(RuleBasedStateMachine):
    build: Callable[[Callable[[], datetime]], Any]

    def __init__(self) -> None:
        super().__init__()
        self.now = START
        self.inventory = type(self).build(lambda: self.now)
        self.serial = itertools.count()
        self.owner: dict[str, str] = {}
        self.updated: dict[str, int] = {}
        # (campaign, key) -> (codes, expires_at)
        self.live: dict[tuple[str, str], tuple[tuple[str, ...], datetime]] = {}
        # Codes and campaigns unique to this run: a DynamoDB table outlives it.
        self.prefix = f"m{next(_RUNS)}x{id(self)}x"

    @rule(campaign=st.sampled_from(CAMPAIGNS), n=st.integers(1, 6))
    def stock(self, campaign: str, n: int) -> None:
        codes = [f"{self.prefix}{next(self.serial)}" for _ in range(n)]
        campaign = self.prefix + campaign
        self.inventory.stock(campaign, CodeType.EXTERNAL, codes)
        self.owner.update(dict.fromkeys(codes, campaign))

    def _check_reservation(self, campaign: str, key: str, codes: tuple[str, ...]) -> None:
        assert len(set(codes)) == len(codes)
        assert len(codes) <= count_for(key)
        assert all(self.owner.get(c) == campaign for c in codes)
        previous = self.live.get((campaign, key))
        if previous is not None and previous[1] > self.now:
            # the same codes, topped up if the reservation was short and stock has come in since
            # (slots fill in parallel, so a short one's gaps may be anywhere: a subset, in order)
            kept = [c for c in codes if c in set(previous[0])]
            assert tuple(kept) == previous[0], (previous[0], codes)
        self.live[(campaign, key)] = (codes, self.now + timedelta(hours=24))

    @rule(campaign=st.sampled_from(CAMPAIGNS), key=st.sampled_from(KEYS))
    def reserve(self, campaign: str, key: str) -> None:
        campaign = self.prefix + campaign
        held = self.inventory.reserve(campaign, count_for(key), CodeType.EXTERNAL, key).unwrap()
        self._check_reservation(campaign, key, held.codes)

    @rule(
        campaign=st.sampled_from(CAMPAIGNS),
        keys=st.tuples(st.sampled_from(KEYS), st.sampled_from(KEYS)),
    )
    def reserve_concurrently(self, campaign: str, keys: tuple[str, str]) -> None:
        campaign = self.prefix + campaign
        with ThreadPoolExecutor(2) as pool:
            results = list(
                pool.map(
                    lambda k: self.inventory.reserve(
                        campaign, count_for(k), CodeType.EXTERNAL, k
                    ).unwrap(),
                    keys,
                )
            )
        if keys[0] == keys[1]:
            # One key, one set of codes. When stock ran short while both ran, the call that
            # finished first may hold fewer, but never a code the other does not.
            short, full = sorted((results[0].codes, results[1].codes), key=len)
            if len(short) == count_for(keys[0]):
                assert short == full
            assert set(short) <= set(full)
            self._check_reservation(campaign, keys[0], full)
            return
        for key, held in zip(keys, results, strict=True):
            self._check_reservation(campaign, key, held.codes)

    @rule(campaign=st.sampled_from(CAMPAIGNS), data=st.data())
    def assign(self, campaign: str, data: st.DataObject) -> None:
        campaign = self.prefix + campaign
        known = sorted(self.owner)
        if not known:
            return
        codes = data.draw(st.lists(st.sampled_from(known), min_size=1, max_size=6, unique=True))
        count = self.inventory.assign(campaign, codes).unwrap()
        mine = [c for c in codes if self.owner[c] == campaign]
        assert count.received == len(codes)
        assert count.conflicts == len(codes) - len(mine)
        fresh = [c for c in mine if c not in self.updated]
        assert count.updated == len(fresh)
        for code in fresh:
            self.updated[code] = 1

    @rule()
    def a_day_passes(self) -> None:
        self.now += timedelta(hours=24, seconds=1)

    @invariant()
    def live_reservations_never_share_a_code(self) -> None:
        seen: dict[str, tuple[str, str]] = {}
        for where, (codes, expires) in self.live.items():
            if expires <= self.now:
                continue
            for code in codes:
                assert code not in seen, f"{code} held by {seen[code]} and {where}"
                seen[code] = where
