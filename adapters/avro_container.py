"""The Avro object container layout, read and written at the block level (Avro 1.x spec,
"Object Container Files"): header = magic `Obj\\x01`, a metadata map (string -> bytes), a 16-byte
sync marker; then blocks = record count (long), byte size (long), the (compressed) records, the
sync marker.

Why not fastavro's `block_reader` / `Writer.write_block`: they decompress every block on read and
compress it again on write. The merge copies blocks that hold no duplicate as they are (the
bytes, not the records), which is the whole of its speed; only the blocks it must change go
through fastavro (adapters/lake_compactor.py).

Lake metadata (this project's own header keys, ignored by every other reader):
- `campaign_workers.dedupe_keys`: base64 of the 16-byte key (domain.lake.dedupe_key) of each
  record's dedupeId, in record order. save_campaign_data writes it, so the merge finds
  duplicates from headers alone, without decompressing a block. (Base64 because fastavro decodes
  every metadata value as UTF-8 text.) ~21 bytes per record, before the data's own ~150-300.
- `campaign_workers.first_arrival_ms`: the file's first record's arrival (receivedAt), the
  merge's file order.
- `campaign_workers.merged`: on merged files only, JSON: record type, prefix, counts, the
  sources (key, ETag, size) the file was built from (the move archives exactly those), and the
  seal of its sidecar (`sidecar`: key, count, CRC-32; adapters/lake_sidecar.py), the object that
  lists the merged records' dedupe keys instead of this header.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pybase64

from domain.lake import KEY_BYTES, dedupe_key, split_keys

MAGIC = b"Obj\x01"
SYNC_SIZE = 16
KEYS_META = "campaign_workers.dedupe_keys"
FIRST_ARRIVAL_META = "campaign_workers.first_arrival_ms"
MERGED_META = "campaign_workers.merged"
SCHEMA_META = "avro.schema"
CODEC_META = "avro.codec"


class NotAnAvroFile(ValueError):
    """The bytes do not follow the container layout; the message says where they stop."""


def encode_long(value: int) -> bytes:
    """Zig-zag varint (Avro int and long)."""
    n = (value << 1) ^ (value >> 63)
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


# --- what save_campaign_data adds to each lake file's header -------------------------------------


def lake_metadata(records: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The header metadata of a lake file holding `records` (conformed, with dedupeId)."""
    keys = b"".join(dedupe_key(str(record["dedupeId"])) for record in records)
    meta = {KEYS_META: base64.b64encode(keys).decode("ascii")}
    first = records[0].get("receivedAt") if records else None
    if isinstance(first, datetime):
        aware = first if first.tzinfo else first.replace(tzinfo=UTC)
        meta[FIRST_ARRIVAL_META] = str(int(aware.timestamp() * 1000))
    elif isinstance(first, int):
        meta[FIRST_ARRIVAL_META] = str(first)
    return meta


def packed_keys_of(meta: Mapping[str, bytes]) -> bytes | None:
    """The header's dedupe keys packed (16 bytes each, in record order), or None when the file
    has none (written before they existed, or a merged file)."""
    raw = meta.get(KEYS_META)
    if raw is None:
        return None
    # pybase64 (SIMD), not binascii: a month's 500 headers decode in ~1 ms against ~26 (~36
    # in strict_mode), which was a fifth of a merge with no duplicate. validate=True: strict.
    try:
        packed = pybase64.b64decode(raw, validate=True)
    except binascii.Error as bad:
        raise NotAnAvroFile(f"{KEYS_META} is not base64: {bad}") from None
    if len(packed) % KEY_BYTES:
        raise NotAnAvroFile(f"{KEYS_META} is {len(packed)} bytes, not a multiple of {KEY_BYTES}")
    return packed


def keys_of(meta: Mapping[str, bytes]) -> list[bytes] | None:
    """The header's dedupe keys one by one, or None when the file has none."""
    packed = packed_keys_of(meta)
    return None if packed is None else split_keys(packed)


def first_arrival_of(meta: Mapping[str, bytes]) -> int | None:
    raw = meta.get(FIRST_ARRIVAL_META)
    return int(raw) if raw is not None and raw.isdigit() else None


