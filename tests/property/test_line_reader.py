"""The S3 line reader gives the same lines as the in-memory store whatever the chunking, and
skips an over-long line without holding it."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from adapters.aws.s3 import S3ObjectStore
from domain.models import ObjectRef
from tests.support.memory_objects import InMemoryObjectStore

REF = ObjectRef("b", "k")
MIB = 1024 * 1024


class _Body:
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks

    def iter_chunks(self, size: int) -> Iterator[bytes]:
        return self.chunks

    def close(self) -> None:
        pass


class _Client:
    """Just enough of boto3's S3 client for GetObject: the body comes in the chunks given."""

    def __init__(self, chunks: Any) -> None:
        self.chunks = chunks

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        return {"Body": _Body(iter(self.chunks()))}


@given(
    st.lists(st.sampled_from([b"a", b"bb", b"\n", b"\r\n", b"\r", b"x" * 7]), max_size=40),
    st.integers(1, 9),
    st.integers(1, 6),
)
def test_lines_are_those_of_the_reference_for_any_chunking(
    pieces: list[bytes], chunk_size: int, limit: int
) -> None:
    body = b"".join(pieces)
    chunks = [body[i : i + chunk_size] for i in range(0, len(body), chunk_size)]
    s3 = S3ObjectStore(_Client(lambda: chunks), max_line_bytes=limit)
    reference = InMemoryObjectStore({REF: body}, max_line_bytes=limit)
    assert list(s3.iter_lines(REF)) == list(reference.iter_lines(REF))


def test_a_200_mib_line_is_skipped_in_bounded_memory() -> None:
    def chunks() -> Iterator[bytes]:
        yield b"header\n"
        for _ in range(200):
            yield b"x" * MIB
        yield b"\nafter\n"

    s3 = S3ObjectStore(_Client(chunks), max_line_bytes=4 * MIB)
    tracemalloc.start()
    try:
        lines = list(s3.iter_lines(REF))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [line if isinstance(line, bytes) else line.length for line in lines] == [
        b"header",
        200 * MIB,
        b"after",
    ]
    assert peak < 16 * MIB  # the limit plus a chunk or two, not the line
