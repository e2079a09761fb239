"""A readable byte stream over an iterator of chunks: what csv, TextIOWrapper and fastavro read
from when the object store hands out an object's bytes in chunks. Pure (io's in-memory
wrappers only), so the domain's CSV readers and the adapters' Avro readers share it."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any


class ChunkReader(io.RawIOBase):
    """Reads through the chunks in order, holding one chunk at a time. An offset into the
    current chunk, not a re-slice per read: slicing a 1 MiB chunk for every 8 KiB read copied
    it 128 times."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._chunk = memoryview(b"")
        self._offset = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._offset >= len(self._chunk):
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._chunk, self._offset = memoryview(chunk), 0
        size = min(len(buffer), len(self._chunk) - self._offset)
        buffer[:size] = self._chunk[self._offset : self._offset + size]
        self._offset += size
        return size
