"""The wave prep input: `{campaignId, dateKey, reassign, orderByPreference, singleMarket,
randomSelection, minScore, maxScore}` (the admin's triggerWavePrep arguments).

`dateKey` is a calendar date, `YYYY-MM-DD` (it names objects: the market details, the zip, the
status). Booleans default to false; a string "true"/"false" is accepted (form posts send them).
Scores are numbers in [0, 1] (bounds inclusive), absent = unbounded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from returns.result import Failure, Result, Success

from domain.wave_prep.fans import EligibilityQuery

_DATE_KEY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


@dataclass(frozen=True, slots=True)
class WavePrepRequest:
    campaign_id: str
    date_key: str
    reassign: bool = False
    order_by_preference: bool = False
    single_market: bool = False
    random_selection: bool = False
    min_score: float | None = None
    max_score: float | None = None

    def query(self, market_ids: tuple[str, ...] = ()) -> EligibilityQuery:
        return EligibilityQuery(
            min_score=self.min_score,
            max_score=self.max_score,
            reassign=self.reassign,
            single_market=self.single_market,
            order_by_preference=self.order_by_preference,
            random_selection=self.random_selection,
            market_ids=market_ids,
        )


def _flag(doc: Mapping[str, Any], name: str) -> bool:
    value = doc.get(name)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"{name} must be true or false, got {value!r}")


def _score(doc: Mapping[str, Any], name: str) -> float | None:
    value = doc.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number from 0 to 1, got {value!r}")
    return float(value)


def request_from_json(doc: Any) -> Result[WavePrepRequest, str]:
    if not isinstance(doc, Mapping):
        return Failure(f"wave prep input must be a JSON object, got {type(doc).__name__}")
    campaign_id = doc.get("campaignId")
    if not isinstance(campaign_id, str) or not _SAFE_ID.match(campaign_id) or ".." in campaign_id:
        return Failure(f"campaignId {campaign_id!r} is not a usable campaign id")
    date_key = doc.get("dateKey")
    if not isinstance(date_key, str) or not _DATE_KEY.match(date_key):
        return Failure(f"dateKey {date_key!r} is not a date (YYYY-MM-DD)")
    try:
        date.fromisoformat(date_key)
    except ValueError:
        return Failure(f"dateKey {date_key!r} is not a date (YYYY-MM-DD)")
    try:
        request = WavePrepRequest(
            campaign_id=campaign_id,
            date_key=date_key,
            reassign=_flag(doc, "reassign"),
            order_by_preference=_flag(doc, "orderByPreference"),
            single_market=_flag(doc, "singleMarket"),
            random_selection=_flag(doc, "randomSelection"),
            min_score=_score(doc, "minScore"),
            max_score=_score(doc, "maxScore"),
        )
    except ValueError as exc:
        return Failure(str(exc))
    if (
        request.min_score is not None
        and request.max_score is not None
        and request.min_score > request.max_score
    ):
        return Failure(f"minScore {request.min_score} is above maxScore {request.max_score}")
    return Success(request)
