"""The reference scoring transform: the rules row by row, the plain way, and nothing else.

Production runs `transform_chunk` (domain/scoring/transform.py, a column at a time); this one
says what it must do, and hypothesis properties hold the two to the same ChunkResult, byte for
byte, on arbitrary input (tests/property/test_scoring_accounting.py). It asks phonenumbers and
email-validator for every row, so it is also the benchmark's baseline (benchmarks/
bench_transform.py). Each input line becomes exactly one scrubbed CSV row and is either accepted
(one stream record, verdict true) or rejected with one reason, and may carry tags: the codes,
their meaning and their precedence are in domain/scoring/reasons.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from domain.scoring.chunk_types import (
    OPTIONAL_RECORD_FIELDS,
    Chunk,
    ChunkResult,
    TooLong,
    TransformContext,
    decode_lines,
    parse_score,
    too_long_reason,
)
from domain.scoring.columns import is_confirmed
from domain.scoring.emails import blacklist_key, library_email_facts
from domain.scoring.phones import PhoneCheck, slow_check
from domain.scoring.reasons import Reason, Tag, plain_counts
from domain.scoring.records import RECORD_TYPE, DedupeIds
from domain.scoring.scrubbed import ScrubbedRows

__all__ = ["transform_rows"]


def transform_rows(ctx: TransformContext, chunk: Chunk) -> ChunkResult:
    """Every line of `chunk` -> one CSV row, row by row (module docstring).

    Written to be read, not to be fast: one row at a time, each rule in the order of
    domain/scoring/reasons.py, the libraries asked for every phone and email.
    """
    out = _Output(ScrubbedRows(ctx.layout.width))
    rules = _Rules(ctx)
    lines = decode_lines(chunk)
    for offset, line in enumerate(lines):
        row = chunk.first_row + offset
        usable = _usable(ctx, row, line, out)
        if usable is not None:
            rules.apply(row, *usable, out)
    return out.result(len(lines))


@dataclass
class _Output:
    """What the rows so far came to: their CSV lines, the accepted records and the counts."""

    scrubbed: ScrubbedRows
    keys: list[str] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)
    record_rows: list[int] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    tags: Counter[str] = field(default_factory=Counter)
    bands: Counter[str] = field(default_factory=Counter)
    tagged: int = 0

    def reject_unusable(
        self, code: Reason, row: int, why: str, cells: list[str] | None, raw: str = ""
    ) -> None:
        self.rejected[code] += 1
        self.scrubbed.add(row, False, why, (), "", "", "", cells, raw)

    def result(self, rows: int) -> ChunkResult:
        return ChunkResult(
            rows=rows,
            csv=self.scrubbed.render(),
            partition_keys=self.keys,
            payloads=self.payloads,
            record_rows=self.record_rows,
            rejected=plain_counts(self.rejected),
            tags=plain_counts(self.tags),
            tagged=self.tagged,
            bands=dict(self.bands),
        )


def _usable(
    ctx: TransformContext, row: int, line: str | tuple[bytes, int] | TooLong, out: _Output
) -> tuple[list[str], list[str], str, float] | None:
    """(trimmed cells, cells as read, line, score) of a usable line; None for an unusable one,
    rejected into `out` with the first reason that applies."""
    if isinstance(line, TooLong):
        out.reject_unusable(Reason.LINE_TOO_LONG, row, too_long_reason(line), None)
        return None
    if isinstance(line, tuple):
        raw, bad_at = line
        why = f"{Reason.BAD_ENCODING}: not UTF-8 at byte {bad_at}"
        out.reject_unusable(
            Reason.BAD_ENCODING, row, why, None, raw.decode("utf-8", "backslashreplace")
        )
        return None
    if line.endswith("\r"):
        line = line[:-1]
    width = ctx.layout.width
    parts = line.split("\t")
    if len(parts) != width:
        if not line.strip():
            out.reject_unusable(
                Reason.BLANK_ROW, row, f"{Reason.BLANK_ROW}: blank line", None, line
            )
        else:
            why = f"{Reason.BAD_COLUMN_COUNT}: {len(parts)} columns, header has {width}"
            out.reject_unusable(Reason.BAD_COLUMN_COUNT, row, why, None, line)
        return None
    cells = [cell.strip() for cell in parts]
    known = ctx.layout.known
    if not cells[known["globalUserId"]]:
        why = f"{Reason.MISSING_GLOBAL_USER_ID}: globalUserId is empty"
        out.reject_unusable(Reason.MISSING_GLOBAL_USER_ID, row, why, cells)
        return None
    score_text = cells[known["score"]]
    score = parse_score(score_text)
    if score is None:
        detail = "is empty" if not score_text else f"{score_text!r} is not a number"
        out.reject_unusable(Reason.BAD_SCORE, row, f"{Reason.BAD_SCORE}: score {detail}", cells)
        return None
    if not 0.0 <= score <= 1.0:
        why = f"{Reason.SCORE_OUT_OF_RANGE}: score {score_text!r} is outside [0, 1]"
        out.reject_unusable(Reason.SCORE_OUT_OF_RANGE, row, why, cells)
        return None
    return cells, parts, line, score


class _Rules:
    """The rules over a usable row, for one chunk of one file."""

    def __init__(self, ctx: TransformContext) -> None:
        self.ctx = ctx
        self.check_phone: Callable[[str], PhoneCheck] = partial(
            slow_check, home_region=ctx.home_region
        )
        self.dedupe_id = DedupeIds(ctx.campaign_id)

    def apply(
        self, row: int, cells: list[str], parts: list[str], line: str, score: float, out: _Output
    ) -> None:
        """Tags, then a reason if a rule rejects the row, else its record (which may be too
        large); the row goes into `out` either way."""
        ctx, known = self.ctx, self.ctx.layout.known
        gid = cells[known["globalUserId"]]
        band_name, band_score = ctx.bands.band_for(score, gid)
        tags: list[str] = []
        reason, detail, phone_out, confirmed = self._phone_rules(cells, tags)
        email = cells[known["email"]]
        email_ok, domain = library_email_facts(email)
        if not email_ok:
            tags.append(Tag.INVALID_EMAIL)
        if email and blacklist_key(email) in ctx.blacklist:
            reason, detail = Reason.BLACKLISTED_EMAIL, "email is on the blacklist"
        elif domain and ctx.domains.is_blocked(domain):
            reason, detail = Reason.BLOCKED_DOMAIN, f"email domain {domain} is blocked"
        if not reason:
            record = self._record(row, cells, phone_out, confirmed, score, band_name, band_score)
            record["tags"] = tags
            payload = ctx.encode(record)
            if len(payload) <= ctx.max_record_bytes:
                out.keys.append(gid)
                out.payloads.append(payload)
                out.record_rows.append(row)
                out.tagged += 1 if tags else 0
                out.tags.update(tags)
                out.bands[band_name] += 1
                out.scrubbed.add_clean(
                    row, tags, band_name, repr(band_score), phone_out, cells, parts, line
                )
                return
            reason = Reason.RECORD_TOO_LARGE
            detail = (
                f"record is {len(payload)} bytes, the stream takes at most {ctx.max_record_bytes}"
            )
        out.rejected[reason] += 1
        why = f"{reason}: {detail}"
        out.scrubbed.add(row, False, why, tags, band_name, repr(band_score), phone_out, cells)

    def _phone_rules(self, cells: list[str], tags: list[str]) -> tuple[str, str, str, bool]:
        """(reason, detail, E.164 phone or "", confirmed): the phone's tags into `tags`, and
        intl_phone as the reason if the campaign takes no international phones."""
        ctx, known = self.ctx, self.ctx.layout.known
        reason = detail = phone_out = ""
        phone_text = cells[known["phone"]]
        phone = self.check_phone(phone_text)
        if phone.valid and phone.e164 is not None:
            phone_out = phone.e164
            if phone.country_code != ctx.home_country_code:
                tags.append(Tag.INTL_PHONE)
                if not ctx.allow_intl_phones:
                    reason, detail = Reason.INTL_PHONE, f"phone is international ({phone.region})"
        else:
            tags.append(Tag.INVALID_PHONE)
        i_confirmed = known.get("phoneConfirmed")
        confirmed = i_confirmed is not None and is_confirmed(cells[i_confirmed])
        if phone_text and not confirmed:
            tags.append(Tag.UNCONFIRMED_PHONE)
        return reason, detail, phone_out, confirmed

    def _record(
        self,
        row: int,
        cells: list[str],
        phone_out: str,
        confirmed: bool,
        score: float,
        band_name: str,
        band_score: float,
    ) -> dict[str, Any]:
        """The stream record of an accepted row, its fields in the record's order (`tags` is
        set by the caller, in its place)."""
        ctx, known = self.ctx, self.ctx.layout.known
        gid = cells[known["globalUserId"]]
        record: dict[str, Any] = {
            "type": RECORD_TYPE,
            "campaignId": ctx.campaign_id,
            "globalUserId": gid,
            "email": cells[known["email"]],
            "phone": phone_out or cells[known["phone"]],
            "phoneConfirmed": confirmed,
            "score": score,
            "band": band_name,
            "band_score": band_score,
            "tags": None,
            "verdict": True,
            "dedupeId": self.dedupe_id(gid, score),
        }
        for name in OPTIONAL_RECORD_FIELDS:
            if name in known:
                record[name] = cells[known[name]]
        for name in OPTIONAL_RECORD_FIELDS:
            if name not in known:
                record[name] = None
        for name, position in ctx.layout.extras:
            record[name] = cells[position]
        record["__meta"] = {"source": ctx.source_uri, "row": row}
        return record
