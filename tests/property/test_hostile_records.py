"""Issue 17 item 4: no single record raises out of a stream worker. Hostile records (nesting to
5,000 levels, integers of thousands of digits, NaN and 1e400, UTF-8-encoded surrogates, lone
surrogate escapes, broken KPL aggregates) mixed with good ones: every good record is handled,
every hostile one is dead-lettered (or, in transform_code_assignments, filtered: the input
stream's poison is save_campaign_data's to dead-letter) with a reason, whatever the parser."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.avro import AvroSchemas
from adapters.clock import FixedClock
from adapters.json_codec import exact_dumps, exact_loads
from domain.records import MAX_NESTING, RECORD_TYPES, TOO_DEEP
from domain.streaming import KPL_MAGIC
from domain.workers.save_campaign_data import save_campaign_data
from domain.workers.save_selection import save_selection
from domain.workers.transform_code_assignments import transform_code_assignments
from streams.kinesis_records import user_records
from tests.support.memory_scored_files import InMemoryCampaignDirectory, InMemoryRecordStream
from tests.support.memory_stream_workers import (
    MemoryDeadLetters,
    MemoryEntryDirectory,
    MemoryLake,
    MemoryUserDirectory,
    MemoryVerdictQueue,
)
from tests.support.stream_records import (
    batch_of,
    code_assignment,
    enriched_assignment,
    raw,
    sample_record,
)

SCHEMAS = AvroSchemas()
CLOCK = FixedClock(datetime(2030, 1, 1, tzinfo=UTC))
WIDE = "12345678901234567890123"
REPORTED = b'{"type":"registration","n":12345678901234567890123,"x":' + b"[" * 1000
REPORTED += b"]" * 1000 + b"}"
PARSERS: list[Any] = [
    pytest.param(json.loads, id="stdlib"),
    pytest.param(orjson.loads, id="orjson"),
    pytest.param(exact_loads, id="exact"),
]


def _nest(depth: int, inner: str, kind: str) -> str:
    opener, closer = {"array": ("[", "]"), "object": ('{"k":', "}"), "mixed": ('[{"k":', "}]")}[
        kind
    ]
    return opener * depth + inner + closer * depth


@st.composite
def hostile(draw: st.DrawFn, base: dict[str, Any]) -> bytes:
    """A record that must never raise: `base` (a valid record) with one hostile field, or bytes
    that are no record at all."""
    head = json.dumps(base)[:-1]  # '{"type": ..., ...' without its closing brace
    wide = draw(st.sampled_from(["", f'"n":{WIDE},']))
    kind = draw(
        st.sampled_from(
            ["deep", "limit", "number", "constant", "utf8", "escape", "kpl", "reported"]
        )
    )
    if kind == "reported":
        return REPORTED
    if kind == "kpl":
        body = draw(st.binary(max_size=64))
        good = hashlib.md5(body).digest()
        digest = good if draw(st.booleans()) else draw(st.binary(max_size=16))
        return KPL_MAGIC + body + digest
    if kind == "utf8":  # a surrogate encoded as UTF-8 (CESU-8): not UTF-8
        return (head + ',"s":"').encode() + b"\xed\xa0\x80" + b'"}'
    if kind == "deep":
        depth = draw(st.integers(min_value=MAX_NESTING, max_value=5_000))
        nest = _nest(
            depth,
            draw(st.sampled_from(["1", WIDE, "[]"])),
            draw(st.sampled_from(["array", "object", "mixed"])),
        )
        value = nest
    elif kind == "limit":  # at the limit (kept) or just past it (dead-lettered)
        value = _nest(MAX_NESTING - 1 + draw(st.integers(0, 1)), "1", "array")
    elif kind == "number":
        value = "9" * draw(st.integers(min_value=20, max_value=6_000))
        value += draw(st.sampled_from(["", ".5", "e400", "e-400"]))
    elif kind == "constant":
        value = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400"]))
    else:  # lone surrogate escapes, in a value or a key
        escape = draw(st.sampled_from(["\\ud800", "\\udfff", "\\ud800\\ud800"]))
        return f'{head},{wide}"{escape}":"{escape}"}}'.encode()
    return f'{head},{wide}"x":{value}}}'.encode()


def _mixed(draw: st.DrawFn, good: Callable[[int], dict[str, Any]]) -> tuple[list[bytes], set[int]]:
    """6 good records and 1-3 hostile ones, in any order; the hostile positions."""
    datas = [raw(good(i)) for i in range(6)]
    bad: set[int] = set()
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        at = draw(st.integers(min_value=0, max_value=len(datas)))
        datas.insert(at, draw(hostile(good(100 + len(bad)))))
        bad = {b + (b >= at) for b in bad} | {at}
    return datas, bad


@st.composite
def input_batch(draw: st.DrawFn) -> tuple[list[bytes], set[int]]:
    types = sorted(RECORD_TYPES)
    return _mixed(draw, lambda i: sample_record(types[i % len(types)], i))


@pytest.mark.parametrize("loads", PARSERS)
@given(batch=input_batch())
@settings(max_examples=60)
def test_save_campaign_data_archives_the_good_and_dead_letters_each_hostile_record(
    loads: Callable[[str], Any], batch: tuple[list[bytes], set[int]]
) -> None:
    datas, bad = batch
    lake, dead = MemoryLake(), MemoryDeadLetters()
    counts = save_campaign_data(
        batch_of(datas), archive=lake, schemas=SCHEMAS, dead_letters=dead, clock=CLOCK, loads=loads
    )
    assert counts.received == len(datas) == counts.handled + counts.dead_lettered
    good = len(datas) - len(bad)
    assert good <= counts.handled == len(lake.records())
    letters = {int(letter.record.sequence_number) - 1000: letter for letter in dead.letters}
    assert set(letters) <= bad and all(letter.reason for letter in letters.values())
    for at, letter in letters.items():
        assert letter.record.data == datas[at]
    for key, records in lake.objects.items():  # what was kept encodes as Avro, extras and all
        SCHEMAS.encode(key.split("/")[1], records)
    assert REPORTED not in datas or TOO_DEEP in {letters[datas.index(REPORTED)].reason}


@st.composite
def assignment_batch(draw: st.DrawFn) -> tuple[list[bytes], set[int]]:
    return _mixed(draw, lambda i: code_assignment(i % 6, code=f"C{i}"))


@given(batch=assignment_batch())
@settings(max_examples=60)
def test_transform_code_assignments_forwards_the_good_and_never_raises(
    batch: tuple[list[bytes], set[int]],
) -> None:
    datas, bad = batch
    output, dead = InMemoryRecordStream(), MemoryDeadLetters()
    counts = transform_code_assignments(
        batch_of(datas),
        users=MemoryUserDirectory({f"g{i}": f"{i:024d}" for i in range(6)}),
        campaigns=InMemoryCampaignDirectory.from_categories({"cat-1": "camp-1"}),
        schemas=SCHEMAS,
        output=output,
        encode=exact_dumps,
        dead_letters=dead,
    )
    assert counts.received == len(datas)
    assert counts.handled + counts.filtered + counts.dead_lettered == len(datas)
    assert counts.handled >= len(datas) - len(bad) and counts.handled == len(output.records)
    assert all(letter.reason for letter in dead.letters)


@st.composite
def selection_batch(draw: st.DrawFn) -> tuple[list[bytes], set[int]]:
    return _mixed(draw, lambda i: enriched_assignment(i % 6, code=f"C{i}"))


@given(batch=selection_batch())
@settings(max_examples=60)
def test_save_selection_assigns_the_good_and_dead_letters_each_hostile_record(
    batch: tuple[list[bytes], set[int]],
) -> None:
    datas, bad = batch
    entries, dead = MemoryEntryDirectory(), MemoryDeadLetters()
    counts = save_selection(
        batch_of(datas), entries=entries, verdicts=MemoryVerdictQueue(), dead_letters=dead
    )
    assert counts.received == len(datas)
    assert counts.handled + counts.filtered + counts.dead_lettered == len(datas)
    assert counts.handled >= len(datas) - len(bad)
    assert all(letter.reason for letter in dead.letters)
    assert {int(letter.record.sequence_number) - 1000 for letter in dead.letters} <= bad


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


@st.composite
def protobuf_ish(draw: st.DrawFn) -> bytes:
    """Fields of every wire type with lengths and indexes that may lie, or plain garbage."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=80))
    out = b""
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        number = draw(st.integers(min_value=0, max_value=5))
        wire = draw(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7]))
        out += _varint(number << 3 | wire)
        if wire == 0:
            out += _varint(draw(st.integers(min_value=0, max_value=2**70)))
        elif wire == 2:
            inner = draw(st.one_of(st.binary(max_size=20), st.just(POISON_SMALL)))
            out += _varint(len(inner) + draw(st.integers(min_value=-2, max_value=2)) % 2**32)
            out += inner
        else:
            out += draw(st.binary(max_size=8))
    return out


POISON_SMALL = b'{"type":"registration","x":' + b"[" * 100 + b"]" * 100 + b"}"


@given(protobuf_ish(), st.booleans())
def test_a_kpl_aggregate_with_broken_protobuf_is_handed_on_or_split_never_raised(
    body: bytes, good_checksum: bool
) -> None:
    digest = hashlib.md5(body).digest() if good_checksum else b"\x00" * 16
    data = KPL_MAGIC + body + digest
    records = user_records(
        stream="s",
        shard_id="shardId-0",
        sequence_number="1",
        partition_key="k",
        data=data,
        arrived_at=None,
    )
    assert records
    dead = MemoryDeadLetters()
    counts = save_campaign_data(
        records, archive=MemoryLake(), schemas=SCHEMAS, dead_letters=dead, clock=CLOCK
    )
    assert counts.received == len(records) == counts.handled + counts.dead_lettered
