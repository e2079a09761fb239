"""Band scores: a fan's quality tier from the raw score, a keyed-random position inside it.

- The tier is the one whose [low, high) holds the raw score; the top tier also holds its `high`
  (so 1.0 is "high"). Tiers must be contiguous (no gaps, no overlaps) and the top one must end at
  1.0: `BandScale.build` refuses anything else, so "above the lowest tier" always means "in a
  tier", and tier assignment is monotonic in the raw score.
- `band_score` = low + u * (high - low), where u in [0, 1) comes from BLAKE2b keyed with the
  campaign's salt over the globalUserId. The same salt and fan give the same band score on every
  run; without the salt nobody can predict the order inside a tier. It never reaches the tier's
  `high` (float rounding is clamped), so a band score always lies inside its tier.
- Scores below every tier (under 0.22 by default) get band "none" and keep band_score = score:
  they sort below every banded fan, in their original order, and still flow.
- An empty salt is refused (`BandScale.build` fails): it would make the order predictable.
  A salt longer than BLAKE2b's 64-byte key is first hashed down to 64 bytes.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from hashlib import blake2b
from itertools import pairwise, repeat
from operator import ge, methodcaller
from typing import NamedTuple

from returns.result import Failure, Result, Success

from domain.models import BandTier

NO_BAND = "none"
_MAX_KEY = 64
_U_SCALE = 2.0**-53  # 53 random bits -> a float in [0, 1) with no rounding up to 1.0
_COPY = methodcaller("copy")
_DIGEST = methodcaller("digest")
_BIG_ENDIAN = partial(int.from_bytes, byteorder="big")


class Band(NamedTuple):  # built per row: a NamedTuple costs a fraction of a frozen dataclass
    name: str
    band_score: float


@dataclass(frozen=True)
class BandScale:
    """Tiers sorted from the highest down, and the campaign salt that keys the draw."""

    tiers: tuple[BandTier, ...]
    salt: bytes
    _keyed: blake2b = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Keying BLAKE2b costs a compression; copying a keyed state is half the price per row.
        object.__setattr__(self, "_keyed", blake2b(key=self.salt, digest_size=8))

    def __getstate__(self) -> tuple[tuple[BandTier, ...], bytes]:
        return (self.tiers, self.salt)  # hash objects do not pickle; rebuilt on arrival

    def __setstate__(self, state: tuple[tuple[BandTier, ...], bytes]) -> None:
        object.__setattr__(self, "tiers", state[0])
        object.__setattr__(self, "salt", state[1])
        self.__post_init__()

    @staticmethod
    def build(campaign_id: str, tiers: tuple[BandTier, ...], salt: bytes) -> Result[BandScale, str]:
        if not salt:
            return Failure(f"campaign {campaign_id} has no band salt")
        if not tiers:
            return Failure(f"campaign {campaign_id} has no band tiers")
        ordered = tuple(sorted(tiers, key=lambda t: t.low, reverse=True))
        if not ordered[-1].low >= 0.0 or ordered[0].high != 1.0:
            return Failure(f"campaign {campaign_id}: band tiers must lie in [0, 1] and reach 1.0")
        for upper, lower in pairwise(ordered):
            if lower.high != upper.low:
                return Failure(
                    f"campaign {campaign_id}: band tiers {lower.name!r} and {upper.name!r} "
                    f"leave a gap or overlap ({lower.high} vs {upper.low})"
                )
        for tier in ordered:
            if not tier.low < tier.high:
                return Failure(f"campaign {campaign_id}: band tier {tier.name!r} is empty")
        key = salt if len(salt) <= _MAX_KEY else blake2b(salt, digest_size=_MAX_KEY).digest()
        return Success(BandScale(ordered, key))

    @property
    def names(self) -> tuple[str, ...]:
        """Every band name a row can get: the tiers' and NO_BAND."""
        return (*(tier.name for tier in self.tiers), NO_BAND)

    def tier_index(self, score: float) -> int:
        """0 for the top tier, 1 for the next, ...; len(tiers) when below every tier."""
        for index, tier in enumerate(self.tiers):
            if score >= tier.low:
                return index
        return len(self.tiers)

    def unit_draw(self, global_user_id: str) -> float:
        hasher = self._keyed.copy()
        hasher.update(global_user_id.encode())
        digest = hasher.digest()
        return (int.from_bytes(digest, "big") >> 11) * _U_SCALE

    def band_for(self, score: float, global_user_id: str) -> Band:
        """`score` must already be checked to lie in [0, 1]. (tier_index and unit_draw, inlined:
        this runs for every row.)"""
        for tier in self.tiers:
            if score >= tier.low:
                hasher = self._keyed.copy()
                hasher.update(global_user_id.encode())
                unit = (int.from_bytes(hasher.digest(), "big") >> 11) * _U_SCALE
                value = tier.low + unit * (tier.high - tier.low)
                if value >= tier.high:  # rounding of low + u * width can land on high
                    value = math.nextafter(tier.high, tier.low)
                return Band(tier.name, value)
        return Band(NO_BAND, score)

    def bands_for(
        self, scores: Sequence[float], global_user_ids: Sequence[str]
    ) -> tuple[list[str], list[float]]:
        """`band_for` over whole columns (names, band scores): the same floats, bit for bit, with
        the per-row work done by C-level maps (bisect for the tier, one keyed-hash copy each)."""
        ascending = self.tiers[::-1]
        lows = [tier.low for tier in ascending]
        # Index k = bisect_right(lows, score): 0 is below every tier, k >= 1 is ascending[k - 1].
        names = [NO_BAND, *(tier.name for tier in ascending)]
        low = [0.0, *lows]
        high = [lows[0], *(tier.high for tier in ascending)]  # k = 0: score < lows[0] always
        width = [0.0, *(tier.high - tier.low for tier in ascending)]
        tier_of = list(map(bisect_right, repeat(lows), scores))
        states = list(map(_COPY, repeat(self._keyed, len(scores))))
        deque(map(blake2b.update, states, map(str.encode, global_user_ids)), maxlen=0)
        draws = map(_BIG_ENDIAN, map(_DIGEST, states))
        values = [
            (low[k] + (draw >> 11) * _U_SCALE * width[k]) if k else score
            for k, draw, score in zip(tier_of, draws, scores, strict=True)
        ]
        if any(map(ge, values, map(high.__getitem__, tier_of))):
            for row, k in enumerate(tier_of):  # rounding of low + u * width landed on high
                if k and values[row] >= high[k]:
                    values[row] = math.nextafter(high[k], low[k])
        return list(map(names.__getitem__, tier_of)), values
