"""The scrubbed CSV's formula-injection guard and its quoting."""

from __future__ import annotations

import csv
import io

import pytest

from domain.scoring.scrubbed import ScrubbedRows, csv_cell, neutralise


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("=SUM(A1:A9)", "'=SUM(A1:A9)"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(1)", "'@SUM(1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("+15551234567", "+15551234567"),
        ("-0.5", "-0.5"),
        ("+1 555 123 4567", "'+1 555 123 4567"),
        ("plain", "plain"),
        ("", ""),
    ],
)
def test_formula_cells_get_an_apostrophe_and_plain_numbers_do_not(cell: str, expected: str) -> None:
    assert neutralise(cell) == expected


def test_the_fast_path_writes_what_the_csv_module_reads_back() -> None:
    rows = ScrubbedRows(3)
    rows.add_clean(2, ["a"], "low", "0.5", "+1", ["x", "y", "z"], ["x", "y", "z"], "x\ty\tz")
    rows.add_clean(3, [], "low", "0.5", "", ["x,1", "=2", "q"], ["x,1", "=2", "q"], "x,1\t=2\tq")
    rows.add(4, False, "bad_score: 'a, b'", [], "", "", "", None, 'raw "line"')
    parsed = list(csv.reader(io.StringIO(rows.render().decode())))
    assert parsed == [
        ["2", "true", "", "a", "low", "0.5", "+1", "x", "y", "z", ""],
        ["3", "true", "", "", "low", "0.5", "", "x,1", "'=2", "q", ""],
        ["4", "false", "bad_score: 'a, b'", "", "", "", "", "", "", "", 'raw "line"'],
    ]


def test_a_band_name_with_a_comma_or_quote_is_quoted_like_any_cell() -> None:
    rows = ScrubbedRows(1)
    rows.add_clean(2, [], "lo,w", "0.5", "", ["x"], ["x"], "x")
    rows.add_clean(3, [], 'h"i', "0.7", "", ["y"], ["y"], "y")
    parsed = list(csv.reader(io.StringIO(rows.render().decode())))
    assert parsed == [
        ["2", "true", "", "", "lo,w", "0.5", "", "x", ""],
        ["3", "true", "", "", 'h"i', "0.7", "", "y", ""],
    ]
    assert csv_cell('h"i') == '"h""i"'
    assert csv_cell("plain") == "plain"
