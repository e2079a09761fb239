"""ChunkReader: whatever the chunking and the reader's buffer size, the bytes read are the
object's bytes, in order, and nothing more."""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st

from domain.chunk_reader import ChunkReader


@given(
    st.lists(st.binary(max_size=300), max_size=20),
    st.integers(min_value=1, max_value=64),
)
def test_any_chunking_reads_back_the_same_bytes(chunks: list[bytes], buffer_size: int) -> None:
    reader = io.BufferedReader(ChunkReader(chunks), buffer_size=buffer_size)
    read = []
    while piece := reader.read(buffer_size):
        read.append(piece)
    assert b"".join(read) == b"".join(chunks)
    assert reader.read() == b""
