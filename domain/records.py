"""Records on the input streams: the ten types, decoding raw Kinesis data, trimming, dedupe ids.

Pure functions. A raw record is UTF-8 JSON text holding one object with a string `type`; anything
else is poison and comes back as a reason (the caller dead-letters it with its raw data).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from returns.result import Failure, Result, Success

from domain.streaming import KPL_MAGIC


class RecordType(StrEnum):
    """The ten record types the original's saveCampaignData accepted (its event-source filter)."""

    CAMPAIGN_MAPPING = "campaignMapping"
    CODE_ASSIGNMENT = "codeAssignment"
    CODE_BAN = "codeBan"
    CODE_RESERVE = "codeReserve"
    EVENT_MAPPING = "eventMapping"
    REGISTRATION = "registration"
    SCORING = "scoring"
    SECONDARY_LISTING = "secondaryListing"
    ATTENDANCE_SCAN = "attendanceScan"
    FANLIST_ENTRY = "fanlistEntry"


RECORD_TYPES: frozenset[str] = frozenset(t.value for t in RecordType)

DEDUPE_FIELD = "dedupeId"
META_FIELD = "__meta"

# The dedupe id is a digest, not a secret: blake2b-128 is fast in the stdlib and 32 hex digits
# make collisions among billions of records practically impossible.
_DEDUPE_DIGEST_BYTES = 16


CORRUPT_AGGREGATE = "corrupt KPL aggregate: the KPL magic, then a bad checksum or protobuf"

# Deeper than any producer nests a record (the schemas go 3 levels down). The stdlib parser,
# trim_strings and canonical_json recurse per level and raise RecursionError, which no worker
# catches, from ~330 levels on (trim_strings: 2 frames a level under a 1,000-frame limit): one
# crafted record nested 1,000 deep stopped its shard for good (issue 17). Deeper records are
# dead-lettered as not JSON before any of them sees one.
MAX_NESTING = 64
TOO_DEEP = f"not JSON: nested deeper than {MAX_NESTING} levels"


class NestedTooDeep(ValueError):
    """A parser's refusal of JSON nested deeper than it can follow (adapters/json_codec.py
    raises it for the stdlib's RecursionError); decoding gives the reason TOO_DEEP."""


JsonLoads = Callable[[str], Any]
# A record's content -> its canonical JSON bytes (the dedupe id's input). An injected encoder
# (adapters/canonical_json.py: orjson) must give exactly the bytes of `canonical_json`, else
# the same record would get a different id in a process wired differently.
CanonicalJson = Callable[[Mapping[str, Any]], bytes]


def decode_record(data: bytes, loads: JsonLoads = json.loads) -> Result[dict[str, Any], str]:
    """Raw stream data -> a JSON object with a string `type`, or the reason it is not one.

    The reasons name the failure without echoing the data (it may hold emails and phones).
    `loads` may be a faster parser (orjson.loads, injected by bootstrap: the domain does no
    I/O-library imports); it must raise ValueError on bad JSON.
    """
    decoded = decoded_or_reason(data, loads)
    return Failure(decoded) if isinstance(decoded, str) else Success(decoded)


def decoded_or_reason(data: bytes, loads: JsonLoads = json.loads) -> dict[str, Any] | str:
    """decode_record without the Result wrapper (the worker's hot loop): the object, or the
    reason as a str."""
    if data.startswith(KPL_MAGIC):  # never valid UTF-8: it would be "not UTF-8 at offset 0"
        return CORRUPT_AGGREGATE
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return f"not UTF-8: invalid byte at offset {error.start}"
    try:
        value = loads(text)
    except NestedTooDeep:
        return TOO_DEEP
    except ValueError as error:
        # json.JSONDecodeError carries line/column; a plain ValueError (e.g. lone surrogate)
        # has no position.
        where = getattr(error, "pos", None)
        return "not JSON" + (f": error at character {where}" if where is not None else "")
    except RecursionError:  # the stdlib parser, injected as is (save_selection's default)
        return TOO_DEEP
    if not isinstance(value, dict):
        return f"not a JSON object: got {json_kind(value)}"
    # Only a record with more openers than the limit can be nested that deep, so the common
    # record never pays for the walk; counting them by deleting the rest is one C pass (~0.2 µs
    # for 300 bytes, half of two bytes.count calls).
    openers = len(data) - len(data.translate(None, b"[{"))
    if openers > MAX_NESTING and nested_deeper_than(value, MAX_NESTING):
        return TOO_DEEP
    kind = value.get("type")
    if not isinstance(kind, str) or not kind.strip():
        return "no record type: field 'type' missing or not a non-empty string"
    return value


