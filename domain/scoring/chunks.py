"""Cutting the scored file into chunks, and the domain's default ChunkMapper (the port, in
domain/ports.py, runs a transform over them): one chunk after the other, in this process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import TypeVar

from domain.models import OverlongLine
from domain.scoring.transform import Chunk

C = TypeVar("C")
T = TypeVar("T")
R = TypeVar("R")

# Small chunks run faster (their columns stay in the CPU caches: ~15 µs a row at 1-2,000 rows,
# ~21 at 5,000) and large ones cost the parent more per row; benchmarks/README.md has the figures.
DEFAULT_CHUNK_ROWS = 2_000


class SequentialMapper:
    """One chunk at a time, in this process."""

    def map(self, fn: Callable[[C, T], R], ctx: C, chunks: Iterable[T]) -> Iterator[R]:
        for chunk in chunks:
            yield fn(ctx, chunk)


def chunk_lines(
    lines: Iterable[bytes | OverlongLine],
    first_row: int,
    rows_per_chunk: int = DEFAULT_CHUNK_ROWS,
    first_chunk_rows: int | None = None,
) -> Iterator[Chunk]:
    """Groups lines (line ends removed) into Chunks of at most `rows_per_chunk` lines (the first
    of at most `first_chunk_rows`, so a resumed run can redo exactly the chunk it stopped in).

    islice and bytes.join do the per-line work in C: this runs in the process that also writes
    the CSV and feeds the stream, which must not become the bottleneck of a parallel run. Only a
    chunk holding an over-long line (join refuses the marker) is looked at line by line."""
    source = iter(lines)
    start = first_row
    size = first_chunk_rows or rows_per_chunk
    while batch := list(islice(source, size)):
        try:
            chunk = Chunk(start, b"\n".join(batch))  # type: ignore[arg-type]  # TypeError below
        except TypeError:
            overlong = tuple(
                (offset, line.length)
                for offset, line in enumerate(batch)
                if isinstance(line, OverlongLine)
            )
            data = b"\n".join(b"" if isinstance(line, OverlongLine) else line for line in batch)
            chunk = Chunk(start, data, overlong)
        yield chunk
        start += len(batch)
        size = rows_per_chunk
