"""How the merge reads a source object (adapters/lake_compactor.py): its header first, by one
small ranged read sized to the file, then (only if the reader wants more) the rest; a missing
object raises where the reader is used.
"""

from __future__ import annotations

from collections.abc import Iterator

from domain.models import ObjectRef
from domain.ports import ObjectStore


def lazy_chunks(store: ObjectStore, ref: ObjectRef) -> Iterator[bytes]:
    """The object's chunks, asked for at the first read: a missing object (ObjectNotFound) is
    then raised where the reader is used, inside its error handling, whatever the store."""
    yield from store.iter_chunks(ref)


HEAD_BYTES = 64 * 1024
HEAD_MIN_BYTES = 16 * 1024


def head_size(size: int) -> int:
    """How much of a source one ranged read fetches for its header: a third of the file plus
    8 KiB, within 16-64 KiB. A lake file's header is mostly its listed keys (~21 B a record)
    and holds ~1/4 of a file of small records (~23 KB of a 1,000-record file's ~88), so the
    guess covers it; a fixed 64 KiB read 2.7x the bytes needed there, and the kernel's copies
    are half a local merge's time (benchmarks/README.md). A longer header costs one more read.
    """
    return min(HEAD_BYTES, max(HEAD_MIN_BYTES, size // 3 + 8 * 1024))


READ_AHEAD_MAX_BYTES = 4 * 1024 * 1024  # x 8 ahead: at most 32 MiB held


def head_first(store: ObjectStore, ref: ObjectRef) -> Iterator[bytes]:
    """The object's first 64 KiB, then (only if the reader wants more) the rest: reading a
    header costs one small ranged GET instead of the object (a lake file's header with 1,000
    listed keys is ~23 KB of its ~88)."""
    yield from store.iter_chunks(ref, 0, HEAD_BYTES)
    yield from store.iter_chunks(ref, HEAD_BYTES)


def then_rest(
    head: list[bytes], store: ObjectStore, ref: ObjectRef, fetched: int
) -> Iterator[bytes]:
    """The first `fetched` bytes already fetched (ahead, adapters/read_ahead.py), then (only if
    the reader wants more) the rest."""
    yield from head
    yield from store.iter_chunks(ref, fetched)


def chunks_after(chunks: list[bytes], offset: int) -> Iterator[memoryview]:
    """The chunks' bytes from `offset` on, as views."""
    for chunk in chunks:
        if offset < len(chunk):
            yield memoryview(chunk)[offset:]
        offset = max(0, offset - len(chunk))
