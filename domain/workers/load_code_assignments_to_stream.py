"""loadCodeAssignmentsToStream: a wave's codes as `codeAssignment` records on the input stream.

Trigger: an S3 write of a wave config at `smsWaves/{triggered,completed,...}/{wave}_csv.json`
(keys URL-decoded, as S3 events encode them). The config must carry `campaignId`; the wave CSV
is `smsWaves/csv/{wave}.csv`. Rows with a real code (not empty, not `TM`) become
`{type: "codeAssignment", date: {created}, campaignId, categoryId, globalUserId, memberId,
marketId, code}` (ids as strings, as the lake's schema holds them: a numeric categoryId becomes
its decimal text) with the code as partition key, put through the RecordStream (the same
producer as the scored files: batches within Kinesis limits, failed entries resent).

Once per wave, and resumable, the way processScoredFiles is (domain/scoring/progress.py): a
checkpoint `smsWaves/streamed/{wave}.json` in the same bucket is written after each chunk the
stream acknowledged (`nextRow`, the counts, `created`, the wave CSV's version); `done: true`
once the whole CSV is streamed. So:
- the config written again (triggered, then completed; or S3 delivering the event twice) finds
  `done` for the same CSV version and publishes nothing (`alreadyStreamed`);
- a run killed or failed part-way is continued by the next event or retry after the last
  acknowledged chunk, with the same `created` timestamp, so a record put again (only those of
  the chunk in flight at the crash, or of a chunk with stranded entries, whose sent entries
  PutRecords does not name) is byte-for-byte the same record and gets the same dedupe id
  downstream; the entry service assigns a code to a fan once either way;
- a new upload of the wave CSV (another version) is streamed afresh.
One run at a time per wave (issue 19): a run first takes the wave's stream lease (the Leases
port: production `smsWaves/leases/stream/{wave}.json`, S3 conditional puts, domain/lease.py),
so two deliveries processed at the same moment no longer both stream the wave: the second is
refused (`busy`, not retryable: the first finishes) having put nothing. The checkpoint is the
lease's resumable cursor: read with its version, and every write is a compare-and-set on the
version read last (it used to be a plain put). A run that lost its lease (stalled past its
term while another took the wave over) finds it at its next `keep()` or checkpoint and stops
(`taken_over`) without writing over the other run's cursor. A killed run's lease lapses after
its term; the re-run takes it over and continues after the last acknowledged chunk.

Memory bound: one chunk (`chunk_rows` rows and their records).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from returns.result import Failure, Result, Success

from domain.checkpoints import CheckpointedSource, read_checkpoint, upload_version
from domain.lease import leased
from domain.models import ObjectNotFound, ObjectRef, StreamRecord
from domain.ports import (
    BlobReader,
    Clock,
    Lease,
    Leases,
    RecordEncoder,
    RecordStream,
)
from domain.waves import (
    CODE_COLUMN,
    GLOBAL_USER_ID,
    CodeChunk,
    CsvProblem,
    code_chunks,
    event_object,
    iso_millis,
    read_wave_csv,
    streamed_checkpoint_key,
    wave_csv_key,
    wave_of_config_key,
)

DEFAULT_CHUNK_ROWS = 500  # one PutRecords call's worth


@dataclass(frozen=True, slots=True)
class WaveConfigRef:
    config: ObjectRef
    wave: str

    @staticmethod
    def parse(event: Any, bucket: str) -> Result[WaveConfigRef, str]:
        """`{key}` / `{bucket, key}`, or the key alone; the key may be an s3:// URI (an S3
        event is unwrapped to `{bucket, key}` by entrypoints/events.py)."""
        if not isinstance(event, Mapping | str):
            return Failure("input is not an S3 event or {key}")
        match event_object(event, bucket):
            case Failure(bad_uri):
                return Failure(bad_uri)
            case Success(ref):
                pass
        wave = wave_of_config_key(ref.key)
        if wave is None:
            return Failure(f"key {ref.key!r} is not smsWaves/{{state}}/{{wave}}_csv.json")
        return Success(WaveConfigRef(ref, wave))


@dataclass(frozen=True)
class StreamedWave:
    """rows = streamed + without_code + placeholder + rejected (+ stranded on failure)."""

    wave: str
    campaign_id: str
    rows: int = 0
    streamed: int = 0
    without_code: int = 0
    placeholder: int = 0
    rejected: int = 0
    stranded: int = 0
    next_row: int = 1
    created: str = ""
    version: str = ""
    done: bool = False
    already_streamed: bool = False
    resumed_at_row: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "wave": self.wave,
            "campaignId": self.campaign_id,
            "count": {"rows": self.rows, "streamed": self.streamed},
            "skipped": {"withoutCode": self.without_code, "placeholder": self.placeholder},
            "rejected": self.rejected,
            "stranded": self.stranded,
            "alreadyStreamed": self.already_streamed,
            "resumedAtRow": self.resumed_at_row,
        }

    def checkpoint(self) -> bytes:
        state = asdict(self)
        state.pop("already_streamed")
        state.pop("resumed_at_row")
        return json.dumps(state, sort_keys=True).encode()


@dataclass(frozen=True)
class StreamFailure:
    """kind: source_missing, bad_config, bad_csv, missing_columns, busy (another run holds the
    wave: not retryable, it finishes the job) (nothing streamed), stranded (retryable;
    `counts` says how far, the checkpoint lets the retry continue), or taken_over (this run
    stalled past its lease; the run that took the wave over finishes it)."""

    kind: str
    message: str
    counts: StreamedWave | None = None
    retryable: bool = False

    def __str__(self) -> str:
        return self.message


def load_code_assignments_to_stream(
    source: WaveConfigRef,
    *,
    store: CheckpointedSource,
    stream: RecordStream,
    clock: Clock,
    encode: RecordEncoder,
    leases: Leases,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_progress: Callable[[int], None] | None = None,
) -> Result[StreamedWave, StreamFailure]:
    return leased(
        leases,
        source.wave,
        lambda held: Failure(StreamFailure("busy", str(held))),
        lambda lease: _stream_leased(
            source, store, stream, clock, encode, lease, chunk_rows, on_progress
        ),
    )


def _taken_over(wave: str) -> StreamFailure:
    return StreamFailure(
        "taken_over",
        f"wave {wave}: this run lost its stream lease (it stalled past its term and another "
        "run took the wave over); that run finishes the wave",
    )


def _stream_leased(
    source: WaveConfigRef,
    store: CheckpointedSource,
    stream: RecordStream,
    clock: Clock,
    encode: RecordEncoder,
    lease: Lease,
    chunk_rows: int,
    on_progress: Callable[[int], None] | None,
) -> Result[StreamedWave, StreamFailure]:
    config = _config(store, source.config)
    if isinstance(config, StreamFailure):
        return Failure(config)
    campaign_id = str(config["campaignId"])
    csv_ref = ObjectRef(source.config.bucket, wave_csv_key(source.wave))
    info = store.head(csv_ref)
    if info is None:
        return Failure(StreamFailure("source_missing", f"no wave CSV at {csv_ref.uri}"))
    checkpoint_ref = ObjectRef(source.config.bucket, streamed_checkpoint_key(source.wave))
    state, cursor = read_checkpoint(store, checkpoint_ref, upload_version(info), StreamedWave)
    if state is not None and state.done:
        return Success(replace(state, already_streamed=True))
    if state is None:
        state = StreamedWave(
            source.wave, campaign_id, created=iso_millis(clock.now()), version=upload_version(info)
        )
    else:
        state = replace(state, resumed_at_row=state.next_row)
    # The lake's codeAssignment schema holds ids as strings; the wave config's categoryId is a
    # number (NotificationConfig), so it is written as its decimal text.
    category = config.get("categoryId")
    common = {"campaignId": campaign_id, "categoryId": None if category is None else str(category)}
    try:
        header, rows = read_wave_csv(store.iter_chunks(csv_ref))
        missing = [c for c in (CODE_COLUMN, GLOBAL_USER_ID) if c not in header]
        if missing:
            return Failure(
                StreamFailure("missing_columns", f"{csv_ref.uri}: no {', '.join(missing)} column")
            )
        chunks = code_chunks(rows, lambda chunk: chunk.rows >= chunk_rows, from_row=state.next_row)
        for chunk in chunks:
            if not lease.keep():
                return Failure(_taken_over(source.wave))
            state = _put_chunk(state, chunk, common, stream, encode)
            cursor = store.put_versioned(checkpoint_ref, state.checkpoint(), cursor)
            if cursor is None:  # another run moved the cursor: it streams the wave now
                return Failure(_taken_over(source.wave))
            if state.stranded:
                return Failure(
                    StreamFailure(
                        "stranded",
                        f"{csv_ref.uri}: {state.stranded} record(s) could not be put on the "
                        f"stream after retries; a retry continues at row {state.next_row}",
                        state,
                        retryable=True,
                    )
                )
            if on_progress is not None:
                on_progress(state.next_row - 1)
    except ObjectNotFound:
        return Failure(StreamFailure("source_missing", f"no wave CSV at {csv_ref.uri}"))
    except CsvProblem as problem:
        return Failure(StreamFailure("bad_csv", f"{csv_ref.uri}: {problem}", state))
    state = replace(state, done=True)
    if store.put_versioned(checkpoint_ref, state.checkpoint(), cursor) is None:
        return Failure(_taken_over(source.wave))
    return Success(state)


def _config(store: BlobReader, ref: ObjectRef) -> Mapping[str, Any] | StreamFailure:
    try:
        raw = store.read_bytes(ref)
    except ObjectNotFound:
        return StreamFailure("source_missing", f"no wave config at {ref.uri}")
    try:
        config = json.loads(raw)
    except ValueError:
        return StreamFailure("bad_config", f"{ref.uri}: not JSON")
    if not isinstance(config, Mapping):
        return StreamFailure("bad_config", f"{ref.uri}: not a JSON object")
    campaign = config.get("campaignId")
    if not isinstance(campaign, str | int) or isinstance(campaign, bool) or not str(campaign):
        return StreamFailure("bad_config", f"{ref.uri}: campaignId is missing")
    return config


def _put_chunk(
    state: StreamedWave,
    chunk: CodeChunk,
    common: Mapping[str, Any],
    stream: RecordStream,
    encode: RecordEncoder,
) -> StreamedWave:
    records: list[StreamRecord] = []
    for row, code in chunk.coded:
        values = row.values or {}
        record = {
            "type": "codeAssignment",
            "date": {"created": state.created},
            **common,
            "globalUserId": values.get(GLOBAL_USER_ID, "").strip(),
            "memberId": values.get("memberId", "").strip() or None,
            "marketId": values.get("marketId", "").strip() or None,
            "code": code,
        }
        records.append(StreamRecord(code, encode(record)))
    outcome = stream.put_records(records)
    stranded = outcome.stranded
    return replace(
        state,
        rows=state.rows + (0 if stranded else chunk.rows),
        streamed=state.streamed + (0 if stranded else outcome.sent),
        without_code=state.without_code + (0 if stranded else chunk.without_code),
        placeholder=state.placeholder + (0 if stranded else chunk.placeholder),
        rejected=state.rejected + (0 if stranded else len(outcome.rejected)),
        stranded=stranded,
        next_row=state.next_row if stranded else chunk.last_row + 1,
    )
