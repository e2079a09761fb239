"""Athena's result file read back exactly: hostile values (quotes, commas, line breaks, unicode,
an empty string beside a NULL) come out as GetQueryResults would give them."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.aws.athena_csv import MalformedResult, result_rows

Row = tuple[str | None, ...]


def athena_csv(rows: list[Row]) -> str:
    """Written as Athena writes it: every value quoted, quotes doubled, NULL an empty
    unquoted field, records ended by a line feed."""
    return "".join(
        ",".join("" if v is None else '"' + v.replace('"', '""') + '"' for v in row) + "\n"
        for row in rows
    )


def read(text: str) -> list[Row]:
    return list(result_rows(io.StringIO(text, newline="")))


HOSTILE = st.one_of(
    st.none(),
    st.just(""),
    st.sampled_from(['"', '""', ",", "\n", "\r\n", "\r", '","', ' "a" ', "é", "名前", "🎉"]),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")),
)


@given(st.integers(1, 12).flatmap(lambda n: st.lists(st.tuples(*[HOSTILE] * n), max_size=20)))
def test_every_row_comes_back_as_written_nulls_apart_from_empty_strings(rows: list[Row]) -> None:
    assert read(athena_csv(rows)) == rows


def test_null_is_an_unquoted_empty_field_and_an_empty_string_a_quoted_one() -> None:
    text = '"id","name","description"\n"1","Alice","Hello"\n"2","Bob",""\n"3","Charlie",\n'
    assert read(text)[1:] == [("1", "Alice", "Hello"), ("2", "Bob", ""), ("3", "Charlie", None)]
    assert read(',"",\n') == [(None, "", None)]


def test_a_value_over_several_lines_with_quotes_and_commas_is_one_value() -> None:
    assert read('"a","x ""q"", y\nnext line",\n"b",,""\n') == [
        ("a", 'x "q", y\nnext line', None),
        ("b", None, ""),
    ]


@pytest.mark.parametrize("record", ['"jane@example.com","unclosed\n', '"jane@example.com"x,"b"\n'])
def test_a_broken_file_names_the_line_and_not_the_values(record: str) -> None:
    with pytest.raises(MalformedResult, match="line 2") as raised:
        read('"h1","h2"\n' + record)
    assert "jane" not in str(raised.value)
