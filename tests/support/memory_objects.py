"""The object store in memory (ObjectStore, VersionedBlobs of domain/ports.py), for unit tests
and benchmarks: S3's rules (whole objects published on a clean exit, ETags, conditional puts,
overlong lines) on a dict. No I/O."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

from domain.models import ObjectInfo, ObjectNotFound, ObjectRef, OverlongLine

MIB = 1024 * 1024


def _etag(data: bytes) -> str:
    """S3's ETag of a single-part object: the MD5 of its bytes, in hex."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class MemoryWriter:
    """What `open_writer` yields: keeps each write, publishes on a clean exit."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.writes = 0

    def write(self, data: bytes | memoryview) -> int:
        self.parts.append(bytes(data))
        self.writes += 1
        return len(data)


class InMemoryObjectStore:
    """Objects in a dict. Writers publish only when their block exits without an error, like a
    completed multipart upload. `writes` counts write() calls per key (streaming evidence).
    Lines longer than `max_line_bytes` come back as OverlongLine, as from the S3 store; `head`
    reports a modification time that changes only when the object is written again."""

    def __init__(
        self, objects: Mapping[ObjectRef, bytes] | None = None, *, max_line_bytes: int = 64 * MIB
    ) -> None:
        self.objects: dict[ObjectRef, bytes] = dict(objects or {})
        self.writes: dict[ObjectRef, int] = {}
        self.max_line_bytes = max_line_bytes
        self._versions: dict[ObjectRef, int] = {}

    def _get(self, ref: ObjectRef) -> bytes:
        try:
            return self.objects[ref]
        except KeyError:
            raise ObjectNotFound(ref) from None

    def iter_lines(self, ref: ObjectRef) -> Iterator[bytes | OverlongLine]:
        data = self._get(ref)
        if not data:
            return
        lines = data.split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        for line in lines:
            line = line[:-1] if line.endswith(b"\r") else line
            yield OverlongLine(len(line)) if len(line) > self.max_line_bytes else line

    def iter_chunks(
        self, ref: ObjectRef, start: int = 0, end: int | None = None
    ) -> Iterator[bytes]:
        data = self._get(ref)[start:end]
        for first in range(0, len(data), MIB):
            yield data[first : first + MIB]

    def read_bytes(self, ref: ObjectRef) -> bytes:
        return self._get(ref)

    def put_bytes(self, ref: ObjectRef, data: bytes, content_type: str = "") -> None:
        self._store(ref, bytes(data))

    def _store(self, ref: ObjectRef, data: bytes) -> None:
        self.objects[ref] = data
        self._versions[ref] = self._versions.get(ref, 0) + 1

    @contextmanager
    def open_writer(self, ref: ObjectRef, content_type: str = "") -> Iterator[MemoryWriter]:
        writer = MemoryWriter()
        yield writer
        self._store(ref, b"".join(writer.parts))
        self.writes[ref] = writer.writes

    def head(self, ref: ObjectRef) -> ObjectInfo | None:
        data = self.objects.get(ref)
        if data is None:
            return None
        # A stable time per version: what S3's LastModified tells a reader; the ETag is S3's
        # for a single-part object, the MD5 of the bytes (a copy has its source's).
        version = self._versions.get(ref, 0)
        return ObjectInfo(ref, len(data), datetime.fromtimestamp(version, UTC), _etag(data))

    def read_versioned(self, ref: ObjectRef) -> tuple[bytes, str] | None:
        data = self.objects.get(ref)
        return None if data is None else (data, _etag(data))

    def put_versioned(
        self, ref: ObjectRef, data: bytes, expected_version: str | None
    ) -> str | None:
        """As S3's conditional PutObject: the version is the ETag (the MD5 of the bytes)."""
        current = self.objects.get(ref)
        if (current is None) != (expected_version is None):
            return None
        if current is not None and _etag(current) != str(expected_version).strip('"'):
            return None
        self._store(ref, bytes(data))
        return _etag(data)

    def list_objects(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        for ref in sorted(self.objects, key=lambda r: r.key):
            if ref.bucket == bucket and ref.key.startswith(prefix):
                data = self.objects[ref]
                yield ObjectInfo(ref, len(data), etag=_etag(data))

    def copy(self, source: ObjectRef, target: ObjectRef) -> None:
        self._store(target, self._get(source))

    def delete(self, ref: ObjectRef) -> None:
        self.objects.pop(ref, None)

    def delete_many(self, refs: Sequence[ObjectRef]) -> None:
        # One at a time through delete: a subclass injecting faults there fails part way.
        for ref in refs:
            self.delete(ref)
