"""The orjson canonical encoder gives exactly the stdlib's canonical bytes, so dedupe ids do not
depend on how a process was wired."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from adapters.canonical_json import orjson_canonical
from domain.records import canonical_json, dedupe_id

json_leaf = (
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits too: orjson refuses them, the stdlib takes over
    | st.floats()  # NaN, infinities, tiny and huge magnitudes included
    | st.text(st.characters(exclude_categories=()))  # lone surrogates included
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=25,
)
json_object = st.dictionaries(st.text(max_size=8), json_value, max_size=8)


@given(json_object)
@example({"score": 1e-05, "tiny": -9.9e-05, "big": 1.5e300})
@example({"n": float("nan"), "i": float("-inf")})
@example({"huge": 2**70, "s": "\ud800", "ctl": "\x00\x1f\x7f\u2028", "é": "😀"})
@example({"nested": [{"b": 1, "a": [0.0, -0.0, 1e16]}]})
def test_orjson_canonical_is_byte_for_byte_the_stdlib_canonical(record: dict[str, Any]) -> None:
    assert orjson_canonical(record) == canonical_json(record)


@given(json_object)
def test_dedupe_ids_agree_whichever_encoder_computes_them(record: dict[str, Any]) -> None:
    assert dedupe_id(record, orjson_canonical) == dedupe_id(record)


def test_values_no_json_parser_produces_go_through_the_stdlib() -> None:
    from datetime import UTC, datetime

    class Label(str):
        pass

    record = {"at": datetime(2026, 3, 14, tzinfo=UTC), "label": Label("x"), "t": (1, 2)}
    assert orjson_canonical(record) == canonical_json(record)