# --- reading ----------------------------------------------------------------------------------


class ChunkReader:
    """Reads an object's bytes from its chunks (1 MiB from S3): holds one chunk plus the block
    being read, never the object."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""
        self._position = 0
        self.offset = 0  # bytes consumed from the object's start

    def _fill(self, wanted: int) -> bool:
        """Makes `wanted` bytes available from the position; False at the end of the object."""
        available = len(self._buffer) - self._position
        if available >= wanted:
            return True
        if not available:
            # The common case at a chunk's end: take the next chunk as it is, without copying
            # it into a joined buffer (a copy of every byte merged).
            chunk = next(self._chunks, None)
            if chunk is None:
                return False
            self._buffer, self._position = chunk, 0
            if len(chunk) >= wanted:
                return True
            available = len(chunk)
        parts = [self._buffer[self._position :]]
        while available < wanted:
            chunk = next(self._chunks, None)
            if chunk is None:
                self._buffer, self._position = b"".join(parts), 0
                return False
            parts.append(chunk)
            available += len(chunk)
        self._buffer, self._position = b"".join(parts), 0
        return True

    def at_end(self) -> bool:
        return not self._fill(1)

    def read(self, size: int) -> bytes:
        if not self._fill(size):
            raise NotAnAvroFile(f"ends at byte {self.offset + len(self._buffer)}, inside a value")
        start = self._position
        self._position += size
        self.offset += size
        return self._buffer[start : self._position]

    def read_long(self) -> int:
        # Parsed in the buffer, not a read(1) per byte: a lake header holds a few dozen varints
        # and a merge reads 500 headers twice (measured: the byte-wise loop was ~1/6 of a merge).
        self._fill(10)  # False near the end: then the buffer holds all that is left
        value, end = _varint(self._buffer, self._position, self.offset - self._position)
        self.offset += end - self._position
        self._position = end
        return value

    def skip(self, size: int) -> None:
        """Moves past `size` bytes without copying them (past a header read in one pass over
        the first chunk)."""
        while size:
            if not self._fill(1):
                raise NotAnAvroFile(f"ends at byte {self.offset}, inside a value")
            step = min(size, len(self._buffer) - self._position)
            self._position += step
            self.offset += step
            size -= step

    def read_bytes(self) -> bytes:
        size = self.read_long()
        if size < 0:
            raise NotAnAvroFile(f"a negative length at byte {self.offset}")
        return self.read(size)

    def first_chunk(self) -> bytes:
        """The object's first chunk while nothing has been read from it, else nothing."""
        if self.offset == 0 and self._fill(1) and self._position == 0:
            return self._buffer
        return b""

    def take_over(self) -> tuple[Iterator[bytes], bytes, int, int]:
        """The chunks still to come, the buffer, the position in it and the buffer's offset in
        the object, for a loop that reads on without this reader's method calls; the reader is
        not used after this (but still closed)."""
        return self._chunks, self._buffer, self._position, self.offset - self._position

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


@dataclass(frozen=True, slots=True)
class Header:
    meta: Mapping[str, bytes]
    sync: bytes
    size: int

    @property
    def schema_text(self) -> bytes:
        return self.meta.get(SCHEMA_META, b"")

    @property
    def codec(self) -> str:
        return self.meta.get(CODEC_META, b"null").decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class RawBlock:
    count: int
    data: bytes | memoryview  # as stored: compressed with the file's codec


def read_header(reader: ChunkReader) -> Header:
    # The common case in one pass over the first chunk, without a reader call per value (~27 µs
    # a lake header the other way, a fifth of a merge's inspection); anything else (a header
    # longer than the chunk, a damaged one) is read value by value, with its error.
    header = header_in(reader.first_chunk())
    if header is not None:
        reader.skip(header.size)
        return header
    return header_by_values(reader)


