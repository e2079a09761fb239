"""The production scoring transform: raw scored-file lines in, scrubbed CSV rows and stream
records out, a column at a time.

Pure and picklable, so a ChunkMapper can run it in other processes: `transform_chunk(ctx, chunk)`
depends only on its arguments. Same rules, reasons, tags and output bytes as the row-by-row
reference `transform_rows` (domain/scoring/reference.py, whose docstring lists the rules; a
hypothesis property checks the two give equal ChunkResults on arbitrary input),
at a fraction of its cost. CPython spends most of a row-by-row loop on the loop itself: calls,
attribute look-ups, small objects. Here each step runs over a whole column with C-implemented
building blocks (str.split and str.strip through map, zip(*rows) to turn rows into columns, one
regex pass over a joined column, Counter, dict and bytes methods through map), and Python-level
code runs only for the rows that need a decision the common case does not cover:

1. decode the chunk once, split it into lines and cells; rows that cannot be used (bad encoding,
   wrong column count, no globalUserId, bad or out-of-range score) are set aside and rendered
   one by one, as rejected rows, by `_unusable_line`;
2. for the usable rows, column by column: trimmed cells, scores, bands (bands.bands_for), phones
   (phones.read_phone_column), emails (emails.email_column_facts), blacklist and blocked domains
   (set operations), phoneConfirmed, tags as a bit mask per row;
3. records for the accepted rows (dicts from zipped columns, then the injected encoder), CSV
   lines by one format string per row, rejected rows rendered one by one; the chunk's CSV is the
   lines joined once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import compress, repeat
from typing import Any

from domain.scoring.chunk_types import (
    OPTIONAL_RECORD_FIELDS,
    Chunk,
    ChunkResult,
    Line,
    TooLong,
    TransformContext,
    decode_lines,
    parse_score,
    too_long_reason,
)
from domain.scoring.columns import CONFIRMED_VALUES
from domain.scoring.emails import blacklist_key, email_column_facts
from domain.scoring.phones import PhoneReader, read_phone_column
from domain.scoring.reasons import Reason, Tag, plain_counts
from domain.scoring.records import RECORD_TYPE, DedupeIds, dedupe_ids
from domain.scoring.scrubbed import (
    LINE_END,
    TAG_SEPARATOR,
    csv_cell,
    neutralise_column,
    rejected_line,
    render_line,
)

# Tag bits, in the order the tags are listed (intl and invalid phone exclude each other).
_INTL, _INVALID_PHONE, _UNCONFIRMED, _INVALID_EMAIL = 1, 2, 4, 8
_TAG_BITS = (
    (_INTL, Tag.INTL_PHONE),
    (_INVALID_PHONE, Tag.INVALID_PHONE),
    (_UNCONFIRMED, Tag.UNCONFIRMED_PHONE),
    (_INVALID_EMAIL, Tag.INVALID_EMAIL),
)
# Plain str (not the enum members) in the records: the encoder's fast path for exact str.
_TAG_LISTS = tuple([str(tag) for bit, tag in _TAG_BITS if mask & bit] for mask in range(16))
_TAG_TEXTS = tuple(TAG_SEPARATOR.join(tags) for tags in _TAG_LISTS)
# An accepted row's CSV line: row, verdict, reason, tags, band, band_score (repr), phone_e164,
# the input cells (already joined), raw. Only for rows whose cells need no CSV quoting.
_ACCEPTED_LINE = "%d,true,,%s,%s,%r,%s,%s,"
_NEEDS_QUOTING_CHARS = ('"', ",", "\r")
_META_KEYS = ("source", "row")

__all__ = ["Chunk", "ChunkResult", "TransformContext", "transform_chunk"]

# One reader per home region for the life of the process (a handful of regions).
_phone_reader = cache(PhoneReader)


def _split_lines(chunk: Chunk) -> list[Line]:
    """The chunk's lines, a CR before the line end removed (CRLF files)."""
    lines = decode_lines(chunk)
    if b"\r" in chunk.data:
        return [
            line[:-1] if isinstance(line, str) and line.endswith("\r") else line for line in lines
        ]
    return lines


