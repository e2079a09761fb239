"""The scored file's column contract, and its header line.

A scored file is UTF-8 text (a leading BOM and CRLF line ends accepted), tab-separated, with a
header line first. Header names match case-insensitively for the known columns:

  required  globalUserId, email, phone, score
  optional  memberId, firstName, lastName, marketId, locale, phoneConfirmed

Every other column is passed through, under its header name as written, into the stream record
and the scrubbed CSV. A header fails the whole file (before anything is streamed) when a required
column is missing, a name is empty or repeated, or a name would overwrite a field the pipeline
writes itself (RESERVED_NAMES): silently shadowing `verdict` or `band` would corrupt the output.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from returns.result import Failure, Result, Success

REQUIRED_COLUMNS: tuple[str, ...] = ("globalUserId", "email", "phone", "score")
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "memberId",
    "firstName",
    "lastName",
    "marketId",
    "locale",
    "phoneConfirmed",
)
KNOWN_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
# Fields of the stream record and the scrubbed CSV that the pipeline itself writes.
RESERVED_NAMES: tuple[str, ...] = (
    "type",
    "campaignId",
    "band",
    "band_score",
    "tags",
    "verdict",
    "dedupeId",
    "__meta",
    "row",
    "reason",
    "phone_e164",
    "raw",
)
_KNOWN_BY_FOLDED = {name.casefold(): name for name in KNOWN_COLUMNS}
_RESERVED_FOLDED = {name.casefold() for name in RESERVED_NAMES}
BOM = b"\xef\xbb\xbf"

CONFIRMED_VALUES = frozenset({"true", "1", "yes", "y", "t"})


@dataclass(frozen=True, slots=True)
class HeaderProblem:
    """Why a header cannot be used: `kind` is 'empty_file', 'bad_encoding', 'missing_columns',
    'bad_header'."""

    kind: str
    message: str


@dataclass(frozen=True, slots=True)
class ColumnLayout:
    """Where each column sits. `names` is the header as written (trimmed); `known` maps the
    canonical name of each known column present to its position; `extras` are the pass-through
    columns (name as written, position)."""

    names: tuple[str, ...]
    known: Mapping[str, int]
    extras: tuple[tuple[str, int], ...]

    @property
    def width(self) -> int:
        return len(self.names)

    def position(self, canonical: str) -> int | None:
        return self.known.get(canonical)


def parse_header(line: bytes | None) -> Result[ColumnLayout, HeaderProblem]:
    """The first line of the file (line end removed, BOM allowed) -> its layout."""
    if line is None:
        return Failure(HeaderProblem("empty_file", "the file is empty: no header line"))
    if line.startswith(BOM):
        line = line[len(BOM) :]
    try:
        text = line.decode("utf-8").rstrip("\r")
    except UnicodeDecodeError as error:
        return Failure(
            HeaderProblem("bad_encoding", f"header (line 1) is not UTF-8 at byte {error.start}")
        )
    if not text.strip():
        return Failure(HeaderProblem("empty_file", "the header line (line 1) is empty"))
    if "\r" in text:
        # Lines ended by CR alone (classic Mac) make the whole file one line: say so, rather
        # than list every cell of it as a repeated or reserved column name.
        return Failure(
            HeaderProblem(
                "bad_header",
                "the file has no line breaks: its lines end in CR only; save it with LF or "
                "CRLF line ends",
            )
        )
    names = tuple(cell.strip() for cell in text.split("\t"))
    return _layout(names)


def _layout(names: tuple[str, ...]) -> Result[ColumnLayout, HeaderProblem]:
    known: dict[str, int] = {}
    extras: list[tuple[str, int]] = []
    seen: set[str] = set()
    problems: list[str] = []
    for position, name in enumerate(names):
        folded = name.casefold()
        if not name:
            problems.append(f"column {position + 1} has no name")
        elif folded in seen:
            problems.append(f"column {position + 1} repeats {name!r}")
        elif folded in _RESERVED_FOLDED:
            problems.append(f"column {position + 1} {name!r} is reserved for pipeline output")
        elif folded in _KNOWN_BY_FOLDED:
            known[_KNOWN_BY_FOLDED[folded]] = position
        else:
            extras.append((name, position))
        seen.add(folded)
    missing = [name for name in REQUIRED_COLUMNS if name not in known]
    if missing:
        return Failure(
            HeaderProblem(
                "missing_columns",
                "header is missing required column(s): " + ", ".join(missing),
            )
        )
    if problems:
        return Failure(HeaderProblem("bad_header", "header: " + "; ".join(problems)))
    return Success(ColumnLayout(names, known, tuple(extras)))


def is_confirmed(value: str | None) -> bool:
    """phoneConfirmed: true/1/yes/y/t (any case) confirm; anything else, an empty cell or an
    absent column means unconfirmed (the fan is tagged, never rejected, for it)."""
    return value is not None and value.lower() in CONFIRMED_VALUES
