"""save_selection (the original's cmp-save-selection): assign the streamed codes to fans' entries.

Reads the save-selection stream. For one batch:
- a record that does not decode is dead-lettered (this worker is the stream's only reader);
- records of other types (scored records, if the scored-file pipeline writes to this stream, and
  selection refreshes) are filtered and counted, and so is the TM placeholder code;
- a code assignment without campaignId, userId, globalUserId or code is dead-lettered;
- the same (campaign, fan, code) twice in one batch is handled once;
- per campaign, in order of first appearance: codes are assigned in calls of at most
  `entries.max_assignments_per_call` (the entry service takes 1,000), the selection is
  recorded in the ledger (when one is given: the DynamoDB entry directory records it itself),
  and one verdict `{campaignId, count: 1}` per assignment that stands (newly assigned or already
  there from an earlier attempt) goes to the verdict queue, its dedupe id a hash of the
  assignment's natural id (campaign, fan, code): see domain.records.verdict_for.

A campaign the entry directory does not know, or a call it refuses as invalid, dead-letters that
call's records with the reason. A transient failure of any dependency raises
DependencyUnavailable: the runtime replays the batch, and the replay assigns nothing twice
(conditional assignment), records the same selection again (idempotent) and sends each
assignment's verdict again under the same dedupe id. Because the id names one assignment, not a
batch, a replay cut anywhere, after a crash anywhere, re-sends only ids already sent or sends
new ones for assignments never counted: the distinct ids' counts add up to the number of
distinct assignments (tests/property/test_stream_workers.py crashes and re-cuts at random).
Memory: the batch and its assignments.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from returns.result import Failure, Success

from domain.models import FailureKind, LookupFailure
from domain.ports import DeadLetters, EntryDirectory, SelectionLedger, VerdictQueue
from domain.records import CodeAssignment, RecordType, decode_record, trim_strings, verdict_for
from domain.streaming import BatchCounts, BatchTally, DependencyUnavailable, IncomingRecord

WORKER = "save_selection"
MAX_ASSIGNMENTS_PER_CALL = 1000
PLACEHOLDER_CODE = "TM"
_REQUIRED = ("campaignId", "userId", "globalUserId", "code")


class Detail(StrEnum):
    """The keys of BatchCounts.detail this worker counts under (dead:{kind} also per refusal)."""

    UNDECODABLE = "dead:undecodable"
    INCOMPLETE = "dead:incomplete"
    OTHER_TYPE = "filtered:other_type"
    PLACEHOLDER = "filtered:placeholder_code"
    DUPLICATE = "duplicate_in_batch"
    ASSIGNED = "assigned"
    ALREADY = "already_assigned"
    VERDICTS = "verdicts_sent"


@dataclass
class _Group:
    assignments: list[CodeAssignment] = field(default_factory=list)
    sources: list[list[IncomingRecord]] = field(default_factory=list)


def save_selection(
    batch: Sequence[IncomingRecord],
    *,
    entries: EntryDirectory,
    verdicts: VerdictQueue,
    dead_letters: DeadLetters,
    ledger: SelectionLedger | None = None,
) -> BatchCounts:
    """Assigns one batch's codes; received = handled + filtered + dead_lettered."""
    tally = BatchTally(WORKER)
    groups = _group_by_campaign(batch, tally)
    call_size = max(1, min(entries.max_assignments_per_call, MAX_ASSIGNMENTS_PER_CALL))
    for campaign_id, group in groups.items():
        standing: list[CodeAssignment] = []
        for start in range(0, len(group.assignments), call_size):
            chunk = group.assignments[start : start + call_size]
            sources = group.sources[start : start + call_size]
            standing += _assign(campaign_id, chunk, sources, entries, ledger, tally)
        if standing:
            verdicts.send([verdict_for(assignment) for assignment in standing])
            tally.count(Detail.VERDICTS, len(standing))
    if tally.letters:
        dead_letters.send(tally.letters)
    return tally.counts(len(batch))