def _unusable_line(row: int, line: Line, width: int) -> tuple[str, str] | None:
    """(reason code, CSV line) of a row that cannot be used, or None if it can: the checks of
    `transform_rows`, in its order."""
    if isinstance(line, TooLong):
        why = too_long_reason(line)
        return Reason.LINE_TOO_LONG, rejected_line(row, why, (), "", "", "", None, "", width)
    if isinstance(line, tuple):
        raw, bad_at = line
        why = f"{Reason.BAD_ENCODING}: not UTF-8 at byte {bad_at}"
        text = raw.decode("utf-8", "backslashreplace")
        return Reason.BAD_ENCODING, rejected_line(row, why, (), "", "", "", None, text, width)
    parts = line.split("\t")
    if len(parts) != width:
        if not line.strip():
            return Reason.BLANK_ROW, rejected_line(
                row, f"{Reason.BLANK_ROW}: blank line", (), "", "", "", None, line, width
            )
        why = f"{Reason.BAD_COLUMN_COUNT}: {len(parts)} columns, header has {width}"
        return Reason.BAD_COLUMN_COUNT, rejected_line(row, why, (), "", "", "", None, line, width)
    return None


def _unusable_cells(
    row: int, cells: Sequence[str], gid: str, score_text: str, score: float | None, width: int
) -> tuple[str, str] | None:
    if not gid:
        why = f"{Reason.MISSING_GLOBAL_USER_ID}: globalUserId is empty"
        return Reason.MISSING_GLOBAL_USER_ID, rejected_line(
            row, why, (), "", "", "", cells, "", width
        )
    if score is None:
        detail = "is empty" if not score_text else f"{score_text!r} is not a number"
        why = f"{Reason.BAD_SCORE}: score {detail}"
        return Reason.BAD_SCORE, rejected_line(row, why, (), "", "", "", cells, "", width)
    if not 0.0 <= score <= 1.0:
        why = f"{Reason.SCORE_OUT_OF_RANGE}: score {score_text!r} is outside [0, 1]"
        return Reason.SCORE_OUT_OF_RANGE, rejected_line(row, why, (), "", "", "", cells, "", width)
    return None


def _scores(texts: list[str]) -> list[float | None]:
    """parse_score over a column; one C-level pass when every cell is a plain number."""
    joined = "".join(texts)
    if "_" not in joined and "-" not in joined and joined.isascii():
        try:
            return list(map(float, texts))
        except ValueError:
            pass
    return [parse_score(text) for text in texts]


def _all_in_unit_range(scores: list[float | None]) -> bool:
    if None in scores:
        return False
    floats: list[float] = scores  # type: ignore[assignment]  # no None, checked just above
    total = sum(floats)
    return total == total and min(floats) >= 0.0 and max(floats) <= 1.0  # total != total: nan


def transform_chunk(ctx: TransformContext, chunk: Chunk) -> ChunkResult:
    """Every line of `chunk` -> one CSV row, and a stream record if accepted (module docstring)."""
    layout = ctx.layout
    width = layout.width
    known = layout.known
    lines = _split_lines(chunk)
    numbers = chunk.row_numbers or range(chunk.first_row, chunk.first_row + len(lines))
    out_lines: list[str] = [""] * len(lines)
    rejected: Counter[str] = Counter()

    # 1. Usable rows: split into the header's width, a globalUserId, a score in [0, 1].
    parts = [line.split("\t") if isinstance(line, str) else [] for line in lines]
    offsets = [offset for offset, cells in enumerate(parts) if len(cells) == width]
    unusable = (
        sorted(set(range(len(lines))).difference(offsets)) if len(offsets) < len(lines) else []
    )
    for offset in unusable:
        verdict = _unusable_line(numbers[offset], lines[offset], width)
        if verdict is not None:  # pragma: no branch - the width was checked above
            rejected[verdict[0]] += 1
            out_lines[offset] = verdict[1]
    if not offsets:
        return _result(len(lines), out_lines, rejected, [], [], Counter(), Counter())
    raw_columns = list(zip(*(parts[offset] for offset in offsets), strict=True))
    columns = [list(map(str.strip, column)) for column in raw_columns]
    gids, score_texts = columns[known["globalUserId"]], columns[known["score"]]
    scores = _scores(score_texts)
    if "" in gids or not _all_in_unit_range(scores):
        keep = [
            bool(g) and s is not None and 0.0 <= s <= 1.0 for g, s in zip(gids, scores, strict=True)
        ]
        for index in [index for index, ok in enumerate(keep) if not ok]:
            cells = [column[index] for column in columns]
            verdict = _unusable_cells(
                numbers[offsets[index]],
                cells,
                gids[index],
                score_texts[index],
                scores[index],
                width,
            )
            if verdict is not None:  # pragma: no branch - `keep` said it is unusable
                rejected[verdict[0]] += 1
                out_lines[offsets[index]] = verdict[1]
        offsets = list(compress(offsets, keep))
        if not offsets:
            return _result(len(lines), out_lines, rejected, [], [], Counter(), Counter())
        raw_columns = [tuple(compress(column, keep)) for column in raw_columns]
        columns = [list(compress(column, keep)) for column in columns]
        gids = columns[known["globalUserId"]]
        scores = list(compress(scores, keep))
    floats: list[float] = scores  # type: ignore[assignment]  # the None rows were set aside
    return _transform_usable(ctx, chunk, offsets, raw_columns, columns, floats, out_lines, rejected)


