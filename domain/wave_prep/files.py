"""The delivery files of a wave, as CSV lines (RFC 4180, CRLF, UTF-8, cells made inert for
spreadsheets with the scrubbed CSV's `neutralise`).

Per market, named by market id (ids are checked to be file-name safe; names may hold anything):
- `sms/{marketId}.csv`: selected fans with a valid phone, as E.164 (the SMS sender's columns);
- `email/{marketId}.csv`: one row per email address in the whole wave (case-insensitive): when
  fans share an address, the one with a TM code wins over external codes (the original's rule),
  then the earlier market in the upload, then the better-placed fan;
- `masterCodes/{marketId}.csv`: every selected fan with their code: the full assignment.
Each selected fan is in masterCodes exactly once, and in sms / email at most once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from domain.codes import CodeType
from domain.scoring.phones import check_phone
from domain.scoring.scrubbed import LINE_END, neutralise, render_line
from domain.wave_prep.markets import WaveMarket
from domain.wave_prep.selection import Placement

SMS_COLUMNS = (
    "globalUserId",
    "userId",
    "firstName",
    "lastName",
    "mobileNumber",
    "code",
    "locale",
    "marketId",
)
EMAIL_COLUMNS = (
    "email",
    "globalUserId",
    "userId",
    "firstName",
    "lastName",
    "code",
    "locale",
    "marketId",
)
MASTER_COLUMNS = (
    "globalUserId",
    "userId",
    "marketId",
    "marketName",
    "rank",
    "score",
    "code",
    "codeType",
    "email",
    "mobileNumber",
    "selectionTime",
)


@dataclass(frozen=True, slots=True)
class MarketFiles:
    """One market's placements, best first, with the code each one gets (same order)."""

    market: WaveMarket
    placements: Sequence[Placement]
    codes: Sequence[str]
    phones: Sequence[str | None]  # each placement's phone as E.164, None when not valid

    @classmethod
    def build(
        cls,
        market: WaveMarket,
        placements: Sequence[Placement],
        codes: Sequence[str],
        home_region: str,
    ) -> MarketFiles:
        """Phones normalised once per fan, for both the sms and the masterCodes file."""
        phones = [e164(p.fan.phone, home_region) for p in placements]
        return cls(market, placements, codes, phones)


def csv_line(cells: Sequence[str]) -> bytes:
    return (render_line([neutralise(c) for c in cells]) + LINE_END).encode("utf-8")


def e164(phone: str, home_region: str) -> str | None:
    """The phone as E.164 when it is a valid number, else None (no SMS for this fan)."""
    if not phone.strip():
        return None
    check = check_phone(phone.strip(), home_region)
    return check.e164 if check.valid else None


def email_owners(markets: Sequence[MarketFiles]) -> set[tuple[str, str]]:
    """(market id, globalUserId) of the fans whose row carries each address (module docstring).
    Memory: one entry per selected fan with an email."""
    best: dict[str, tuple[int, int, int, str, str]] = {}
    for market_index, files in enumerate(markets):
        tm_first = 0 if files.market.code_type is CodeType.TM else 1
        for position, placement in enumerate(files.placements):
            address = placement.fan.email.strip().lower()
            if not address:
                continue
            market_id, fan_id = files.market.market_id, placement.fan.global_user_id
            rank = (tm_first, market_index, position, market_id, fan_id)
            if address not in best or rank < best[address]:
                best[address] = rank
    return {(r[3], r[4]) for r in best.values()}


def sms_lines(files: MarketFiles) -> Iterator[bytes]:
    yield csv_line(SMS_COLUMNS)
    for placement, code, phone in zip(files.placements, files.codes, files.phones, strict=True):
        if phone is None:
            continue
        fan = placement.fan
        yield csv_line(
            (
                fan.global_user_id,
                fan.user_id,
                fan.first_name,
                fan.last_name,
                phone,
                code,
                fan.locale,
                files.market.market_id,
            )
        )


def email_lines(files: MarketFiles, owners: set[tuple[str, str]]) -> Iterator[bytes]:
    yield csv_line(EMAIL_COLUMNS)
    market_id = files.market.market_id
    for placement, code in zip(files.placements, files.codes, strict=True):
        fan = placement.fan
        if not fan.email.strip() or (market_id, fan.global_user_id) not in owners:
            continue
        yield csv_line(
            (
                fan.email.strip(),
                fan.global_user_id,
                fan.user_id,
                fan.first_name,
                fan.last_name,
                code,
                fan.locale,
                market_id,
            )
        )


def master_lines(files: MarketFiles) -> Iterator[bytes]:
    yield csv_line(MASTER_COLUMNS)
    market = files.market
    selection_time = market.selection_time.isoformat() if market.selection_time else ""
    for placement, code, phone in zip(files.placements, files.codes, files.phones, strict=True):
        fan = placement.fan
        yield csv_line(
            (
                fan.global_user_id,
                fan.user_id,
                market.market_id,
                market.name,
                str(placement.rank),
                repr(fan.score),
                code,
                str(market.code_type),
                fan.email.strip(),
                phone or fan.phone.strip(),
                selection_time,
            )
        )
