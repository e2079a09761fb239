"""transform_code_assignments (the original's cmp-trnsfrm-ca): complete code assignments and pass
them on to the save-selection stream.

Reads the input stream, which carries all ten record types; this worker wants `codeAssignment`
records only. For one batch:
- anything else (other types, and records that do not decode: save_campaign_data, reading the
  same stream, dead-letters those) is filtered and counted;
- a code assignment with the TM placeholder code `"TM"` is filtered (never assigned as a code);
- one that does not fit the codeAssignment schema is dead-lettered with the reason;
- `userId` is looked up by `globalUserId`, and `campaignId` by `categoryId` where missing, in
  chunks of LOOKUP_CHUNK distinct ids per call;
- one that cannot be completed (unknown fan, unknown category, neither campaignId nor
  categoryId) is dead-lettered with the reason, so nothing is dropped unseen;
- the completed ones go to the save-selection stream, partition key `code`.

Transient failures (lookups unavailable, records stranded by the stream) raise
DependencyUnavailable and nothing of the batch is sent on that attempt's dead-letter path; the
replay may send some records to the save-selection stream twice, which save_selection absorbs
(a code is assigned to a fan at most once).
Memory: the batch, its completed copies and their encoded bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from returns.result import Failure, Result, Success

from domain.models import FailureKind, LookupFailure, StreamRecord
from domain.ports import (
    CampaignDirectory,
    DeadLetters,
    RecordEncoder,
    RecordStream,
    SchemaCheck,
    UserDirectory,
)
from domain.records import RecordType, decode_record, formatted, record_type_of
from domain.streaming import BatchCounts, BatchTally, DependencyUnavailable, IncomingRecord

WORKER = "transform_code_assignments"
# The original looked up 25 at a time (its user service's page). 100 distinct ids per call is
# what DynamoDB's BatchGetItem takes and keeps URLs of `?ids=` look-ups well under 8 KiB.
LOOKUP_CHUNK = 100
PLACEHOLDER_CODE = "TM"


@dataclass
class _Pending:
    incoming: IncomingRecord
    record: dict[str, Any]


class Detail(StrEnum):
    """The keys of BatchCounts.detail this worker counts under."""

    UNDECODABLE = "filtered:undecodable"
    OTHER_TYPE = "filtered:other_type"
    PLACEHOLDER = "filtered:placeholder_code"
    SCHEMA = "dead:schema"
    USER_LOOKUP = "dead:user_lookup"
    NO_USER = "dead:no_user"
    NO_CAMPAIGN = "dead:no_campaign"
    CAMPAIGN_LOOKUP = "dead:campaign_lookup"
    TOO_LARGE = "dead:too_large"
    REJECTED = "dead:rejected_by_stream"


def transform_code_assignments(
    batch: Sequence[IncomingRecord],
    *,
    users: UserDirectory,
    campaigns: CampaignDirectory,
    schemas: SchemaCheck,
    output: RecordStream,
    encode: RecordEncoder,
    dead_letters: DeadLetters,
) -> BatchCounts:
    """Completes and forwards one batch; received = handled + filtered + dead_lettered."""
    tally = BatchTally(WORKER)
    pending: list[_Pending] = []
    for incoming in batch:
        candidate = _candidate(incoming, schemas, tally)
        if candidate is not None:
            pending.append(candidate)

    completed: list[_Pending] = []
    for chunk in _chunks(pending, LOOKUP_CHUNK):
        completed.extend(_complete(chunk, users, campaigns, tally))

    tally.handled = _forward(completed, output, encode, tally)
    if tally.letters:
        dead_letters.send(tally.letters)
    return tally.counts(len(batch))


def _candidate(
    incoming: IncomingRecord, schemas: SchemaCheck, tally: BatchTally
) -> _Pending | None:
    match decode_record(incoming.data):
        case Failure(_):
            tally.filter(Detail.UNDECODABLE)
            return None
        case Success(decoded) if record_type_of(decoded) != RecordType.CODE_ASSIGNMENT:
            tally.filter(Detail.OTHER_TYPE)
            return None
        case Success(decoded):
            record = formatted(decoded)
    match schemas.conform(RecordType.CODE_ASSIGNMENT, record, incoming.arrived_at):
        case Failure(why):
            reason = f"does not fit the codeAssignment schema: {why}"
            tally.dead(incoming, Detail.SCHEMA, reason)
            return None
    if record.get("code") == PLACEHOLDER_CODE:
        tally.filter(Detail.PLACEHOLDER)
        return None
    return _Pending(incoming, record)


def _complete(
    chunk: Sequence[_Pending],
    users: UserDirectory,
    campaigns: CampaignDirectory,
    tally: BatchTally,
) -> list[_Pending]:
    """The chunk's records with userId and campaignId filled in; the rest dead-lettered."""
    wanted_users = _distinct(p.record.get("globalUserId") for p in chunk if not _has(p, "userId"))
    wanted_categories = _distinct(
        p.record.get("categoryId") for p in chunk if not _has(p, "campaignId")
    )
    user_ids, user_problem = _look_up("user directory", users.user_ids_for, wanted_users)
    campaign_ids, campaign_problem = _look_up(
        "campaign directory", campaigns.campaign_ids_for_categories, wanted_categories
    )
    done: list[_Pending] = []
    for item in chunk:
        record = item.record
        if not _has(item, "userId"):
            global_user_id = record.get("globalUserId")
            if user_problem:
                tally.dead(item.incoming, Detail.USER_LOOKUP, user_problem)
                continue
            if not isinstance(global_user_id, str) or global_user_id not in user_ids:
                tally.dead(item.incoming, Detail.NO_USER, "no user for this globalUserId")
                continue
            record["userId"] = user_ids[global_user_id]
        if not _has(item, "campaignId"):
            category_id = record.get("categoryId")
            if not isinstance(category_id, str) or not category_id:
                reason = "no campaignId and no categoryId to look it up by"
                tally.dead(item.incoming, Detail.NO_CAMPAIGN, reason)
                continue
            if campaign_problem:
                tally.dead(item.incoming, Detail.CAMPAIGN_LOOKUP, campaign_problem)
                continue
            if category_id not in campaign_ids:
                reason = "no campaign for this categoryId"
                tally.dead(item.incoming, Detail.NO_CAMPAIGN, reason)
                continue
            record["campaignId"] = campaign_ids[category_id]
        done.append(item)
    return done


