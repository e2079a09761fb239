"""Fanlist ranks to scores: the formula the original never documented (docs/ranks.md).

A fanlist row ranks a fan: 1 is the best, larger is worse, equal ranks are ties. The campaign's
scoring type picks the formula; both give a score in (0, 1], higher is better, as every other
score of the pipeline (wave prep selects by score, highest first):

- `raw`:  score = 1 / rank. Needs nothing but the row, so a file is scored in one pass and a
  resumed run scores the rest without reading what came before. Strictly decreasing in the
  rank: distinct ranks keep distinct scores (exactly, for any rank below 2**53), so the order
  the list's owner gave is the order wave prep selects in.
- `xnum`: score = (N - rank + 1) / N, N the largest rank in the file: the list's top is 1.0,
  its last 1/N, equal rank gaps are equal score gaps. A fan's score says how far down *this*
  list it is (top 10% of any list scores >= 0.9), so a campaign may set a `minScore` that means
  the same for a list of 500 and one of 5 million. N is found by a first pass over the file
  and kept with the run's checkpoint, so a resumed run scores with the same N.

Both: a pure function of (rank, N), so re-runs give byte-identical records.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ScoringType(StrEnum):
    RAW = "raw"
    XNUM = "xnum"


SCORING_TYPES = frozenset(t.value for t in ScoringType)


@dataclass(frozen=True, slots=True)
class BadRank:
    reason: str  # rank_missing, rank_not_an_integer, rank_not_positive


MAX_RANK = 2**53  # beyond it floats no longer tell neighbouring ranks apart


def parse_rank(text: str) -> int | BadRank:
    """A rank cell: a positive integer (`7`, ` 7 `, `7.0` as spreadsheets save whole numbers)."""
    cell = text.strip()
    if not cell:
        return BadRank("rank_missing")
    try:
        value = int(cell)
    except ValueError:
        try:
            number = float(cell)
        except ValueError:
            return BadRank("rank_not_an_integer")
        if not number.is_integer():
            return BadRank("rank_not_an_integer")
        value = int(number)
    if value < 1:
        return BadRank("rank_not_positive")
    if value > MAX_RANK:
        return BadRank("rank_too_large")
    return value


def score(scoring: ScoringType, rank: int, max_rank: int) -> float:
    """The score of `rank` (1 = best) in a list whose largest rank is `max_rank` (>= rank)."""
    if rank < 1 or rank > max_rank:
        raise ValueError(f"rank {rank} outside 1..{max_rank}")
    if scoring is ScoringType.RAW:
        return 1.0 / rank
    return (max_rank - rank + 1) / max_rank
