"""The data lake's compaction rules (use cases 6 and 7): prefixes, where merged and archived files
live, which copy of a duplicated record survives. Pure: no Avro, no S3 here.

Layout (docs/data-lake.md), in the campaign-data bucket:
- sources, as save_campaign_data writes them: `avro/{type}/YYYY/MM/DD/{shard}-{firstSeq}.avro`;
- merged: `avro/{type}/merged/{prefix}.avro`, e.g. `avro/registration/merged/2024/05/03.avro`
  (daily) and `avro/registration/merged/2024/05.avro` (monthly). `merged` is never a year, so a
  daily listing (`avro/{type}/2024/05/03/`) never sees a merged file, and a re-run of a day's
  merge never merges its own output;
- a merged file's sidecar (the kept records' dedupe keys, packed): `avro/merged-keys/{type}/
  {prefix}.keys`, outside the type's folder, because Athena reads every object under a table's
  location (a `.keys` among the days' merged files would be read as Avro by a month's table);
- archived: `avro/archived/{type}/{the key below avro/{type}/}`, e.g.
  `avro/archived/registration/2024/05/03/{name}.avro` (the original's `avro/archived/...`);
  an archived sidecar: `avro/archived/merged-keys/{type}/{prefix}.keys`.

A day's merge reads the day's sources. A month's merge reads what is left of the month's sources
(late files) and the month's daily merged files (`avro/{type}/merged/YYYY/MM/`), so the month's
file is built from the days' compacted files instead of the archive.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import Enum

from domain.models import ObjectInfo, ObjectRef
from domain.records import RECORD_TYPES

LAKE_BASE = "avro/"
DEFAULT_ARCHIVE_BASE = "avro/archived/"
MERGED_DIR = "merged"
SIDECAR_DIR = "merged-keys"
SIDECAR_SUFFIX = ".keys"
KEY_BYTES = 16


class MergeKind(Enum):
    DAILY = "daily"
    MONTHLY = "monthly"


def previous_period_prefix(kind: MergeKind, now: datetime) -> str:
    """`YYYY/MM/DD` of the day before `now` (daily) or `YYYY/MM` of the month before (monthly),
    in UTC: the schedules run at 10:00 on each day and 09:00 on the 2nd, after the period ended."""
    today = now.astimezone(UTC).date()
    if kind is MergeKind.DAILY:
        day = today - timedelta(days=1)
        return f"{day.year:04d}/{day.month:02d}/{day.day:02d}"
    last_of_previous = today.replace(day=1) - timedelta(days=1)
    return f"{last_of_previous.year:04d}/{last_of_previous.month:02d}"


def parse_prefix(text: str) -> str | None:
    """A valid `YYYY/MM/DD` or `YYYY/MM` prefix (slashes around it tolerated), or None."""
    parts = text.strip().strip("/").split("/")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
        return None
    if len(parts[0]) != 4 or any(len(p) != 2 for p in parts[1:]):
        return None
    try:
        date(int(parts[0]), int(parts[1]), int(parts[2]) if len(parts) == 3 else 1)
    except ValueError:
        return None
    return "/".join(parts)


@dataclass(frozen=True, slots=True)
class LakeLayout:
    """Where a type's sources, merged files and archive live in the bucket."""

    bucket: str
    archive_base: str = DEFAULT_ARCHIVE_BASE

    def type_root(self, record_type: str) -> str:
        return f"{LAKE_BASE}{record_type}/"

    def source_prefixes(self, record_type: str, prefix: str) -> tuple[str, str]:
        """What a merge of `prefix` reads: the sources below it and the merged files of its
        sub-periods (none for a day). Both end in '/', so `2024/05` never matches `2024/05.avro`
        nor `2024/050`."""
        root = self.type_root(record_type)
        return f"{root}{prefix}/", f"{root}{MERGED_DIR}/{prefix}/"

    def merged_ref(self, record_type: str, prefix: str) -> ObjectRef:
        return ObjectRef(self.bucket, f"{self.type_root(record_type)}{MERGED_DIR}/{prefix}.avro")

    def sidecar_ref(self, record_type: str, prefix: str) -> ObjectRef:
        """Where the merged file of `prefix` keeps its sidecar (its kept keys, packed)."""
        return ObjectRef(self.bucket, f"{self._sidecar_root(record_type)}{prefix}{SIDECAR_SUFFIX}")

    def sidecar_of(self, record_type: str, key: str) -> ObjectRef | None:
        """The sidecar of the merged file at `key`; None when `key` is not a merged file (a
        source save_campaign_data wrote has none)."""
        merged_root = f"{self.type_root(record_type)}{MERGED_DIR}/"
        if not (key.startswith(merged_root) and key.endswith(".avro")):
            return None
        return self.sidecar_ref(record_type, key[len(merged_root) : -len(".avro")])

    def _sidecar_root(self, record_type: str) -> str:
        return f"{LAKE_BASE}{SIDECAR_DIR}/{record_type}/"

    def archive_ref(self, record_type: str, source: ObjectRef) -> ObjectRef:
        root = self.type_root(record_type)
        sidecars = self._sidecar_root(record_type)
        if source.key.startswith(sidecars):
            rest = source.key[len(sidecars) :]
            return ObjectRef(self.bucket, f"{self.archive_base}{SIDECAR_DIR}/{record_type}/{rest}")
        if not source.key.startswith(root):
            raise ValueError(f"{source.uri} is not in the {record_type} lake ({root})")
        return ObjectRef(self.bucket, f"{self.archive_base}{record_type}/{source.key[len(root) :]}")


