"""move_merged_avro_files (the original's cmp-mv-mrgd): archive a merged prefix's sources.

For one `MoveRequest` (record type, prefix), after merge_avro_files wrote
`avro/{type}/merged/{prefix}.avro`:
1. no merged file: nothing moves (the sources are the only copy of their records);
2. the prefix's sources are listed (paginated; the merged file is never under them). A source
   is moved only if the merged file's manifest lists it with the same size and ETag: a file
   that arrived after the merge, or was rewritten since (a late replay), is left where it is
   for the next merge (the month's) to pick up;
3. each is copied to `avro/archived/{type}/...` (domain.lake.LakeLayout.archive_ref) unless an
   earlier run's copy is already there, and every copy is verified (size and ETag);
4. only when every copy is verified are the originals deleted.

Sidecars (`avro/merged-keys/{type}/{prefix}.keys`, the kept keys of a merged file): a month's
sources include the days' merged files, and each goes to the archive with its sidecar (copied
and verified with the files, deleted with them, each sidecar before its merged file, so a
sidecar left at its place always has its merged file beside it). A sidecar whose merged file
has already gone (a run killed between the two deletes, were the order ever other) is archived
and removed all the same; one whose merged file stays (rewritten since, `left`) stays too. A
day's own sidecar is never touched by the day's move: it belongs to the day's merged file,
which stays (the day's sources are not merged files, so none of them has a sidecar).

Killed at any point and run again, it finishes: a copy already verified is not made again
(nothing is archived twice), a source already deleted is not listed again, and no source is
deleted before its verified copy exists (nothing is lost). tests/property/test_lake_move.py
checks this against a crash at every step.

Memory: the manifest's source list, one listing page and the moving sidecars' (at most one per
day of the month).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from returns.result import Failure, Result, Success

from domain.lake import LakeLayout, MoveCounts, MoveRequest, SourceEntry
from domain.models import ObjectInfo
from domain.ports import MergeManifests, ObjectStore

WORKER = "move_merged_avro_files"


@dataclass(frozen=True, slots=True)
class MoveFailure:
    """A copy that did not verify: no original was deleted; a retry copies it again."""

    record_type: str
    prefix: str
    message: str

    def __str__(self) -> str:
        return self.message


def move_merged_avro_files(
    request: MoveRequest,
    *,
    store: ObjectStore,
    manifests: MergeManifests,
    layout: LakeLayout,
) -> Result[MoveCounts, MoveFailure]:
    record_type, prefix = request.record_type, request.prefix
    merged = layout.merged_ref(record_type, prefix)
    manifest = manifests.read_manifest(merged)
    if manifest is None:
        return Success(MoveCounts(record_type, prefix, merged_missing=True))
    merged_sources = {entry.key: entry for entry in manifest.sources}
    to_move: list[ObjectInfo] = []
    left: list[str] = []
    listed: set[str] = set()
    for source_prefix in layout.source_prefixes(record_type, prefix):
        for info in store.list_objects(layout.bucket, source_prefix):
            if info.ref == merged:
                continue
            listed.add(info.ref.key)
            entry = merged_sources.get(info.ref.key)
            if entry is None or entry.size != info.size or (entry.etag or None) != info.etag:
                left.append(info.ref.key)
            else:
                to_move.append(info)
    sidecars = _sidecars(store, layout, record_type, manifest.sources, left)
    for info in [*sidecars, *to_move]:
        archive = layout.archive_ref(record_type, info.ref)
        if not _same(store.head(archive), info):
            store.copy(info.ref, archive)
            copied = store.head(archive)
            if not _same(copied, info):
                return Failure(
                    MoveFailure(
                        record_type,
                        prefix,
                        f"the copy of {info.ref.uri} at {archive.uri} does not verify "
                        f"(size {_size(copied)} vs {info.size}, "
                        f"ETag {_etag(copied)} vs {info.etag}): no source deleted",
                    )
                )
    # Every copy is verified: only now do originals go, sidecars first (a sidecar without its
    # merged file is never trusted, a merged file without its sidecar falls back: either way
    # nothing is wrong, but this order leaves no stray sidecar).
    for info in [*sidecars, *to_move]:
        store.delete(info.ref)
    already = sum(1 for key in merged_sources if key not in listed)
    return Success(
        MoveCounts(
            record_type,
            prefix,
            moved=len(to_move),
            already_archived=already,
            left=tuple(sorted(left)),
            sidecars_moved=len(sidecars),
        )
    )


def _sidecars(
    store: ObjectStore,
    layout: LakeLayout,
    record_type: str,
    sources: Sequence[SourceEntry],
    left: Sequence[str],
) -> list[ObjectInfo]:
    """The sidecars to archive: those still present of the merged files among the manifest's
    sources that are moving now or moved before, not of those left in place."""
    staying = set(left)
    found = []
    for entry in sources:
        sidecar = layout.sidecar_of(record_type, entry.key)
        if sidecar is None or entry.key in staying:
            continue
        info = store.head(sidecar)
        if info is not None:
            found.append(info)
    return found


def _same(copy: ObjectInfo | None, source: ObjectInfo) -> bool:
    return copy is not None and copy.size == source.size and copy.etag == source.etag


def _size(info: ObjectInfo | None) -> str:
    return "missing" if info is None else f"{info.size:,}"


def _etag(info: ObjectInfo | None) -> str:
    return "missing" if info is None or info.etag is None else info.etag