def header_by_values(reader: ChunkReader) -> Header:
    """read_header one value at a time, across chunks."""
    if reader.read(4) != MAGIC:
        raise NotAnAvroFile("does not start with the Avro magic bytes Obj\\x01")
    meta: dict[str, bytes] = {}
    while True:
        count = reader.read_long()
        if count == 0:
            break
        if count < 0:  # a block with its byte size (spec): the size is not needed here
            count = -count
            reader.read_long()
        for _ in range(count):
            key = reader.read_bytes().decode("utf-8")
            meta[key] = reader.read_bytes()
    if SCHEMA_META not in meta:
        raise NotAnAvroFile("has no avro.schema in its header")
    sync = reader.read(SYNC_SIZE)
    return Header(meta, sync, reader.offset)


def header_in(buf: bytes) -> Header | None:
    """The header at the start of `buf` if `buf` holds all of it and it reads as read_header
    reads it; else None (read_header then reads it from the reader, or names what is wrong)."""
    if buf[:4] != MAGIC:
        return None
    meta: dict[str, bytes] = {}
    pos, end = 4, len(buf)
    try:
        while True:
            count, pos = _varint(buf, pos, 0)
            if count == 0:
                break
            if count < 0:
                count = -count
                _, pos = _varint(buf, pos, 0)
            for _ in range(count):
                size, pos = _varint(buf, pos, 0)
                if size < 0 or pos + size > end:
                    return None
                key = buf[pos : pos + size].decode("utf-8")
                pos += size
                size, pos = _varint(buf, pos, 0)
                if size < 0 or pos + size > end:
                    return None
                meta[key] = buf[pos : pos + size]
                pos += size
    except (NotAnAvroFile, UnicodeDecodeError):
        return None
    if SCHEMA_META not in meta or pos + SYNC_SIZE > end:
        return None
    return Header(meta, buf[pos : pos + SYNC_SIZE], pos + SYNC_SIZE)


def iter_blocks(reader: ChunkReader, sync: bytes) -> Iterator[RawBlock]:
    """The blocks after a header whose sync marker is `sync`: a block's data is a view of the
    chunk holding it (copied only when it spans chunks)."""
    for count, _, pieces in walk_blocks(reader, sync):
        yield RawBlock(count, pieces[0] if len(pieces) == 1 else b"".join(pieces))


def iter_block_counts(reader: ChunkReader, header: Header) -> Iterator[int]:
    """Each block's record count, its data skipped, not copied (the merge's count check): the
    checks of walk_blocks (sizes, sync markers, the end) without a view per block piece, which
    were ~40 % of this walk and ~5 % of a merge's CPU (benchmarks/README.md, "Lake merge")."""
    return block_counts(reader, header.sync)


def block_counts(reader: ChunkReader, sync: bytes) -> Iterator[int]:
    """iter_block_counts after a header whose sync marker is `sync`."""
    chunks, buf, pos, base = reader.take_over()
    while True:
        if len(buf) - pos < BLOCK_HEAD_MAX:
            buf, pos, base = _join_next(chunks, buf, pos, base, BLOCK_HEAD_MAX)
            if pos == len(buf):
                return
        count, pos = _varint(buf, pos, base)
        size, pos = _varint(buf, pos, base)
        if count < 0 or size < 0:
            raise NotAnAvroFile(f"a block with a negative count or size at byte {base + pos}")
        pos += size
        while pos > len(buf):  # the block's data runs on into later chunks: skip them
            chunk = next(chunks, None)
            if chunk is None:
                raise NotAnAvroFile(f"ends at byte {base + len(buf)}, inside a block")
            pos -= len(buf)
            base += len(buf)
            buf = chunk
        if len(buf) - pos < SYNC_SIZE:
            buf, pos, base = _join_next(chunks, buf, pos, base, SYNC_SIZE)
        if buf[pos : pos + SYNC_SIZE] != sync:
            raise NotAnAvroFile(f"a block not followed by the sync marker at byte {base + pos}")
        pos += SYNC_SIZE
        yield count


BLOCK_HEAD_MAX = 20  # a block's count and size: two varints of at most 10 bytes


