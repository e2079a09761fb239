"""How far a scored file's run has got, kept in the object store beside the file, so that a
run killed or failed at any point and run again continues after the last row whose records the
stream acknowledged (a Lambda retry of a 2,000,000-row file that failed at row 1,900,000 used to
put 3.9 M records).

Layout, in the source's bucket, under `progress/{campaignId}.{timestamp}/`:

- `part-000001`, `part-000002`, ...: one checkpoint per `checkpoint_rows` lines (default
  10,000: several chunks), written after the stream acknowledged those chunks' records, before
  more is put. Each is one line of JSON (the run's state after it: the next line to read, the
  counts so far, the source's version) followed by the scrubbed CSV rows of those chunks. A
  chunk the stream left records stranded in is checkpointed at once, after the chunks held,
  naming its stranded rows: the next run redoes that chunk, puts only those rows and writes its
  CSV then. A crash loses the acknowledgement of the chunks held: a re-run puts them again.
- `done.json`: the final counts, written once the scrubbed CSV is complete and the Slack summary
  was sent. A run that finds it (for the same source version) is a no-op that says so.
- `lease.json`: which run may stream the file now (lease.py); taken before the progress is read.

A checkpoint is created only if absent (a conditional write): parts are numbered on from the
last one, so a second writer of the same part can only be a run that was taken over while it
stalled; it learns so there and stops.

Why state and CSV in one object: written separately, a crash between the two would either lose
the chunks' CSV or re-put their records. One PutObject is atomic, so a checkpoint either exists
whole or not at all, and the only ambiguous records at a crash are those put since the last.

The source's version (ETag, else size and modification time) is in every checkpoint: a new
upload under the same key starts afresh (its old progress is deleted first), never resumes
another file's counts.

Memory: one checkpoint at a time (its CSV, ~1.5 MB at 10,000 rows).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.models import ObjectNotFound, ObjectRef
from domain.ports import ConditionalObjectStore
from domain.scoring.chunk_types import ChunkResult

STATE_VERSION = 1

# Lines acknowledged between two checkpoints (SCORED_FILE_CHECKPOINT_ROWS): fewer S3 writes and
# reads than one a chunk, for up to this many lines' records put again after a crash.
DEFAULT_CHECKPOINT_ROWS = 10_000


@dataclass
class RunTotals:
    """The counts of the chunks a run has completed (all runs of the file together)."""

    rows_in: int = 0
    rows_out: int = 0
    tagged: int = 0
    calls: int = 0
    retries: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    tags: Counter[str] = field(default_factory=Counter)
    bands: Counter[str] = field(default_factory=Counter)

    def add_chunk(self, result: ChunkResult) -> None:
        self.rows_in += result.rows
        self.tagged += result.tagged
        self.rejected.update(result.rejected)
        self.tags.update(result.tags)
        self.bands.update(result.bands)

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "tagged": self.tagged,
            "calls": self.calls,
            "retries": self.retries,
            "rejected": dict(self.rejected),
            "tags": dict(self.tags),
            "bands": dict(self.bands),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunTotals:
        return cls(
            rows_in=int(data["rows_in"]),
            rows_out=int(data["rows_out"]),
            tagged=int(data["tagged"]),
            calls=int(data["calls"]),
            retries=int(data["retries"]),
            rejected=Counter(data["rejected"]),
            tags=Counter(data["tags"]),
            bands=Counter(data["bands"]),
        )


@dataclass(frozen=True)
class OpenChunk:
    """A chunk whose records the stream did not all acknowledge: lines [first_line, end_line),
    `pending_rows` still to put; `sent` and `stream_rejected` say what became of the others."""

    first_line: int
    end_line: int
    pending_rows: tuple[int, ...]
    sent: int = 0
    stream_rejected: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "first_line": self.first_line,
            "end_line": self.end_line,
            "pending_rows": list(self.pending_rows),
            "sent": self.sent,
            "stream_rejected": self.stream_rejected,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OpenChunk:
        return cls(
            first_line=int(data["first_line"]),
            end_line=int(data["end_line"]),
            pending_rows=tuple(int(row) for row in data["pending_rows"]),
            sent=int(data["sent"]),
            stream_rejected=int(data["stream_rejected"]),
        )


@dataclass(frozen=True)
class Checkpoint:
    """The state after checkpoint `part`: read on from `next_line` (the header is line 1)."""

    part: int
    source_version: str
    next_line: int
    totals: RunTotals
    open_chunk: OpenChunk | None = None

    def to_bytes(self, csv: bytes) -> bytes:
        state = {
            "v": STATE_VERSION,
            "part": self.part,
            "source_version": self.source_version,
            "next_line": self.next_line,
            "totals": self.totals.to_json(),
            "open_chunk": None if self.open_chunk is None else self.open_chunk.to_json(),
        }
        return json.dumps(state, sort_keys=True).encode("utf-8") + b"\n" + csv

    @classmethod
    def from_bytes(cls, data: bytes) -> tuple[Checkpoint, bytes]:
        head, _, csv = data.partition(b"\n")
        state = json.loads(head)
        if state.get("v") != STATE_VERSION:
            raise ValueError(f"checkpoint state version {state.get('v')!r} is not {STATE_VERSION}")
        open_chunk = state["open_chunk"]
        checkpoint = cls(
            part=int(state["part"]),
            source_version=str(state["source_version"]),
            next_line=int(state["next_line"]),
            totals=RunTotals.from_json(state["totals"]),
            open_chunk=None if open_chunk is None else OpenChunk.from_json(open_chunk),
        )
        return checkpoint, csv


@dataclass(frozen=True)
class Finished:
    """A file completed earlier: its final report, as `done.json` holds it."""

    report: Mapping[str, Any]


class ProgressLedger:
    """The checkpoints and the done marker of one scored file (module docstring)."""

    def __init__(self, store: ConditionalObjectStore, bucket: str, name: str, version: str) -> None:
        self.store = store
        self.bucket = bucket
        self.prefix = f"progress/{name}/"
        self.version = version

    def _part(self, number: int) -> ObjectRef:
        return ObjectRef(self.bucket, f"{self.prefix}part-{number:06d}")

    @property
    def lease_ref(self) -> ObjectRef:
        return ObjectRef(self.bucket, f"{self.prefix}lease.json")

    @property
    def done_ref(self) -> ObjectRef:
        return ObjectRef(self.bucket, f"{self.prefix}done.json")

    def load(self) -> Finished | Checkpoint | None:
        """Where an earlier run of this source stopped; None to start from the first row. The
        progress of another upload under the same key is deleted first."""
        try:
            done = json.loads(self.store.read_bytes(self.done_ref))
        except ObjectNotFound:
            done = None
        if done is not None and done.get("source_version") == self.version:
            return Finished(done)
        parts = [info.ref for info in self.store.list_objects(self.bucket, self.prefix + "part-")]
        latest = max(parts, key=lambda ref: ref.key, default=None)
        if latest is not None:
            checkpoint, _ = Checkpoint.from_bytes(self.store.read_bytes(latest))
            if checkpoint.source_version == self.version and done is None:
                return checkpoint
        if done is not None or parts:
            self.clear(with_done=True)
        return None

    def save(self, checkpoint: Checkpoint, csv: bytes) -> bool:
        """Creates the checkpoint; False when that part exists already (another run wrote it)."""
        ref, data = self._part(checkpoint.part), checkpoint.to_bytes(csv)
        return self.store.put_versioned(ref, data, None) is not None

    def csv_parts(self, last_part: int) -> Iterator[bytes]:
        """The CSV rows of checkpoints 1..last_part, in order, one object at a time."""
        for number in range(1, last_part + 1):
            _, csv = Checkpoint.from_bytes(self.store.read_bytes(self._part(number)))
            yield csv

    def finish(self, report: Mapping[str, Any]) -> None:
        """Marks the file done (the scrubbed CSV is complete); the checkpoints can go."""
        self.store.put_bytes(
            self.done_ref,
            json.dumps({**report, "source_version": self.version}, sort_keys=True).encode(),
            "application/json",
        )
        self.clear(with_done=False)

    def clear(self, *, with_done: bool) -> None:
        """Deletes the checkpoints (after the scrubbed CSV that holds their rows was written)."""
        parts = [info.ref for info in self.store.list_objects(self.bucket, self.prefix + "part-")]
        self.store.delete_many(parts)
        if with_done:
            self.store.delete(self.done_ref)
