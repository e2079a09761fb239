"""A run's checkpoint beside the upload it streams, for the workers that resume after a kill
(load_code_assignments_to_stream, translate_ranks_to_scores; the scored files keep theirs in
domain/scoring/progress.py by the same version rule).

A checkpoint belongs to one upload of its source: a new upload under the same key (another
ETag) starts afresh. It is written with a compare-and-set on the version the run last read, so a
run that stalled past its lease cannot overwrite the position of the run that took over.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Protocol, TypeVar

from domain.models import ObjectInfo, ObjectRef
from domain.ports import ResumableSource, VersionedBlobs


class CheckpointedSource(ResumableSource, VersionedBlobs, Protocol):
    """The bucket of the source: the upload streamed, its checkpoint compared and set."""


class _Versioned(Protocol):
    @property
    def version(self) -> str: ...


C = TypeVar("C", bound=_Versioned)


def upload_version(info: ObjectInfo) -> str:
    """What identifies this upload of the source: its ETag, else its size and time."""
    if info.etag:
        return info.etag.strip('"')
    modified = info.last_modified.isoformat() if info.last_modified else ""
    return f"{info.size}@{modified}"


def read_checkpoint(
    store: VersionedBlobs, ref: ObjectRef, version: str, build: Callable[..., C]
) -> tuple[C | None, str | None]:
    """The checkpoint of this upload `version` (None: none, unreadable, another upload's), and
    the checkpoint object's version, which the next write must still find (None: no object)."""
    found = store.read_versioned(ref)
    if found is None:
        return None, None
    try:
        checkpoint = build(**json.loads(found[0]))
    except (ValueError, TypeError):
        return None, found[1]
    return (checkpoint if checkpoint.version == version else None), found[1]