def dedupe_key(dedupe_id: str) -> bytes:
    """The 16-byte key a record's dedupeId is compared by (BLAKE2b-128 of its UTF-8).

    Fixed-size keys keep the merge's index small and let save_campaign_data list a file's ids
    in its header compactly. Two different ids share a key with probability 2**-128 per pair,
    the same odds the content-hash dedupeId itself rests on.
    """
    return hashlib.blake2b(
        dedupe_id.encode("utf-8", "surrogatepass"), digest_size=KEY_BYTES, person=b"cw-dedupe-id"
    ).digest()


class FirstWins:
    """Which records of a merge are duplicates: each key's first occurrence (in the order the
    merge feeds them) is kept, every later one dropped.

    The rule in plain Python, fed block by block; FirstWinsIndex below runs it over whole files.
    Memory: one key (16 B, ~90 B with the set's overhead) per distinct record seen. `watch`
    narrows it to the keys known to repeat (the Athena engine finds them): only those are held,
    and only those are ever dropped.
    """

    def __init__(self, *, watch: frozenset[bytes] | None = None) -> None:
        self._seen: set[bytes] = set()
        self._watch = watch
        self.dropped = 0

    def admit(self, keys: Sequence[bytes]) -> list[int]:
        """The positions in `keys` to drop (ascending; empty when none repeats)."""
        seen = self._seen
        candidates = keys if self._watch is None else [k for k in keys if k in self._watch]
        if seen.isdisjoint(candidates):
            before = len(seen)
            seen.update(candidates)
            if len(seen) - before == len(candidates):
                # The common case (no key repeats), decided by two C-level set operations
                # instead of a Python loop over 16-byte keys.
                return []
            # Repeats only among these keys: none was seen before, so undoing the update is
            # exact, and the loop below finds them.
            seen.difference_update(candidates)
        return self._slow(keys)

    def _slow(self, keys: Sequence[bytes]) -> list[int]:
        seen = self._seen
        watch = self._watch
        drop = []
        for position, key in enumerate(keys):
            if watch is not None and key not in watch:
                continue
            if key in seen:
                drop.append(position)
            else:
                seen.add(key)
        self.dropped += len(drop)
        return drop


def split_keys(packed: bytes) -> list[bytes]:
    """Packed 16-byte keys (as lake headers list them) one by one."""
    if len(packed) % KEY_BYTES:
        raise ValueError(f"{len(packed)} bytes of keys is not a multiple of {KEY_BYTES}")
    return [packed[i : i + KEY_BYTES] for i in range(0, len(packed), KEY_BYTES)]


@dataclass(frozen=True, slots=True)
class DropPlan:
    """Which records a merge drops: per source file (by key), the positions (ascending, counted
    from the file's first record) of the records whose dedupe key an earlier record holds.
    Files without any are absent: their blocks are copied as they are."""

    by_file: Mapping[str, Sequence[int]] = field(default_factory=dict)

    def of(self, key: str) -> Sequence[int]:
        return self.by_file.get(key, ())

    @property
    def total(self) -> int:
        return sum(len(positions) for positions in self.by_file.values())


