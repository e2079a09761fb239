"""Which lake files save_stats reads: every period's records once (domain/stats.files_to_read)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from domain.stats import files_to_read

DAYS = st.sampled_from(["2026/01/30", "2026/01/31", "2026/02/01", "2026/02/02"])


@given(
    sources=st.lists(st.tuples(DAYS, st.integers(0, 3)), unique=True),
    merged_days=st.sets(DAYS),
    merged_months=st.sets(st.sampled_from(["2026/01", "2026/02"])),
)
def test_each_day_is_read_from_exactly_one_level(
    sources: list[tuple[str, int]], merged_days: set[str], merged_months: set[str]
) -> None:
    keys = [f"avro/registration/{d}/{n}.avro" for d, n in sources]
    keys += [f"avro/registration/merged/{d}.avro" for d in merged_days]
    keys += [f"avro/registration/merged/{m}.avro" for m in merged_months]
    chosen = files_to_read("registration", keys)
    for day in {d for d, _ in sources} | merged_days:
        levels = {
            "month" if k == f"avro/registration/merged/{day[:7]}.avro"
            else "day" if k == f"avro/registration/merged/{day}.avro"
            else "source"
            for k in chosen
            if k.startswith((f"avro/registration/{day}/", f"avro/registration/merged/{day}"))
            or k == f"avro/registration/merged/{day[:7]}.avro"
        }  # fmt: skip
        assert len(levels) == 1, (day, chosen)
    assert len(set(chosen)) == len(chosen)
    assert all(not k.startswith("avro/scoring/") for k in chosen)
