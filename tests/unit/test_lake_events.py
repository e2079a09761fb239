"""The merge's inputs, as EventBridge, a direct call, the original's runbook and the CLI give."""

from __future__ import annotations

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
