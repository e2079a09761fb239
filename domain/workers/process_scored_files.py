"""processScoredFiles: a scored TSV in S3 -> `type: "scoring"` records on the stream, the
scrubbed CSV next to it, and a Slack summary. See docs/scored-files.md for the file contract.

Flow: check the key (`scored/{campaignId}.{timestamp}.txt`), fetch the campaign, build its band
scale (salt + tiers), read the blacklist, read and check the header, then stream the rows in
chunks through `transform_chunk` (via the ChunkMapper: in order, a bounded number in flight);
for each chunk, write its CSV rows and put its records on the stream. Every failure before the
first row (bad key, unknown campaign, no salt, bad tiers, no blacklist, no object, empty file,
bad header) is a `ScoredFileFailure` and nothing is streamed or written.

Memory bound: O(blacklist + in-flight chunks x rows_per_chunk), independent of the file's length:
the file is read line by line (ObjectStore.iter_lines), at most `rows_per_chunk` lines
(default 2,000) are grouped per chunk, the mapper holds a bounded number of chunks (the
sequential one: one), the CSV is written through a streaming writer, and each chunk's records are
handed to the stream before the next chunk is read. Counters are per reason/tag/band, not per row.

Counting: in = out + rejected + stranded, and rejected is broken down by reason. `out` counts
records the stream accepted; a record the producer refuses (PutOutcome.rejected) is counted as
rejected with reason `stream_rejected` (its CSV row, already written, says verdict true: the
count and the failure notification say otherwise). If the stream reports stranded records
(still failing after its retry budget) the run is a Failure with the count, after the scrubbed
CSV has been completed: the run fails loudly, nothing is dropped silently.

A notifier failure never fails the run: it is logged and returned in
`ScoredFileCounts.notify_error`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from returns.result import Failure, Result, Success

from domain.models import (
    Campaign,
    Notification,
    ObjectNotFound,
    ObjectRef,
    StreamRecord,
)
from domain.ports import (
    CampaignDirectory,
    Clock,
    Notifier,
    ObjectStore,
    RecordEncoder,
    RecordStream,
)
from domain.scoring.bands import BandScale
from domain.scoring.chunks import DEFAULT_CHUNK_ROWS, ChunkMapper, SequentialMapper, chunk_lines
from domain.scoring.columns import parse_header
from domain.scoring.emails import normalise_blacklist_entry
from domain.scoring.scrubbed import render_header
from domain.scoring.transform import ChunkResult, TransformContext, transform_chunk

log = logging.getLogger("campaign_workers.process_scored_files")

SCORED_KEY = re.compile(r"scored/(?P<campaign_id>[^/.]+)\.(?P<timestamp>[^/]+)\.txt")
STREAM_REJECTED = "stream_rejected"


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

    def scrubbed(self, bucket: str) -> ObjectRef:
        return ObjectRef(bucket, f"scrubbed/{self.campaign_id}.{self.timestamp}.csv")


@dataclass(frozen=True)
class ScoredFileCounts:
    """What one run did. rows_in = rows_out + rows_rejected + stranded."""

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


@dataclass(frozen=True)
class ScoredFileFailure:
    """Why a file was not (completely) processed.

    kind: bad_key, campaign_not_found, campaign_unavailable (retry may help), bad_campaign (no salt,
    bad tiers, malformed config), blacklist_unavailable,
    bad_blacklist, source_missing, empty_file, bad_encoding, missing_columns, bad_header (nothing
    streamed for any of these), or stranded (the file was processed, `counts` says how far).
    """

    kind: str
    message: str
    source: ObjectRef
    counts: ScoredFileCounts | None = None

    def __str__(self) -> str:
        return f"{self.source.uri}: {self.message}"


@dataclass
class _Totals:
    rows_in: int = 0
    rows_out: int = 0
    stranded: int = 0
    tagged: int = 0
    calls: int = 0
    retries: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    tags: dict[str, int] = field(default_factory=dict)
    bands: dict[str, int] = field(default_factory=dict)

    def add_chunk(self, result: ChunkResult) -> None:
        self.rows_in += result.rows
        self.tagged += result.tagged
        _merge(self.rejected, result.rejected)
        _merge(self.tags, result.tags)
        _merge(self.bands, result.bands)

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected.values())


def _merge(into: dict[str, int], counts: Mapping[str, int]) -> None:
    for key, count in counts.items():
        into[key] = into.get(key, 0) + count


def _ranked(counts: dict[str, int]) -> dict[str, int]:
    """Most frequent first (a plain dict: the counts go into JSON responses and logs)."""
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _load_blacklist(
    store: ObjectStore, ref: ObjectRef, source: ObjectRef
) -> Result[frozenset[str], ScoredFileFailure]:
    """One email per line (case-insensitive; blank lines and # comments ignored)."""
    entries: set[str] = set()
    try:
        for number, line in enumerate(store.iter_lines(ref), start=1):
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


def process_scored_files(
    source: ObjectRef,
    *,
    store: ObjectStore,
    stream: RecordStream,
    campaigns: CampaignDirectory,
    notifier: Notifier,
    clock: Clock,
    encode: RecordEncoder,
    blacklist: ObjectRef,
    mapper: ChunkMapper | None = None,
    on_progress: Callable[[int], None] | None = None,
    rows_per_chunk: int = DEFAULT_CHUNK_ROWS,
) -> Result[ScoredFileCounts, ScoredFileFailure]:
    """Process one scored file; see the module docstring for the rules, bound and counts."""
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
    ctx, lines, campaign = prepared

    target = key.scrubbed(source.bucket)
    totals = _Totals()
    mapper = mapper or SequentialMapper()
    with store.open_writer(target, "text/csv; charset=utf-8") as writer:
        writer.write(render_header(ctx.layout))
        for result in mapper.map(transform_chunk, ctx, chunk_lines(lines, 2, rows_per_chunk)):
            writer.write(result.csv)
            totals.add_chunk(result)
            _put(stream, result, totals)
            if on_progress is not None:
                on_progress(totals.rows_in)

    counts = ScoredFileCounts(
        source=source,
        scrubbed=target,
        campaign_id=key.campaign_id,
        rows_in=totals.rows_in,
        rows_out=totals.rows_out,
        rows_rejected=totals.rows_rejected,
        stranded=totals.stranded,
        tagged=totals.tagged,
        rejected_by_reason=_ranked(totals.rejected),
        by_tag=_ranked(totals.tags),
        by_band=_ranked(totals.bands),
        stream_calls=totals.calls,
        stream_retries=totals.retries,
        started_at=started,
        finished_at=clock.now(),
    )
    notify_error = _notify(notifier, summary(counts, campaign))
    if notify_error is not None:
        counts = _with_notify_error(counts, notify_error)
    if counts.stranded:
        return Failure(
            ScoredFileFailure(
                "stranded",
                f"{counts.stranded} record(s) could not be put on the stream after retries",
                source,
                counts,
            )
        )
    return Success(counts)


def _prepare(
    source: ObjectRef,
    key: ScoredFileKey,
    store: ObjectStore,
    campaigns: CampaignDirectory,
    blacklist: ObjectRef,
    stream: RecordStream,
    encode: RecordEncoder,
) -> tuple[TransformContext, Iterator[bytes], Campaign] | ScoredFileFailure:
    looked_up = campaigns.get_campaign(key.campaign_id)
    if not isinstance(looked_up, Success):
        problem = looked_up.failure()
        # Only an unreachable directory is worth a retry; an unknown or malformed campaign
        # stays so until someone fixes its configuration.
        kind = {"not_found": "campaign_not_found", "invalid": "bad_campaign"}.get(
            problem.kind, "campaign_unavailable"
        )
        return ScoredFileFailure(kind, f"campaign {key.campaign_id}: {problem}", source)
    campaign = looked_up.unwrap()
    scale = BandScale.build(key.campaign_id, campaign.band_tiers, campaign.band_salt)
    if not isinstance(scale, Success):
        return ScoredFileFailure("bad_campaign", scale.failure(), source)
    emails = _load_blacklist(store, blacklist, source)
    if not isinstance(emails, Success):
        return emails.failure()
    lines = iter(store.iter_lines(source))
    try:
        header_line = next(lines, None)
    except ObjectNotFound:
        return ScoredFileFailure("source_missing", f"no object at {source.uri}", source)
    layout = parse_header(header_line)
    if not isinstance(layout, Success):
        header_problem = layout.failure()
        return ScoredFileFailure(header_problem.kind, header_problem.message, source)
    ctx = TransformContext.for_campaign(
        campaign,
        source_uri=source.uri,
        layout=layout.unwrap(),
        bands=scale.unwrap(),
        blacklist=emails.unwrap(),
        encode=encode,
        max_record_bytes=stream.max_record_bytes,
    )
    return ctx, lines, campaign


def _put(stream: RecordStream, result: ChunkResult, totals: _Totals) -> None:
    if not result.payloads:
        return
    outcome = stream.put_records(map(StreamRecord, result.partition_keys, result.payloads))
    totals.rows_out += outcome.sent
    totals.stranded += outcome.stranded
    totals.calls += outcome.calls
    totals.retries += outcome.retries
    if outcome.rejected:
        _merge(totals.rejected, {STREAM_REJECTED: len(outcome.rejected)})


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
    outcome = notifier.notify(notification)
    if isinstance(outcome, Success):
        return None
    error = str(outcome.failure())
    log.warning("slack summary not sent: %s", error)
    return error


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


def _with_notify_error(counts: ScoredFileCounts, error: str) -> ScoredFileCounts:
    return replace(counts, notify_error=error)
