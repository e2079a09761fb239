"""SMS waves: their keys in the scoring bucket, their configs, the code validity window, and
reading and writing wave CSVs. Pure: the CSV is read from the object store's byte chunks and
written as bytes; no I/O here. docs/access-codes.md states the rules.

Keys (the original's layout, §2.4):
    smsWaves/csv/{waveName}.csv                      the wave: one Registrant per row
    smsWaves/{scheduled,triggered,completed,failed}/{waveName}_csv.json   its config by state
    smsWaves/configs/{waveFilePrefix}.normalized.json                     the normalized config
    smsWaves/generated/{waveFilePrefix}.csv (+ .counts.json)  the new wave CSV, staged complete
                                                  before it replaces the old one
    smsWaves/streamed/{waveName}.json             load_code_assignments_to_stream's checkpoint
    smsWaves/leases/{waveFilePrefix}.json         generate_sms_wave_codes' one-run-at-a-time lease
    smsWaves/leases/stream/{waveName}.json        load_code_assignments_to_stream's lease

Validity window: begin = notifyDate - 24 h, end = the same UTC instant one calendar year later
(29 February -> 28 February). notifyDate is ISO 8601: with an offset (`Z`, `-05:00`) it is that
instant; without one (a date, or a naive date-time) it is read as UTC. All arithmetic is on UTC
instants, so daylight-saving changes cannot shorten either margin: the window always contains
the notify instant with at least 24 h before it and at least 365 days after.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from returns.result import Failure, Result, Success

from domain.chunk_reader import ChunkReader
from domain.codes import TM_PLACEHOLDER_CODE
from domain.models import ObjectRef
from domain.spreadsheet import neutralise

WAVE_CSV_PREFIX = "smsWaves/csv/"
CONFIG_STATES = ("scheduled", "triggered", "completed", "failed")
BEFORE_NOTIFY = timedelta(hours=24)
GENERATING_MARKER = "genCodes"
CODE_COLUMN = "code"
GLOBAL_USER_ID = "globalUserId"
REGENERATE_OPTION = "regenerateCodes"
# generate_sms_wave_codes' lease per wave: smsWaves/leases/{waveFilePrefix}.json
WAVE_LEASE_PREFIX = "smsWaves/leases/"
# load_code_assignments_to_stream's lease per wave (a prefix holds no "/": no clash with the above)
STREAM_LEASE_PREFIX = "smsWaves/leases/stream/"


def wave_csv_key(wave_name: str) -> str:
    return f"{WAVE_CSV_PREFIX}{wave_name}.csv"


def wave_prefix_problem(prefix: Any) -> str | None:
    """Why `prefix` cannot name a wave (it becomes part of S3 keys), or None. Checked before
    anything is written: a prefix with a NUL or a newline failed only at S3, after the
    normalized config had been written under it."""
    if not isinstance(prefix, str) or not prefix.strip():
        return "waveFilePrefix is missing or empty"
    if not prefix.isprintable():
        return f"waveFilePrefix {prefix!r} holds a control character (a NUL, a newline, a tab)"
    if "/" in prefix or "\\" in prefix or not prefix.strip(". "):
        return f"waveFilePrefix {prefix!r} contains '/' or '\\', or is only dots"
    return None


def normalized_config_key(prefix: str) -> str:
    return f"smsWaves/configs/{prefix}.normalized.json"


def staged_csv_key(prefix: str) -> str:
    return f"smsWaves/generated/{prefix}.csv"


def staged_counts_key(prefix: str) -> str:
    return f"smsWaves/generated/{prefix}.counts.json"


def streamed_checkpoint_key(wave_name: str) -> str:
    return f"smsWaves/streamed/{wave_name}.json"


_CONFIG_KEY = re.compile(r"smsWaves/(?P<state>[^/]+)/(?P<wave>[^/]+)_csv\.json")
_SCHEDULED_CSV_KEY = re.compile(r"smsWaves/csv/(?P<campaign>[^/_]+)_(?P<suffix>[^/]+)\.csv")


def wave_of_config_key(key: str) -> str | None:
    """`smsWaves/triggered/{wave}_csv.json` -> wave (any known state), else None."""
    match = _CONFIG_KEY.fullmatch(key)
    if match is None or match["state"] not in CONFIG_STATES:
        return None
    return match["wave"]


def campaign_of_wave_key(key: str) -> str | None:
    """`smsWaves/csv/{campaignId}_{suffix}.csv` -> campaignId, else None."""
    match = _SCHEDULED_CSV_KEY.fullmatch(key)
    return None if match is None else match["campaign"]


def is_real_code(code: str | None) -> bool:
    """Not empty and not the TM placeholder: a code that may be assigned or streamed."""
    return bool(code) and code.strip() not in ("", TM_PLACEHOLDER_CODE)  # type: ignore[union-attr]


# --- dates -----------------------------------------------------------------------------------


def parse_notify_date(value: Any) -> Result[datetime, str]:
    """An ISO 8601 date or date-time -> an aware UTC datetime (naive ones read as UTC)."""
    if not isinstance(value, str) or not value.strip():
        return Failure("notifyDate is missing or not a string")
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return Failure("notifyDate is not an ISO 8601 date or date-time")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return Success(moment.astimezone(UTC))
    except OverflowError:  # 0001-01-01T00:00+14:00 is before year 1 in UTC
        return Failure("notifyDate is out of range (before year 1 or after 9999 in UTC)")


def validity_window(notify: datetime) -> tuple[datetime, datetime]:
    """(begin, end) of a wave's codes: 24 h before the notify instant, one year after."""
    utc = notify.astimezone(UTC)
    try:
        end = utc.replace(year=utc.year + 1)
    except ValueError:  # 29 February: the year after has none
        end = utc.replace(year=utc.year + 1, day=28)
    return utc - BEFORE_NOTIFY, end


