"""A merged file's sidecar: the dedupe keys of its records, 16 bytes each, packed, in the merged
file's record order, nothing else (docs/data-lake.md, "Sidecars").

Why: a merged file carries no header keys (a month's keys would be ~10 MB of base64 in one
header, 200 MB at the records guard, for every Avro reader to parse), so a month's merge, whose
sources include the days' merged files, had to decode `dedupeId` from every record of them
(~13.6 µs a record, against ~0.6 µs for a file with header keys). With a sidecar it reads 16 B a
record instead.

Trust rule: a sidecar is used only through the manifest (`campaign_workers.merged`) of the
merged file it belongs to, which names it and seals it with its key count and the CRC-32 of its
bytes; a sidecar whose size or CRC-32 differ (missing, truncated, rewritten, another file's) is
not used, and the keys are decoded from the records as before. An orphan sidecar (its merged
file never written) is never read: nothing names it. CRC-32 and not a cryptographic hash: the
seal guards against accidents (a torn or stale object, a crashed run's leftover, a copy of
another file's), not forgery (whoever can write the sidecar can write the merged file too), and
zlib's runs at GB/s (~5 ns a key). A sidecar wrongly trusted anyway (2^-32) still cannot drop a
record wrongly: every block with a drop is decoded and its keys compared with the sidecar's
(adapters/lake_compactor.py), a mismatch refuses the merge; at worst a repeat stays.

Order (crash safety): the sidecar is written completely before the merged file is begun, since
the merged file's header, its first bytes, holds the seal. The keys come from the KeyLog the
inspection filled (SpooledKeyLog: 16 B a key in TMPDIR, 1 MiB of it in memory), minus the
records dropped, streamed to the store (multipart past one part).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any

from adapters.avro_container import MERGED_META
from adapters.lake_keys import DEFAULT_IN_MEMORY_KEYS
from domain.lake import KEY_BYTES, DropPlan, SidecarSeal, SourceFile
from domain.models import ObjectInfo, ObjectNotFound, ObjectRef
from domain.ports import KeyLog, ObjectStore

logger = logging.getLogger(__name__)

SIDECAR_CONTENT_TYPE = "application/octet-stream"
SEAL_FIELD = "sidecar"
CHUNK_KEYS = 65_536  # 1 MiB of keys read from the log at a time


class SpooledKeyLog:
    """domain.ports.KeyLog held in memory up to `in_memory_keys` keys (16 B each), then in a
    temporary file (TMPDIR, or `spill_dir`) with one 1 MiB buffer, removed by `close`. In
    memory first: a month's 500 files logged to disk and read back cost ~10 of a merge's
    ~110 ms; the bound keeps the memory flat past it. In memory, each file's keys are kept as
    the bytes given, not copied into one buffer (growing one re-copied it as it grew)."""

    def __init__(
        self, *, in_memory_keys: int = DEFAULT_IN_MEMORY_KEYS, spill_dir: str | None = None
    ) -> None:
        self._in_memory_bytes = in_memory_keys * KEY_BYTES
        self._spill_dir = spill_dir
        self._held: dict[str, bytes] = {}
        self._held_bytes = 0
        self._file: IO[bytes] | None = None
        self._at: dict[str, tuple[int, int]] = {}  # file -> (offset in the file, keys)
        self._end = 0

    def add(self, file: str, keys: bytes) -> None:
        if file in self._at or file in self._held:
            raise ValueError(f"{file}: its keys were logged twice")
        if len(keys) % KEY_BYTES:
            raise ValueError(f"{len(keys)} bytes of keys is not a multiple of {KEY_BYTES}")
        if self._file is None and self._held_bytes + len(keys) <= self._in_memory_bytes:
            self._held[file] = keys
            self._held_bytes += len(keys)
            return
        if self._file is None:
            # Opened here, closed by close(): it lives across the merge's two passes.
            self._file = tempfile.TemporaryFile(  # noqa: SIM115
                dir=self._spill_dir, buffering=1 << 20
            )
            held, self._held, self._held_bytes = self._held, {}, 0
            for name, logged in held.items():
                self._append(name, logged)
        self._append(file, keys)

    def _append(self, file: str, keys: bytes) -> None:
        # Through the buffer, never a seek: a seek flushes it, and a seek before each file's
        # keys plus one before each read cost ~8 ms of a 500-file merge.
        assert self._file is not None
        self._file.write(keys)
        self._at[file] = (self._end, len(keys) // KEY_BYTES)
        self._end += len(keys)

    def read(self, file: str, start: int, stop: int) -> bytes:
        held = self._held.get(file)
        if held is not None:
            return held[max(0, start) * KEY_BYTES : max(0, stop) * KEY_BYTES]
        offset, count = self._at[file]
        start, stop = max(0, start), min(stop, count)
        if stop <= start or self._file is None:
            return b""
        self._file.flush()  # a no-op once flushed: the reads come after the adds
        # pread: one system call at the offset, the file's position (the appends') left alone.
        wanted = (stop - start) * KEY_BYTES
        data = os.pread(self._file.fileno(), wanted, offset + start * KEY_BYTES)
        if len(data) != wanted:
            raise OSError(f"the key log ends before {file}'s keys {start}..{stop}")
        return data

    @property
    def spilled(self) -> bool:
        return self._file is not None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._held.clear()
        self._held_bytes = 0
        self._at.clear()


def write_sidecar(
    store: ObjectStore,
    target: ObjectRef,
    files: Sequence[SourceFile],
    drops: DropPlan,
    keys: KeyLog,
) -> SidecarSeal:
    """The kept records' keys, in the merged file's order (the files in `files`' order, each
    minus its drops), written to `target` completely (multipart past one part); its seal."""
    crc = 0
    count = 0
    # Written ~1 MiB at a time, not a write per source (500 writes for a month's 500 files).
    pending: list[bytes] = []
    held = 0
    with store.open_writer(target, SIDECAR_CONTENT_TYPE) as out:
        for source in files:
            key = source.info.ref.key
            dropped = drops.of(key)
            next_drop = 0
            for start in range(0, source.records, CHUNK_KEYS):
                stop = min(start + CHUNK_KEYS, source.records)
                packed = keys.read(key, start, stop)
                if len(packed) != (stop - start) * KEY_BYTES:
                    raise ValueError(f"{key}: the key log holds fewer keys than its records")
                kept, next_drop = _without(packed, start, stop, dropped, next_drop)
                pending += kept
                held += sum(len(piece) for piece in kept)
                if held >= CHUNK_KEYS * KEY_BYTES:
                    crc, count = _flush(out.write, pending, crc, count)
                    pending, held = [], 0
        crc, count = _flush(out.write, pending, crc, count)
    return SidecarSeal(target.key, count, crc)


def _flush(
    write: Callable[[bytes], int], pieces: list[bytes], crc: int, count: int
) -> tuple[int, int]:
    """The pieces written as one, and the CRC-32 and key count carried on past them."""
    if not pieces:
        return crc, count
    joined = pieces[0] if len(pieces) == 1 else b"".join(pieces)
    write(joined)
    return zlib.crc32(joined, crc), count + len(joined) // KEY_BYTES


def _without(
    packed: bytes, start: int, stop: int, dropped: Sequence[int], next_drop: int
) -> tuple[list[bytes], int]:
    """The keys of positions `start`..`stop` (packed) minus the dropped positions (ascending,
    from `next_drop` on), as slices; and where the next drop after `stop` is."""
    pieces: list[bytes] = []
    at = start
    while next_drop < len(dropped) and dropped[next_drop] < stop:
        position = dropped[next_drop]
        if position > at:
            pieces.append(packed[(at - start) * KEY_BYTES : (position - start) * KEY_BYTES])
        at = position + 1
        next_drop += 1
    if at < stop:
        pieces.append(packed[(at - start) * KEY_BYTES :])
    return pieces, next_drop


def seal_json(seal: SidecarSeal) -> dict[str, Any]:
    return {"key": seal.key, "count": seal.count, "crc32": seal.crc32}


def seal_of(manifest: Mapping[str, Any]) -> SidecarSeal | None:
    """The sidecar's seal in a merged file's manifest (JSON); None when it has none (written
    before sidecars) or the entry is malformed."""
    raw = manifest.get(SEAL_FIELD)
    if not isinstance(raw, Mapping):
        return None
    key, count, crc = raw.get("key"), raw.get("count"), raw.get("crc32")
    if not isinstance(key, str) or not isinstance(count, int) or not isinstance(crc, int):
        return None
    if count < 0 or not 0 <= crc < 2**32:
        return None
    return SidecarSeal(key, count, crc)


def read_trusted(
    fetch: Callable[[ObjectRef], bytes], bucket: str, seal: SidecarSeal
) -> tuple[bytes | None, str]:
    """The sidecar's keys if it matches its seal, else None; and what was found (for the log:
    object keys and counts only, never a record's content)."""
    ref = ObjectRef(bucket, seal.key)
    try:
        packed = fetch(ref)
    except ObjectNotFound:
        return None, f"sidecar {seal.key} is missing"
    if len(packed) != seal.count * KEY_BYTES:
        return None, (
            f"sidecar {seal.key} holds {len(packed):,} bytes, its seal says "
            f"{seal.count:,} keys ({seal.count * KEY_BYTES:,} bytes)"
        )
    if zlib.crc32(packed) != seal.crc32:
        return None, f"sidecar {seal.key}'s CRC-32 differs from its seal"
    return packed, f"sidecar {seal.key} matches its seal ({seal.count:,} keys)"


def unlisted_keys(
    store: ObjectStore, info: ObjectInfo, meta: Mapping[str, bytes]
) -> tuple[bytes | None, str]:
    """The keys of a source without header keys, from its sidecar when it is a merged file
    whose manifest seals one and the sidecar matches the seal ("sidecar"); else None and
    "projection" (the caller decodes them from the records). Logged at INFO either way."""
    raw = meta.get(MERGED_META)
    seal = None
    if raw is not None:
        try:
            manifest = json.loads(raw)
        except ValueError:
            manifest = None
        seal = seal_of(manifest) if isinstance(manifest, Mapping) else None
    if seal is None:
        found: tuple[bytes | None, str] = (None, "no sidecar in its manifest")
    else:
        found = read_trusted(store.read_bytes, info.ref.bucket, seal)
    packed, why = found
    logger.info(
        "merge source keys %s",
        "from its sidecar" if packed is not None else "decoded (projection on dedupeId)",
        extra={"source": info.ref.key, "why": why},
    )
    return packed, ("sidecar" if packed is not None else "projection")
