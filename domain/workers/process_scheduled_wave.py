"""processScheduledWave: the codes of a scheduled wave CSV assigned to its campaign.

Input: the key `smsWaves/csv/{campaignId}_{suffix}.csv` (direct invoke, Step Functions, the
upload service's `{data: {key}}`, or an S3 event for that key). The campaign id is the key's
part before the first `_`; a key that does not match fails naming it.

The CSV is streamed; empty codes and the `TM` placeholder are dropped (counted), the rest go to
the inventory in batches of `batch_size` (2,500, as the original). Returns `{in, valid,
updated}` (+ `dropped`, `conflicts`): in = rows, valid = codes sent, updated = codes newly
assigned. Idempotent: the inventory assigns a code to a campaign once, so a second run updates
0 and `alreadyAssigned` says so. An inventory that stays unavailable fails the run with the
counts so far (retryable: what was assigned stays assigned, the re-run counts it as already).

Memory bound: one batch of coded rows (2,500).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from returns.result import Failure, Result, Success

from domain.codes import AssignCount
from domain.models import ObjectNotFound, ObjectRef
from domain.ports import ChunkReader, CodeInventory
from domain.waves import (
    CODE_COLUMN,
    CsvProblem,
    campaign_of_wave_key,
    code_chunks,
    event_object,
    read_wave_csv,
)

BATCH_SIZE = 2_500


@dataclass(frozen=True, slots=True)
class ScheduledWave:
    source: ObjectRef
    campaign_id: str

    @staticmethod
    def parse(event: Any, bucket: str) -> Result[ScheduledWave, str]:
        match event_object(event, bucket, ("key", "fileKey", "Key")):
            case Failure(bad_uri):
                return Failure(bad_uri)
            case Success(ref):
                pass
        if not ref.key:
            return Failure(
                "input has no wave key (expected {key: 'smsWaves/csv/{campaignId}_{suffix}.csv'})"
            )
        campaign = campaign_of_wave_key(ref.key)
        if campaign is None:
            return Failure(f"key {ref.key!r} is not smsWaves/csv/{{campaignId}}_{{suffix}}.csv")
        return Success(ScheduledWave(ref, campaign))


@dataclass(frozen=True)
class AssignedWave:
    source: ObjectRef
    campaign_id: str
    rows_in: int = 0
    valid: int = 0
    updated: int = 0
    dropped_empty: int = 0
    dropped_placeholder: int = 0
    conflicts: int = 0
    calls: int = 0

    @property
    def already_assigned(self) -> int:
        return self.valid - self.updated - self.conflicts

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.source.key,
            "campaignId": self.campaign_id,
            "in": self.rows_in,
            "valid": self.valid,
            "updated": self.updated,
            "alreadyAssigned": self.already_assigned,
            "conflicts": self.conflicts,
            "dropped": {"empty": self.dropped_empty, "placeholder": self.dropped_placeholder},
        }


@dataclass(frozen=True)
class AssignFailure:
    """kind: source_missing, bad_csv, missing_columns, inventory_rejected, inventory_unavailable
    (retryable); `counts` says how far the run got."""

    kind: str
    message: str
    counts: AssignedWave
    retryable: bool = False

    def __str__(self) -> str:
        return self.message


def process_scheduled_wave(
    wave: ScheduledWave,
    *,
    store: ChunkReader,
    inventory: CodeInventory,
    batch_size: int = BATCH_SIZE,
    on_progress: Callable[[int], None] | None = None,
) -> Result[AssignedWave, AssignFailure]:
    counts = AssignedWave(wave.source, wave.campaign_id)
    try:
        header, rows = read_wave_csv(store.iter_chunks(wave.source))
        if CODE_COLUMN not in header:
            return Failure(
                AssignFailure("missing_columns", f"{wave.source.uri}: no code column", counts)
            )
        for chunk in code_chunks(rows, lambda chunk: len(chunk.coded) >= batch_size):
            counts = replace(
                counts,
                rows_in=counts.rows_in + chunk.rows,
                dropped_empty=counts.dropped_empty + chunk.without_code,
                dropped_placeholder=counts.dropped_placeholder + chunk.placeholder,
            )
            if chunk.coded:
                match inventory.assign(wave.campaign_id, chunk.codes):
                    case Failure(problem):
                        transient = problem.kind == "unavailable"
                        return Failure(
                            AssignFailure(
                                "inventory_unavailable" if transient else "inventory_rejected",
                                f"{wave.source.uri}: {problem} (after {counts.updated} updated)",
                                counts,
                                retryable=transient,
                            )
                        )
                    case Success(assigned):
                        counts = _add(counts, assigned)
            if on_progress is not None:
                on_progress(counts.rows_in)
    except ObjectNotFound:
        return Failure(AssignFailure("source_missing", f"no wave CSV at {wave.source.uri}", counts))
    except CsvProblem as problem:
        return Failure(AssignFailure("bad_csv", f"{wave.source.uri}: {problem}", counts))
    return Success(counts)


def _add(counts: AssignedWave, assigned: AssignCount) -> AssignedWave:
    return replace(
        counts,
        valid=counts.valid + assigned.received,
        updated=counts.updated + assigned.updated,
        conflicts=counts.conflicts + assigned.conflicts,
        calls=counts.calls + 1,
    )
