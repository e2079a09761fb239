"""The lake's hand-written Avro encoding is fastavro's, byte for byte, and its container files
read back with fastavro.reader."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Success

from adapters.avro import AvroSchemas, read_container
from adapters.avro_binary import encode_long
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


def fastavro_bytes(record_type: str, datum: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, SCHEMAS.schema(record_type), datum)
    return buffer.getvalue()


@settings(max_examples=300)
@given(records(), arrivals)
def test_each_conformed_record_carries_fastavros_own_encoding(
    typed: tuple[str, dict[str, Any]], arrived: datetime | None
) -> None:
    record_type, record = typed
    conformed = SCHEMAS.conform(record_type, record, arrived)
    if isinstance(conformed, Failure):
        assert "'" in conformed.failure()  # names the field
        return
    datum = conformed.unwrap()
    assert datum.avro == fastavro_bytes(record_type, dict(datum))  # type: ignore[attr-defined]


@settings(max_examples=100)
@given(st.lists(records(), max_size=40), arrivals)
def test_containers_from_pre_encoded_records_read_back_whole(
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


@given(st.integers(-(2**63), 2**63 - 1))
def test_longs_are_zigzag_varints(value: int) -> None:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, "long", value)
    assert encode_long(value) == buffer.getvalue()


def test_arrival_times_before_the_epoch_and_with_millis_encode_like_fastavro() -> None:
    record = formatted(sample_record("codeBan"))
    for arrived in (
        datetime(1969, 12, 31, 23, 59, 59, 999500, tzinfo=UTC),
        datetime(2026, 3, 14, 12, 0, 0, 123456, tzinfo=UTC) + timedelta(microseconds=1),
    ):
        datum = SCHEMAS.conform("codeBan", record, arrived).unwrap()
        assert datum.avro == fastavro_bytes("codeBan", dict(datum))  # type: ignore[attr-defined]