class FirstWinsIndex:
    """The merge's DuplicateIndex (domain.ports) in plain Python: FirstWins over the files in
    arrival order. The rule's reference: adapters/lake_keys.SpillingKeyIndex, which production
    uses, is property-tested against it. Memory: every key, ~90 B each, so for unit tests and
    small prefixes."""

    def __init__(self) -> None:
        self._keys: dict[str, bytes] = {}

    def add(self, file: str, keys: bytes) -> None:
        if file in self._keys:
            raise ValueError(f"{file}: its keys were added twice")
        split_keys(keys)  # the same refusal of a ragged length as the production index
        self._keys[file] = keys

    def drops(self, order: Sequence[str], watch: frozenset[bytes] | None = None) -> DropPlan:
        check_order(order, self._keys)
        rule = FirstWins(watch=watch)
        found: dict[str, Sequence[int]] = {}
        for file in order:
            positions = rule.admit(split_keys(self._keys[file]))
            if positions:
                found[file] = tuple(positions)
        return DropPlan(found)

    def close(self) -> None:
        self._keys.clear()


class MemoryKeyLog:
    """The merge's KeyLog (domain.ports) in memory: every file's keys as inspected. For unit
    tests and small prefixes; production spools them to disk (adapters/lake_sidecar.py)."""

    def __init__(self) -> None:
        self._keys: dict[str, bytes] = {}

    def add(self, file: str, keys: bytes) -> None:
        if file in self._keys:
            raise ValueError(f"{file}: its keys were logged twice")
        self._keys[file] = bytes(keys)

    def read(self, file: str, start: int, stop: int) -> bytes:
        return self._keys[file][start * KEY_BYTES : stop * KEY_BYTES]

    def close(self) -> None:
        self._keys.clear()


def check_order(order: Sequence[str], added: Iterable[str]) -> None:
    """`order` must name each file whose keys were added exactly once: a file left out would
    have its records' repeats go unseen."""
    if len(set(order)) != len(order) or set(order) != set(added):
        raise ValueError("the merge order must list every file whose keys were added, once")


# --- values the merge and the move exchange ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One input of a merge, as the compactor found it in the file's header."""

    info: ObjectInfo
    records: int
    first_arrival_ms: int | None  # None: the file does not say (written before this field)
    keyed: bool  # the header lists its records' dedupe keys (else they are read from the data)
    resolved: bool = False  # written with an older compatible schema: decoded and re-encoded
    # The file's header at inspection, hashed, its size and codec: the writing pass reads the
    # header's bytes and parses them only if they differ (a file rewritten in between is refused:
    # its drop positions would name other records).
    fingerprint: bytes = b""
    header_size: int = 0
    codec: str = "null"
    # A merged source without header keys: "sidecar" when its keys came from its trusted
    # sidecar, "projection" when they were decoded from its records ("" for a keyed file).
    keys_from: str = ""
    sync: bytes = b""  # the file's sync marker: a merged file sharing it copies its bytes whole

    @property
    def arrival_order(self) -> tuple[int, tuple[str | int, ...]]:
        """Files in arrival order: by their first record's arrival, then by key. A file that
        does not say comes by its LastModified (near enough: written seconds after arrival)."""
        if self.first_arrival_ms is not None:
            arrival = self.first_arrival_ms
        elif self.info.last_modified is not None:
            arrival = int(self.info.last_modified.timestamp() * 1000)
        else:
            arrival = 0
        return (arrival, natural_order(self.info.ref.key))


def natural_order(key: str) -> tuple[str | int, ...]:
    """A key with its digit runs compared as numbers: within a shard, files then come in
    sequence-number order even where the numbers differ in length (moto's are small integers,
    and "10" sorts before "9" as text)."""
    return tuple(int(part) if part.isdigit() else part for part in _DIGITS.split(key))


_DIGITS = re.compile(r"(\d+)")


@dataclass(frozen=True, slots=True)
class SourceEntry:
    """A source a merged file was built from: its key and the ETag it had then. The move archives
    a source only while it still has that ETag (a later rewrite is not what was merged)."""

    key: str
    etag: str
    size: int
    records: int


