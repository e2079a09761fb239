"""The one rule for every CSV a person may open in a spreadsheet (the scrubbed CSV, wave prep's
files, the wave CSV generate_sms_wave_codes writes): formula injection is neutralised.

A cell starting with = + - @ tab or CR is read as a formula by Excel, LibreOffice and Google
Sheets (`=HYPERLINK("http://evil", "click")` in a first name runs when the file is opened). Such
cells get a leading apostrophe. Plain numbers are left alone because they cannot run anything
and rewriting them would corrupt the data people need: `+15551234567` (E.164 phones), `-0.5`,
`+3`, `0012345`. Idempotent: a neutralised cell starts with an apostrophe and is left as it is,
so a file read and written again does not grow apostrophes.
"""

from __future__ import annotations

import re

FORMULA_STARTS = frozenset("=+-@\t\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def neutralise(cell: str) -> str:
    """`cell`, made inert for spreadsheets (see module docstring)."""
    if cell[:1] in FORMULA_STARTS and cell and not _PLAIN_NUMBER.fullmatch(cell):
        return "'" + cell
    return cell
