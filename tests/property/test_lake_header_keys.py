"""A lake header's dedupe keys are decoded by pybase64 (SIMD, ~35x binascii;
adapters/avro_container.packed_keys_of): a clean list reads back as written, and whatever bytes a
damaged header holds, what it accepts is what the standard library's strict decoding gives."""

from __future__ import annotations

import base64
import binascii

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.avro_container import KEYS_META, NotAnAvroFile, packed_keys_of
from domain.lake import KEY_BYTES

keys = st.binary(max_size=8 * KEY_BYTES).map(lambda b: b[: len(b) - len(b) % KEY_BYTES])


@given(keys)
def test_listed_keys_read_back_as_written(packed: bytes) -> None:
    assert packed_keys_of({KEYS_META: base64.b64encode(packed)}) == packed


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    text = bytearray(base64.b64encode(draw(keys)))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        match draw(st.sampled_from(["replace", "insert", "delete"])):
            case "replace" if at < len(text):
                text[at] = draw(st.integers(0, 255))
            case "insert":
                text.insert(at, draw(st.integers(0, 255)))
            case "delete" if at < len(text):
                del text[at]
    return bytes(text)


@given(damaged())
def test_a_damaged_list_is_refused_or_reads_as_the_standard_library_reads_it(text: bytes) -> None:
    try:
        strict: bytes | None = binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error:
        strict = None
    try:
        lenient: bytes | None = packed_keys_of({KEYS_META: text})
    except NotAnAvroFile as refused:
        assert KEYS_META in str(refused)
        lenient = None
    if lenient is not None:
        assert lenient == strict


def test_characters_outside_base64_are_refused_naming_the_key() -> None:
    text = base64.b64encode(bytes(KEY_BYTES))
    with pytest.raises(NotAnAvroFile, match=KEYS_META):
        packed_keys_of({KEYS_META: text[:4] + b"\n" + text[4:]})
