"""Issue 6 item 7: an integer wider than 64 bits is kept exactly on every path, never archived
as a rounded float; a named field that cannot hold it says so."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from adapters.avro import AvroSchemas
from adapters.clock import FixedClock
from adapters.json_codec import exact_dumps, exact_loads, json_text
from domain.records import JsonLoads, decode_record
from domain.workers.save_campaign_data import save_campaign_data
from tests.support.memory_stream_workers import MemoryDeadLetters, MemoryLake
from tests.support.stream_records import batch_of, raw, sample_record

WIDE = 18446744073709551617  # 2**64 + 1
SCHEMAS = AvroSchemas()
CLOCK = FixedClock(datetime(2030, 1, 1, tzinfo=UTC))
PARSERS: list[Any] = [pytest.param(json.loads, id="stdlib"), pytest.param(exact_loads, id="orjson")]


def test_plain_orjson_would_round_it_which_is_why_exact_loads_exists() -> None:
    assert orjson.loads(f'{{"n":{WIDE}}}')["n"] == float(WIDE)
    assert exact_loads(f'{{"n":{WIDE}}}')["n"] == WIDE
    assert type(exact_loads(f'{{"n":{WIDE}}}')["n"]) is int


@pytest.mark.parametrize("loads", PARSERS)
def test_decoding_keeps_the_exact_integer(loads: JsonLoads) -> None:
    data = f'{{"type":"codeBan","n":{WIDE},"m":[-{WIDE}]}}'.encode()
    record = decode_record(data, loads).unwrap()
    assert (record["n"], record["m"]) == (WIDE, [-WIDE])


@pytest.mark.parametrize("loads", PARSERS)
def test_the_lake_archives_its_exact_digits(loads: JsonLoads) -> None:
    envelope = raw({**sample_record("codeBan"), "n": WIDE})
    full = raw({**sample_record("registration"), "big": WIDE})
    lake = MemoryLake()
    counts = save_campaign_data(
        batch_of([envelope, full]),
        archive=lake,
        schemas=SCHEMAS,
        dead_letters=MemoryDeadLetters(),
        clock=CLOCK,
        loads=loads,
    )
    assert counts.handled == 2
    (ban,) = lake.records("codeBan")
    (registration,) = lake.records("registration")
    assert f'"n":{WIDE}' in ban["payload"]
    assert registration["extra"]["big"] == str(WIDE)
    assert "e+19" not in ban["payload"]


@pytest.mark.parametrize("loads", PARSERS)
def test_a_named_field_that_cannot_hold_it_dead_letters_the_record_saying_why(
    loads: JsonLoads,
) -> None:
    dead = MemoryDeadLetters()
    save_campaign_data(
        batch_of([raw({**sample_record("scoring"), "score": WIDE})]),
        archive=MemoryLake(),
        schemas=SCHEMAS,
        dead_letters=dead,
        clock=CLOCK,
        loads=loads,
    )
    assert dead.reasons() == [
        "does not fit the scoring schema: field 'score': an integer too large for a double to "
        "hold exactly"
    ]


def test_the_encoders_keep_it_too() -> None:
    assert exact_dumps({"n": WIDE}) == f'{{"n":{WIDE}}}'.encode()
    assert json_text([WIDE]) == f"[{WIDE}]"
    assert exact_dumps({"n": 1}) == orjson.dumps({"n": 1})


def test_twenty_digits_inside_a_string_only_take_the_exact_parser() -> None:
    text = '{"id":"123456789012345678901234","n":1.5}'
    assert exact_loads(text) == json.loads(text)
