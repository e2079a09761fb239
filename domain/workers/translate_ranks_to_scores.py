"""translateRanksToScores: a fanlist upload's ranks as scores on the fanlist ranks stream.

Trigger: S3 `fanlist/uploaded/{fanlistId}/{file}.csv` in the scoring bucket. The fanlist id is
the campaign's id (a fanlist is uploaded per campaign: monoql's `uploadFanlist(file, fileSize,
campaignId)`); the campaign's `scoring` (`raw` | `xnum`) picks the formula (domain/ranks.py,
docs/ranks.md). The CSV has a header with a `rank` column and one identifier column
(`globalUserId`, `memberId` or `email`, first found in that order; names case-insensitive);
spreadsheet-saved files (BOM, CRLF, quoted commas) read as any other (domain/waves.read_wave_csv).

Each good row becomes `{type: "fanlistEntry", campaignId, fanlistId, file, row, identifier,
<identifier>: value, rank, score, scoring, dedupeId, date: {created}}` put through the
RecordStream, partition key a hash of (campaign, fan): a fan's records share a shard, and no
email is a partition key. `dedupeId` hashes the record without its date, so a record put again
by a resumed run carries the id it had, and the lake keeps it once.

Once per upload, resumable (as load_code_assignments_to_stream): one run at a time per file
(the Leases port); a checkpoint `fanlist/progress/{fanlistId}/{file}.json` (outside uploaded/,
so writing it triggers nothing) written by compare-and-set after each chunk the stream
acknowledged: next row, counts, bad rows, `created`, the upload's version, and for `xnum` the
largest rank N (so a resumed run scores with the same N). `done` for the same version answers
a re-delivered event with nothing put (`alreadyProcessed`); a new upload (another version) is
translated afresh. At the end `fanlist/uploaded/{fanlistId}/manifest.json` holds the counts.

Bad rows (wrong number of fields, no identifier, a rank that is not a positive integer) are
counted by reason, and the first MAX_BAD_ROWS listed with their row number (never the values).
Memory bound: one chunk of records, and the bad-row list's cap.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from returns.result import Failure, Result, Success

from domain.checkpoints import CheckpointedSource, read_checkpoint, upload_version
from domain.lease import leased
from domain.models import FailureKind, ObjectNotFound, ObjectRef, StreamRecord
from domain.ports import (
    CampaignDirectory,
    Clock,
    Lease,
    Leases,
    RecordEncoder,
    RecordStream,
)
from domain.ranks import SCORING_TYPES, BadRank, ScoringType, parse_rank, score
from domain.records import dedupe_id
from domain.waves import CsvProblem, WaveRow, event_object, iso_millis, read_wave_csv

DEFAULT_CHUNK_ROWS = 500  # one PutRecords call's worth
MAX_BAD_ROWS = 100  # listed in the manifest; all of them are counted
IDENTIFIERS = ("globalUserId", "memberId", "email")
RANK_COLUMN = "rank"
_KEY = re.compile(r"^fanlist/uploaded/(?P<fanlist>[^/]+)/(?P<file>[^/]+)\.csv$")


def checkpoint_key(fanlist_id: str, file: str) -> str:
    return f"fanlist/progress/{fanlist_id}/{file}.json"


def manifest_key(fanlist_id: str) -> str:
    return f"fanlist/uploaded/{fanlist_id}/manifest.json"


@dataclass(frozen=True, slots=True)
class FanlistUpload:
    source: ObjectRef
    fanlist_id: str
    file: str

    @property
    def campaign_id(self) -> str:
        return self.fanlist_id

    @staticmethod
    def parse(event: Any, bucket: str) -> Result[FanlistUpload, str]:
        """`{key}` / `{bucket, key}` or the key alone (an s3:// URI too)."""
        if not isinstance(event, Mapping | str):
            return Failure("input is not an S3 event or {key}")
        match event_object(event, bucket):
            case Failure(bad_uri):
                return Failure(bad_uri)
            case Success(ref):
                pass
        found = _KEY.match(ref.key)
        if found is None:
            return Failure(f"key {ref.key!r} is not fanlist/uploaded/{{fanlistId}}/{{file}}.csv")
        return Success(FanlistUpload(ref, found["fanlist"], found["file"]))


@dataclass(frozen=True)
class RanksRun:
    """rows = streamed + bad + rejected (+ stranded on failure)."""

    source: str
    campaign_id: str
    scoring: str
    version: str
    created: str
    max_rank: int = 0  # xnum's N; 0 for raw
    rows: int = 0
    streamed: int = 0
    bad: int = 0
    rejected: int = 0  # by the stream (a record it can never take)
    stranded: int = 0
    bad_by_reason: dict[str, int] = field(default_factory=dict)
    bad_rows: list[list[Any]] = field(default_factory=list)  # [row, reason], capped
    next_row: int = 1
    done: bool = False
    already_processed: bool = False
    resumed_at_row: int | None = None

    def checkpoint(self) -> bytes:
        state = asdict(self)
        state.pop("already_processed")
        state.pop("resumed_at_row")
        return json.dumps(state, sort_keys=True).encode()

    def manifest(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "campaignId": self.campaign_id,
            "scoring": self.scoring,
            "version": self.version,
            "created": self.created,
            "maxRank": self.max_rank or None,
            "count": {
                "rows": self.rows,
                "streamed": self.streamed,
                "bad": self.bad,
                "rejected": self.rejected,
            },
            "badByReason": dict(sorted(self.bad_by_reason.items())),
            "badRows": [{"row": r, "reason": why} for r, why in self.bad_rows],
            "badRowsListed": len(self.bad_rows),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            **self.manifest(),
            "alreadyProcessed": self.already_processed,
            "resumedAtRow": self.resumed_at_row,
        }


@dataclass(frozen=True)
class RanksFailure:
    """kind: source_missing, bad_csv, missing_columns, campaign_not_found, no_scoring_type
    (not retryable: the file or the campaign must change); campaign_unavailable, stranded
    (retryable: the checkpoint lets the retry continue); busy (another run holds the file: it
    finishes it), taken_over (this run stalled past its lease)."""

    kind: str
    message: str
    counts: RanksRun | None = None
    retryable: bool = False

    def __str__(self) -> str:
        return self.message


def translate_ranks_to_scores(
    upload: FanlistUpload,
    *,
    store: CheckpointedSource,
    campaigns: CampaignDirectory,
    stream: RecordStream,
    clock: Clock,
    encode: RecordEncoder,
    leases: Leases,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_progress: Callable[[int], None] | None = None,
) -> Result[RanksRun, RanksFailure]:
    return leased(
        leases,
        f"{upload.fanlist_id}/{upload.file}",
        lambda held: Failure(RanksFailure("busy", str(held))),
        lambda lease: _translate(
            upload, store, campaigns, stream, clock, encode, lease, chunk_rows, on_progress
        ),
    )


def _translate(
    upload: FanlistUpload,
    store: CheckpointedSource,
    campaigns: CampaignDirectory,
    stream: RecordStream,
    clock: Clock,
    encode: RecordEncoder,
    lease: Lease,
    chunk_rows: int,
    on_progress: Callable[[int], None] | None,
) -> Result[RanksRun, RanksFailure]:
    source = upload.source
    info = store.head(source)
    if info is None:
        return Failure(RanksFailure("source_missing", f"no fanlist upload at {source.uri}"))
    bucket = source.bucket
    checkpoint_ref = ObjectRef(bucket, checkpoint_key(upload.fanlist_id, upload.file))
    manifest_ref = ObjectRef(bucket, manifest_key(upload.fanlist_id))
    state, cursor = read_checkpoint(store, checkpoint_ref, upload_version(info), RanksRun)
    if state is not None and state.done:
        # The manifest again: the run that finished may have died between the two writes.
        store.put_bytes(manifest_ref, _manifest_bytes(state), "application/json")
        return Success(replace(state, already_processed=True))
    if state is None:
        scoring = _scoring(campaigns, upload.campaign_id)
        if isinstance(scoring, RanksFailure):
            return Failure(scoring)
        state = RanksRun(
            source.uri, upload.campaign_id, scoring, upload_version(info), iso_millis(clock.now())
        )
    else:
        state = replace(state, resumed_at_row=state.next_row)
    try:
        header, rows = read_wave_csv(store.iter_chunks(source))
        columns = _columns(header)
        if isinstance(columns, str):
            return Failure(RanksFailure("missing_columns", f"{source.uri}: {columns}"))
        if state.scoring == ScoringType.XNUM and not state.max_rank:
            state = replace(state, max_rank=_largest_rank(store, source, columns[1]))
        for chunk in _chunks(rows, state.next_row, chunk_rows):
            if not lease.keep():
                return Failure(_taken_over(source))
            state = _put_chunk(state, upload, columns, chunk, stream, encode)
            cursor = store.put_versioned(checkpoint_ref, state.checkpoint(), cursor)
            if cursor is None:
                return Failure(_taken_over(source))
            if state.stranded:
                return Failure(
                    RanksFailure(
                        "stranded",
                        f"{source.uri}: {state.stranded} record(s) could not be put on the "
                        f"stream after retries; a retry continues at row {state.next_row}",
                        state,
                        retryable=True,
                    )
                )
            if on_progress is not None:
                on_progress(state.next_row - 1)
    except ObjectNotFound:
        return Failure(RanksFailure("source_missing", f"no fanlist upload at {source.uri}"))
    except CsvProblem as problem:
        return Failure(RanksFailure("bad_csv", f"{source.uri}: {problem}", state))
    state = replace(state, done=True)
    if store.put_versioned(checkpoint_ref, state.checkpoint(), cursor) is None:
        return Failure(_taken_over(source))
    store.put_bytes(manifest_ref, _manifest_bytes(state), "application/json")
    return Success(state)


def _manifest_bytes(state: RanksRun) -> bytes:
    return json.dumps(state.manifest(), indent=2, sort_keys=True).encode()


def _taken_over(source: ObjectRef) -> RanksFailure:
    return RanksFailure(
        "taken_over",
        f"{source.uri}: this run lost its lease (it stalled past its term and another run took "
        "the upload over); that run finishes it",
    )


def _scoring(campaigns: CampaignDirectory, campaign_id: str) -> str | RanksFailure:
    match campaigns.get_campaign(campaign_id):
        case Failure(failure):
            if failure.kind == FailureKind.UNAVAILABLE:
                return RanksFailure("campaign_unavailable", str(failure), retryable=True)
            return RanksFailure("campaign_not_found", str(failure))
        case Success(campaign):
            scoring = campaign.scoring
    if scoring not in SCORING_TYPES:
        return RanksFailure(
            "no_scoring_type",
            f"campaign {campaign_id!r} has no fanlist scoring type "
            f"(scoring must be one of {', '.join(sorted(SCORING_TYPES))})",
        )
    return str(scoring)


def _columns(header: list[str]) -> tuple[str, str] | str:
    """(identifier column, rank column) as the header spells them, or what is missing."""
    by_lower = {name.lower(): name for name in header}
    rank = by_lower.get(RANK_COLUMN)
    identifier = next((by_lower[i.lower()] for i in IDENTIFIERS if i.lower() in by_lower), None)
    missing = [
        what
        for what, found in (("a rank column", rank), (" or ".join(IDENTIFIERS), identifier))
        if found is None
    ]
    if rank is None or identifier is None:
        return "no " + " and no ".join(missing) + " in the header"
    return identifier, rank


def _largest_rank(store: CheckpointedSource, source: ObjectRef, rank_column: str) -> int:
    """xnum's N: the largest good rank in the file (a first, counting pass: nothing held)."""
    _header, rows = read_wave_csv(store.iter_chunks(source))
    largest = 0
    for row in rows:
        rank = parse_rank((row.values or {}).get(rank_column, ""))
        if isinstance(rank, int) and rank > largest:
            largest = rank
    return largest


def _chunks(rows: Iterator[WaveRow], from_row: int, size: int) -> Iterator[list[WaveRow]]:
    chunk: list[WaveRow] = []
    for row in rows:
        if row.number < from_row:
            continue
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def partition_key(campaign_id: str, identifier: str) -> str:
    """A fan's records share a shard; the key says nothing of the fan (it may be an email)."""
    return hashlib.blake2b(f"{campaign_id}\n{identifier}".encode(), digest_size=16).hexdigest()


def _record(
    state: RanksRun,
    upload: FanlistUpload,
    identifier_column: str,
    identifier: str,
    row: int,
    rank: int,
) -> dict[str, Any]:
    scoring = ScoringType(state.scoring)
    top = state.max_rank if scoring is ScoringType.XNUM else rank
    record: dict[str, Any] = {
        "type": "fanlistEntry",
        "campaignId": upload.campaign_id,
        "fanlistId": upload.fanlist_id,
        "file": f"{upload.file}.csv",
        "row": row,
        "identifier": identifier_column,
        identifier_column: identifier,
        "rank": rank,
        "score": score(scoring, rank, top),
        "scoring": scoring.value,
        "version": state.version,
    }
    record["dedupeId"] = dedupe_id(record)
    record["date"] = {"created": state.created}
    return record


def _put_chunk(
    state: RanksRun,
    upload: FanlistUpload,
    columns: tuple[str, str],
    chunk: list[WaveRow],
    stream: RecordStream,
    encode: RecordEncoder,
) -> RanksRun:
    identifier_column, rank_column = columns
    records: list[StreamRecord] = []
    bad: list[tuple[int, str]] = []
    for row in chunk:
        if row.values is None:
            bad.append((row.number, "wrong_field_count"))
            continue
        identifier = row.values.get(identifier_column, "").strip()
        if not identifier:
            bad.append((row.number, "identifier_missing"))
            continue
        rank = parse_rank(row.values.get(rank_column, ""))
        if isinstance(rank, BadRank):
            bad.append((row.number, rank.reason))
            continue
        record = _record(state, upload, identifier_column, identifier, row.number, rank)
        records.append(StreamRecord(partition_key(upload.campaign_id, identifier), encode(record)))
    outcome = stream.put_records(records)
    if outcome.stranded:  # nothing counted: the retry puts the chunk again (same ids)
        return replace(state, stranded=outcome.stranded)
    by_reason = dict(state.bad_by_reason)
    for _row, reason in bad:
        by_reason[reason] = by_reason.get(reason, 0) + 1
    listed = state.bad_rows + [[r, why] for r, why in bad][: MAX_BAD_ROWS - len(state.bad_rows)]
    if outcome.rejected:
        by_reason["stream_rejected"] = by_reason.get("stream_rejected", 0) + len(outcome.rejected)
    return replace(
        state,
        rows=state.rows + len(chunk),
        streamed=state.streamed + outcome.sent,
        bad=state.bad + len(bad),
        rejected=state.rejected + len(outcome.rejected),
        bad_by_reason=by_reason,
        bad_rows=listed,
        stranded=0,
        next_row=chunk[-1].number + 1,
    )