def nested_deeper_than(value: Any, limit: int) -> bool:
    """True when objects and arrays in `value` nest more than `limit` levels (the value itself
    is level 1). A loop with its own stack: a recursive walk would fail on the records it is
    there to find."""
    if not isinstance(value, dict | list):
        return False
    if limit < 1:
        return True
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def record_type_of(record: Mapping[str, Any]) -> str:
    """The record's type, trimmed (decode_record guarantees a string)."""
    return str(record.get("type", "")).strip()


_PLAIN_LEAVES = frozenset({int, float, bool, type(None)})

# What str.strip() removes, as it can sit right inside a JSON string's quotes: ASCII whitespace
# (\t \n \v \f \r, space, \x1c-\x1f) raw, the first byte (leading) or the last byte
# (trailing) of the UTF-8 of U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F,
# U+205F, U+3000, and any escape at all (a backslash: `\n`, `\u00a0`...). Over-matching is
# only a wasted trim; missing one would archive a padded string, so the sets are generous.
# bytes.translate marks them and `in` finds a mark next to a quote: both run in C, where a
# regular expression with the same alternatives cost several µs per record.
_ASCII_SPACE = b"\t\n\v\f\r \x1c\x1d\x1e\x1f"
_LEADING = _ASCII_SPACE + b"\xc2\xe1\xe2\xe3"
_TRAILING = _ASCII_SPACE + bytes(range(0x80, 0x8B)) + b"\x9f\xa0\xa8\xa9\xaf"


def _marking(marked: bytes) -> bytes:
    table = bytearray(b"." * 256)
    for byte in marked:
        table[byte] = ord("!")
    table[ord('"')] = ord('"')
    return bytes(table)


_MARK_LEADING = _marking(_LEADING)
_MARK_TRAILING = _marking(_TRAILING)


def may_hold_padded_strings(data: bytes) -> bool:
    """False only when no string in this JSON text (UTF-8) can start or end with whitespace,
    so trimming its decoded value would change nothing.

    Compact JSON (orjson, JSON.stringify: the producers of the input stream) without padded
    strings gives False; text with spaces between tokens (`": "`) always gives True.
    """
    return (
        b"\\" in data
        or b'"!' in data.translate(_MARK_LEADING)
        or b'!"' in data.translate(_MARK_TRAILING)
    )


def trim_strings(value: Any) -> Any:
    """Every string leaf stripped of surrounding whitespace, in objects and arrays at any depth.

    Keys are left as they are: a field name is part of the contract, not data to clean.
    Returns new containers; the input is not changed.
    """
    # `type(x) is` and the inlined leaf cases: this runs on every field of every record, and a
    # recursive call per number or null cost more than the stripping itself.
    kind = type(value)
    if kind is str:
        return value.strip()
    if kind is dict:
        return _trim_dict(value)
    if kind is list:
        return _trim_list(value)
    # Subclasses (never from a JSON parser, but the rule is the same for them).
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        return {key: trim_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [trim_strings(item) for item in value]
    return value


def _trim_dict(value: dict[Any, Any]) -> dict[Any, Any]:
    plain = _PLAIN_LEAVES
    return {
        key: item.strip()
        if type(item) is str
        else item
        if type(item) in plain
        else trim_strings(item)
        for key, item in value.items()
    }


def _trim_list(value: list[Any]) -> list[Any]:
    plain = _PLAIN_LEAVES
    return [
        item.strip() if type(item) is str else item if type(item) in plain else trim_strings(item)
        for item in value
    ]


def canonical_json(content: Mapping[str, Any]) -> bytes:
    """Sorted keys, no spaces, UTF-8, non-JSON values as their str(): the dedupe id's input.

    A lone surrogate (the stdlib JSON parser lets `"\\ud800"` through) is kept as its
    surrogatepass bytes instead of raising: the record then reaches its schema check and is
    dead-lettered with a reason, instead of crashing the batch here.
    """
    text = json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return text.encode("utf-8", "surrogatepass")


def dedupe_id(record: Mapping[str, Any], canonical: CanonicalJson = canonical_json) -> str:
    """A stable hash of the record's content: the same fan data gives the same id on every run.

    `__meta` (correlation id, send time) and any existing `dedupeId` are left out, so a record
    re-sent by its producer, or replayed by a runtime, keeps its id. Keys are sorted, so field
    order does not matter; the record should be trimmed first, so padding does not either.
    `canonical` may be a faster encoder giving the same bytes (see CanonicalJson).
    """
    content = dict(record)  # a copy in C, then two pops: cheaper than a filtering comprehension
    content.pop(META_FIELD, None)
    content.pop(DEDUPE_FIELD, None)
    return hashlib.blake2b(canonical(content), digest_size=_DEDUPE_DIGEST_BYTES).hexdigest()


def with_dedupe_id(
    record: dict[str, Any], canonical: CanonicalJson = canonical_json
) -> dict[str, Any]:
    """The record with its dedupe id set; a non-empty id set by the producer is kept.

    Keeping the producer's id means one fan's record has one id from the scored file to the
    lake, even where the producer hashed a slightly different view of it.
    """
    existing = record.get(DEDUPE_FIELD)
    if isinstance(existing, str) and existing:
        return record
    record[DEDUPE_FIELD] = dedupe_id(record, canonical)
    return record


def formatted(record: dict[str, Any], canonical: CanonicalJson = canonical_json) -> dict[str, Any]:
    """The original's formatRecord: trim every string leaf, then set the dedupe id."""
    trimmed: dict[str, Any] = trim_strings(record)
    return with_dedupe_id(trimmed, canonical)


@dataclass(frozen=True, slots=True)
class LakeKey:
    """Where one type's share of one batch lives: `avro/{type}/YYYY/MM/DD/{name}.avro`."""

    record_type: str
    day: date
    name: str

    @property
    def key(self) -> str:
        return (
            f"avro/{self.record_type}/{self.day.year:04d}/{self.day.month:02d}/"
            f"{self.day.day:02d}/{self.name}.avro"
        )


def batch_object_name(
    shard_id: str, first_sequence_number: str, first_sub_sequence_number: int = 0
) -> str:
    """The lake object name of a batch: its shard and its first record's sequence number.

    Only the first sequence number: a runtime replays from its last checkpoint, so a replayed
    batch starts at the same record but may end elsewhere (more records arrived, a smaller
    GetRecords page). Naming by the start makes the replay overwrite the first attempt's
    objects instead of adding a second copy of the records they share.
    """
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in shard_id)
    sequence = "".join(ch if ch.isalnum() else "_" for ch in first_sequence_number)
    # Aggregated (KPL) records share a sequence number; the sub-sequence tells them apart.
    suffix = f"-{first_sub_sequence_number}" if first_sub_sequence_number else ""
    return f"{safe}-{sequence}{suffix}"