def _group_by_campaign(batch: Sequence[IncomingRecord], tally: BatchTally) -> dict[str, _Group]:
    groups: dict[str, _Group] = {}
    # (campaign, fan, code) -> index in its group, so a repeat joins the first one's sources.
    seen: dict[tuple[str, str, str], int] = {}
    for incoming in batch:
        assignment = _assignment(incoming, tally)
        if assignment is None:
            continue
        group = groups.setdefault(assignment.campaign_id, _Group())
        natural_id = (assignment.campaign_id, assignment.global_user_id, assignment.code)
        if natural_id in seen:
            group.sources[seen[natural_id]].append(incoming)
            tally.count(Detail.DUPLICATE)
            continue
        seen[natural_id] = len(group.assignments)
        group.assignments.append(assignment)
        group.sources.append([incoming])
    return groups


def _assignment(incoming: IncomingRecord, tally: BatchTally) -> CodeAssignment | None:
    match decode_record(incoming.data):
        case Failure(reason):
            tally.dead(incoming, Detail.UNDECODABLE, reason)
            return None
        case Success(decoded):
            record: dict[str, Any] = trim_strings(decoded)
    if record.get("type") != RecordType.CODE_ASSIGNMENT:
        tally.filter(Detail.OTHER_TYPE)
        return None
    missing = [name for name in _REQUIRED if not _text(record.get(name))]
    if missing:
        reason = "incomplete code assignment: missing " + ", ".join(missing)
        tally.dead(incoming, Detail.INCOMPLETE, reason)
        return None
    if record["code"] == PLACEHOLDER_CODE:
        tally.filter(Detail.PLACEHOLDER)
        return None
    market_id = record.get("marketId")
    dates = record.get("date")
    return CodeAssignment(
        campaign_id=record["campaignId"],
        user_id=record["userId"],
        global_user_id=record["globalUserId"],
        code=record["code"],
        market_id=str(market_id) if market_id not in (None, "") else None,
        dates=(
            {str(k): str(v) for k, v in dates.items() if v is not None}
            if isinstance(dates, dict)
            else None
        ),
    )


def _assign(
    campaign_id: str,
    chunk: Sequence[CodeAssignment],
    sources: Sequence[list[IncomingRecord]],
    entries: EntryDirectory,
    ledger: SelectionLedger | None,
    tally: BatchTally,
) -> Sequence[CodeAssignment]:
    """Assigns one call's worth; returns the assignments that now stand (new + already)."""
    match entries.assign_codes(campaign_id, chunk):
        case Failure(failure):
            _refused("entry directory", failure, sources, tally)
            return ()
        case Success(outcome):
            tally.count(Detail.ASSIGNED, outcome.assigned)
            tally.count(Detail.ALREADY, outcome.already)
    if ledger is not None:
        match ledger.record_selections(campaign_id, chunk):
            case Failure(failure):
                _refused("selection ledger", failure, sources, tally)
                return ()
    tally.handled += sum(len(group) for group in sources)
    return chunk


def _refused(
    what: str,
    failure: LookupFailure,
    sources: Sequence[list[IncomingRecord]],
    tally: BatchTally,
) -> None:
    if failure.kind == FailureKind.UNAVAILABLE:
        raise DependencyUnavailable(what, str(failure))
    reason = f"{what} refused the assignment: {failure}"
    for incoming in _flatten(sources):
        tally.dead(incoming, f"dead:{failure.kind}", reason)


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _flatten(sources: Sequence[list[IncomingRecord]]) -> Iterator[IncomingRecord]:
    for group in sources:
        yield from group


@dataclass(frozen=True)
class SaveSelection:
    """save_selection bound to its ports: a domain.ports.StreamWorker. `ledger` None when
    the entry directory records the selection itself (DynamoEntryDirectory does)."""

    entries: EntryDirectory
    verdicts: VerdictQueue
    dead_letters: DeadLetters
    ledger: SelectionLedger | None = None
    name: str = WORKER

    def __call__(self, batch: Sequence[IncomingRecord]) -> BatchCounts:
        return save_selection(
            batch,
            entries=self.entries,
            verdicts=self.verdicts,
            dead_letters=self.dead_letters,
            ledger=self.ledger,
        )
