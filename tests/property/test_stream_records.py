"""Rules of domain.records: decoding, trimming and the dedupe id."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from returns.result import Failure, Success

from domain.records import decode_record, dedupe_id, formatted, trim_strings

json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
json_object = st.dictionaries(st.text(max_size=8), json_value, max_size=6)


def has_padded_string(value: Any) -> bool:
    if isinstance(value, str):
        return value != value.strip()
    if isinstance(value, dict):
        return any(has_padded_string(v) for v in value.values())
    if isinstance(value, list):
        return any(has_padded_string(v) for v in value)
    return False


@given(json_value)
def test_trimming_leaves_no_padded_string_and_is_idempotent(value: Any) -> None:
    trimmed = trim_strings(value)
    assert not has_padded_string(trimmed)
    assert trim_strings(trimmed) == trimmed


@given(json_object, st.randoms())
def test_the_dedupe_id_ignores_key_order_meta_and_an_existing_id(
    record: dict[str, Any], rng: Any
) -> None:
    items = list(record.items())
    rng.shuffle(items)
    reordered = {**dict(items), "__meta": {"correlation": "another"}, "dedupeId": "old"}
    assert dedupe_id(reordered) == dedupe_id(record)


@given(json_object, st.text(min_size=1))
def test_the_dedupe_id_changes_with_the_content(record: dict[str, Any], extra: str) -> None:
    changed = {**record, "__added__": extra}
    assert dedupe_id(changed) != dedupe_id(record)


@given(json_object, st.text(min_size=1).filter(lambda t: t.strip()))
def test_any_json_object_with_a_type_decodes_and_formats(
    record: dict[str, Any], record_type: str
) -> None:
    data = json.dumps({**record, "type": record_type}).encode()
    decoded = decode_record(data)
    assert isinstance(decoded, Success)
    out = formatted(decoded.unwrap())
    assert out["dedupeId"] and not has_padded_string(out)


@given(st.binary())
def test_any_bytes_decode_or_give_a_reason(data: bytes) -> None:
    decoded = decode_record(data)
    if isinstance(decoded, Failure):
        assert decoded.failure()
    else:
        assert isinstance(decoded.unwrap()["type"], str)
