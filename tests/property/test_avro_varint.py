"""The container's varint reader (adapters/avro_container._varint, with its fast path for values
of up to 3 bytes) reads what the spec's zig-zag varint says, for any bytes at any offset: the
same value and end as the byte-by-byte definition, or a refusal where that one has none."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.avro_container import NotAnAvroFile, _varint, encode_long

LONGS = st.integers(-(2**63), 2**63 - 1)


def by_definition(buf: bytes, pos: int) -> tuple[int, int] | None:
    """Avro's long: 7 bits a byte, low first, while the high bit is set; then zig-zag."""
    result = shift = 0
    while pos < len(buf) and shift <= 63:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
    return None


@given(LONGS, st.binary(max_size=4), st.binary(max_size=4))
def test_a_written_long_reads_back_at_any_offset_with_anything_after_it(
    value: int, before: bytes, after: bytes
) -> None:
    buf = before + encode_long(value) + after
    assert _varint(buf, len(before), 0) == (value, len(buf) - len(after))


@given(st.binary(max_size=12), st.integers(0, 12))
def test_any_bytes_read_as_the_definition_reads_them_or_are_refused(buf: bytes, pos: int) -> None:
    expected = by_definition(buf, pos)
    if expected is None:
        with pytest.raises(NotAnAvroFile):
            _varint(buf, pos, 0)
    else:
        assert _varint(buf, pos, 0) == expected
