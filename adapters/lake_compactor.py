"""LakeCompactor and MergeManifests: merge a prefix's Avro files block by block, over any
ObjectStore (S3, or the in-memory one in tests and benchmarks).

A merge reads each source twice, or once when it is held (below, "One read"):
1. `inspect`: the header only, for a file whose header lists its records' dedupe keys (see
   adapters/avro_container.py): its schema is judged, its keys go to the DuplicateIndex, which
   then says which positions of which files repeat an earlier record (domain.lake.DropPlan).
   A merged file (no header keys) gives its keys from its sidecar when the sidecar matches the
   seal in the merged file's manifest (adapters/lake_sidecar.py); a file without either (an
   older file, a merged file without a trusted sidecar) has its blocks decoded with a
   projection on `dedupeId` here instead. Every file's keys also go to the KeyLog;
2. `write_merged`: first the merged file's sidecar (the kept keys, from the KeyLog), complete;
   then every block of a file with nothing to drop, in the merged file's schema and
   codec, is copied as stored (count, size, data; the merged file's own sync marker), neither
   decompressed nor decoded; a block holding a dropped position is decompressed, its records'
   boundaries found by the projection decode (checking each key against the header's list, or
   the logged keys for a file without one: a wrong sidecar can never drop the wrong record), the
   kept records' bytes joined and compressed again: records are never re-encoded;
   - a file written with an older schema the current one can read (schema resolution): its
     records are decoded with fastavro into the current schema and encoded again;
   - another codec: decompressed and compressed, not decoded.

One read: the small sources (<= 4 MiB each: save_campaign_data's files, not merged days) are
read whole by the inspection, one GET, and held for the writing, up to `hold_bytes` in all
(64 MiB: a 500-file month of ~88 KB files is ~44 MB); the rest are read twice as above. On S3
a GET costs the client ~2.5 ms of CPU here (botocore against the emulator, benchmarks/README.md
"Lake merge"), ~8x a source's whole merge work on local files: one GET a source instead of two
is the largest cut of a production merge's CPU. A held source is written from the bytes
inspected, so its header is not compared again: a source rewritten after its inspection (a late
replay) is merged as it was inspected, the merged file's manifest names the ETag it was listed
with, and the move (domain/workers/move_merged_avro_files.py) leaves the rewritten object for
the next merge. A source not held is still refused when its header changed. One merge at a time per
compactor (what is held belongs to the merge between its inspect and write_merged).

The count check: the merged file's blocks are walked as they are written (WrittenBlockCounts,
its own parse of the bytes, not the writer's tally) and must count what was written, else the
upload is aborted before the file appears; the store then checks that what it stored is those
bytes (S3: the size and the CRC-32 of every part, after the upload completes; ObjectMismatch
removes the file and its sidecar). It replaced reading the whole merged file back to walk its
block counts: one GET of ~44 MB for a 500-file month, the walk alone seeing no changed byte
inside a block, which the checksums see.

Memory: the sources held (at most `hold_bytes`), one chunk of the object being read (1 MiB
from S3), one block (~64 KiB before compression as save_campaign_data writes them), the merged
object's upload parts (S3: at most 3 x 8 MiB, 2 uploading in the background and 1 filling,
adapters/aws/s3.py), and the DropPlan (4 B per dropped record with the production index).
Nothing else grows with the bytes merged.
"""

from __future__ import annotations

import hashlib
import io
import json
import zlib
from bisect import bisect_left
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
from returns.result import Failure, Result, Success

from adapters.avro import SCHEMA_DIR, load_schema
from adapters.avro_container import (
    CODEC_META,
    MERGED_META,
    SCHEMA_META,
    SYNC_SIZE,
    ChunkReader,
    Header,
    NotAnAvroFile,
    RawBlock,
    WrittenBlockCounts,
    block_bytes,
    compress,
    decompress,
    first_arrival_of,
    header_bytes,
    iter_block_counts,
    iter_blocks,
    keys_of,
    merged_meta,
    packed_keys_of,
    read_header,
    walk_blocks,
)
from adapters.avro_resolution import RESOLVE, CurrentSchema, judge
from adapters.lake_reads import (
    READ_AHEAD_MAX_BYTES,
    chunks_after,
    head_first,
    head_size,
    lazy_chunks,
    then_rest,
)
from adapters.lake_sidecar import seal_json, seal_of, unlisted_keys, write_sidecar
from adapters.read_ahead import read_ahead
from domain.lake import (
    KEY_BYTES,
    DropPlan,
    MergedFile,
    MergedManifest,
    MergeRefusal,
    SourceEntry,
    SourceFile,
    dedupe_key,
    split_keys,
)
from domain.models import ObjectInfo, ObjectMismatch, ObjectNotFound, ObjectRef
from domain.ports import DuplicateIndex, KeyLog, ObjectStore
from domain.records import DEDUPE_FIELD