def walk_blocks(reader: ChunkReader, sync: bytes) -> Iterator[tuple[int, bytes, list[memoryview]]]:
    """Each block's record count, its head (count and size as stored) and its data as views of
    the chunks holding it, the reader's chunks taken over from where it stopped. One loop with
    the varints parsed in place, where the ChunkReader's method calls per value were ~1/6 of a
    merge's CPU (a merge walks every source's blocks, then the merged file's to count them)."""
    chunks, buf, pos, base = reader.take_over()
    while True:
        if len(buf) - pos < BLOCK_HEAD_MAX:
            buf, pos, base = _join_next(chunks, buf, pos, base, BLOCK_HEAD_MAX)
            if pos == len(buf):
                return
        start = pos
        count, pos = _varint(buf, pos, base)
        size, pos = _varint(buf, pos, base)
        head = buf[start:pos]
        if count < 0 or size < 0:
            raise NotAnAvroFile(f"a block with a negative count or size at byte {base + pos}")
        pieces = []
        view = memoryview(buf)
        while size:
            if pos == len(buf):
                chunk = next(chunks, None)
                if chunk is None:
                    raise NotAnAvroFile(f"ends at byte {base + pos}, inside a block")
                base += len(buf)
                buf, pos, view = chunk, 0, memoryview(chunk)
            step = min(size, len(buf) - pos)
            pieces.append(view[pos : pos + step])
            pos += step
            size -= step
        if len(buf) - pos < SYNC_SIZE:
            buf, pos, base = _join_next(chunks, buf, pos, base, SYNC_SIZE)
        if buf[pos : pos + SYNC_SIZE] != sync:
            raise NotAnAvroFile(f"a block not followed by the sync marker at byte {base + pos}")
        pos += SYNC_SIZE
        yield count, head, pieces


class WrittenBlockCounts:
    """The records of a container file counted from its bytes as they are written (the merge's
    count check, in place of reading the stored file back): the header as read_header reads it,
    then each block's count, size and sync marker as block_counts checks them, over writes cut
    anywhere. `feed` every write in order, then `finish`. Block data is skipped, not copied; a
    header, block head or sync marker cut by a write's end is carried to the next (a few bytes:
    the merge's writes end at blocks' ends)."""

    def __init__(self) -> None:
        self.records = 0
        self.blocks = 0
        self.offset = 0  # bytes fed
        # Where byte 0 of the errors' "at byte" is: the merged file's start, or a source's
        # while its bytes are fed (its header's size before the offset its body starts at).
        self.origin = 0
        self._sync: bytes | None = None
        self._carry = b""
        self._skip = 0  # the current block's data still to come
        self._in_block = False  # a block head read: its data, then the sync marker, to come

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        buf: bytes | bytearray | memoryview = data
        if self._carry:
            buf = self._carry + bytes(data)
        base = self.offset - len(self._carry) - self.origin  # buf[0]'s offset in the file
        self.offset += len(data)
        self._carry = b""
        pos, end = 0, len(buf)
        if self._sync is None:
            header = header_in(bytes(buf))
            if header is None:  # not all of it yet (a damaged one: finish() says so)
                self._carry = bytes(buf)
                return
            self._sync, pos = header.sync, header.size
        while True:
            if self._skip:
                step = min(self._skip, end - pos)
                pos += step
                self._skip -= step
                if self._skip:
                    return
            if self._in_block:
                if end - pos < SYNC_SIZE:
                    self._carry = bytes(buf[pos:])
                    return
                if buf[pos : pos + SYNC_SIZE] != self._sync:
                    raise NotAnAvroFile(
                        f"a block not followed by the sync marker at byte {base + pos}"
                    )
                pos += SYNC_SIZE
                self._in_block = False
            if pos == end:
                return
            if end - pos < BLOCK_HEAD_MAX and not _two_varints_in(buf, pos, end):
                self._carry = bytes(buf[pos:])
                return
            count, pos = _varint(buf, pos, base)  # type: ignore[arg-type]
            size, pos = _varint(buf, pos, base)  # type: ignore[arg-type]
            if count < 0 or size < 0:
                raise NotAnAvroFile(f"a block with a negative count or size at byte {base + pos}")
            self.records += count
            self.blocks += 1
            self._skip, self._in_block = size, True

    def at_block_end(self) -> bool:
        """Whether the bytes fed so far end with a whole header or block."""
        return self._sync is not None and not (self._carry or self._skip or self._in_block)

    def finish(self) -> int:
        """The records counted, once the file's last byte has been fed."""
        if self._sync is None:
            raise NotAnAvroFile(f"no whole container header in its {self.offset} bytes")
        if not self.at_block_end():
            raise NotAnAvroFile(f"ends at byte {self.offset - self.origin}, inside a block")
        return self.records