def json_kind(value: Any) -> str:
    """What a decoded JSON value is, in the words a reason uses ("got an array")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


@dataclass(frozen=True, slots=True)
class LakeBatch:
    """One stream batch for the lake: each type's records (already in their archival shape),
    written as one object per type under `name` on `day`."""

    name: str
    day: date
    parts: Mapping[str, tuple[Mapping[str, Any], ...]]

    def lake_keys(self) -> tuple[LakeKey, ...]:
        return tuple(LakeKey(t, self.day, self.name) for t in sorted(self.parts))


@dataclass(frozen=True, slots=True)
class CodeAssignment:
    """One code for one fan in one campaign, complete (what save_selection hands on)."""

    campaign_id: str
    user_id: str
    global_user_id: str
    code: str
    market_id: str | None = None
    dates: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class AssignedCodes:
    """What an entry directory did with a call: `assigned` new, `already` there before (replay)."""

    assigned: int = 0
    already: int = 0


@dataclass(frozen=True, slots=True)
class Verdict:
    """The verdict reporter's message `{campaignId, count}`; `dedupe_id` lets a FIFO queue (or
    the consumer) drop the copy a replayed batch sends again."""

    campaign_id: str
    count: int
    dedupe_id: str


def verdict_for(assignment: CodeAssignment) -> Verdict:
    """One assignment's verdict: count 1, dedupe id = BLAKE2b-128 (hex) of the JSON array
    `[campaignId, globalUserId, code]` (compact, UTF-8).

    Keyed by the assignment, not by the batch: a replay that starts at the same checkpoint but
    ends elsewhere sends the ids it shares with the first attempt again (dropped downstream)
    and new ids only for assignments never counted, so the counts of the distinct ids add up
    to the distinct assignments whatever the cut or the crash point. A batch-keyed id (first
    and last sequence number) counted 5 for 3 assignments when a replay ended one record later.
    The JSON array keeps the parts apart (a `|`-joined id would confuse `a|b`,`c` with
    `a`,`b|c`). tests/unit/test_contract_values.py pins the bytes.
    """
    natural = json.dumps(
        [assignment.campaign_id, assignment.global_user_id, assignment.code],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    digest = hashlib.blake2b(natural.encode("utf-8", "surrogatepass"), digest_size=16)
    return Verdict(assignment.campaign_id, 1, digest.hexdigest())