@dataclass(slots=True)
class _Usable:
    """The usable rows of a chunk, as columns, and what the rules decided for each (one per
    chunk, indexed by the row's position among the usable rows)."""

    offsets: list[int]  # each row's offset in the chunk
    rows: list[int]  # each row's line number in the file
    raw_columns: Sequence[tuple[str, ...]]  # cells as read
    columns: list[list[str]]  # cells trimmed
    scores: list[float]
    band_names: list[str] = field(default_factory=list)
    band_scores: list[float] = field(default_factory=list)
    e164s: list[str] = field(default_factory=list)  # "" where the phone is not valid
    confirmed: list[bool] = field(default_factory=list)
    tag_bits: list[int] = field(default_factory=list)
    # Rejected rows: index -> (reason, detail); the rows absent from it are accepted.
    reasons: dict[int, tuple[str, str]] = field(default_factory=dict)


def _transform_usable(
    ctx: TransformContext,
    chunk: Chunk,
    offsets: list[int],
    raw_columns: Sequence[tuple[str, ...]],
    columns: list[list[str]],
    scores: list[float],
    out_lines: list[str],
    rejected: Counter[str],
) -> ChunkResult:
    numbers = chunk.row_numbers or range(chunk.first_row, chunk.first_row + len(out_lines))
    rows = [numbers[offset] for offset in offsets]
    usable = _Usable(offsets, rows, raw_columns, columns, scores)
    # 2. Decisions, column by column.
    _decide_phones(ctx, usable)
    _decide_emails(ctx, usable)
    # 3. Records of the accepted rows, encoded; an oversized one becomes a rejected row.
    payloads, accepted_index = _encode_accepted(ctx, usable)
    # 4. CSV lines, and the counts.
    _write_csv_lines(ctx, usable, out_lines, rejected)
    gids = columns[ctx.layout.known["globalUserId"]]
    accepted_bits = [usable.tag_bits[index] for index in accepted_index]
    tag_counts: Counter[str] = Counter()
    for bits, n in Counter(accepted_bits).items():
        for tag in _TAG_LISTS[bits]:
            tag_counts[tag] += n
    return _result(
        len(out_lines),
        out_lines,
        rejected,
        [gids[index] for index in accepted_index],
        payloads,
        tag_counts,
        Counter([usable.band_names[index] for index in accepted_index]),
        accepted_bits,
        [rows[index] for index in accepted_index],
    )


def _decide_phones(ctx: TransformContext, usable: _Usable) -> None:
    """Bands, phones (valid, international: a tag, and a reason if the campaign disallows them)
    and phoneConfirmed; `usable.tag_bits` holds the phone's validity tags until the emails'."""
    known = ctx.layout.known
    columns = usable.columns
    phones = columns[known["phone"]]
    usable.band_names, usable.band_scores = ctx.bands.bands_for(
        usable.scores, columns[known["globalUserId"]]
    )
    reader = _phone_reader(ctx.home_region)
    e164s, phone_checks = read_phone_column(reader, phones)
    home_cc = ctx.home_country_code
    phone_bits = [0 if e164 else _INVALID_PHONE for e164 in e164s]
    intl: dict[int, str | None] = {}
    if home_cc != 1:  # the fast rows (no PhoneCheck) are NANP numbers, international here
        intl = {i: reader.first_region for i, e in enumerate(e164s) if e and i not in phone_checks}
    for index, check in phone_checks.items():
        if check.valid and check.e164 is not None and check.country_code != home_cc:
            intl[index] = check.region
    for index, region in intl.items():
        phone_bits[index] = _INTL
        if not ctx.allow_intl_phones:
            usable.reasons[index] = (Reason.INTL_PHONE, f"phone is international ({region})")
    i_confirmed = known.get("phoneConfirmed")
    if i_confirmed is None:
        confirmed = [False] * len(phones)
    else:
        confirmed = list(map(CONFIRMED_VALUES.__contains__, map(str.lower, columns[i_confirmed])))
    usable.e164s, usable.confirmed, usable.tag_bits = e164s, confirmed, phone_bits


