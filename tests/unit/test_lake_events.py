"""The merge's inputs, as EventBridge, a direct call, the original's runbook and the CLI give."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from returns.result import Failure, Success

from domain.records import RECORD_TYPES
from entrypoints.lake import merge_request_from_event

NOW = datetime(2024, 5, 4, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("event", "prefix", "types"),
    [
        ({"type": "daily"}, "2024/05/03", None),
        ({"type": "monthly"}, "2024/04", None),
        ({"inputPrefix": "2024/05/01"}, "2024/05/01", None),
        ({"prefix": "/2024/05/"}, "2024/05", None),
        ({"prefix": "2024/05/01", "recordTypes": ["scoring", "registration"]}, "2024/05/01",
         ("registration", "scoring")),
        ({"source": "aws.events", "time": "2024-03-01T10:00:00Z"}, "2024/02/29", None),
    ],
)  # fmt: skip
def test_inputs_become_a_prefix_and_types(
    event: dict[str, Any], prefix: str, types: tuple[str, ...] | None
) -> None:
    match merge_request_from_event(event, NOW):
        case Success(request):
            assert request.prefix == prefix
            assert request.record_types == (types or tuple(sorted(RECORD_TYPES)))
        case Failure(message):
            pytest.fail(message)


@pytest.mark.parametrize(
    ("event", "says"),
    [
        ({"type": "weekly"}, "daily"),
        ({}, "daily"),
        ({"prefix": "2024/13/01"}, "YYYY/MM"),
        ({"prefix": "2024/05/01", "recordTypes": ["nope"]}, "unknown record types"),
        ({"type": "daily", "time": "yesterday"}, "ISO 8601"),
        ([], "JSON object"),
    ],
)
def test_bad_inputs_say_what_is_wrong(event: Any, says: str) -> None:
    match merge_request_from_event(event, NOW):
        case Failure(message):
            assert says in message
        case Success(request):
            pytest.fail(f"accepted {request}")


def test_the_athena_projection_reads_a_lake_file_by_schema_resolution() -> None:
    import io

    import fastavro

    from adapters.lake_compactor import AvroLakeCompactor
    from tests.support.lake_files import ban_record, lake_file
    from tests.support.memory_objects import InMemoryObjectStore

    literal = AvroLakeCompactor(InMemoryObjectStore()).projection_json("codeBan")
    data = lake_file("codeBan", [ban_record("a"), ban_record("b")])

    read = list(fastavro.reader(io.BytesIO(data), reader_schema=json.loads(literal)))

    assert read == [{"dedupeId": "a"}, {"dedupeId": "b"}]


@pytest.mark.parametrize("engine", ["embedded", "athena"])
def test_both_engines_are_built_from_settings_without_calling_aws(engine: str) -> None:
    from entrypoints import registry
    from entrypoints.settings import Settings

    settings = Settings.from_env(
        {
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "MERGE_ENGINE": engine,
            "MOVE_QUEUE": "http://127.0.0.1:9/000000000000/move",
        }
    )
    for name in ("merge_avro_files", "move_merged_avro_files"):
        assert registry.run_of(name, settings) is registry.run_of(name, settings)


def test_an_unknown_engine_is_refused_when_built() -> None:
    from entrypoints import registry
    from entrypoints.settings import Settings

    with pytest.raises(ValueError, match="MERGE_ENGINE"):
        registry.run_of("merge_avro_files", Settings(merge_engine="spark"))