def _two_varints_in(buf: bytes | bytearray | memoryview, pos: int, end: int) -> bool:
    """Whether two varints end before `end` (a block head not cut by a write's end)."""
    ends = 0
    for i in range(pos, end):
        if buf[i] < 0x80:
            ends += 1
            if ends == 2:
                return True
    return False


def _join_next(
    chunks: Iterator[bytes], buf: bytes, pos: int, base: int, wanted: int
) -> tuple[bytes, int, int]:
    """At least `wanted` bytes from `pos` in one buffer (fewer at the object's end): the rest
    of `buf` joined with the next chunks. Only a block head or sync marker cut by a chunk's end
    pays this copy."""
    parts, available = [buf[pos:]], len(buf) - pos
    base += pos
    while available < wanted:
        chunk = next(chunks, None)
        if chunk is None:
            break
        parts.append(chunk)
        available += len(chunk)
    return b"".join(parts), 0, base


def _varint(buf: bytes, pos: int, base: int) -> tuple[int, int]:
    """The zig-zag varint at `pos` and the position after it."""
    # Values of up to 3 bytes without the loop: a lake block's count (~200: 2 bytes) and size
    # (~13 KB: 3 bytes), read for every block of every source and of the merged file (its count
    # check); the loop cost ~0.8 µs more per block head here (benchmarks/README.md).
    if pos + 3 <= len(buf):
        first = buf[pos]
        if first < 0x80:
            return (first >> 1) ^ -(first & 1), pos + 1
        second = buf[pos + 1]
        if second < 0x80:
            n = (first & 0x7F) | (second << 7)
            return (n >> 1) ^ -(n & 1), pos + 2
        third = buf[pos + 2]
        if third < 0x80:
            n = (first & 0x7F) | ((second & 0x7F) << 7) | (third << 14)
            return (n >> 1) ^ -(n & 1), pos + 3
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise NotAnAvroFile(f"ends at byte {base + pos}, inside a value")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
        if shift > 63:
            raise NotAnAvroFile(f"a varint longer than 10 bytes at byte {base + pos}")


# --- writing ----------------------------------------------------------------------------------


def header_bytes(meta: Mapping[str, bytes], sync: bytes) -> bytes:
    parts = [MAGIC, encode_long(len(meta))]
    for key, value in meta.items():
        encoded_key = key.encode("utf-8")
        parts += [encode_long(len(encoded_key)), encoded_key, encode_long(len(value)), value]
    parts += [encode_long(0), sync]
    return b"".join(parts)


def block_bytes(count: int, data: bytes, sync: bytes) -> bytes:
    return b"".join((encode_long(count), encode_long(len(data)), data, sync))


# --- codecs (raw DEFLATE per the spec: no zlib header, hence wbits -15) -------------------------


def decompress(codec: str, data: bytes | memoryview) -> bytes:
    if codec == "null":
        return bytes(data)
    if codec == "deflate":
        return zlib.decompress(data, -15)
    raise NotAnAvroFile(f"codec {codec!r} is not supported (null, deflate)")


def compress(codec: str, data: bytes, level: int | None = None) -> bytes:
    if codec == "null":
        return data
    if codec == "deflate":
        compressor = zlib.compressobj(-1 if level is None else level, zlib.DEFLATED, -15)
        return compressor.compress(data) + compressor.flush()
    raise ValueError(f"codec {codec!r} is not supported (null, deflate)")


def merged_meta(manifest: Mapping[str, Any]) -> bytes:
    return json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode("utf-8")
