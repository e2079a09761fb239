"""Issue 17 item 4: exact_loads, the stream workers' parser, raises nothing but ValueError on any
text, however deep or large, and its stdlib path (a run of 20+ digits) refuses what orjson
refuses, so a record's fate does not hang on which parser read it."""

from __future__ import annotations

import contextlib

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.json_codec import exact_loads
from domain.records import NestedTooDeep

WIDE = "12345678901234567890123"  # 23 digits: the stdlib path
REPORTED = b'{"type":"registration","n":12345678901234567890123,"x":' + b"[" * 1000
REPORTED += b"]" * 1000 + b"}"


def test_the_reported_record_is_a_decode_error_not_a_recursion_error() -> None:
    with pytest.raises(NestedTooDeep):
        exact_loads(REPORTED.decode())


@st.composite
def nested(draw: st.DrawFn) -> str:
    """JSON (or nearly) nested 0-5,000 levels deep in arrays and objects, closed or not."""
    depth = draw(st.integers(min_value=0, max_value=5_000))
    opener = draw(st.sampled_from(["[", '{"k":', '[{"a":1},', '{"k":[']))
    closer = {"[": "]", '{"k":': "}", '[{"a":1},': "]", '{"k":[': "]}"}[opener]
    inner = draw(st.sampled_from(["1", WIDE, "null", '"x"', "[]", "{}", "", "NaN"]))
    closed = draw(st.integers(min_value=0, max_value=depth))
    return opener * depth + inner + closer * closed


huge_numbers = st.builds(
    lambda sign, digits, tail: sign + "9" * digits + tail,
    st.sampled_from(["", "-"]),
    st.integers(min_value=1, max_value=6_000),
    st.sampled_from(["", ".5", "e400", "e-400", "E+99999", ".0e309"]),
)
constants = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
hostile = st.one_of(
    nested(),
    huge_numbers,
    st.builds(lambda v: f'{{"n":{WIDE},"v":{v}}}', st.one_of(huge_numbers, constants)),
    st.builds(lambda s: f'{{"n":{WIDE},"s":"{s}"}}', st.sampled_from(["\\ud800", "\\udfff"])),
    st.text(max_size=200).map(lambda t: WIDE + t),
    st.text(max_size=200),
)


@given(hostile, st.booleans())
def test_any_text_either_parses_or_raises_a_value_error(text: str, with_wide_run: bool) -> None:
    text = f"[{WIDE},{text}]" if with_wide_run else text
    # The codec's decode error: orjson's, json's and NestedTooDeep are all ValueErrors.
    with contextlib.suppress(ValueError):
        exact_loads(text)


@pytest.mark.parametrize(
    "value", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "9" * 400 + ".0"]
)
def test_the_stdlib_path_refuses_what_orjson_refuses(value: str) -> None:
    text = f'{{"n":{WIDE},"v":{value}}}'
    with pytest.raises(ValueError):
        orjson.loads(text.replace(WIDE, "1"))
    with pytest.raises(ValueError):
        exact_loads(text)
