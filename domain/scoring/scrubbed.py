"""The scrubbed CSV: every input row with its verdict, reason, tags and band, safe to open in a
spreadsheet.

Columns: row, verdict, reason, tags, band, band_score, phone_e164, then the input columns in the
file's order (trimmed), then raw. `row` is the line number in the scored file (the header is line
1). `reason` is "<code>: <what, naming the field>" for rejected rows, empty for accepted ones.
`tags` are joined with '|'. `raw` holds the whole input line, only for rows that could not be
split into the header's columns (bad encoding, wrong column count, blank), with undecodable bytes
shown as \\xNN escapes, so nothing of a broken row is lost. RFC 4180 quoting, CRLF line ends.

Formula injection (CSV injection): every cell goes through domain/spreadsheet.py's `neutralise`,
the one rule for every CSV a person may open.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence

from domain.scoring.columns import ColumnLayout
from domain.spreadsheet import FORMULA_STARTS
from domain.spreadsheet import neutralise as neutralise  # re-exported: one rule (spreadsheet.py)

LEAD_COLUMNS: tuple[str, ...] = (
    "row",
    "verdict",
    "reason",
    "tags",
    "band",
    "band_score",
    "phone_e164",
)
RAW_COLUMN = "raw"
TAG_SEPARATOR = "|"
LINE_END = "\r\n"
_FORMULA_STARTS = FORMULA_STARTS
# A line needs the csv module's quoting only if a cell holds one of these.
_NEEDS_QUOTING = re.compile(r'[",\r\n]')


def header_cells(layout: ColumnLayout) -> list[str]:
    return [*LEAD_COLUMNS, *(neutralise(n) for n in layout.names), RAW_COLUMN]


def render_header(layout: ColumnLayout) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=LINE_END).writerow(header_cells(layout))
    return buffer.getvalue().encode("utf-8")


class ScrubbedRows:
    """Collects one chunk's CSV rows and renders them as UTF-8 bytes.

    Most rows hold no quote, comma or line break: those are joined directly (the same bytes the
    csv module would write, several times faster); the others go through the csv module.
    """

    def __init__(self, width: int) -> None:
        self._lines: list[str] = []
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator=LINE_END)
        self._blank_inputs = [""] * width

    def add(
        self,
        row: int,
        verdict: bool,
        reason: str,
        tags: Sequence[str],
        band: str,
        band_score: str,
        phone_e164: str,
        cells: Sequence[str] | None,
        raw: str = "",
    ) -> None:
        if cells is None:
            cells = self._blank_inputs
        else:
            starts = _FORMULA_STARTS
            cells = [neutralise(c) if c[:1] in starts else c for c in cells]
        fields = [
            str(row),
            "true" if verdict else "false",
            neutralise(reason),
            TAG_SEPARATOR.join(tags),
            band,
            band_score,
            phone_e164,
            *cells,
            neutralise(raw),
        ]
        line = ",".join(fields)
        if _NEEDS_QUOTING.search(line) is None:
            self._lines.append(line)
        else:
            self._flush_fast_lines()
            self._writer.writerow(fields)

    def add_clean(
        self,
        row: int,
        tags: Sequence[str],
        band: str,
        band_score: str,
        phone_e164: str,
        cells: list[str],
        parts: list[str],
        line: str,
    ) -> None:
        """An accepted row (no reason, no raw); the same bytes as `add`, faster: this runs for
        almost every row. `parts` are the untrimmed cells of `line`, `cells` the trimmed ones.

        A line without a quote, comma or CR needs no CSV quoting. If trimming changed nothing
        (`cells == parts` is cheap: strip returns the same object) and no cell starts like a
        formula, the input cells are simply the line with tabs turned into commas.
        """
        # The band name is the campaign's: a comma or quote in it must be quoted too.
        if "," in line or '"' in line or "\r" in line or _NEEDS_QUOTING.search(band):
            self.add(row, True, "", tags, band, band_score, phone_e164, cells)
            return
        starts = _FORMULA_STARTS
        if cells == parts and not (
            line[:1] in starts or "\t=" in line or "\t+" in line or "\t-" in line or "\t@" in line
        ):
            inputs = line.replace("\t", ",")
        else:
            inputs = ",".join([neutralise(c) if c[:1] in starts else c for c in cells])
        self._lines.append(
            f"{row},true,,{TAG_SEPARATOR.join(tags)},{band},{band_score},{phone_e164},{inputs},"
        )

    def _flush_fast_lines(self) -> None:
        if self._lines:
            self._lines.append("")
            self._buffer.write(LINE_END.join(self._lines))
            self._lines = []

    def render(self) -> bytes:
        self._flush_fast_lines()
        return self._buffer.getvalue().encode("utf-8")


def csv_cell(text: str) -> str:
    """`text` as the csv module writes one cell (minimal quoting): for the band name, written
    into lines that are joined without the csv module."""
    if _NEEDS_QUOTING.search(text) is None:
        return text
    return '"' + text.replace('"', '""') + '"'


def render_line(fields: Sequence[str]) -> str:
    """One CSV line (no line end) for `fields`: the same text ScrubbedRows writes for them."""
    line = ",".join(fields)
    if _NEEDS_QUOTING.search(line) is None:
        return line
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=LINE_END).writerow(fields)
    return buffer.getvalue()[: -len(LINE_END)]


def rejected_line(
    row: int,
    reason: str,
    tags: Sequence[str],
    band: str,
    band_score: str,
    phone_e164: str,
    cells: Sequence[str] | None,
    raw: str,
    width: int,
) -> str:
    """The CSV line of a rejected row: the same text as `ScrubbedRows.add(row, False, ...)`."""
    if cells is None:
        cells = [""] * width
    else:
        cells = [neutralise(c) if c[:1] in _FORMULA_STARTS else c for c in cells]
    return render_line(
        [
            str(row),
            "false",
            neutralise(reason),
            TAG_SEPARATOR.join(tags),
            band,
            band_score,
            phone_e164,
            *cells,
            neutralise(raw),
        ]
    )


def neutralise_column(cells: list[str]) -> list[str]:
    """`neutralise` over one column; most columns hold no formula start and are returned as is
    after one scan of the joined column."""
    joined = "\n" + "\n".join(cells)
    if (
        "\n=" in joined
        or "\n+" in joined
        or "\n-" in joined
        or "\n@" in joined
        or "\t" in joined
        or "\r" in joined
    ):
        starts = _FORMULA_STARTS
        return [neutralise(c) if c[:1] in starts else c for c in cells]
    return cells
