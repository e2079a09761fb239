"""merge_avro_files (the original's cmp-mrg-avro): compact a day's or a month's lake files into one
Avro file per record type, each record once.

For each of the ten record types, with `prefix` = `YYYY/MM/DD` or `YYYY/MM` (domain.lake):
1. a merged file already at `avro/{type}/merged/{prefix}.avro` means the prefix was merged:
   nothing is written, the move is queued again (a crash between writing the merged file and
   queueing the move heals here; the move of a moved prefix moves nothing), and the type says
   `already_merged`;
2. the sources are listed (`avro/{type}/{prefix}/` and, for a month, the days' merged files);
   none: nothing to do for the type;
3. the size guard (`MergeLimits.max_bytes`, the original's 1.2 GB made configurable: memory does
   not grow with it) and the compactor's inspection: every source's writer schema is the
   type's current one or an older one it can read, else the merge of that type is refused
   naming the file and nothing is written;
4. the duplicates are found from every source's dedupe keys (the DuplicateIndex the
   inspection fed: each key's first record by arrival wins; a merged source's keys come from
   its sidecar when it matches its seal, else from its records), then the merged file's
   sidecar (the kept keys, `avro/merged-keys/{type}/{prefix}.keys`) is written completely,
   then the merged file, completely (multipart), without the duplicates, block by block,
   sealing the sidecar in its header; its record count, from its blocks walked as they were
   written (the store checks that it stored those bytes: S3 by size and CRC-32; a compactor that
   gives no such count has the stored file's blocks read back), is checked against the sources'
   minus the duplicates dropped and the sidecar's count; a mismatch deletes both (nothing has
   pointed at them yet) and refuses;
5. the prefix goes to the move queue.

One merge of a prefix at a time: with `leases`, a run first takes the prefix's lease (production:
`leases/merge_avro_files/{prefix}.json` in the lake bucket, S3 conditional puts). A second merge
of the same day meanwhile merges nothing and queues nothing (`busy`, naming the holder and since
when); a killed merge's lease is taken over after its term. The lease is renewed between types
and inside a type's merge before each source file is inspected or copied (a big type takes longer
than half of RUN_LEASE_SECONDS; one source file does not), and checked once more before the move
is queued: a merge that lost its lease stops there, abandoning the merged file it was writing
(the upload is aborted) or, when it was complete, leaving it for the run that took over, which
finds it and queues the move itself. Nothing is queued by a run that lost its lease.

Memory: what the DuplicateIndex holds (production's spills to disk past a fixed number of
keys, adapters/lake_keys.py; `max_records` guards the disk it needs), the KeyLog (production's
spools 16 B a key to disk, adapters/lake_sidecar.py), the positions dropped, and the
compactor's one block and the store's upload parts (S3: 2 uploading, 1 filling). Not the
bytes merged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from returns.result import Failure, Result, Success

from domain.lake import (
    DropPlan,
    FirstWinsIndex,
    LakeLayout,
    MemoryKeyLog,
    MergeCounts,
    MergeRefusal,
    MoveRequest,
    SourceFile,
    TypeMerge,
    in_arrival_order,
)
from domain.models import ObjectInfo
from domain.ports import (
    DuplicateIndex,
    KeyLog,
    LakeCompactor,
    Lease,
    Leases,
    MergeManifests,
    MoveQueue,
    ObjectStore,
)
from domain.records import RECORD_TYPES

WORKER = "merge_avro_files"
GIB = 1024**3


@dataclass(frozen=True, slots=True)
class MergeLimits:
    """Guards, not design limits: past them a merge is refused with a reason, not attempted."""

    max_bytes: int = 50 * GIB
    max_records: int = 10_000_000  # 240 MB of spilled keys (24 B each) in the function's /tmp


@dataclass(frozen=True, slots=True)
class MergeRequest:
    prefix: str
    record_types: tuple[str, ...] = field(default=tuple(sorted(RECORD_TYPES)))


# (record type, prefix, sources inspected) -> the dedupe keys that occur more than once, found
# by an engine that holds no per-record state here (Athena, domain/lake_athena.py).
DuplicateFinder = Callable[[str, str, Sequence[SourceFile]], Result[frozenset[bytes], MergeRefusal]]


def merge_avro_files(
    request: MergeRequest,
    *,
    store: ObjectStore,
    compactor: LakeCompactor,
    manifests: MergeManifests,
    queue: MoveQueue,
    layout: LakeLayout,
    limits: MergeLimits = MergeLimits(),
    duplicates: DuplicateFinder | None = None,
    new_index: Callable[[], DuplicateIndex] = FirstWinsIndex,
    new_key_log: Callable[[], KeyLog] = MemoryKeyLog,
    on_progress: Callable[[int], None] | None = None,
    leases: Leases | None = None,
) -> MergeCounts:
    """`leases` keeps merges of one prefix from overlapping (module docstring);
    `new_index` makes each type's DuplicateIndex (production: adapters/lake_keys.py),
    `new_key_log` its KeyLog (production: adapters/lake_sidecar.py);
    `on_progress` hears the records merged so far after each type (the CLI's progress)."""
    lease = None
    if leases is not None:
        match leases.acquire(request.prefix):
            case Failure(held):
                return MergeCounts(request.prefix, busy=str(held))
            case Success(lease):
                pass
    heartbeat = None if lease is None else _heartbeat(lease)
    try:
        return _merge_leased(
            request,
            lease,
            on_progress,
            lambda t: _merge_type(
                t,
                request.prefix,
                store=store,
                compactor=compactor,
                manifests=manifests,
                queue=queue,
                layout=layout,
                limits=limits,
                duplicates=duplicates,
                new_index=new_index,
                new_key_log=new_key_log,
                heartbeat=heartbeat,
            ),
        )
    finally:
        if lease is not None:
            lease.release()


_LOST = (
    "this merge lost its lease (it stalled past its term and another run took the prefix "
    "over); that run finishes it, and this one queued no move for the type it was merging"
)


class _LeaseLost(Exception):
    """Raised by the heartbeat inside a type's merge: unwinds it, the merged file abandoned."""


def _heartbeat(lease: Lease) -> Callable[[], None]:
    def beat() -> None:
        if not lease.keep():
            raise _LeaseLost(_LOST)

    return beat


def _merge_leased(
    request: MergeRequest,
    lease: Lease | None,
    on_progress: Callable[[int], None] | None,
    merge: Callable[[str], TypeMerge],
) -> MergeCounts:
    merges: list[TypeMerge] = []
    for record_type in request.record_types:
        if lease is not None and not lease.keep():
            return MergeCounts(request.prefix, tuple(merges), busy=_LOST)
        try:
            merges.append(merge(record_type))
        except _LeaseLost:
            return MergeCounts(request.prefix, tuple(merges), busy=_LOST)
        if on_progress is not None:
            on_progress(sum(m.records for m in merges))
    return MergeCounts(request.prefix, tuple(merges))


def _merge_type(
    record_type: str,
    prefix: str,
    *,
    store: ObjectStore,
    compactor: LakeCompactor,
    manifests: MergeManifests,
    queue: MoveQueue,
    layout: LakeLayout,
    limits: MergeLimits,
    duplicates: DuplicateFinder | None,
    new_index: Callable[[], DuplicateIndex],
    new_key_log: Callable[[], KeyLog],
    heartbeat: Callable[[], None] | None = None,
) -> TypeMerge:
    target = layout.merged_ref(record_type, prefix)
    manifest = manifests.read_manifest(target)
    if manifest is not None:
        # A run killed right after completing the merged file never reaped the uploads the
        # killed runs before it left open (billed, invisible): this run, holding the lease, does.
        compactor.reap_uploads((target, layout.sidecar_ref(record_type, prefix)))
        queue.send(MoveRequest(record_type, prefix))
        records = compactor.count_records(target)
        return TypeMerge(
            record_type,
            prefix,
            files=len(manifest.sources),
            records=records,
            duplicates=manifest.source_records - records,
            merged=target,
            already_merged=True,
        )
    sources = _sources(store, layout, record_type, prefix)
    if not sources:
        return TypeMerge(record_type, prefix)
    size = sum(s.size for s in sources)

    def refused(refusal: MergeRefusal) -> TypeMerge:
        return TypeMerge(record_type, prefix, files=len(sources), bytes=0, refusal=refusal)

    if size > limits.max_bytes:
        return refused(
            MergeRefusal(
                "too_large",
                f"{len(sources)} files of {size:,} bytes exceed the merge guard of "
                f"{limits.max_bytes:,} bytes (MERGE_MAX_BYTES)",
            )
        )
    sidecar = layout.sidecar_ref(record_type, prefix)
    log = new_key_log()
    try:
        index = new_index()
        try:
            match _plan(
                record_type, prefix, sources, compactor, index, log, limits, duplicates, heartbeat
            ):
                case Failure(refusal):
                    return refused(refusal)
                case Success((files, drops)):
                    pass
        finally:
            # The index is no longer needed once the drops are known (a spilling index removes
            # its files here, on refusals and errors too).
            index.close()
        source_records = sum(f.records for f in files)
        match compactor.write_merged(
            record_type, prefix, files, target, drops, log, sidecar, heartbeat
        ):
            case Failure(refusal):
                return refused(refusal)
            case Success(merged):
                pass
    finally:
        log.close()
    expected = source_records - merged.duplicates
    written = (
        compactor.count_records(target)
        if merged.written_records is None
        else merged.written_records
    )
    sealed = merged.sidecar.count if merged.sidecar is not None else expected
    if (
        written != expected
        or merged.records != expected
        or merged.duplicates != drops.total
        or sealed != expected
    ):
        # Nothing points at the merged file yet (the move is not queued): removing it and its
        # sidecar leaves the prefix as it was, and a re-run starts over.
        store.delete(target)
        store.delete(sidecar)
        return refused(
            MergeRefusal(
                "count_mismatch",
                f"{target.uri} holds {written:,} records, expected {expected:,} "
                f"({source_records:,} from the sources minus {merged.duplicates:,} duplicates; "
                f"its sidecar {sealed:,} keys)",
            )
        )
    if heartbeat is not None:
        heartbeat()  # the merged file is complete: the move is queued only while ours
    queue.send(MoveRequest(record_type, prefix))
    return TypeMerge(
        record_type,
        prefix,
        files=len(files),
        records=written,
        duplicates=merged.duplicates,
        bytes=merged.bytes,
        merged=target,
        keys_from_sidecars=sum(1 for f in files if f.keys_from == "sidecar"),
        keys_decoded=sum(1 for f in files if f.keys_from == "projection"),
    )


def _plan(
    record_type: str,
    prefix: str,
    sources: Sequence[ObjectInfo],
    compactor: LakeCompactor,
    index: DuplicateIndex,
    log: KeyLog,
    limits: MergeLimits,
    duplicates: DuplicateFinder | None,
    heartbeat: Callable[[], None] | None = None,
) -> Result[tuple[list[SourceFile], DropPlan], MergeRefusal]:
    """The sources inspected (their keys into `index`) and put in arrival order, and what the
    merge drops from them."""
    match compactor.inspect(record_type, sources, index, log, heartbeat):
        case Failure(refusal):
            return Failure(refusal)
        case Success(inspected):
            files = in_arrival_order(inspected)
    source_records = sum(f.records for f in files)
    if source_records > limits.max_records:
        return Failure(
            MergeRefusal(
                "too_large",
                f"{source_records:,} records exceed the merge's guard of "
                f"{limits.max_records:,} (MERGE_MAX_RECORDS; their keys take 24 B each on the "
                "function's temporary storage): merge a smaller prefix or raise the guard",
            )
        )
    watch: frozenset[bytes] | None = None
    if duplicates is not None:
        match duplicates(record_type, prefix, files):
            case Failure(refusal):
                return Failure(refusal)
            case Success(found):
                watch = found
    return Success((files, index.drops([f.info.ref.key for f in files], watch)))


def _sources(
    store: ObjectStore, layout: LakeLayout, record_type: str, prefix: str
) -> list[ObjectInfo]:
    """The prefix's source files and its sub-periods' merged files (paginated listings)."""
    found: list[ObjectInfo] = []
    for listed in layout.source_prefixes(record_type, prefix):
        found.extend(
            info
            for info in store.list_objects(layout.bucket, listed)
            if info.ref.key.endswith(".avro")
        )
    return found
