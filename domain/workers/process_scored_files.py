"""processScoredFiles: a scored TSV in S3 -> `type: "scoring"` records on the stream, the
scrubbed CSV next to it, and a Slack summary. See docs/scored-files.md for the file contract.

Flow: check the key (`scored/{campaignId}.{timestamp}.txt`), fetch the campaign, build its band
scale (salt + tiers), read the blacklist, read and check the header, then stream the rows in
chunks through `transform_chunk` (via the ChunkMapper: in order, a bounded number in flight);
for each chunk, put its records on the stream; every `checkpoint_rows` lines, checkpoint the
chunks put since the last with their CSV rows (domain/scoring/progress.py); at the end, the
scrubbed CSV is written from the checkpoints and the Slack summary sent. Every failure before
the first row (bad key, unknown campaign, no salt, bad tiers, no blacklist, no object, empty
file, bad header) is a `ScoredFileFailure` and nothing is streamed or written. Only the header
can fail the file: an over-long line, like any other bad row, is one rejected row
(`line_too_long`) and the file goes on.

Resuming: a run killed or failed at any point and run again (a Lambda retry, a CLI re-run)
continues after its last checkpoint, and puts only the rows the stream had not acknowledged of
a chunk it left records stranded in. Each accepted row is put once over all runs, except the
records a process that died had put since its last checkpoint (fewer than `checkpoint_rows`
lines' and the put in flight: consumers de-duplicate by `dedupeId`). The final CSV, counts and
summary equal an uninterrupted run's; a completed file run again does nothing and says so
(`ScoredFileCounts.already_processed`).

One run at a time: before it reads the progress or puts anything, a run takes the file's lease
(domain/scoring/lease.py, a conditional write beside the progress). A second run of the same
file while the first lives stops at once, having streamed nothing (`in_progress`, naming the
holder and its expiry); a crashed run's lease expires after `lease_seconds` (default 120 s),
and then a re-run takes it over and resumes (at once when `liveness` proves the holder dead:
killed on this machine). A run whose lease was taken over (it stalled past
it) stops at its next put or checkpoint (`taken_over`).

Memory bound: O(blacklist + in-flight chunks x rows_per_chunk), independent of the file's length:
the file is read line by line (ObjectStore.iter_lines; an over-long line is skipped, not held),
at most `rows_per_chunk` lines (default 2,000) are grouped per chunk, the mapper holds a bounded
number of chunks (the sequential one: one), each chunk's records are handed to the stream before
the next chunk is read, and the CSV is assembled from the checkpoints one at a time through a
streaming writer. Counters are per reason/tag/band, not per row.

Counting: in = out + rejected + stranded, and rejected is broken down by reason. `out` counts
records the stream accepted; a record the producer refuses (PutOutcome.rejected) is counted as
rejected with reason `stream_rejected` (its CSV row says verdict true: the count and the
summary say otherwise). If the stream reports stranded records (still failing after its retry
budget) the run stops at that chunk and is a Failure with what was streamed so far; a re-run
goes on from there. Nothing is dropped silently.

A notifier failure never fails the run: it is logged and returned in
`ScoredFileCounts.notify_error`.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import islice
from typing import Any

from returns.result import Failure, Result, Success

from domain.checkpoints import upload_version
from domain.models import (
    Campaign,
    Notification,
    ObjectNotFound,
    ObjectRef,
    OverlongLine,
    PutOutcome,
    StreamRecord,
)
from domain.ports import (
    BlobWriter,
    CampaignDirectory,
    ChunkMapper,
    Clock,
    ConditionalObjectStore,
    LineReader,
    Notifier,
    ObjectReader,
    ProcessLiveness,
    RecordEncoder,
    RecordStream,
)
from domain.scoring.bands import BandScale
from domain.scoring.chunks import DEFAULT_CHUNK_ROWS, SequentialMapper, chunk_lines
from domain.scoring.columns import parse_header
from domain.scoring.emails import normalise_blacklist_entry
from domain.scoring.lease import DEFAULT_LEASE_SECONDS, FileLease
from domain.scoring.progress import (
    DEFAULT_CHECKPOINT_ROWS,
    Checkpoint,
    Finished,
    OpenChunk,
    ProgressLedger,
    RunTotals,
)
from domain.scoring.reasons import Reason
from domain.scoring.scrubbed import render_header
from domain.scoring.transform import Chunk, ChunkResult, TransformContext, transform_chunk

log = logging.getLogger("campaign_workers.process_scored_files")

# The per-chunk transform (module-level, so a process pool can pickle it).
ChunkTransform = Callable[[TransformContext, Chunk], ChunkResult]

SCORED_KEY = re.compile(r"scored/(?P<campaign_id>[^/.]+)\.(?P<timestamp>[^/]+)\.txt")


@dataclass(frozen=True, slots=True)
class ScoredFileKey:
    campaign_id: str
    timestamp: str

    @staticmethod
    def parse(ref: ObjectRef) -> ScoredFileKey | None:
        match = SCORED_KEY.fullmatch(ref.key)
        if match is None:
            return None
        return ScoredFileKey(match["campaign_id"], match["timestamp"])

    @property
    def name(self) -> str:
        return f"{self.campaign_id}.{self.timestamp}"

    def scrubbed(self, bucket: str) -> ObjectRef:
        return ObjectRef(bucket, f"scrubbed/{self.campaign_id}.{self.timestamp}.csv")


@dataclass(frozen=True)
class ScoredFileCounts:
    """What the file's runs did, all together. rows_in = rows_out + rows_rejected + stranded.

    `resumed_at_line` is the line this run started at when an earlier run had got that far
    (None: from the first row); `already_processed` says the file was complete before this run,
    which then did nothing but report the counts it had recorded."""

    source: ObjectRef
    scrubbed: ObjectRef
    campaign_id: str
    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0
    stranded: int = 0
    tagged: int = 0
    rejected_by_reason: Mapping[str, int] = field(default_factory=dict)
    by_tag: Mapping[str, int] = field(default_factory=dict)
    by_band: Mapping[str, int] = field(default_factory=dict)
    stream_calls: int = 0
    stream_retries: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    notify_error: str | None = None
    resumed_at_line: int | None = None
    already_processed: bool = False


@dataclass(frozen=True)
class ScoredFileFailure:
    """Why a file was not (completely) processed.

    kind: bad_key, campaign_not_found, campaign_unavailable (retry may help), bad_campaign (no salt,
    bad tiers, malformed config), blacklist_unavailable,
    bad_blacklist, source_missing, empty_file, bad_encoding, missing_columns, bad_header (nothing
    streamed for any of these), in_progress (another run holds the file's lease: this run
    streamed nothing; retry after the holder's expiry), stranded (the run stopped at the chunk
    the stream left records stranded in; `counts` says what was streamed; a re-run resumes
    there), or taken_over (another run took the lease of this stalled run; it goes on).
    """

    kind: str
    message: str
    source: ObjectRef
    counts: ScoredFileCounts | None = None

    def __str__(self) -> str:
        return f"{self.source.uri}: {self.message}"


def _ranked(counts: Mapping[str, int]) -> dict[str, int]:
    """Most frequent first (a plain dict: the counts go into JSON responses and logs)."""
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _load_blacklist(
    store: LineReader, ref: ObjectRef, source: ObjectRef
) -> Result[frozenset[str], ScoredFileFailure]:
    """One email per line (case-insensitive; blank lines and # comments ignored)."""
    entries: set[str] = set()
    try:
        for number, line in enumerate(store.iter_lines(ref), start=1):
            if isinstance(line, OverlongLine):
                problem = f"blacklist {ref.uri} line {number} is {line.length} bytes long"
                return Failure(ScoredFileFailure("bad_blacklist", problem, source))
            try:
                text = line.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                return Failure(
                    ScoredFileFailure(
                        "bad_blacklist", f"blacklist {ref.uri} line {number} is not UTF-8", source
                    )
                )
            entry = normalise_blacklist_entry(text)
            if entry is not None:
                entries.add(entry)
    except ObjectNotFound:
        return Failure(
            ScoredFileFailure("blacklist_unavailable", f"no blacklist at {ref.uri}", source)
        )
    return Success(frozenset(entries))


@dataclass(frozen=True)
class _Prepared:
    ctx: TransformContext
    lines: Iterator[bytes | OverlongLine]
    campaign: Campaign
    version: str


def process_scored_files(
    source: ObjectRef,
    *,
    store: ConditionalObjectStore,
    stream: RecordStream,
    campaigns: CampaignDirectory,
    notifier: Notifier,
    clock: Clock,
    encode: RecordEncoder,
    blacklist: ObjectRef,
    mapper: ChunkMapper | None = None,
    on_progress: Callable[[int], None] | None = None,
    rows_per_chunk: int = DEFAULT_CHUNK_ROWS,
    checkpoint_rows: int = DEFAULT_CHECKPOINT_ROWS,
    run_id: str | None = None,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    transform: ChunkTransform = transform_chunk,
    liveness: ProcessLiveness | None = None,
) -> Result[ScoredFileCounts, ScoredFileFailure]:
    """Process one scored file, or go on with it where an earlier run stopped; see the module
    docstring for the rules, bound and counts. `run_id` names this run in the file's lease
    (unique per run: by default a random one); `lease_seconds` is the lease's term; `liveness`
    lets it take over at once the lease of a holder provably dead (domain/lease.py).
    `rows_per_chunk` may differ from an earlier run's: a re-run cuts its chunks from where that
    one stopped. `checkpoint_rows`: a checkpoint once the chunks acknowledged since the last one
    hold at least that many lines (and at the end, and at a stranded chunk); the records of up
    to `checkpoint_rows - 1 + rows_per_chunk` lines may be put again after a crash."""
    if rows_per_chunk < 1:  # islice(lines, 0) reads nothing: the file would be "done", empty
        raise ValueError(f"rows_per_chunk must be at least 1, got {rows_per_chunk}")
    if checkpoint_rows < 1:
        raise ValueError(f"checkpoint_rows must be at least 1, got {checkpoint_rows}")
    started = clock.now()
    key = ScoredFileKey.parse(source)
    if key is None:
        bad_key = ScoredFileFailure(
            "bad_key", f"key {source.key!r} is not scored/{{campaignId}}.{{timestamp}}.txt", source
        )
        _notify_failure(notifier, bad_key, None)
        return Failure(bad_key)
    prepared = _prepare(source, key, store, campaigns, blacklist, stream, encode)
    if isinstance(prepared, ScoredFileFailure):
        _notify_failure(notifier, prepared, None)
        return Failure(prepared)
    ledger = ProgressLedger(store, source.bucket, key.name, prepared.version)
    holder = run_id or uuid.uuid4().hex
    lease = FileLease(store, ledger.lease_ref, holder, clock, lease_seconds, liveness=liveness)
    match lease.acquire():
        case Failure(held):
            log.warning("scored file in progress elsewhere: %s", held, extra={"source": source.uri})
            return Failure(ScoredFileFailure("in_progress", str(held), source))
    try:
        run = _Run(source, key, store, stream, ledger, lease, started, checkpoint_rows)
        return _run_leased(
            run, prepared, notifier, clock, mapper, on_progress, rows_per_chunk, transform
        )
    finally:
        lease.release()


def _run_leased(
    run: _Run,
    prepared: _Prepared,
    notifier: Notifier,
    clock: Clock,
    mapper: ChunkMapper | None,
    on_progress: Callable[[int], None] | None,
    rows_per_chunk: int,
    transform: ChunkTransform,
) -> Result[ScoredFileCounts, ScoredFileFailure]:
    """The run itself, once it holds the file's lease. `transform` is `transform_chunk` or one
    giving exactly its results (adapters/row_kernel.py: the compiled kernel)."""
    source, ledger = run.source, run.ledger
    earlier = ledger.load()
    if isinstance(earlier, Finished):
        ledger.clear(with_done=False)  # a crash may have left checkpoints behind
        log.info("scored file already processed", extra={"source": source.uri})
        return Success(run.counts_from_report(earlier.report))
    run.resume_from(earlier)
    lines = islice(prepared.lines, run.next_line - 2, None)  # iterator starts at line 2
    first_rows = None if run.open_chunk is None else run.open_chunk.end_line - run.next_line
    chunks = chunk_lines(lines, run.next_line, rows_per_chunk, first_rows)
    results = (mapper or SequentialMapper()).map(transform, prepared.ctx, chunks)
    try:
        for result in results:
            stopped = run.stream_chunk(result)
            if stopped is not None:
                break
            if on_progress is not None:
                on_progress(run.totals.rows_in)
        else:
            stopped = run.flush()
    except Exception:
        # A failed transform or put: the chunks acknowledged before it need not be put again.
        run.flush_quietly()
        raise
    if stopped is not None:
        counts = replace(stopped.counts or run.counts(run.totals), finished_at=clock.now())
        if stopped.kind == "stranded":  # a taken-over run leaves the summary to the taker
            _notify(notifier, summary(counts, prepared.campaign))
        return Failure(replace(stopped, counts=counts))
    # The end (CSV, summary, done marker, deleting the checkpoints) is the lease holder's too:
    # a run taken over here would delete the checkpoints the taker is reading.
    if not run.lease.keep():
        return Failure(run.taken_over(run.next_line))
    run.write_scrubbed(prepared.ctx)
    counts = run.counts(run.totals, finished=clock.now())
    notify_error = _notify(notifier, summary(counts, prepared.campaign))
    if notify_error is not None:
        counts = replace(counts, notify_error=notify_error)
    if not run.lease.keep():
        return Failure(run.taken_over(run.next_line))
    ledger.finish(_report(counts))
    return Success(counts)


class _Run:
    """One run over a file: the stream puts, checkpoints and final CSV, resumable."""

    def __init__(
        self,
        source: ObjectRef,
        key: ScoredFileKey,
        store: BlobWriter,
        stream: RecordStream,
        ledger: ProgressLedger,
        lease: FileLease,
        started: datetime,
        checkpoint_rows: int = 1,
    ) -> None:
        self.source, self.key, self.store, self.stream = source, key, store, stream
        self.ledger, self.lease = ledger, lease
        self.started = started
        self.checkpoint_rows = checkpoint_rows
        self.part = 0
        self.next_line = 2
        self.totals = RunTotals()
        self.open_chunk: OpenChunk | None = None
        self.resumed_at: int | None = None
        # Chunks acknowledged since the last checkpoint: their lines and CSV rows, held until the
        # next one (each checkpoint is an S3 write read back at the end, ~2.8 ms of CPU a call).
        self.unsaved_rows = 0
        self.unsaved_csv: list[bytes] = []
        self.saved_line = 2

    def resume_from(self, checkpoint: Checkpoint | None) -> None:
        if checkpoint is None:
            return
        self.part, self.next_line = checkpoint.part, checkpoint.next_line
        self.saved_line = checkpoint.next_line
        self.totals, self.open_chunk = checkpoint.totals, checkpoint.open_chunk
        self.resumed_at = checkpoint.next_line
        log.info(
            "scored file resumed",
            extra={"source": self.source.uri, "line": self.next_line, "part": self.part},
        )

    def stream_chunk(self, result: ChunkResult) -> ScoredFileFailure | None:
        """Puts the chunk's records (only those still pending if an earlier run left the chunk
        open), then holds its CSV for the next checkpoint, written once `checkpoint_rows` lines
        are held; a chunk with stranded rows is checkpointed at once, open, after those held."""
        first_line = self.next_line
        end_line = first_line + result.rows
        open_chunk = self.open_chunk
        positions: Sequence[int] = range(len(result.payloads))
        if open_chunk is not None:
            pending = set(open_chunk.pending_rows)
            positions = [i for i, row in enumerate(result.record_rows) if row in pending]
        records = [StreamRecord(result.partition_keys[i], result.payloads[i]) for i in positions]
        if records and not self.lease.keep():
            return self.taken_over(first_line)
        outcome = self.stream.put_records(records) if records else PutOutcome()
        if outcome.stranded and len(outcome.stranded_at) != outcome.stranded:
            raise RuntimeError("the stream reported stranded records without their positions")
        self.totals.calls += outcome.calls
        self.totals.retries += outcome.retries
        sent = outcome.sent + (open_chunk.sent if open_chunk else 0)
        refused = len(outcome.rejected) + (open_chunk.stream_rejected if open_chunk else 0)
        if outcome.stranded:
            rows = tuple(result.record_rows[positions[at]] for at in outcome.stranded_at)
            self.open_chunk = OpenChunk(first_line, end_line, rows, sent, refused)
            if self.save() is not None:
                return self.taken_over(first_line)
            return self._stranded(result, self.open_chunk)
        self.totals.add_chunk(result)
        self.totals.rows_out += sent
        if refused:
            self.totals.rejected[Reason.STREAM_REJECTED.value] += refused
        self.next_line, self.open_chunk = end_line, None
        self.unsaved_rows += result.rows
        self.unsaved_csv.append(result.csv)
        if self.unsaved_rows >= self.checkpoint_rows:
            return self.flush()
        return None

    def flush(self) -> ScoredFileFailure | None:
        """Checkpoints the acknowledged chunks held (None: none held, or written)."""
        if not self.unsaved_rows:
            return None
        return self.save()

    def flush_quietly(self) -> None:
        """flush() on the way out of a failed run: its own failure must not hide the first."""
        try:
            self.flush()
        except Exception:
            log.warning("scored file: no checkpoint after the failure", exc_info=True)

    def save(self) -> ScoredFileFailure | None:
        """Writes the next checkpoint with the CSV rows held; taken_over if another run wrote it."""
        # Numbered on only once written: a write that raised is retried under the same number.
        checkpoint = self._checkpoint(self.part + 1)
        if not self.ledger.save(checkpoint, b"".join(self.unsaved_csv)):
            return self.taken_over(self.saved_line)
        self.part = checkpoint.part
        self.unsaved_rows, self.unsaved_csv, self.saved_line = 0, [], self.next_line
        return None

    def taken_over(self, line: int) -> ScoredFileFailure:
        """Another run took the lease while this one stalled past it: stop, put nothing more."""
        message = (
            f"another run took this file over at line {line} (this run stalled past its lease); "
            "that run goes on from its checkpoint"
        )
        log.warning("scored file taken over: %s", message, extra={"source": self.source.uri})
        return ScoredFileFailure("taken_over", message, self.source, self.counts(self.totals))

    def _checkpoint(self, part: int) -> Checkpoint:
        return Checkpoint(part, self.ledger.version, self.next_line, self.totals, self.open_chunk)

    def _stranded(self, result: ChunkResult, open_chunk: OpenChunk) -> ScoredFileFailure:
        """The failure of a run that stopped at an open chunk, counting that chunk as it stands."""
        partial = RunTotals.from_json(self.totals.to_json())
        partial.add_chunk(result)
        partial.rows_out += open_chunk.sent
        if open_chunk.stream_rejected:
            partial.rejected[Reason.STREAM_REJECTED.value] += open_chunk.stream_rejected
        stranded = len(open_chunk.pending_rows)
        counts = self.counts(partial, stranded=stranded)
        message = (
            f"{stranded} record(s) could not be put on the stream after retries "
            f"({counts.rows_out} streamed); a re-run resumes at line {open_chunk.first_line}"
        )
        return ScoredFileFailure("stranded", message, self.source, counts)

    def write_scrubbed(self, ctx: TransformContext) -> None:
        """The scrubbed CSV from the checkpoints, one at a time; it appears only when whole."""
        target = self.key.scrubbed(self.source.bucket)
        with self.store.open_writer(target, "text/csv; charset=utf-8") as writer:
            writer.write(render_header(ctx.layout))
            for csv in self.ledger.csv_parts(self.part):
                if csv:
                    writer.write(csv)

    def counts(
        self, totals: RunTotals, *, stranded: int = 0, finished: datetime | None = None
    ) -> ScoredFileCounts:
        return ScoredFileCounts(
            source=self.source,
            scrubbed=self.key.scrubbed(self.source.bucket),
            campaign_id=self.key.campaign_id,
            rows_in=totals.rows_in,
            rows_out=totals.rows_out,
            rows_rejected=totals.rows_rejected,
            stranded=stranded,
            tagged=totals.tagged,
            rejected_by_reason=_ranked(totals.rejected),
            by_tag=_ranked(totals.tags),
            by_band=_ranked(totals.bands),
            stream_calls=totals.calls,
            stream_retries=totals.retries,
            started_at=self.started,
            finished_at=finished,
            resumed_at_line=self.resumed_at,
        )

    def counts_from_report(self, report: Mapping[str, Any]) -> ScoredFileCounts:
        totals = RunTotals.from_json(report["totals"])
        counts = self.counts(totals, finished=self.started)
        return replace(counts, notify_error=report.get("notify_error"), already_processed=True)


def _report(counts: ScoredFileCounts) -> dict[str, Any]:
    """What done.json keeps of a finished file: enough to answer a re-run with its counts."""
    totals = RunTotals(
        rows_in=counts.rows_in,
        rows_out=counts.rows_out,
        tagged=counts.tagged,
        calls=counts.stream_calls,
        retries=counts.stream_retries,
        rejected=Counter(counts.rejected_by_reason),
        tags=Counter(counts.by_tag),
        bands=Counter(counts.by_band),
    )
    return {"totals": totals.to_json(), "notify_error": counts.notify_error}


def _prepare(
    source: ObjectRef,
    key: ScoredFileKey,
    store: ObjectReader,
    campaigns: CampaignDirectory,
    blacklist: ObjectRef,
    stream: RecordStream,
    encode: RecordEncoder,
) -> _Prepared | ScoredFileFailure:
    match campaigns.get_campaign(key.campaign_id):
        case Failure(problem):
            # Only an unreachable directory is worth a retry; an unknown or malformed campaign
            # stays so until someone fixes its configuration.
            kind = {"not_found": "campaign_not_found", "invalid": "bad_campaign"}.get(
                problem.kind, "campaign_unavailable"
            )
            return ScoredFileFailure(kind, f"campaign {key.campaign_id}: {problem}", source)
        case Success(campaign):
            pass
    match BandScale.build(key.campaign_id, campaign.band_tiers, campaign.band_salt):
        case Failure(reason):
            return ScoredFileFailure("bad_campaign", reason, source)
        case Success(bands):
            pass
    match _load_blacklist(store, blacklist, source):
        case Failure(ScoredFileFailure() as unreadable):
            return unreadable
        case Success(emails):
            pass
    info = store.head(source)
    if info is None:
        return ScoredFileFailure("source_missing", f"no object at {source.uri}", source)
    lines = iter(store.iter_lines(source))
    try:
        header_line = next(lines, None)
    except ObjectNotFound:
        return ScoredFileFailure("source_missing", f"no object at {source.uri}", source)
    if isinstance(header_line, OverlongLine):
        message = f"the header (line 1) is {header_line.length} bytes long: no line breaks?"
        return ScoredFileFailure("bad_header", message, source)
    match parse_header(header_line):
        case Failure(header_problem):
            return ScoredFileFailure(header_problem.kind, header_problem.message, source)
        case Success(layout):
            pass
    ctx = TransformContext.for_campaign(
        campaign,
        source_uri=source.uri,
        layout=layout,
        bands=bands,
        blacklist=emails,
        encode=encode,
        max_record_bytes=stream.max_record_bytes,
    )
    return _Prepared(ctx, lines, campaign, upload_version(info))


def summary(counts: ScoredFileCounts, campaign: Campaign) -> Notification:
    """The Slack summary: in / out / tagged / rejected, then by tag, by reason and by band."""
    name = f" ({campaign.name})" if campaign.name else ""
    title = (
        f"Scored file {counts.source.key} for campaign {counts.campaign_id}{name}: "
        f"{counts.rows_out:,} of {counts.rows_in:,} fans streamed"
    )
    fields: list[tuple[str, str]] = [
        ("in", f"{counts.rows_in:,}"),
        ("out", f"{counts.rows_out:,}"),
        ("tagged", f"{counts.tagged:,}"),
        ("rejected", f"{counts.rows_rejected:,}"),
    ]
    if counts.stranded:
        fields.append(("stranded", f"{counts.stranded:,}"))
    lines = [
        *(f"tag {tag}: {n:,}" for tag, n in counts.by_tag.items()),
        *(f"rejected {reason}: {n:,}" for reason, n in counts.rejected_by_reason.items()),
        *(f"band {band}: {n:,}" for band, n in counts.by_band.items()),
        f"scrubbed CSV: {counts.scrubbed.uri}",
    ]
    return Notification(
        title=title,
        lines=tuple(lines),
        fields=tuple(fields),
        channel=campaign.slack_channel,
        ok=counts.stranded == 0,
    )


def _notify(notifier: Notifier, notification: Notification) -> str | None:
    match notifier.notify(notification):
        case Failure(reason):
            error = str(reason)
            log.warning("slack summary not sent: %s", error)
            return error
    return None


def _notify_failure(notifier: Notifier, failure: ScoredFileFailure, channel: str | None) -> None:
    _notify(
        notifier,
        Notification(
            title=f"Scored file {failure.source.key} failed: {failure.message}",
            lines=(f"kind: {failure.kind}",),
            channel=channel,
            ok=False,
        ),
    )