_Lookup = Callable[[Sequence[str]], Result[Mapping[str, str], LookupFailure]]


def _look_up(what: str, lookup: _Lookup, ids: list[str]) -> tuple[Mapping[str, str], str | None]:
    """(found ids, None) or ({}, reason); raises DependencyUnavailable when transient."""
    if not ids:
        return {}, None
    match lookup(ids):
        case Success(found):
            return found, None
        case Failure(failure) if failure.kind == FailureKind.UNAVAILABLE:
            raise DependencyUnavailable(what, str(failure))
        case Failure(failure) if failure.kind == FailureKind.NOT_FOUND:
            return {}, None
        case Failure(failure):
            return {}, f"{what} refused the look-up: {failure}"
    raise AssertionError("a Result is a Success or a Failure")


def _forward(
    completed: Sequence[_Pending], output: RecordStream, encode: RecordEncoder, tally: BatchTally
) -> int:
    """Puts the completed records on the output stream; returns how many it took."""
    outgoing: list[StreamRecord] = []
    by_key: dict[str, list[IncomingRecord]] = {}
    for item in completed:
        data = encode(item.record)
        if len(data) > output.max_record_bytes:
            reason = f"enriched record is {len(data)} bytes, over {output.max_record_bytes}"
            tally.dead(item.incoming, Detail.TOO_LARGE, reason)
            continue
        code = str(item.record["code"])
        outgoing.append(StreamRecord(partition_key=code, data=data))
        by_key.setdefault(code, []).append(item.incoming)
    if not outgoing:
        return 0
    outcome = output.put_records(outgoing)
    if outcome.stranded:
        raise DependencyUnavailable(
            "save-selection stream", f"{outcome.stranded} records stranded after retries"
        )
    for rejected in outcome.rejected:
        # The stream refused it for good (size, key): keep the record, with the stream's reason.
        owners = by_key.get(rejected.partition_key) or []
        if owners:
            tally.dead(owners.pop(0), Detail.REJECTED, rejected.reason)
    return outcome.sent


def _has(item: _Pending, name: str) -> bool:
    value = item.record.get(name)
    return isinstance(value, str) and bool(value)


def _distinct(values: Iterable[Any]) -> list[str]:
    return list(dict.fromkeys(v for v in values if isinstance(v, str) and v))


def _chunks(items: Sequence[_Pending], size: int) -> Iterator[Sequence[_Pending]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class TransformCodeAssignments:
    """transform_code_assignments bound to its ports: a domain.ports.StreamWorker."""

    users: UserDirectory
    campaigns: CampaignDirectory
    schemas: SchemaCheck
    output: RecordStream
    encode: RecordEncoder
    dead_letters: DeadLetters
    name: str = WORKER

    def __call__(self, batch: Sequence[IncomingRecord]) -> BatchCounts:
        return transform_code_assignments(
            batch,
            users=self.users,
            campaigns=self.campaigns,
            schemas=self.schemas,
            output=self.output,
            encode=self.encode,
            dead_letters=self.dead_letters,
        )
