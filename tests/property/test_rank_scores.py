"""The rank-to-score formula's rules (domain/ranks.py, docs/ranks.md), for both scoring types."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from domain.ranks import MAX_RANK, BadRank, ScoringType, parse_rank, score

TYPES = st.sampled_from(list(ScoringType))
LISTS = st.integers(1, MAX_RANK).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(1, n), st.integers(1, n))
)


@given(TYPES, LISTS)
def test_a_better_rank_never_gets_a_lower_score(
    scoring: ScoringType, case: tuple[int, int, int]
) -> None:
    top, a, b = case
    better, worse = min(a, b), max(a, b)
    assert score(scoring, better, top) >= score(scoring, worse, top)


@given(TYPES, LISTS)
def test_every_score_is_in_0_exclusive_to_1_and_the_top_rank_scores_1(
    scoring: ScoringType, case: tuple[int, int, int]
) -> None:
    top, rank, _ = case
    assert 0.0 < score(scoring, rank, top) <= 1.0
    assert score(scoring, 1, top) == 1.0


@given(TYPES, LISTS)
def test_ties_score_equal_and_a_re_run_scores_the_same(
    scoring: ScoringType, case: tuple[int, int, int]
) -> None:
    top, rank, _ = case
    assert score(scoring, rank, top) == score(scoring, rank, top)
    assert repr(score(scoring, rank, top)) == repr(score(ScoringType(scoring.value), rank, top))


@given(st.integers(1, 2**40), st.integers(1, 2**40))
def test_raw_keeps_distinct_ranks_apart(a: int, b: int) -> None:
    if a != b:
        assert score(ScoringType.RAW, a, max(a, b)) != score(ScoringType.RAW, b, max(a, b))


@given(st.integers(1, 10**6))
def test_xnum_scores_the_last_of_n_one_over_n(n: int) -> None:
    assert score(ScoringType.XNUM, n, n) == 1 / n


@given(st.integers(1, MAX_RANK))
def test_a_rank_as_a_spreadsheet_saves_it_parses_to_itself(rank: int) -> None:
    assert parse_rank(f" {rank} ") == rank
    if rank < 2**52:
        assert parse_rank(f"{rank}.0") == rank


@given(st.sampled_from(["", " ", "0", "-3", "1.5", "abc", "1e400", "nan", str(MAX_RANK + 1)]))
def test_a_bad_rank_cell_is_a_reason_not_a_score(cell: str) -> None:
    assert isinstance(parse_rank(cell), BadRank)
