"""The lake's field check lets through only what fastavro writes, never echoes a value in its
reasons, and fastavro's containers read back whole and are byte-identical on a replay."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import fastavro
from fastavro.validation import validate
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Success

from adapters.avro import AvroSchemas, read_container
from domain.records import RECORD_TYPES, formatted
from tests.support.stream_records import sample_record

SCHEMAS = AvroSchemas()
NULL_SCHEMAS = AvroSchemas(codec="null")

text = st.text(max_size=30)
json_leaf = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | text
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=10,
)
# Values drawn for the named fields: mostly of the right type, sometimes not (then a reason).
field_value = (
    text
    | st.none()
    | st.floats(allow_nan=False)
    | st.integers(-(2**64), 2**64)
    | st.booleans()
    | st.lists(text, max_size=4)
    | st.dictionaries(text, json_value, max_size=4)
)
FULL = ["registration", "scoring", "codeAssignment"]
# Whole milliseconds: timestamp-millis keeps no more (fastavro truncates the same way).
arrivals = st.none() | st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
).map(lambda at: at.replace(microsecond=at.microsecond // 1000 * 1000))


@st.composite
def records(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    record_type = draw(st.sampled_from(sorted(RECORD_TYPES)))
    record = sample_record(record_type, draw(st.integers(0, 1000)))
    names = [f["name"] for f in SCHEMAS.schema(record_type)["fields"]]
    for name in draw(st.lists(st.sampled_from([*names, "other", "receivedAt"]), max_size=6)):
        record[name] = draw(field_value)
    record["type"] = record_type
    return record_type, formatted(record)


SECRET = "fan-secret@example.com"


@settings(max_examples=300)
@given(records(), arrivals)
def test_what_the_check_passes_fastavro_writes_and_reads_back(
    typed: tuple[str, dict[str, Any]], arrived: datetime | None
) -> None:
    record_type, record = typed
    conformed = SCHEMAS.conform(record_type, record, arrived)
    if isinstance(conformed, Failure):
        assert "'" in conformed.failure()  # names the field
        return
    datum = dict(conformed.unwrap())
    assert validate(datum, SCHEMAS.schema(record_type), raise_errors=False)
    assert read_container(SCHEMAS.encode(record_type, [datum])) == [datum]


@settings(max_examples=200)
@given(records(), st.sampled_from(["email", "phone", "firstName", "score", "tags", "__meta"]))
def test_a_reason_never_echoes_the_value(typed: tuple[str, dict[str, Any]], name: str) -> None:
    record_type, record = typed
    for wrong in (SECRET, [SECRET, 1], {"x": SECRET}, 12345.5, True):
        conformed = SCHEMAS.conform(record_type, {**record, name: wrong})
        if isinstance(conformed, Failure):
            assert SECRET not in conformed.failure()
            assert "12345" not in conformed.failure()


@settings(max_examples=100)
@given(st.lists(records(), max_size=40), arrivals)
def test_containers_read_back_whole_and_a_replay_writes_the_same_bytes(
    typed: list[tuple[str, dict[str, Any]]], arrived: datetime | None
) -> None:
    for schemas in (SCHEMAS, NULL_SCHEMAS):
        by_type: dict[str, list[Any]] = {}
        for record_type, record in typed:
            conformed = schemas.conform(record_type, record, arrived)
            if isinstance(conformed, Success):
                by_type.setdefault(record_type, []).append(conformed.unwrap())
        for record_type, datums in by_type.items():
            data = schemas.encode(record_type, datums)
            assert read_container(data) == [dict(d) for d in datums]
            assert schemas.encode(record_type, datums) == data  # a replay: the same bytes


def test_many_records_span_several_blocks_and_read_back_in_order() -> None:
    arrived = datetime(2026, 3, 14, tzinfo=UTC)
    datums = [
        SCHEMAS.conform("scoring", formatted(sample_record("scoring", i)), arrived).unwrap()
        for i in range(3000)
    ]
    data = SCHEMAS.encode("scoring", datums)
    back = read_container(data)
    assert [r["globalUserId"] for r in back] == [f"g{i}" for i in range(3000)]
    assert len(list(fastavro.block_reader(io.BytesIO(data)))) > 1


def test_a_string_that_is_not_valid_unicode_is_a_reason_naming_its_field() -> None:
    record = formatted({**sample_record("scoring"), "email": "fan\ud800@example.com"})
    reason = SCHEMAS.conform("scoring", record).failure()
    assert reason.startswith("field 'email'") and "@" not in reason


def test_arrival_times_before_the_epoch_and_with_millis_read_back_to_the_millisecond() -> None:
    record = formatted(sample_record("codeBan"))
    for arrived in (
        datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
        datetime(2026, 3, 14, 12, 0, 0, 123000, tzinfo=UTC),
    ):
        datum = SCHEMAS.conform("codeBan", record, arrived).unwrap()
        (back,) = read_container(SCHEMAS.encode("codeBan", [datum]))
        assert back["receivedAt"] == arrived
