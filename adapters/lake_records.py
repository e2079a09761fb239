"""The lake's records one at a time (LakeRecords): fastavro's reader over the object's chunks,
so a file of millions of records is read in the memory of one block, never whole."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from typing import Any

import fastavro

from domain.chunk_reader import ChunkReader
from domain.models import ObjectRef
from domain.ports import ChunkReader as ChunkSource


class AvroLakeRecords:
    def __init__(self, store: ChunkSource) -> None:
        self._store = store

    def records(self, ref: ObjectRef) -> Iterator[Mapping[str, Any]]:
        stream = io.BufferedReader(ChunkReader(self._store.iter_chunks(ref)), 1 << 20)
        for record in fastavro.reader(stream):
            if isinstance(record, Mapping):
                yield record
