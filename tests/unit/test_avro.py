from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from returns.result import Failure, Success

from adapters.avro import AvroSchemas, SchemaError, container_schema, read_container
from domain.records import RECORD_TYPES, RecordType, formatted
from tests.support.stream_records import sample_record

SCHEMAS = AvroSchemas()
AT = datetime(2026, 3, 14, 12, 0, 0, 123000, tzinfo=UTC)


def test_there_is_a_schema_for_each_of_the_ten_types() -> None:
    assert SCHEMAS.record_types == RECORD_TYPES


@pytest.mark.parametrize("record_type", sorted(RECORD_TYPES))
def test_every_type_round_trips_through_an_avro_container(record_type: str) -> None:
    records = [formatted(sample_record(record_type, i)) for i in range(3)]
    conformed = [SCHEMAS.conform(record_type, r, AT).unwrap() for r in records]

    data = SCHEMAS.encode(record_type, conformed)

    back = read_container(data)
    assert back == [dict(c) for c in conformed]
    assert container_schema(data)["name"].endswith(record_type[0].upper() + record_type[1:])
    assert all(r["receivedAt"] == AT for r in back)


def test_fields_the_schema_does_not_name_are_kept_as_json_in_extra() -> None:
    record = formatted(sample_record(RecordType.REGISTRATION))
    datum = SCHEMAS.conform("registration", record, None).unwrap()
    assert json.loads(datum["extra"]["nudetect"]) == {"score": 3, "scoreBand": "low"}
    assert datum["marketIds"] == ["m1", "m2"]


def test_meta_values_that_are_not_strings_become_json_text() -> None:
    record = formatted({**sample_record("scoring"), "__meta": {"date": 1710000000, "c": "x"}})
    datum = SCHEMAS.conform("scoring", record).unwrap()
    assert datum["__meta"] == {"date": "1710000000", "c": "x"}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"globalUserId": None}, "missing required field 'globalUserId'"),
        ({"score": True}, "field 'score': expected a number, got a boolean"),
        ({"tags": ["a", 1]}, "field 'tags': expected an array of strings, an item is not a string"),
        ({"verdict": 0}, "field 'verdict': expected true or false, got a number"),
        ({"__meta": "x"}, "field '__meta': expected an object, got a string"),
    ],
)
def test_records_that_do_not_fit_get_a_reason_naming_the_field(
    change: dict[str, object], reason: str
) -> None:
    record = formatted({**sample_record("scoring"), **change})
    assert SCHEMAS.conform("scoring", record) == Failure(reason)


def test_integers_are_accepted_where_doubles_belong() -> None:
    record = formatted({**sample_record("scoring"), "score": 1, "band_score": 0})
    assert isinstance(SCHEMAS.conform("scoring", record), Success)


def test_a_missing_schema_file_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SchemaError, match=r"no Avro schema file at .*attendanceScan\.avsc"):
        AvroSchemas(schema_dir=tmp_path)
