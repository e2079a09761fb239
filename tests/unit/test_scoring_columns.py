"""The header contract of the scored file."""

from __future__ import annotations

import pytest

from domain.scoring.columns import is_confirmed, parse_header


def test_known_columns_match_case_insensitively_and_unknown_ones_pass_through() -> None:
    layout = parse_header(b"\xef\xbb\xbfGlobalUserID\tEMAIL\tphone\tScore\tSegment\r").unwrap()
    assert dict(layout.known) == {"globalUserId": 0, "email": 1, "phone": 2, "score": 3}
    assert layout.extras == (("Segment", 4),)


def test_missing_required_columns_are_named_in_contract_order() -> None:
    problem = parse_header(b"phone\tfoo").failure()
    assert problem.kind == "missing_columns"
    assert problem.message.endswith("globalUserId, email, score")


@pytest.mark.parametrize(
    ("header", "needle"),
    [
        (b"globalUserId\temail\tphone\tscore\t", "column 5 has no name"),
        (b"globalUserId\temail\tphone\tscore\tEmail", "column 5 repeats 'Email'"),
        (b"globalUserId\temail\tphone\tscore\tverdict", "'verdict' is reserved"),
    ],
)
def test_ambiguous_headers_fail_with_the_column_named(header: bytes, needle: str) -> None:
    problem = parse_header(header).failure()
    assert problem.kind == "bad_header"
    assert needle in problem.message


def test_no_header_and_bad_encoding_are_reported() -> None:
    assert parse_header(None).failure().kind == "empty_file"
    assert parse_header(b"  ").failure().kind == "empty_file"
    assert parse_header(b"glob\xffalUserId").failure().kind == "bad_encoding"


@pytest.mark.parametrize(
    ("value", "confirmed"),
    [("true", True), ("YES", True), ("1", True), ("false", False), ("", False), (None, False)],
)
def test_phone_confirmed_values(value: str | None, confirmed: bool) -> None:
    assert is_confirmed(value) is confirmed
