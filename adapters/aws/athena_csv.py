"""Athena's query result file (`{OutputLocation}`, `{id}.csv`) read as rows.

The format (what Athena writes for a SELECT; PyAthena's `AthenaCSVReader` reads it the same
way): a header row, then one record per row; fields separated by `,`, records by `\\n`; every
non-NULL value in double quotes with an embedded `"` doubled; NULL is an empty field with no
quotes (`,,`), an empty string a quoted one (`,"",`). A value may hold commas and line breaks.

Rows come as GetQueryResults gives them: a tuple of `str | None`, None where the value was NULL,
so either read path answers the same rows. The `csv` module (C) splits the records; it reads a
NULL and "" alike, so only a record holding an empty field is scanned again from its raw text to
tell which empties were unquoted (NULL): ~3 µs a row, ~9 with an empty field. Bad input (a stray
quote, an unclosed value) raises MalformedResult naming the record's line, never its values
(they are people's contacts).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator


class MalformedResult(ValueError):
    """A result file that does not follow Athena's CSV format."""


# One field of a raw record: a quoted value (doubled quotes inside) or nothing (NULL). Unrolled
# (`[^"]*(?:""[^"]*)*`), twice as fast as an alternation per character.
_FIELD = re.compile(r'(?:^|,)("[^"]*(?:""[^"]*)*"|)')


def _nulls(raw: str, expected: int) -> list[bool]:
    """Which fields of one raw record are NULL (empty and unquoted); `expected` fields."""
    nulls = [field == "" for field in _FIELD.findall(raw)]
    if len(nulls) != expected:
        raise MalformedResult(f"{len(nulls)} fields where csv read {expected}")
    return nulls


def result_rows(lines: Iterable[str]) -> Iterator[tuple[str | None, ...]]:
    """Every record, the header included, from `lines` (text split with its line endings
    kept: `io.TextIOWrapper(..., newline="")`, as the csv module needs for values that hold
    line breaks)."""
    taken: list[str] = []

    def feed() -> Iterator[str]:
        for line in lines:
            taken.append(line)
            yield line

    reader = csv.reader(feed(), strict=True)
    done = 0  # lines read before the current record
    try:
        for row in reader:
            if not row:  # an empty line: one column, NULL (csv reads it as no field at all)
                yield (None,)
            elif "" in row:
                nulls = _nulls("".join(taken), len(row))
                pairs = zip(row, nulls, strict=True)
                yield tuple(None if null and not value else value for value, null in pairs)
            else:
                yield tuple(row)
            done = reader.line_num
            taken.clear()
    except (csv.Error, MalformedResult) as error:
        # csv's message quotes no field; ours neither: the values are people's contacts.
        raise MalformedResult(f"result file line {done + 1}: {error}") from None
