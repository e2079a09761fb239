"""Waves of one campaign on different date keys, run back to back before any codeAssignment
record reaches the lake: a fan selected by one is not selected by the next unless `reassign`."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.wave_prep.fans import EligibleFan
from tests.support.wave_world import DATE_KEY, WaveWorld

MARKETS = ("m1", "m2", "m3")
OTHER_DAY = "2026-12-08"


def selected(world: WaveWorld, date_key: str) -> list[str]:
    zipped = world.zip_files(date_key)
    return [r["globalUserId"] for m in MARKETS for r in zipped[f"masterCodes/{m}.csv"]]


fans_strategy = st.lists(
    st.builds(
        lambda i, score, markets: EligibleFan(
            f"g{i}", score, tuple(markets), email=f"f{i}@example.com"
        ),
        st.integers(0, 60),
        st.sampled_from([0.1, 0.5, 0.8, 1.0]),
        st.lists(st.sampled_from(MARKETS), min_size=1, max_size=3),
    ),
    max_size=40,
    unique_by=lambda f: f.global_user_id,
)
capacities = st.tuples(*(st.integers(0, 8) for _ in MARKETS))
modes = st.fixed_dictionaries(
    {"order_by_preference": st.booleans(), "random_selection": st.booleans()}
)


@settings(max_examples=40)
@given(fans_strategy, capacities, modes, st.booleans())
def test_a_fan_selected_by_one_wave_is_not_selected_by_the_next_unless_reassigned(
    fans: list[EligibleFan], caps: tuple[int, ...], mode: dict[str, bool], reassign: bool
) -> None:
    rows = [(m, m.upper(), c, "external") for m, c in zip(MARKETS, caps, strict=True)]
    world = WaveWorld(rows, list(fans))
    world.run(**mode).unwrap()
    first = set(selected(world, DATE_KEY))
    second_counts = world.run(date_key=OTHER_DAY, reassign=reassign, **mode).unwrap()
    second = set(selected(world, OTHER_DAY))
    if reassign:
        alone = WaveWorld(rows, list(fans))
        alone.run(date_key=OTHER_DAY, **mode).unwrap()
        assert second == set(selected(alone, OTHER_DAY))  # as if the first never ran
    else:
        assert not first & second
        assert second_counts.ineligible.get("already_coded", 0) == len(first)
    # Each wave's retry keeps its own selection: its own entry is not "another wave".
    again = world.run(date_key=OTHER_DAY, reassign=reassign, **mode).unwrap()
    assert set(selected(world, OTHER_DAY)) == second and again.attempt == 2


def test_a_wave_whose_zip_was_never_published_holds_no_fan_back() -> None:
    fans: list[EligibleFan | str] = [
        EligibleFan(f"g{i}", i / 10, ("m1",), email=f"f{i}@example.com") for i in range(6)
    ]
    world = WaveWorld([("m1", "NY", 2, "external"), ("m2", "LA", 0, "external")], fans)
    world.inventory.fail_calls = {1}  # the first wave fails on codes: it gave nobody anything
    assert world.run().failure().kind == "codes_unavailable"  # type: ignore[union-attr]
    world.run(date_key=OTHER_DAY).unwrap()
    assert set(selected_ids(world, OTHER_DAY)) == {"g5", "g4"}


def selected_ids(world: WaveWorld, date_key: str) -> list[str]:
    zipped = world.zip_files(date_key)
    return [
        r["globalUserId"] for name, rows in zipped.items() if "masterCodes" in name for r in rows
    ]