def _decide_emails(ctx: TransformContext, usable: _Usable) -> None:
    """The tags completed (unconfirmed phone, invalid email), then blocked domains and the
    blacklist (which wins: it is checked last)."""
    emails = usable.columns[ctx.layout.known["email"]]
    reasons = usable.reasons
    email_valid, domains = email_column_facts(emails)
    # All tags in one pass: the phone's (so far in tag_bits), unconfirmed, invalid email.
    phones, confirmed = usable.columns[ctx.layout.known["phone"]], usable.confirmed
    usable.tag_bits = [
        bits + (_UNCONFIRMED if phone and not ok else 0) + (0 if valid else _INVALID_EMAIL)
        for bits, phone, ok, valid in zip(
            usable.tag_bits, phones, confirmed, email_valid, strict=True
        )
    ]
    policy = ctx.domains
    blocked = {d for d in set(domains) if d and policy.is_blocked(d)}
    if blocked:
        for index, domain in enumerate(domains):
            if domain in blocked:
                reasons[index] = (Reason.BLOCKED_DOMAIN, f"email domain {domain} is blocked")
    folded = list(map(str.casefold if "\n".join(emails).isascii() else blacklist_key, emails))
    listed = ctx.blacklist.intersection(folded) - {""}
    if listed:
        for index, email in enumerate(folded):
            if email in listed:
                reasons[index] = (Reason.BLACKLISTED_EMAIL, "email is on the blacklist")


def _encode_accepted(ctx: TransformContext, usable: _Usable) -> tuple[list[bytes], Sequence[int]]:
    """The accepted rows' records, encoded, and their indexes; a record over the stream's
    maximum rejects its row (record_too_large) instead."""
    count = len(usable.rows)
    reasons = usable.reasons
    accepted = [True] * count
    for index in reasons:
        accepted[index] = False
    take = (lambda column: list(compress(column, accepted))) if reasons else list
    payloads = list(map(ctx.encode, _records(ctx, usable, take)))
    accepted_index = list(compress(range(count), accepted)) if reasons else range(count)
    max_bytes = ctx.max_record_bytes
    if payloads and max(map(len, payloads)) > max_bytes:
        for position in reversed(range(len(payloads))):
            size = len(payloads[position])
            if size > max_bytes:
                index = accepted_index[position]
                why = f"record is {size} bytes, the stream takes at most {max_bytes}"
                reasons[index] = (Reason.RECORD_TOO_LARGE, why)
                accepted[index] = False
                del payloads[position]
        accepted_index = list(compress(range(count), accepted))
    return payloads, accepted_index


def _records(
    ctx: TransformContext, usable: _Usable, take: Callable[[Sequence[Any]], list[Any]]
) -> Iterator[dict[str, Any]]:
    """The stream records of the rows `take` keeps: dicts zipped from columns, fields in the
    record's order."""
    layout = ctx.layout
    known = layout.known
    columns = usable.columns
    gids, phones = columns[known["globalUserId"]], columns[known["phone"]]
    record_phones = [e164 or phone for e164, phone in zip(usable.e164s, phones, strict=True)]
    names: list[str] = ["type", "campaignId", "globalUserId", "email", "phone", "phoneConfirmed"]
    names += ["score", "band", "band_score", "tags", "verdict", "dedupeId"]
    accepted_gids, accepted_scores = take(gids), take(usable.scores)
    values: list[Any] = [
        repeat(RECORD_TYPE),
        repeat(ctx.campaign_id),
        accepted_gids,
        take(columns[known["email"]]),
        take(record_phones),
        take(usable.confirmed),
        accepted_scores,
        take(usable.band_names),
        take(usable.band_scores),
        take(list(map(_TAG_LISTS.__getitem__, usable.tag_bits))),
        repeat(True),
        dedupe_ids(DedupeIds(ctx.campaign_id), accepted_gids, accepted_scores),
    ]
    for name in OPTIONAL_RECORD_FIELDS:
        if name in known:
            names.append(name)
            values.append(take(columns[known[name]]))
    for name in OPTIONAL_RECORD_FIELDS:
        if name not in known:
            names.append(name)
            values.append(repeat(None))
    for name, position in layout.extras:
        names.append(name)
        values.append(take(columns[position]))
    names.append("__meta")
    meta = zip(repeat(ctx.source_uri), take(usable.rows), strict=False)
    values.append(map(dict, map(zip, repeat(_META_KEYS), meta)))
    return map(dict, map(zip, repeat(tuple(names)), zip(*values, strict=False)))


