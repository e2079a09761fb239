"""The raw-bytes scan that lets the worker skip trimming never lets a padded string through."""

from __future__ import annotations

import json
import sys
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from domain.records import may_hold_padded_strings, trim_strings

WHITESPACE = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).strip() == ""]
padding = st.text(st.sampled_from(WHITESPACE), min_size=1, max_size=2)
word = st.text(max_size=6)
padded_or_not = word | st.builds(lambda p, w, q: p + w + q, padding | st.just(""), word, padding)
leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | padded_or_not
)
json_value = st.recursive(
    leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(padded_or_not, inner, max_size=4),
    max_leaves=20,
)
encoders = st.sampled_from(
    [
        orjson.dumps,
        lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode(),
        lambda v: json.dumps(v, separators=(",", ":")).encode(),
        lambda v: json.dumps(v).encode(),
    ]
)


@given(json_value, encoders)
def test_text_the_scan_passes_holds_no_string_a_trim_would_change(value: Any, encode: Any) -> None:
    data = encode(value)
    if not may_hold_padded_strings(data):
        assert trim_strings(value) == value


@given(st.sampled_from(WHITESPACE), word, st.booleans())
def test_every_kind_of_whitespace_at_either_end_is_seen(space: str, text: str, lead: bool) -> None:
    padded = space + text if lead else text + space
    assert may_hold_padded_strings(orjson.dumps({"k": [padded]}))
    assert may_hold_padded_strings(json.dumps({"k": padded}).encode())  # escaped


def test_compact_json_without_padding_skips_the_trim() -> None:
    assert not may_hold_padded_strings(orjson.dumps({"type": "scoring", "email": "a@b.c", "n": 1}))