AVRO_CONTENT_TYPE = "avro/binary"
# Sources held from the inspection to the writing (module docstring, "One read"): a 500-file
# month of save_campaign_data's files is ~44 MB; the merge's Lambda has 3,008 MB.
HOLD_BYTES = 64 * 1024 * 1024


class _Refused(Exception):
    """Carries a refusal out of the merged object's writer, which then aborts the upload."""

    def __init__(self, refusal: MergeRefusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


class AvroLakeCompactor:
    """Block-level merges of lake files (domain.ports.LakeCompactor and MergeManifests)."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        schema_dir: Path = SCHEMA_DIR,
        codec: str = "deflate",
        compression_level: int | None = None,
        read_ahead: int = 8,
        abort_uploads: Callable[[ObjectRef], int] | None = None,
        hold_bytes: int = HOLD_BYTES,
    ) -> None:
        self._store = store
        # S3: the store's abort_open_uploads; None where a store has no multipart uploads.
        self._abort_uploads = abort_uploads
        self._schema_dir = schema_dir
        self.codec = codec
        self.compression_level = compression_level
        # Sources fetched ahead while one is merged (adapters/read_ahead.py); 0: none. Measured
        # with 20 ms a GET (S3's order): 500 sources merged in 20.9 s one by one, 5.2 s with 4
        # ahead, 2.7 s with 8. On local files there is no wait to hide and the threads' GIL
        # handoffs doubled a 500-file merge's time, so the benchmark reads local files with 0.
        self.read_ahead = read_ahead
        # Small sources read whole by the inspection and held for the writing, up to this many
        # bytes in all (module docstring, "One read"); 0: every source read twice.
        self.hold_bytes = hold_bytes
        self._hold: frozenset[str] = frozenset()
        self._held: dict[str, list[bytes]] = {}
        self._current: dict[str, CurrentSchema] = {}
        # Writer schema text -> verdict, per type: 500 files share one or two schemas, and
        # parsing one costs more than copying a file's blocks.
        self._verdicts: dict[tuple[str, bytes], str | MergeRefusal] = {}

    # --- schemas ------------------------------------------------------------------------------

    def _schema(self, record_type: str) -> CurrentSchema:
        current = self._current.get(record_type)
        if current is None:
            current = CurrentSchema.of(load_schema(self._schema_dir / f"{record_type}.avsc"))
            self._current[record_type] = current
        return current

    def _verdict(self, record_type: str, header: Header, key: str) -> str | MergeRefusal:
        cache_key = (record_type, header.schema_text)
        verdict = self._verdicts.get(cache_key)
        if verdict is None:
            verdict = judge(self._schema(record_type), header.schema_text, key)
            self._verdicts[cache_key] = verdict
        if isinstance(verdict, MergeRefusal):
            return MergeRefusal(verdict.kind, f"{key}: {verdict.message}", key)
        return verdict

    def projection_json(self, record_type: str) -> str:
        """The type's record with only `dedupeId`, as Avro schema JSON (Athena's temporary
        tables read the lake through it: schema resolution skips every other field)."""
        raw = load_schema(self._schema_dir / f"{record_type}.avsc")
        return json.dumps(
            {
                "type": "record",
                "name": raw["name"],
                **({"namespace": raw["namespace"]} if raw.get("namespace") else {}),
                "fields": [{"name": DEDUPE_FIELD, "type": "string"}],
            },
            separators=(",", ":"),
        )

    # --- LakeCompactor --------------------------------------------------------------------------

    def inspect(
        self,
        record_type: str,
        sources: Sequence[ObjectInfo],
        keys: DuplicateIndex,
        log: KeyLog,
        heartbeat: Callable[[], None] | None = None,
    ) -> Result[tuple[SourceFile, ...], MergeRefusal]:
        """Every source's header: schema checked, records counted, arrival read, and its records'
        dedupe keys given to `keys` and `log`: from the header's list (no block read), a merged
        file's trusted sidecar, or else by the projection on `dedupeId`, block by block.
        Nothing is written."""
        current = self._schema(record_type)
        found: list[SourceFile] = []
        self._held.clear()
        self._hold = _to_hold(sources, self.hold_bytes)
        heads = read_ahead(self._fetch_head, sources, ahead=self.read_ahead)
        with closing(heads):
            for info, head in heads:
                if heartbeat is not None:
                    heartbeat()
                refusal = self._inspect_one(record_type, current, info, head, keys, log, found)
                if refusal is not None:
                    self._held.clear()
                    return Failure(refusal)
        return Success(tuple(found))

    def _fetch_head(self, info: ObjectInfo) -> list[bytes]:
        """A source to hold, whole (one GET); any other, its head (a ranged GET)."""
        if info.ref.key in self._hold:
            return list(self._store.iter_chunks(info.ref))
        return list(self._store.iter_chunks(info.ref, 0, head_size(info.size)))

    def _fingerprint(self, info: ObjectInfo, head: list[bytes], size: int) -> bytes:
        """The CRC-32 of the header's bytes as stored: from the head fetched, or for a longer
        header by one more ranged read."""
        crc, left = 0, size
        for chunk in head:
            crc = zlib.crc32(memoryview(chunk)[:left], crc)
            left -= min(left, len(chunk))
        if left:
            crc = 0
            for chunk in self._store.iter_chunks(info.ref, 0, size):
                crc = zlib.crc32(chunk, crc)
        return crc.to_bytes(4, "big")

    def _fetch_whole(self, source: SourceFile) -> tuple[list[bytes] | None, bool]:
        """The source's bytes held since the inspection (True: not fetched again); else, a
        source small enough to hold (save_campaign_data's files are ~0.1-1 MB) fetched now; a
        larger one (a merged day, in a month's merge) streams when its turn comes (None)."""
        held = self._held.pop(source.info.ref.key, None)
        if held is not None:
            return held, True
        if source.info.size > READ_AHEAD_MAX_BYTES:
            return None, False
        return list(self._store.iter_chunks(source.info.ref)), False

    def _inspect_one(
        self,
        record_type: str,
        current: CurrentSchema,
        info: ObjectInfo,
        head: Callable[[], list[bytes]],
        keys: DuplicateIndex,
        log: KeyLog,
        found: list[SourceFile],
    ) -> MergeRefusal | None:
        head_chunks = head()
        whole = info.ref.key in self._hold
        reader = ChunkReader(
            head_chunks
            if whole
            else then_rest(head_chunks, self._store, info.ref, head_size(info.size))
        )
        try:
            header = read_header(reader)
            # A held source is written from the bytes inspected: nothing to compare them with.
            fingerprint = b"" if whole else self._fingerprint(info, head_chunks, header.size)
            verdict = self._verdict(record_type, header, info.ref.key)
            if isinstance(verdict, MergeRefusal):
                return verdict
            if header.codec not in ("null", "deflate"):
                return _unreadable(info, f"codec {header.codec!r} is not supported")
            listed = packed_keys_of(header.meta)
            keys_from = ""
            if listed is None:
                sidecar, keys_from = unlisted_keys(self._store, info, header.meta)
                if sidecar is None:
                    writer = _parsed_writer(header) if verdict == RESOLVE else current.parsed
                    scanned = [
                        _scan(decompress(header.codec, block.data), block.count, writer, current)[1]
                        for block in iter_blocks(reader, header.sync)
                    ]
                    packed = b"".join(key for block_keys in scanned for key in block_keys)
                else:
                    packed = sidecar
            else:
                packed = listed
            keys.add(info.ref.key, packed)
            log.add(info.ref.key, packed)
        except (NotAnAvroFile, ValueError, EOFError, zlib.error) as bad:
            return _unreadable(info, str(bad))
        except ObjectNotFound:
            return _unreadable(info, "disappeared while the merge read it")
        finally:
            reader.close()
        if whole:
            self._held[info.ref.key] = head_chunks
        found.append(
            SourceFile(
                info,
                len(packed) // KEY_BYTES,
                first_arrival_of(header.meta),
                keyed=listed is not None,
                resolved=verdict == RESOLVE,
                fingerprint=fingerprint,
                header_size=header.size,
                codec=header.codec,
                keys_from=keys_from,
                sync=header.sync,
            )
        )
        return None

    def write_merged(
        self,
        record_type: str,
        prefix: str,
        files: Sequence[SourceFile],
        target: ObjectRef,
        drops: DropPlan,
        log: KeyLog,
        sidecar: ObjectRef,
        heartbeat: Callable[[], None] | None = None,
    ) -> Result[MergedFile, MergeRefusal]:
        """The merged file of `files` (in that order) minus `drops` at `target`, written
        completely (multipart) or not at all: a refusal or an error part-way aborts the upload.
        Its sidecar (the kept keys, from `log`) is written completely before it is begun: the
        merged file's header seals it (adapters/lake_sidecar.py)."""
        current = self._schema(record_type)
        sync = self._sync_for(target, files)
        seal = write_sidecar(self._store, sidecar, files, drops, log)
        manifest = {
            "recordType": record_type,
            "prefix": prefix,
            "sources": [[f.info.ref.key, f.info.etag or "", f.info.size, f.records] for f in files],
            "sidecar": seal_json(seal),
        }
        meta = {
            SCHEMA_META: current.text,
            CODEC_META: self.codec.encode("ascii"),
            MERGED_META: merged_meta(manifest),
        }
        tally = _Tally()
        # The count check (module docstring): the merged bytes' blocks walked as they are
        # written, a parse of its own, not the tally.
        counted = WrittenBlockCounts()
        try:
            bodies = read_ahead(self._fetch_whole, files, ahead=self.read_ahead)
            with self._store.open_writer(target, AVRO_CONTENT_TYPE) as out, closing(bodies):

                def write(data: bytes | memoryview) -> int:
                    counted.feed(data)
                    return int(out.write(data))

                tally.bytes += write(header_bytes(meta, sync))
                for source, body in bodies:
                    if heartbeat is not None:
                        heartbeat()
                    self._copy_file(
                        record_type,
                        source,
                        body,
                        drops.of(source.info.ref.key),
                        log,
                        sync,
                        write,
                        tally,
                        counted,
                    )
                # Before the upload completes: a merged file that does not walk, or walks to
                # other counts than were written, never appears.
                written = _walked(target, counted)
                if written != tally.records:
                    raise _Refused(_miscounted(target, written, tally.records))
        except _Refused as refused:
            # No merged file names the sidecar, so it would never be trusted; tidy it away.
            self._store.delete(sidecar)
            return Failure(refused.refusal)
        except ObjectMismatch as stored:
            # The store holds other bytes than were written (S3: its checksum or size, checked
            # after the upload completed): nothing points at them yet.
            self._store.delete(target)
            self._store.delete(sidecar)
            return Failure(MergeRefusal("count_mismatch", str(stored)))
        finally:
            self._held.clear()
        return Success(
            MergedFile(
                target,
                tally.records,
                tally.duplicates,
                tally.bytes,
                tally.copied,
                tally.rewritten,
                seal,
                written_records=written,
            )
        )

    def _copy_file(
        self,
        record_type: str,
        source: SourceFile,
        body: Callable[[], tuple[list[bytes] | None, bool]],
        drops: Sequence[int],
        log: KeyLog,
        sync: bytes,
        write: Callable[[bytes | memoryview], int],
        tally: _Tally,
        counted: WrittenBlockCounts,
    ) -> None:
        """One source's blocks into the merged file: a block none of whose positions is in
        `drops` is copied as stored (when codec and schema are the merged file's), any other is
        rewritten without the dropped records. `body` gives the source's chunks fetched ahead,
        or None to stream them now."""
        info = source.info
        current = self._schema(record_type)
        reader: ChunkReader | None = None
        try:
            held, inspected = body()
            reader = ChunkReader(lazy_chunks(self._store, info.ref) if held is None else held)
            raw = reader.read(source.header_size)
            if not inspected:
                # Held bytes are the inspected bytes: there is nothing to compare.
                self._same_header(source, raw)
            writer_schema = _parsed_writer(_header_of(raw)) if source.resolved else current.parsed
            as_stored = source.codec == self.codec and not source.resolved
            # A held file with nothing to drop whose sync marker is the merged file's: its bytes
            # after the header are the merged file's bytes for it. Its blocks are still walked
            # (each one's size, sync marker and count checked), then written as the views held.
            whole = held is not None and as_stored and not drops and source.sync == sync
            listed: list[bytes] | None = None
            position = 0
            # Blocks copied as stored are joined and written once per run of them: their heads
            # (count, size) as stored, their data as views of the chunks read, the merged file's
            # sync marker after each. No varint is encoded, no block copied on its own.
            stored: list[bytes | memoryview] = []
            if whole:
                # Written as the views held, its blocks walked once, by the count check's walk
                # of the merged bytes (`counted`), which checks each one's size, sync marker and
                # count as a walk of the source would: the bytes are the same.
                records, blocks = counted.records, counted.blocks
                # Its errors name bytes of the source, not of the merged file.
                counted.origin = counted.offset - source.header_size
                for view in chunks_after(held, source.header_size):  # type: ignore[arg-type]
                    tally.bytes += write(view)
                if not counted.at_block_end():
                    raise NotAnAvroFile(f"ends at byte {info.size}, inside a block")
                counted.origin = 0
                position = counted.records - records
                tally.records += position
                tally.copied += counted.blocks - blocks
            for count, head, pieces in () if whole else walk_blocks(reader, raw[-SYNC_SIZE:]):
                start = bisect_left(drops, position)
                stop = bisect_left(drops, position + count, start)
                if start == stop and as_stored:
                    if not whole:
                        stored += (head, *pieces, sync)
                    tally.records += count
                    tally.copied += 1
                    position += count
                    continue
                if stored:
                    tally.bytes += write(b"".join(stored))
                    stored = []
                block = RawBlock(count, pieces[0] if len(pieces) == 1 else b"".join(pieces))
                dropped = {drops[i] - position for i in range(start, stop)}
                if source.keyed and listed is None:
                    listed = keys_of(_header_of(raw).meta)
                block_keys = (
                    listed[position : position + count]
                    if listed
                    # No header keys: the keys the drops were planned from (a sidecar's).
                    else split_keys(log.read(info.ref.key, position, position + count))
                )
                kept = self._kept(
                    decompress(source.codec, block.data),
                    block,
                    dropped,
                    block_keys,
                    writer_schema,
                    current,
                    source,
                )
                position += block.count
                tally.duplicates += len(dropped)
                tally.rewritten += 1
                if kept:
                    data = compress(self.codec, b"".join(kept), self.compression_level)
                    tally.bytes += write(block_bytes(len(kept), data, sync))
                    tally.records += len(kept)
            if stored:
                tally.bytes += write(b"".join(stored))
            if position != source.records:
                raise _Refused(
                    _unreadable(
                        info, f"holds {position} records, its header lists {source.records}"
                    )
                )
        except (NotAnAvroFile, ValueError, EOFError, zlib.error) as bad:
            raise _Refused(_unreadable(info, str(bad))) from bad
        except ObjectNotFound as gone:
            raise _Refused(_unreadable(info, "disappeared while the merge read it")) from gone
        finally:
            if reader is not None:
                reader.close()

    def _sync_for(self, target: ObjectRef, files: Sequence[SourceFile]) -> bytes:
        """The merged file's sync marker: the one its sources copied as stored share (lake files
        of a schema all carry the schema's, adapters/avro.sync_marker), so each of them with
        nothing to drop is copied whole; else one derived from the target and sources. Either
        way a re-run over the same files writes the same bytes."""
        shared = {f.sync for f in files if f.codec == self.codec and not f.resolved}
        if len(shared) == 1 and len(next(iter(shared))) == SYNC_SIZE:
            return shared.pop()
        digest = hashlib.blake2b(digest_size=16, person=b"cw-merged-sync")
        digest.update(target.key.encode("utf-8"))
        for f in files:
            digest.update(f"\n{f.info.ref.key}\t{f.info.etag}\t{f.info.size}".encode())
        return digest.digest()

    def _same_header(self, source: SourceFile, raw: bytes) -> None:
        """The header's bytes are the inspected ones, else the file was rewritten since (a late
        replay) and is refused: its drop positions would name other records. CRC-32 of the bytes
        as stored: not a defence against forgery, a check that the file read twice is the same
        file (a keyed BLAKE2b cost ~45 ns a record; re-encoding the header to hash a canonical
        form, ~15)."""
        if zlib.crc32(raw).to_bytes(4, "big") != source.fingerprint:
            raise _Refused(_unreadable(source.info, "it changed while the merge ran"))

    def _kept(
        self,
        plain: bytes,
        block: RawBlock,
        dropped: set[int],
        block_keys: Sequence[bytes] | None,
        writer_schema: Any,
        current: CurrentSchema,
        source: SourceFile,
    ) -> list[bytes]:
        """The block's records minus the dropped positions, as Avro bytes of the current schema."""
        if source.resolved:
            stream = io.BytesIO(plain)
            kept = []
            for position in range(block.count):
                datum = fastavro.schemaless_reader(stream, writer_schema, current.parsed)
                if position not in dropped:
                    out = io.BytesIO()
                    fastavro.schemaless_writer(out, current.parsed, datum)
                    kept.append(out.getvalue())
            return kept
        bounds, found = _scan(plain, block.count, writer_schema, current)
        if block_keys is not None and found != list(block_keys):
            # A header that lists other ids than the data holds would drop the wrong records.
            listed_in = "header's" if source.keyed else f"{source.keys_from}'s"
            raise _Refused(
                _unreadable(source.info, f"its {listed_in} dedupe keys do not match its records")
            )
        return [plain[start:end] for i, (start, end) in enumerate(bounds) if i not in dropped]

    def reap_uploads(self, targets: Sequence[ObjectRef]) -> None:
        if self._abort_uploads is None:
            return
        for ref in targets:
            self._abort_uploads(ref)

    def count_records(self, ref: ObjectRef) -> int:
        """Records in a container file, from its block counts alone (no block is decompressed)."""
        reader = ChunkReader(lazy_chunks(self._store, ref))
        try:
            header = read_header(reader)
            return sum(iter_block_counts(reader, header))
        finally:
            reader.close()

    # --- MergeManifests -------------------------------------------------------------------------

    def read_manifest(self, ref: ObjectRef) -> MergedManifest | None:
        """What a merged file says it was built from; None when there is no such file."""
        reader = ChunkReader(head_first(self._store, ref))
        try:
            header = read_header(reader)
        except ObjectNotFound:
            return None
        finally:
            reader.close()
        raw = header.meta.get(MERGED_META)
        if raw is None:
            raise NotAnAvroFile(f"{ref.uri} is not a merged file (no {MERGED_META} in its header)")
        manifest = json.loads(raw)
        return MergedManifest(
            manifest["recordType"],
            manifest["prefix"],
            tuple(SourceEntry(k, e, int(s), int(n)) for k, e, s, n in manifest["sources"]),
            seal_of(manifest),
        )


@dataclass
class _Tally:
    records: int = 0
    duplicates: int = 0
    bytes: int = 0
    copied: int = 0
    rewritten: int = 0


def _to_hold(sources: Sequence[ObjectInfo], budget: int) -> frozenset[str]:
    """The sources (keys) read whole once and held from the inspection to the writing: the
    small ones, in listing order, until `budget` bytes."""
    hold = []
    for info in sources:
        if info.size <= READ_AHEAD_MAX_BYTES and info.size <= budget:
            hold.append(info.ref.key)
            budget -= info.size
    return frozenset(hold)


def _scan(
    plain: bytes, count: int, writer_schema: Any, current: CurrentSchema
) -> tuple[list[tuple[int, int]], list[bytes]]:
    """Each record's byte range and dedupe key, decoding only `dedupeId` (the projection)."""
    stream = io.BytesIO(plain)
    # The writer's record name is the current one (checked by _judge), so one projection
    # serves the current schema and every older one.
    projection = current.projection
    bounds = []
    keys = []
    for _ in range(count):
        start = stream.tell()
        datum = fastavro.schemaless_reader(stream, writer_schema, projection)
        bounds.append((start, stream.tell()))
        keys.append(dedupe_key(str(datum[DEDUPE_FIELD])))  # type: ignore[index,call-overload]
    if stream.tell() != len(plain):
        raise NotAnAvroFile(f"a block holds more bytes than its {count} records")
    return bounds, keys


def _header_of(raw: bytes) -> Header:
    header = read_header(ChunkReader([raw]))
    if header.size != len(raw):
        raise NotAnAvroFile(f"its header is {header.size} bytes, not {len(raw)}")
    return header


def _parsed_writer(header: Header) -> Any:
    return fastavro.parse_schema(json.loads(header.schema_text))


def _walked(target: ObjectRef, counted: WrittenBlockCounts) -> int:
    try:
        return counted.finish()
    except NotAnAvroFile as bad:
        raise _Refused(
            MergeRefusal("count_mismatch", f"{target.uri}: its bytes as written {bad}")
        ) from bad


def _miscounted(target: ObjectRef, walked: int, tallied: int) -> MergeRefusal:
    return MergeRefusal(
        "count_mismatch",
        f"{target.uri}: its blocks as written hold {walked:,} records, the merge wrote {tallied:,}",
    )


def _unreadable(info: ObjectInfo, why: str) -> MergeRefusal:
    return MergeRefusal("unreadable", f"{info.ref.key}: {why}", info.ref.key)