def _write_csv_lines(
    ctx: TransformContext, usable: _Usable, out_lines: list[str], rejected: Counter[str]
) -> None:
    """Every usable row's CSV line into `out_lines` (at its offset): accepted rows by one
    format string, those needing quotes and the rejected ones (counted into `rejected`) one by
    one."""
    offsets, rows, columns = usable.offsets, usable.rows, usable.columns
    band_names, band_scores, e164s = usable.band_names, usable.band_scores, usable.e164s
    neutral = [neutralise_column(column) for column in columns]
    inputs = list(map(",".join, zip(*neutral, strict=True)))
    tag_texts = list(map(_TAG_TEXTS.__getitem__, usable.tag_bits))
    # A campaign's band name may hold a comma or quote: quoted once here, not checked per row.
    cells = {name: csv_cell(name) for name in ctx.bands.names}
    band_cells = (
        band_names
        if all(cell is name for name, cell in cells.items())
        else list(map(cells.__getitem__, band_names))
    )
    lines_of_usable = map(
        _ACCEPTED_LINE.__mod__,
        zip(rows, tag_texts, band_cells, band_scores, e164s, inputs, strict=True),
    )
    if len(offsets) == len(out_lines):
        out_lines[:] = lines_of_usable
    else:
        for offset, line in zip(offsets, lines_of_usable, strict=True):
            out_lines[offset] = line
    for index in _rows_needing_quotes(usable.raw_columns).difference(usable.reasons):
        out_lines[offsets[index]] = render_line(
            [
                str(rows[index]),
                "true",
                "",
                tag_texts[index],
                band_names[index],
                repr(band_scores[index]),
                e164s[index],
                *(column[index] for column in neutral),
                "",
            ]
        )
    width = ctx.layout.width
    for index, (code, detail) in usable.reasons.items():
        rejected[code] += 1
        out_lines[offsets[index]] = rejected_line(
            rows[index],
            f"{code}: {detail}",
            _TAG_LISTS[usable.tag_bits[index]],
            band_names[index],
            repr(band_scores[index]),
            e164s[index],
            [column[index] for column in columns],
            "",
            width,
        )


def _rows_needing_quotes(raw_columns: Sequence[tuple[str, ...]]) -> set[int]:
    """Rows with a quote, comma or CR in a cell (as read, before trimming): `transform_rows`
    writes those through the csv module."""
    rows: set[int] = set()
    for column in raw_columns:
        joined = "\n".join(column)
        if any(char in joined for char in _NEEDS_QUOTING_CHARS):
            rows.update(
                index
                for index, cell in enumerate(column)
                if any(char in cell for char in _NEEDS_QUOTING_CHARS)
            )
    return rows


def _result(
    rows: int,
    out_lines: list[str],
    rejected: Counter[str],
    keys: list[str],
    payloads: list[bytes],
    tags: Counter[str],
    bands: Counter[str],
    accepted_bits: Sequence[int] = (),
    record_rows: list[int] | None = None,
) -> ChunkResult:
    out_lines.append("")
    return ChunkResult(
        rows=rows,
        csv=LINE_END.join(out_lines).encode("utf-8"),
        partition_keys=keys,
        payloads=payloads,
        record_rows=record_rows or [],
        rejected=plain_counts(rejected),
        tags=plain_counts(tags),
        tagged=sum(1 for bits in accepted_bits if bits),
        bands=dict(bands),
    )
