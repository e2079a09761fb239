"""A container header read in one pass over the first chunk (adapters/avro_container.header_in)
reads as the value-by-value reader reads it: for any metadata, truncated anywhere or with any
byte changed, it gives the same header or leaves the bytes to the value-by-value reader."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from adapters.avro_container import (
    SCHEMA_META,
    ChunkReader,
    Header,
    NotAnAvroFile,
    header_by_values,
    header_bytes,
    header_in,
    read_header,
)

metas = st.dictionaries(
    st.sampled_from([SCHEMA_META, "avro.codec", "campaign_workers.dedupe_keys", "é", "k"]),
    st.binary(max_size=300),
    max_size=4,
)


def by_values(data: bytes) -> Header | None:
    try:
        return header_by_values(ChunkReader([data]))
    except (NotAnAvroFile, ValueError):
        return None


@st.composite
def header_data(draw: st.DrawFn) -> bytes:
    data = bytearray(header_bytes(draw(metas), draw(st.binary(min_size=16, max_size=16))))
    data += draw(st.binary(max_size=40))  # what follows the header: the first block
    match draw(st.sampled_from(["as written", "cut", "changed"])):
        case "cut":
            del data[draw(st.integers(0, len(data))) :]
        case "changed" if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


@given(header_data())
def test_one_pass_reads_what_the_value_by_value_reader_reads_or_leaves_it(data: bytes) -> None:
    fast = header_in(data)
    if fast is not None:
        assert fast == by_values(data)


@given(metas.filter(lambda m: SCHEMA_META in m), st.binary(min_size=16, max_size=16))
def test_a_whole_header_in_the_first_chunk_is_read_in_one_pass(
    meta: dict[str, bytes], sync: bytes
) -> None:
    data = header_bytes(meta, sync) + b"\x02\x00"
    assert header_in(data) == Header(meta, sync, len(data) - 2)


@given(metas.filter(lambda m: SCHEMA_META in m), st.integers(1, 64))
def test_a_header_across_chunks_reads_the_same_and_leaves_the_reader_after_it(
    meta: dict[str, bytes], chunk: int
) -> None:
    data = header_bytes(meta, bytes(16)) + b"rest"
    reader = ChunkReader([data[i : i + chunk] for i in range(0, len(data), chunk)])
    assert read_header(reader) == Header(meta, bytes(16), len(data) - 4)
    assert reader.read(4) == b"rest"
