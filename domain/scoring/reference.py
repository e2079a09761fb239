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
from domain.scoring.phones import slow_check
from domain.scoring.reasons import Reason, Tag, plain_counts
from domain.scoring.records import RECORD_TYPE, DedupeIds
from domain.scoring.scrubbed import ScrubbedRows

__all__ = ["transform_rows"]


def transform_rows(ctx: TransformContext, chunk: Chunk) -> ChunkResult:
    """Every line of `chunk` -> one CSV row, row by row (module docstring).

    Written to be read, not to be fast: one loop, each rule in the order of the module
    docstring's table, the libraries asked for every phone and email.
    """
    layout = ctx.layout
    width = layout.width
    known = layout.known
    i_gid, i_email = known["globalUserId"], known["email"]
    i_phone, i_score = known["phone"], known["score"]
    i_confirmed = known.get("phoneConfirmed")
    optional = tuple((name, known[name]) for name in OPTIONAL_RECORD_FIELDS if name in known)
    absent: dict[str, None] = {n: None for n in OPTIONAL_RECORD_FIELDS if n not in known}
    extras = layout.extras
    campaign_id, source_uri = ctx.campaign_id, ctx.source_uri
    bands, blacklist, domains, encode = ctx.bands, ctx.blacklist, ctx.domains, ctx.encode
    home_region, home_cc = ctx.home_region, ctx.home_country_code
    allow_intl, max_bytes = ctx.allow_intl_phones, ctx.max_record_bytes

    dedupe_id = DedupeIds(campaign_id)
    check_phone = partial(slow_check, home_region=home_region)
    check_email = library_email_facts
    scrubbed = ScrubbedRows(width)
    keys: list[str] = []
    payloads: list[bytes] = []
    record_rows: list[int] = []
    rejected: dict[str, int] = {}
    tag_counts: dict[str, int] = {}
    band_counts: dict[str, int] = {}
    tagged = 0
    lines = decode_lines(chunk)

    for offset, line in enumerate(lines):
        row = chunk.first_row + offset
        if isinstance(line, TooLong):
            rejected[Reason.LINE_TOO_LONG] = rejected.get(Reason.LINE_TOO_LONG, 0) + 1
            scrubbed.add(row, False, too_long_reason(line), (), "", "", "", None)
            continue
        if isinstance(line, tuple):
            raw, bad_at = line
            rejected[Reason.BAD_ENCODING] = rejected.get(Reason.BAD_ENCODING, 0) + 1
            why = f"{Reason.BAD_ENCODING}: not UTF-8 at byte {bad_at}"
            text = raw.decode("utf-8", "backslashreplace")
            scrubbed.add(row, False, why, (), "", "", "", None, text)
            continue
        if line.endswith("\r"):
            line = line[:-1]
        parts = line.split("\t")
        if len(parts) != width:
            code = Reason.BLANK_ROW if not line.strip() else Reason.BAD_COLUMN_COUNT
            why = (
                "blank line"
                if code == Reason.BLANK_ROW
                else f"{len(parts)} columns, header has {width}"
            )
            rejected[code] = rejected.get(code, 0) + 1
            scrubbed.add(row, False, f"{code}: {why}", (), "", "", "", None, line)
            continue
        cells = [cell.strip() for cell in parts]
        gid = cells[i_gid]
        if not gid:
            rejected[Reason.MISSING_GLOBAL_USER_ID] = (
                rejected.get(Reason.MISSING_GLOBAL_USER_ID, 0) + 1
            )
            scrubbed.add(
                row,
                False,
                f"{Reason.MISSING_GLOBAL_USER_ID}: globalUserId is empty",
                (),
                "",
                "",
                "",
                cells,
            )
            continue
        score_text = cells[i_score]
        score = parse_score(score_text)
        if score is None:
            rejected[Reason.BAD_SCORE] = rejected.get(Reason.BAD_SCORE, 0) + 1
            why = "is empty" if not score_text else f"{score_text!r} is not a number"
            scrubbed.add(row, False, f"{Reason.BAD_SCORE}: score {why}", (), "", "", "", cells)
            continue
        if not 0.0 <= score <= 1.0:
            rejected[Reason.SCORE_OUT_OF_RANGE] = rejected.get(Reason.SCORE_OUT_OF_RANGE, 0) + 1
            why = f"{score_text!r} is outside [0, 1]"
            scrubbed.add(
                row, False, f"{Reason.SCORE_OUT_OF_RANGE}: score {why}", (), "", "", "", cells
            )
            continue

        band = bands.band_for(score, gid)
        tags: list[str] = []
        reason = ""
        reason_detail = ""

        phone_text = cells[i_phone]
        phone = check_phone(phone_text)
        if phone.valid and phone.e164 is not None:
            phone_out = phone.e164
            if phone.country_code != home_cc:
                tags.append(Tag.INTL_PHONE)
                if not allow_intl:
                    reason = Reason.INTL_PHONE
                    reason_detail = f"phone is international ({phone.region})"
        else:
            phone_out = ""
            tags.append(Tag.INVALID_PHONE)
        confirmed = i_confirmed is not None and is_confirmed(cells[i_confirmed])
        if phone_text and not confirmed:
            tags.append(Tag.UNCONFIRMED_PHONE)

        email = cells[i_email]
        email_ok, domain = check_email(email)
        if not email_ok:
            tags.append(Tag.INVALID_EMAIL)
        if email and blacklist_key(email) in blacklist:
            reason = Reason.BLACKLISTED_EMAIL
            reason_detail = "email is on the blacklist"
        elif domain and domains.is_blocked(domain):
            reason = Reason.BLOCKED_DOMAIN
            reason_detail = f"email domain {domain} is blocked"

        band_name, band_score = band
        if not reason:
            record: dict[str, Any] = {
                "type": RECORD_TYPE,
                "campaignId": campaign_id,
                "globalUserId": gid,
                "email": email,
                "phone": phone_out or phone_text,
                "phoneConfirmed": confirmed,
                "score": score,
                "band": band_name,
                "band_score": band_score,
                "tags": tags,
                "verdict": True,
                "dedupeId": dedupe_id(gid, score),
            }
            for name, position in optional:
                record[name] = cells[position]
            if absent:
                record.update(absent)
            for name, position in extras:
                record[name] = cells[position]
            record["__meta"] = {"source": source_uri, "row": row}
            payload = encode(record)
            if len(payload) > max_bytes:
                reason = Reason.RECORD_TOO_LARGE
                reason_detail = (
                    f"record is {len(payload)} bytes, the stream takes at most {max_bytes}"
                )
            else:
                keys.append(gid)
                payloads.append(payload)
                record_rows.append(row)
                if tags:
                    tagged += 1
                    for tag in tags:
                        tag_counts[tag] = tag_counts.get(tag, 0) + 1
                band_counts[band_name] = band_counts.get(band_name, 0) + 1
                scrubbed.add_clean(
                    row, tags, band_name, repr(band_score), phone_out, cells, parts, line
                )
                continue
        rejected[reason] = rejected.get(reason, 0) + 1
        scrubbed.add(
            row,
            False,
            f"{reason}: {reason_detail}",
            tags,
            band_name,
            repr(band_score),
            phone_out,
            cells,
        )

    return ChunkResult(
        rows=len(lines),
        csv=scrubbed.render(),
        partition_keys=keys,
        payloads=payloads,
        record_rows=record_rows,
        rejected=plain_counts(rejected),
        tags=plain_counts(tag_counts),
        tagged=tagged,
        bands=band_counts,
    )