def iso_millis(moment: datetime) -> str:
    """UTC with milliseconds and `Z`, as the original's JavaScript wrote dates."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


# --- configs ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GenerationConfig:
    """What generation needs from a wave config; `raw` is the whole config, passed through."""

    generate_offer_code: bool
    notify: datetime | None
    product_id: str
    source: str
    raw: Mapping[str, Any]
    # `regenerateCodes`: replace the real codes the wave file already holds (TM stays TM).
    regenerate: bool = False

    def normalized(self, generating: bool) -> dict[str, Any]:
        """The config with beginDate/endDate expanded; the generating marker while it runs."""
        out = {k: v for k, v in self.raw.items() if k != GENERATING_MARKER}
        if self.notify is not None:
            begin, end = validity_window(self.notify)
            out["beginDate"], out["endDate"] = iso_millis(begin), iso_millis(end)
        if generating:
            out[GENERATING_MARKER] = True
        return out


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def parse_generation_config(value: Any) -> Result[GenerationConfig, str]:
    """A config object (or its JSON text) -> GenerationConfig, or why not (naming the field)."""
    if isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except ValueError:
            return Failure("config is not JSON")
    if not isinstance(value, Mapping):
        return Failure("config is not a JSON object")
    generate = _flag(value.get("generateOfferCode"))
    if generate is None:
        return Failure("config.generateOfferCode must be true or false")
    if not generate:
        return Success(GenerationConfig(False, None, "", "", value))
    notify = parse_notify_date(value.get("notifyDate"))
    match notify:
        case Failure(reason):
            return Failure(f"config.{reason}")
        case Success(notify_at):
            pass
    try:  # 9999-12-31T23:00Z ends after year 9999, 0001-01-01 begins before year 1
        validity_window(notify_at)
    except (ValueError, OverflowError):
        return Failure(
            "config.notifyDate is out of range: its code window (24 h before it to one year "
            "after) must fall within the years 1 to 9999"
        )
    regenerate = _flag(value.get(REGENERATE_OPTION, False))
    if regenerate is None:
        return Failure(f"config.{REGENERATE_OPTION} must be true or false")
    for name in ("productId", "source"):
        field = value.get(name)
        if not isinstance(field, str | int) or isinstance(field, bool) or not str(field).strip():
            return Failure(f"config.{name} is missing or empty")
    return Success(
        GenerationConfig(
            True,
            notify_at,
            str(value["productId"]).strip(),
            str(value["source"]).strip(),
            value,
            regenerate,
        )
    )


def event_object(
    event: Any, bucket: str, key_fields: Sequence[str] = ("key",)
) -> Result[ObjectRef, str]:
    """The object a worker's input names, in `bucket` unless it names its own: a mapping with a
    key under one of `key_fields` (and perhaps `bucket`), or a bare key; a key may be an s3://
    URI (AWS events are unwrapped before: entrypoints/events.py `unwrap`). The key is empty
    when the input names none (the caller says what it expected); Failure only for an s3://
    URI that does not parse."""
    key: Any = event
    if isinstance(event, Mapping):
        key = next((event[f] for f in key_fields if event.get(f)), "")
        bucket = str(event.get("bucket") or bucket)
    if not isinstance(key, str):
        return Success(ObjectRef(bucket, ""))
    if key.startswith("s3://"):
        try:
            return Success(ObjectRef.parse(key))
        except ValueError as error:
            return Failure(str(error))
    return Success(ObjectRef(bucket, key))


# --- CSV ---------------------------------------------------------------------------------------


class CsvProblem(ValueError):
    """The file cannot be read as a wave CSV at all (encoding, a runaway quoted field)."""


@dataclass(frozen=True, slots=True)
class WaveRow:
    number: int  # 1-based data row (the header is row 0); blank lines are not rows
    values: Mapping[str, str] | None  # None: wrong number of fields
    fields: int


class _NotUtf8(CsvProblem):
    """Bytes that are not UTF-8 on physical line `line` (1-based, the header's line is 1)."""

    def __init__(self, line: int, error: UnicodeDecodeError) -> None:
        bad = error.object[error.start : error.start + 1].hex()
        super().__init__(f"not UTF-8 (byte 0x{bad} at byte {error.start + 1} of line {line})")
        self.line = line


# A lone CR ends a line too (old spreadsheets save so); CRLF stays one line end.
_LONE_CR = re.compile(r"(?<=\r)(?!\n)")


def _text_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """UTF-8 (a BOM dropped) lines, line ends kept so that csv sees quoted newlines. Decoded line
    by line (LF never occurs inside a UTF-8 sequence), so a bad byte is reported with its line."""
    stream = io.BufferedReader(ChunkReader(chunks))
    for number, raw in enumerate(stream, 1):
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as error:
            raise _NotUtf8(number, error) from error
        if "\r" in text[:-2]:
            yield from _LONE_CR.split(text)
        else:
            yield text


def read_wave_csv(chunks: Iterable[bytes]) -> tuple[list[str], Iterator[WaveRow]]:
    """The header and the data rows. Quotes, commas and newlines inside quoted fields, CRLF
    and a BOM are the csv module's to handle; blank lines are skipped. Raises CsvProblem for a
    file without a header, and (while iterating) for bad encoding (naming the data row and
    line) or a runaway field (the csv module's default limit: 131,072 characters, far beyond
    any SMS text)."""
    reader = csv.reader(_text_lines(chunks), strict=False)
    try:
        header = next((row for row in reader if row), None)
    except (csv.Error, _NotUtf8) as error:
        raise CsvProblem(f"header: {error}") from error
    if header is None:
        raise CsvProblem("the file is empty (no header)")
    names = [h.strip() for h in header]

    def rows() -> Iterator[WaveRow]:
        number = 0
        try:
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                number += 1
                if len(row) != len(names):
                    yield WaveRow(number, None, len(row))
                else:
                    yield WaveRow(number, dict(zip(names, row, strict=True)), len(row))
        except (csv.Error, _NotUtf8) as error:
            raise CsvProblem(f"data row {number + 1}: {error}") from error

    return names, rows()


@dataclass
class CodeChunk:
    """Consecutive rows of a wave CSV and what their code column held: the rows with a real
    code (and the code, trimmed), and counts of those with none or the TM placeholder, which
    are dropped. Holds only the coded rows: the dropped ones are counted, not kept."""

    rows: int = 0
    last_row: int = 0
    coded: list[tuple[WaveRow, str]] = field(default_factory=list)
    without_code: int = 0
    placeholder: int = 0

    @property
    def codes(self) -> list[str]:
        return [code for _, code in self.coded]


def code_chunks(
    rows: Iterable[WaveRow], full: Callable[[CodeChunk], bool], *, from_row: int = 1
) -> Iterator[CodeChunk]:
    """The rows numbered `from_row` on (those before were done by an earlier run), in chunks
    that end as soon as `full(chunk)`; the last one may be short, and none is empty.
    Memory bound: one chunk's coded rows (what `full` lets it grow to)."""
    chunk = CodeChunk()
    for row in rows:
        if row.number < from_row:
            continue
        chunk.rows += 1
        chunk.last_row = row.number
        code = (row.values or {}).get(CODE_COLUMN, "").strip()
        if not code:
            chunk.without_code += 1
        elif not is_real_code(code):
            chunk.placeholder += 1
        else:
            chunk.coded.append((row, code))
        if full(chunk):
            yield chunk
            chunk = CodeChunk()
    if chunk.rows:
        yield chunk


def render_csv(rows: Sequence[Sequence[str]]) -> bytes:
    """Rows as CSV bytes (CRLF line ends, minimal quoting), for a wave CSV: people open it in
    spreadsheets, so every cell goes through domain/spreadsheet.py's one formula rule."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows([map(neutralise, r) for r in rows])
    return buffer.getvalue().encode("utf-8")
