"""The production dedupe index (adapters/lake_keys.SpillingKeyIndex) drops exactly what the rule's
plain-Python reference (domain.lake.FirstWinsIndex) drops: for any files, any keys (including
keys that share their first 4 or 8 bytes and differ after), any arrival order, any watch, and any
spill threshold, from never spilling to spilling after every file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.lake_keys import ROW, SpillingKeyIndex, _repeats
from domain.lake import KEY_BYTES, FirstWinsIndex, dedupe_key
from domain.ports import DuplicateIndex

# Keys from a small pool so repeats are common; the others share their first 4 or 8 bytes with
# one of them: candidates of the index's 32-bit sort that are no repeat.
_REAL = [dedupe_key(str(i)) for i in range(12)]
POOL = (
    _REAL
    + [key[:8] + dedupe_key(f"twin-{i}")[8:] for i, key in enumerate(_REAL)]
    + [key[:4] + dedupe_key(f"cousin-{i}")[4:] for i, key in enumerate(_REAL)]
)


@st.composite
def merges(draw: st.DrawFn) -> tuple[list[tuple[str, bytes]], list[str], frozenset[bytes] | None]:
    files = [
        (f"file-{n}", b"".join(draw(st.lists(st.sampled_from(POOL), max_size=25))))
        for n in range(draw(st.integers(0, 7)))
    ]
    order = draw(st.permutations([name for name, _ in files]))
    watch = draw(st.one_of(st.none(), st.frozensets(st.sampled_from(POOL))))
    return files, list(order), watch


def plan_of(
    index: DuplicateIndex,
    files: list[tuple[str, bytes]],
    order: list[str],
    watch: frozenset[bytes] | None,
) -> dict[str, list[int]]:
    try:
        for name, keys in files:
            index.add(name, keys)
        plan = index.drops(order, watch)
    finally:
        index.close()
    return {name: list(positions) for name, positions in plan.by_file.items()}


@given(merges(), st.integers(1, 60))
def test_the_spilling_index_drops_what_the_rule_drops(
    case: tuple[list[tuple[str, bytes]], list[str], frozenset[bytes] | None], in_memory: int
) -> None:
    files, order, watch = case
    expected = plan_of(FirstWinsIndex(), files, order, watch)

    got = plan_of(SpillingKeyIndex(in_memory_keys=in_memory), files, order, watch)

    assert got == expected


@given(merges())
def test_every_record_is_kept_or_dropped_and_each_key_kept_once(
    case: tuple[list[tuple[str, bytes]], list[str], frozenset[bytes] | None],
) -> None:
    files, order, _ = case
    plan = plan_of(SpillingKeyIndex(in_memory_keys=5), files, order, None)
    by_name = dict(files)
    kept: list[bytes] = []
    for name in order:
        keys = by_name[name]
        dropped = set(plan.get(name, []))
        kept += [
            keys[i : i + KEY_BYTES]
            for i in range(0, len(keys), KEY_BYTES)
            if i // KEY_BYTES not in dropped
        ]
    all_keys = {k for _, keys in files for k in (keys[i : i + 16] for i in range(0, len(keys), 16))}
    assert sorted(kept) == sorted(all_keys)


def test_spilled_keys_are_removed_on_close(tmp_path: Path) -> None:
    index = SpillingKeyIndex(in_memory_keys=1, spill_dir=str(tmp_path))
    index.add("a", POOL[0] + POOL[1])
    index.add("b", POOL[1] + POOL[2])
    assert index.spilled_runs == 2 and any(tmp_path.iterdir())

    plan = index.drops(["a", "b"])
    index.close()

    assert {k: list(v) for k, v in plan.by_file.items()} == {"b": [0]}
    assert not any(tmp_path.iterdir())


def test_an_order_that_leaves_out_a_file_is_a_bug_not_a_merge() -> None:
    index = SpillingKeyIndex()
    index.add("a", POOL[0])
    index.add("b", POOL[0])
    with pytest.raises(ValueError, match="every file"):
        index.drops(["a"])


def test_keys_of_a_ragged_length_are_refused_naming_the_length() -> None:
    with pytest.raises(ValueError, match="17 bytes"):
        SpillingKeyIndex().add("a", POOL[0] + b"x")


def test_a_group_without_repeats_is_not_kept_alive_by_its_answer() -> None:
    # A view of the group (rows[:0]) kept every spilled group in memory until the end of the
    # search: 24 B a key of a merge, the one thing the spill is there to bound.
    rows = np.zeros(4, ROW)
    rows["hi"] = [1, 2, 3, 4]
    answer = _repeats(rows, np.zeros(1, dtype=np.uint64))
    assert len(answer) == 0 and not np.shares_memory(answer, rows)
