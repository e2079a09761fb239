"""merge_avro_files' and move_merged_avro_files' input and output shapes (docs/data-lake.md):
their registry entries parse and write with these; their adapters come from bootstrap."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from returns.result import Failure, Result, Success

from domain.lake import (
    MergeCounts,
    MergeKind,
    MoveCounts,
    MoveRequest,
    parse_prefix,
    previous_period_prefix,
)
from domain.records import RECORD_TYPES
from domain.workers.merge_avro_files import MergeRequest
from domain.workers.move_merged_avro_files import MoveFailure

# --- inputs ------------------------------------------------------------------------------------


def merge_request_from_event(event: Any, now: datetime) -> Result[MergeRequest, str]:
    """The merge's input from any of its callers:
    - the schedules' constant input `{"type": "daily"}` / `{"type": "monthly"}` (the previous
      day or month, UTC, of the event's `time` when EventBridge passes the whole Scheduled
      Event, else of `now`);
    - an explicit `{"prefix": "YYYY/MM/DD"}` or the original's `{"inputPrefix": ...}`;
    - optionally `recordTypes` (a list) or `recordType`: default every type."""
    if not isinstance(event, Mapping):
        return Failure("the merge input must be a JSON object")
    types = event.get("recordTypes") or ([event["recordType"]] if event.get("recordType") else None)
    record_types = tuple(sorted(RECORD_TYPES))
    if types is not None:
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            return Failure("recordTypes must be a list of record type names")
        unknown = sorted(set(types) - RECORD_TYPES)
        if unknown:
            return Failure(f"unknown record types {unknown}; known: {sorted(RECORD_TYPES)}")
        record_types = tuple(sorted(set(types)))
    explicit = event.get("prefix") or event.get("inputPrefix")
    if explicit is not None:
        prefix = parse_prefix(str(explicit)) if isinstance(explicit, str) else None
        if prefix is None:
            return Failure(f"prefix must be YYYY/MM/DD or YYYY/MM, got {explicit!r}")
        return Success(MergeRequest(prefix, record_types))
    kind_text = event.get("type", "daily" if event.get("source") == "aws.events" else None)
    try:
        kind = MergeKind(kind_text)
    except ValueError:
        return Failure(f'type must be "daily" or "monthly" (or give a prefix), got {kind_text!r}')
    when = now
    if isinstance(event.get("time"), str):
        try:
            when = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
        except ValueError:
            return Failure(f"time is not an ISO 8601 timestamp: {event['time']!r}")
    return Success(MergeRequest(previous_period_prefix(kind, when.astimezone(UTC)), record_types))


def move_requests_for(prefix: str, record_types: Sequence[str] | None) -> list[MoveRequest]:
    return [MoveRequest(t, prefix) for t in (record_types or sorted(RECORD_TYPES))]


# --- outputs -----------------------------------------------------------------------------------


def merge_dict(counts: MergeCounts) -> dict[str, Any]:
    """`{files, records, duplicates, bytes}` over every type, each type's part, and what was
    refused or already merged."""
    return {
        "prefix": counts.prefix,
        "files": counts.files,
        "records": counts.records,
        "duplicates": counts.duplicates,
        "bytes": counts.bytes,
        "alreadyMerged": counts.already_merged,
        **({"busy": counts.busy} if counts.busy else {}),
        "types": {
            t.record_type: {
                "files": t.files,
                "records": t.records,
                "duplicates": t.duplicates,
                "bytes": t.bytes,
                **({"merged": t.merged.uri} if t.merged else {}),
                **({"alreadyMerged": True} if t.already_merged else {}),
                # Merged sources whose keys came from their sidecars, or were decoded.
                **(
                    {"keysFromSidecars": t.keys_from_sidecars, "keysDecoded": t.keys_decoded}
                    if t.keys_from_sidecars or t.keys_decoded
                    else {}
                ),
                **(
                    {
                        "refused": {
                            "kind": t.refusal.kind,
                            "message": t.refusal.message,
                            "file": t.refusal.file,
                        }
                    }
                    if t.refusal
                    else {}
                ),
            }
            for t in counts.types
            if t.files or t.already_merged or t.refusal
        },
    }


def move_dict(outcome: Result[MoveCounts, MoveFailure]) -> dict[str, Any]:
    match outcome:
        case Success(counts):
            return {
                "recordType": counts.record_type,
                "prefix": counts.prefix,
                "status": "nothing_merged" if counts.merged_missing else "ok",
                "moved": counts.moved,
                "alreadyArchived": counts.already_archived,
                "left": list(counts.left),
                "sidecarsMoved": counts.sidecars_moved,
            }
        case Failure(failure):
            return {
                "recordType": failure.record_type,
                "prefix": failure.prefix,
                "status": "failed",
                "error": failure.message,
            }
    raise TypeError(f"not a move outcome: {outcome!r}")


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True)
