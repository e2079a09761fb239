"""The wave's markets: the uploaded market details CSV, checked and combined with the campaign's
own markets.

Market details CSV (`wavePrep/{campaignId}/data/{dateKey}.csv`, UTF-8, comma-separated, a
header row; a UTF-8 BOM as spreadsheets write it is accepted; header names are matched without
case, and the original admin's names are accepted too):

    marketId,name,capacity,selectionTime,codeType
    m-nyc,New York,50000,2026-12-02T15:00:00Z,external
    m-lon,London,10000,2026-12-02T10:00:00Z,TM

- `marketId` (or `id`): required, unique, letters, digits and `_ . -` (it names files in the zip);
- `name` (or `marketName`): optional, the campaign's name for the market when empty;
- `capacity` (or `limit`): required, a whole number >= 0 (0 = nobody from this market);
- `selectionTime`: optional, ISO 8601 with a time zone; carried into masterCodes and the status
  (the fans' records carry no time to filter on, so it selects nobody by itself);
- `codeType` (or `type`): `TM` (TM-managed: the placeholder `TM` or codes from an uploaded TM code
  file) or `external` (also `nonTm`; codes reserved from the code inventory), default external.

Combined with the campaign's markets (campaign service `GET /campaigns/:id/markets`, or
`markets` in the campaign's JSON config): a market in one and not the other is an error naming
it, so a typo in the upload never silently drops a market or its fans.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from returns.result import Failure, Result, Success

from domain.codes import CodeType

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_BOM = "\ufeff"
_COLUMNS = {
    "marketid": "marketId",
    "id": "marketId",
    "name": "name",
    "marketname": "name",
    "capacity": "capacity",
    "limit": "capacity",
    "selectiontime": "selectionTime",
    "codetype": "codeType",
    "type": "codeType",
}
_CODE_TYPES = {"tm": CodeType.TM, "external": CodeType.EXTERNAL, "nontm": CodeType.EXTERNAL}
MAX_REPORTED_PROBLEMS = 10


@dataclass(frozen=True, slots=True)
class CampaignMarket:
    """A market as the campaign knows it."""

    market_id: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class MarketDetail:
    """One row of the uploaded market details."""

    market_id: str
    name: str
    capacity: int
    selection_time: datetime | None
    code_type: CodeType
    row: int


@dataclass(frozen=True, slots=True)
class WaveMarket:
    market_id: str
    name: str
    capacity: int
    selection_time: datetime | None
    code_type: CodeType


def is_safe_market_id(market_id: str) -> bool:
    return bool(_SAFE_ID.match(market_id)) and ".." not in market_id


def parse_market_details(text: str, source: str) -> Result[tuple[MarketDetail, ...], str]:
    """The rows of a market details CSV, or one message listing what is wrong (row and field)."""
    text = text.removeprefix(_BOM)
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        return Failure(f"{source}: empty, expected a header row {_expected()}")
    header = next(csv.reader([lines[0]]))
    if len(header) == 1:
        delimiter = next((d for d in ";\t|" if d in header[0]), None)
        if delimiter is not None:
            shown = "tab" if delimiter == "\t" else repr(delimiter)
            return Failure(f"{source}: columns are separated by {shown}, expected commas")
    names = [_COLUMNS.get(h.strip().lower().replace("_", "").replace(" ", "")) for h in header]
    unknown = [h for h, n in zip(header, names, strict=True) if n is None]
    if unknown:
        return Failure(f"{source}: unknown columns {unknown}, expected {_expected()}")
    for required in ("marketId", "capacity"):
        if required not in names:
            return Failure(f"{source}: no {required} column, expected {_expected()}")
    if len(set(names)) != len(names):
        return Failure(f"{source}: a column appears twice in the header {header}")
    problems: list[str] = []
    details: list[MarketDetail] = []
    first_row: dict[str, int] = {}
    reader = csv.reader(io.StringIO("\n".join(lines[1:])))
    for row_number, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        parsed = _row(cells, names, row_number)
        if isinstance(parsed, str):
            problems.append(parsed)
            continue
        if parsed.market_id in first_row:
            problems.append(
                f"row {row_number}: market {parsed.market_id!r} repeats row "
                f"{first_row[parsed.market_id]}"
            )
            continue
        first_row[parsed.market_id] = row_number
        details.append(parsed)
    if not details and not problems:
        problems.append("no market rows after the header")
    if problems:
        listed = problems[:MAX_REPORTED_PROBLEMS]
        more = len(problems) - len(listed)
        return Failure(f"{source}: " + "; ".join(listed) + (f"; and {more} more" if more else ""))
    return Success(tuple(details))


def _expected() -> str:
    return "marketId,name,capacity,selectionTime,codeType"


def _row(cells: Sequence[str], names: Sequence[str | None], row: int) -> MarketDetail | str:
    if len(cells) != len(names):
        return f"row {row}: {len(cells)} cells for {len(names)} columns"
    values = {n: c.strip() for n, c in zip(names, cells, strict=True) if n is not None}
    market_id = values.get("marketId", "")
    if not market_id:
        return f"row {row}: marketId is empty"
    if not is_safe_market_id(market_id):
        return f"row {row}: marketId {market_id!r} has characters other than A-Z a-z 0-9 _ . -"
    raw_capacity = values.get("capacity", "")
    if not raw_capacity:
        return f"row {row} (market {market_id!r}): capacity is missing"
    if not re.fullmatch(r"-?\d+", raw_capacity):
        return f"row {row} (market {market_id!r}): capacity {raw_capacity!r} is not a whole number"
    capacity = int(raw_capacity)
    if capacity < 0:
        return f"row {row} (market {market_id!r}): capacity {capacity} is negative"
    raw_time = values.get("selectionTime", "")
    selection_time = None
    if raw_time:
        try:
            selection_time = datetime.fromisoformat(raw_time.replace("Z", "+00:00"))
        except ValueError:
            return f"row {row} (market {market_id!r}): selectionTime {raw_time!r} is not ISO 8601"
        if selection_time.tzinfo is None:
            return f"row {row} (market {market_id!r}): selectionTime {raw_time!r} has no time zone"
    raw_type = values.get("codeType", "").lower().replace("-", "").replace("_", "")
    code_type = _CODE_TYPES.get(raw_type or "external")
    if code_type is None:
        shown = values["codeType"]
        return f"row {row} (market {market_id!r}): codeType {shown!r} is not TM or external"
    return MarketDetail(market_id, values.get("name", ""), capacity, selection_time, code_type, row)


def combine(
    details: Sequence[MarketDetail], campaign_markets: Sequence[CampaignMarket], campaign_id: str
) -> Result[tuple[WaveMarket, ...], str]:
    """The wave's markets in the upload's order; every market must be in both lists."""
    known = {m.market_id: m for m in campaign_markets}
    uploaded = {d.market_id for d in details}
    unknown = [d.market_id for d in details if d.market_id not in known]
    missing = [m.market_id for m in campaign_markets if m.market_id not in uploaded]
    problems = []
    if unknown:
        problems.append(f"markets {unknown} are not markets of campaign {campaign_id!r}")
    if missing:
        problems.append(
            f"campaign {campaign_id!r} has markets {missing} that the market details do not "
            "list (list them with capacity 0 to leave them out of this wave)"
        )
    if problems:
        return Failure("; ".join(problems))
    return Success(
        tuple(
            WaveMarket(
                d.market_id,
                d.name or known[d.market_id].name or d.market_id,
                d.capacity,
                d.selection_time,
                d.code_type,
            )
            for d in details
        )
    )


def parse_code_file(text: str, source: str) -> Result[tuple[str, ...], str]:
    """An uploaded code file: one code per line (first cell of a CSV line), an optional `code`
    header, blank lines skipped. A code listed twice is an error: it would reach two fans."""
    codes: list[str] = []
    seen: dict[str, int] = {}
    for line_number, line in enumerate(text.removeprefix(_BOM).splitlines(), start=1):
        cell = line.split(",", 1)[0].strip().strip('"').strip()
        if not cell or (line_number == 1 and cell.lower() == "code"):
            continue
        if cell in seen:
            return Failure(f"{source}: line {line_number} repeats the code of line {seen[cell]}")
        seen[cell] = line_number
        codes.append(cell)
    return Success(tuple(codes))