@dataclass(frozen=True, slots=True)
class SidecarSeal:
    """What a merged file's manifest says about its sidecar: where it is, how many keys it
    holds and the CRC-32 of its bytes. A sidecar is trusted only when it matches its seal."""

    key: str
    count: int
    crc32: int


@dataclass(frozen=True, slots=True)
class MergedManifest:
    """What a merged file records about itself in its header: what it was built from."""

    record_type: str
    prefix: str
    sources: tuple[SourceEntry, ...]
    sidecar: SidecarSeal | None = None  # None: a merged file written before sidecars

    @property
    def source_records(self) -> int:
        return sum(s.records for s in self.sources)


@dataclass(frozen=True, slots=True)
class MergedFile:
    ref: ObjectRef
    records: int
    duplicates: int
    bytes: int
    blocks_copied: int
    blocks_rewritten: int
    sidecar: SidecarSeal | None = None
    # The records counted by walking the merged file's blocks as they were written, whose
    # upload the store verified (S3: checksums and size); None: the merge counts the stored file.
    written_records: int | None = None


@dataclass(frozen=True, slots=True)
class MergeRefusal:
    """An expected reason a merge did not happen; `file` names the source to look at."""

    kind: str  # outdated_schema | foreign_schema | too_large | unreadable | count_mismatch
    message: str
    file: str | None = None

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class TypeMerge:
    """One record type's part of a merge."""

    record_type: str
    prefix: str
    files: int = 0
    records: int = 0
    duplicates: int = 0
    bytes: int = 0
    merged: ObjectRef | None = None
    already_merged: bool = False
    refusal: MergeRefusal | None = None
    # Merged sources (no header keys) whose keys came from their sidecars / were decoded.
    keys_from_sidecars: int = 0
    keys_decoded: int = 0


@dataclass(frozen=True, slots=True)
class MergeCounts:
    """What merge_avro_files did: `{files, records, duplicates, bytes}` over every type, and
    each type's own part. records = the merged files' records (the sources' minus duplicates)."""

    prefix: str
    types: tuple[TypeMerge, ...] = ()
    # Another run holds the prefix's merge lease (who, since when): this run merged nothing.
    busy: str | None = None

    @property
    def files(self) -> int:
        return sum(t.files for t in self.types)

    @property
    def records(self) -> int:
        return sum(t.records for t in self.types)

    @property
    def duplicates(self) -> int:
        return sum(t.duplicates for t in self.types)

    @property
    def bytes(self) -> int:
        return sum(t.bytes for t in self.types)

    @property
    def refusals(self) -> tuple[TypeMerge, ...]:
        return tuple(t for t in self.types if t.refusal is not None)

    @property
    def already_merged(self) -> bool:
        merged = [t for t in self.types if t.files or t.already_merged]
        return bool(merged) and all(t.already_merged for t in merged)


@dataclass(frozen=True, slots=True)
class MoveRequest:
    """The move queue's message: archive the sources of one type's merged prefix."""

    record_type: str
    prefix: str

    def __post_init__(self) -> None:
        if self.record_type not in RECORD_TYPES:
            raise ValueError(f"unknown record type {self.record_type!r}")
        if parse_prefix(self.prefix) != self.prefix:
            raise ValueError(f"not a YYYY/MM/DD or YYYY/MM prefix: {self.prefix!r}")


@dataclass(frozen=True, slots=True)
class MoveCounts:
    """What move_merged_avro_files did with one prefix: in = moved + already + left."""

    record_type: str
    prefix: str
    moved: int = 0  # copied (or found copied), verified and deleted in this run
    already_archived: int = 0  # listed in the manifest, no longer at the source: done earlier
    left: tuple[str, ...] = field(default=())  # sources listed but not merged (or rewritten)
    merged_missing: bool = False
    sidecars_moved: int = 0  # merged days' sidecars archived with them (a month's move)


def in_arrival_order(files: Iterable[SourceFile]) -> list[SourceFile]:
    return sorted(files, key=lambda f: f.arrival_order)


def day_of(prefix: str) -> date:
    parts = [int(p) for p in prefix.split("/")]
    return date(parts[0], parts[1], parts[2] if len(parts) == 3 else 1)


def utc_now_ms(now: datetime) -> int:
    return int(now.astimezone(UTC).timestamp() * 1000)
