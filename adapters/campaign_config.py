"""Campaign configuration as JSON: the one mapping JSON -> Campaign, and the S3 directory.

The same document shape comes from the campaign service (adapters/http/campaigns.py) and from
S3 objects `{prefix}{campaignId}.json` (S3CampaignDirectory, the AWS-native alternative):

    {
      "id": "c-123",                      # or "campaignId" / "_id"; must match the id asked for
      "name": "Spring Tour",
      "options": {
        "allowIntlPhones": false,         # boolean; absent = false
        "homeRegion": "US",               # ISO 3166 alpha-2; absent = US (also top-level)
        "bandTiers": [{"name": "high", "low": 0.95, "high": 1.0}, ...],   # or {"high": [0.95, 1.0]}
        "slackChannel": "#campaign-alerts",                                # also top-level
        "scoring": "raw"                  # fanlist campaigns: raw | xnum (also top-level)
      },
      "slack": {"channels": {"stats": "#stats"}, "noAlert": false},     # slack_stats
      "status": "open",                   # open campaigns get stats (absent = open)
      "bandSalt": "…",                    # optional; its UTF-8 bytes are the salt
      "categoryIds": ["cat-1", "cat-2"]
    }

The band salt: the document's `bandSalt` when present, else HMAC-SHA256(band_secret, campaignId)
with the deployment's secret, else b"" (the scored-file worker then fails the file clearly rather
than draw predictable band scores).

Category look-ups in S3 (choice): an index object `{prefix}categories.json` mapping
categoryId -> campaignId is used when it exists (one small read; the team that writes configs
writes the index). Without it, every config under the prefix is read once and the categoryIds they
list are indexed. Either way the mapping is cached for `cache_seconds`, so a stream worker looking
up a batch of 25 records every second does not list the bucket each time. A config that does not
parse is skipped with a warning naming its key during the scan (one broken file must not stop
every look-up); its records are then dropped by the worker with reason "no campaign", counted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeGuard

from returns.result import Failure, Result, Success

from domain.models import (
    DEFAULT_BAND_TIERS,
    BandTier,
    Campaign,
    FailureKind,
    LookupFailure,
    ObjectNotFound,
    ObjectRef,
)
from domain.ports import ObjectStore
from domain.wave_prep.markets import CampaignMarket

log = logging.getLogger(__name__)

CATEGORY_INDEX_NAME = "categories.json"
_REGION = re.compile(r"^[A-Z]{2}$")
# Campaign ids become object keys: no separators or dot-segments that would reach other objects.
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


def derive_band_salt(band_secret: bytes, campaign_id: str) -> bytes:
    """Per-campaign salt from the deployment secret: stable, and unguessable without the secret."""
    return hmac.new(band_secret, campaign_id.encode(), hashlib.sha256).digest()


def _as_bytes(secret: bytes | str) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def _tiers(raw: Any) -> tuple[BandTier, ...]:
    if isinstance(raw, Mapping):
        items = [
            {"name": name, **bounds}
            if isinstance(bounds, Mapping)
            else {"name": name, "low": _pair(bounds, name)[0], "high": _pair(bounds, name)[1]}
            for name, bounds in raw.items()
        ]
    elif isinstance(raw, list):
        items = raw
    else:
        raise ValueError("bandTiers must be a list of {name, low, high} or an object")
    tiers = []
    for item in items:
        if not isinstance(item, Mapping):
            raise ValueError(f"bandTiers entry is not an object: {item!r}")
        name, low, high = item.get("name"), item.get("low"), item.get("high")
        if not isinstance(name, str) or not name:
            raise ValueError(f"bandTiers entry without a name: {item!r}")
        if not (_number(low) and _number(high) and 0.0 <= low < high <= 1.0):
            raise ValueError(f"bandTiers {name!r}: need 0 <= low < high <= 1, got {low}, {high}")
        tiers.append(BandTier(name, float(low), float(high)))
    if not tiers:
        raise ValueError("bandTiers is empty")
    if len({t.name for t in tiers}) != len(tiers):
        raise ValueError("bandTiers names repeat")
    return tuple(tiers)


def _pair(bounds: Any, name: str) -> tuple[Any, Any]:
    if not isinstance(bounds, list) or len(bounds) != 2:
        raise ValueError(f"bandTiers {name!r}: expected [low, high], got {bounds!r}")
    return bounds[0], bounds[1]


def _number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def campaign_from_json(
    doc: Any, *, requested_id: str, band_secret: bytes | str = b""
) -> Result[Campaign, str]:
    """The one JSON -> Campaign mapping (HTTP and S3 alike). Failure names the bad field."""
    if not isinstance(doc, Mapping):
        return Failure(f"campaign document is not a JSON object but {type(doc).__name__}")
    try:
        return Success(_campaign(doc, requested_id, _as_bytes(band_secret)))
    except ValueError as exc:
        return Failure(str(exc))


def _campaign(doc: Mapping[str, Any], requested_id: str, band_secret: bytes) -> Campaign:
    options = doc.get("options") or {}
    if not isinstance(options, Mapping):
        raise ValueError("options is not an object")
    declared = next((doc[k] for k in ("id", "campaignId", "_id") if doc.get(k) is not None), None)
    if declared is not None and str(declared) != requested_id:
        raise ValueError(f"asked for campaign {requested_id!r}, document is for {declared!r}")
    name = doc.get("name", "")
    if not isinstance(name, str):
        raise ValueError("name is not a string")
    allow_intl = options.get("allowIntlPhones")
    if allow_intl is None:  # absent or null: the safe default, international numbers rejected
        allow_intl = False
    if not isinstance(allow_intl, bool):
        raise ValueError(f"options.allowIntlPhones is not a boolean: {allow_intl!r}")
    region = options.get("homeRegion", doc.get("homeRegion")) or "US"
    if not isinstance(region, str) or not _REGION.match(region.strip().upper()):
        raise ValueError(f"homeRegion is not an ISO 3166 alpha-2 code: {region!r}")
    raw_tiers = options.get("bandTiers", doc.get("bandTiers"))
    tiers = DEFAULT_BAND_TIERS if raw_tiers is None else _tiers(raw_tiers)
    channel = options.get("slackChannel", doc.get("slackChannel"))
    if channel is not None and not isinstance(channel, str):
        raise ValueError("slackChannel is not a string")
    categories = doc.get("categoryIds") or []
    if not isinstance(categories, list) or not all(
        isinstance(c, str | int) and not isinstance(c, bool) for c in categories
    ):
        raise ValueError("categoryIds is not a list of ids")
    scoring = options.get("scoring", doc.get("scoring"))
    if scoring is not None and not isinstance(scoring, str):
        raise ValueError("scoring is not a string")
    stats_channel, no_alert = _slack(doc.get("slack"))
    salt_text = doc.get("bandSalt")
    if salt_text is not None and not isinstance(salt_text, str):
        raise ValueError("bandSalt is not a string")
    if salt_text:
        salt = salt_text.encode()
    elif band_secret:
        salt = derive_band_salt(band_secret, requested_id)
    else:
        salt = b""
    return Campaign(
        campaign_id=requested_id,
        name=name.strip(),
        allow_intl_phones=allow_intl,
        home_region=region.strip().upper(),
        band_tiers=tiers,
        band_salt=salt,
        slack_channel=(channel.strip() or None) if channel else None,
        category_ids=tuple(str(c).strip() for c in categories),
        scoring=(scoring.strip().lower() or None) if scoring else None,
        stats_channel=stats_channel,
        no_alert=no_alert,
    )


def _slack(slack: Any) -> tuple[str | None, bool]:
    """`slack: {channels: {stats}, noAlert}` (the campaign schema's): the stats channel and
    whether the campaign wants no alerts."""
    if slack is None:
        return None, False
    if not isinstance(slack, Mapping):
        raise ValueError("slack is not an object")
    channels = slack.get("channels") or {}
    if not isinstance(channels, Mapping):
        raise ValueError("slack.channels is not an object")
    stats = channels.get("stats")
    if stats is not None and not isinstance(stats, str):
        raise ValueError("slack.channels.stats is not a string")
    no_alert = slack.get("noAlert", False)
    if not isinstance(no_alert, bool):
        raise ValueError("slack.noAlert is not a boolean")
    return (stats.strip() or None) if stats else None, no_alert


def markets_from_json(doc: Any) -> Result[tuple[CampaignMarket, ...], str]:
    """A campaign's markets: a list of `{"id" (or "marketId" / "_id"), "name"}`, bare or as
    `{"markets": [...]}` / `{"data": [...]}`. Failure names the bad entry."""
    if isinstance(doc, Mapping):
        doc = doc.get("markets", doc.get("data"))
    if not isinstance(doc, list):
        return Failure("markets is not a list")
    markets = []
    for index, item in enumerate(doc):
        if not isinstance(item, Mapping):
            return Failure(f"markets[{index}] is not an object")
        market_id = next((item[k] for k in ("id", "marketId", "_id") if item.get(k)), None)
        if not isinstance(market_id, str | int) or isinstance(market_id, bool):
            return Failure(f"markets[{index}] has no id")
        name = item.get("name") or ""
        if not isinstance(name, str):
            return Failure(f"markets[{index}].name is not a string")
        markets.append(CampaignMarket(str(market_id).strip(), name.strip()))
    return Success(tuple(markets))


CLOSED_STATUSES = frozenset({"closed", "archived", "inactive", "deleted"})


def is_open(doc: Any) -> bool:
    """A campaign document's `status` (absent = open) is not one of CLOSED_STATUSES."""
    if not isinstance(doc, Mapping):
        return False
    status = doc.get("status")
    return not (isinstance(status, str) and status.strip().lower() in CLOSED_STATUSES)


def is_safe_campaign_id(campaign_id: str) -> bool:
    return bool(_SAFE_ID.match(campaign_id)) and ".." not in campaign_id


class S3CampaignDirectory:
    """CampaignDirectory over JSON objects in a bucket, read through the ObjectStore port."""

    def __init__(
        self,
        store: ObjectStore,
        bucket: str,
        *,
        prefix: str = "campaigns/",
        band_secret: bytes | str = b"",
        cache_seconds: float = 300.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._bucket = bucket
        self._prefix = prefix
        self._band_secret = _as_bytes(band_secret)
        self._cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._categories: dict[str, str] | None = None
        self._categories_at = 0.0

    def _ref(self, name: str) -> ObjectRef:
        return ObjectRef(self._bucket, f"{self._prefix}{name}")

    def get_campaign(self, campaign_id: str) -> Result[Campaign, LookupFailure]:
        what = f"campaign {campaign_id!r}"
        if not is_safe_campaign_id(campaign_id):
            return Failure(LookupFailure(what, FailureKind.INVALID, "not a usable campaign id"))
        ref = self._ref(f"{campaign_id}.json")
        try:
            raw = self._store.read_bytes(ref)
        except ObjectNotFound:
            return Failure(LookupFailure(what, FailureKind.NOT_FOUND, f"no config at {ref.uri}"))
        return self._parse(raw, campaign_id, ref).alt(
            lambda reason: LookupFailure(what, FailureKind.INVALID, f"{ref.uri}: {reason}")
        )

    def _parse(self, raw: bytes, campaign_id: str, ref: ObjectRef) -> Result[Campaign, str]:
        try:
            doc = json.loads(raw)
        except ValueError as exc:  # UnicodeDecodeError is a ValueError too
            return Failure(f"not JSON ({exc})")
        return campaign_from_json(doc, requested_id=campaign_id, band_secret=self._band_secret)

    def open_campaigns(self) -> Result[Sequence[Campaign], LookupFailure]:
        """Every config under the prefix whose `status` is not closed (OpenCampaigns); a config
        that does not parse is skipped with a warning naming its key (one broken file must not
        stop every campaign's stats)."""
        found: list[Campaign] = []
        for info in self._store.list_objects(self._bucket, self._prefix):
            name = info.ref.key[len(self._prefix) :]
            if "/" in name or not name.endswith(".json") or name == CATEGORY_INDEX_NAME:
                continue
            try:
                doc = json.loads(self._store.read_bytes(info.ref))
            except ObjectNotFound:
                continue
            except ValueError:
                log.warning("campaign config is not JSON", extra={"key": info.ref.key})
                continue
            if not is_open(doc):
                continue
            match campaign_from_json(
                doc, requested_id=name[: -len(".json")], band_secret=self._band_secret
            ):
                case Success(campaign):
                    found.append(campaign)
                case Failure(why):
                    log.warning("campaign config skipped", extra={"key": info.ref.key, "why": why})
        return Success(found)

    def markets(self, campaign_id: str) -> Result[tuple[CampaignMarket, ...], LookupFailure]:
        """`markets` in the campaign's JSON config (CampaignMarkets)."""
        what = f"markets of campaign {campaign_id!r}"
        if not is_safe_campaign_id(campaign_id):
            return Failure(LookupFailure(what, FailureKind.INVALID, "not a usable campaign id"))
        ref = self._ref(f"{campaign_id}.json")
        try:
            doc = json.loads(self._store.read_bytes(ref))
        except ObjectNotFound:
            return Failure(LookupFailure(what, FailureKind.NOT_FOUND, f"no config at {ref.uri}"))
        except ValueError as exc:
            return Failure(LookupFailure(what, FailureKind.INVALID, f"{ref.uri}: not JSON ({exc})"))
        if not isinstance(doc, Mapping) or "markets" not in doc:
            return Failure(LookupFailure(what, FailureKind.INVALID, f"{ref.uri} lists no markets"))
        return markets_from_json(doc["markets"]).alt(
            lambda reason: LookupFailure(what, FailureKind.INVALID, f"{ref.uri}: {reason}")
        )

    def campaign_ids_for_categories(
        self, category_ids: Sequence[str]
    ) -> Result[Mapping[str, str], LookupFailure]:
        if not category_ids:
            return Success({})
        mapping = self._category_map()
        if isinstance(mapping, LookupFailure):
            return Failure(mapping)
        return Success({c: mapping[c] for c in dict.fromkeys(category_ids) if c in mapping})

    def _category_map(self) -> dict[str, str] | LookupFailure:
        now = self._monotonic()
        if self._categories is not None and now - self._categories_at < self._cache_seconds:
            return self._categories
        index_ref = self._ref(CATEGORY_INDEX_NAME)
        try:
            raw = self._store.read_bytes(index_ref)
        except ObjectNotFound:
            built = self._scan_configs()
        else:
            parsed = _category_index(raw)
            if isinstance(parsed, str):
                return LookupFailure(
                    "category index", FailureKind.INVALID, f"{index_ref.uri}: {parsed}"
                )
            built = parsed
        self._categories, self._categories_at = built, now
        return built

    def _scan_configs(self) -> dict[str, str]:
        mapping: dict[str, str] = {}
        for info in self._store.list_objects(self._bucket, self._prefix):
            name = info.ref.key[len(self._prefix) :]
            if not name.endswith(".json") or "/" in name or name == CATEGORY_INDEX_NAME:
                continue
            campaign_id = name[: -len(".json")]
            try:
                raw = self._store.read_bytes(info.ref)
            except ObjectNotFound:
                continue  # deleted between list and read
            parsed = self._parse(raw, campaign_id, info.ref)
            match parsed:
                case Failure(reason):
                    log.warning(
                        "skipping campaign config that does not parse",
                        extra={"key": info.ref.uri, "reason": reason},
                    )
                    continue
                case Success(config):
                    pass
            for category in config.category_ids:
                if category in mapping and mapping[category] != campaign_id:
                    log.warning(
                        "category listed by two campaigns; keeping the first",
                        extra={
                            "categoryId": category,
                            "campaignIds": [mapping[category], campaign_id],
                        },
                    )
                    continue
                mapping[category] = campaign_id
        return mapping


def _category_index(raw: bytes) -> dict[str, str] | str:
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        return f"not JSON ({exc})"
    if not isinstance(doc, Mapping) or not all(isinstance(v, str) and v for v in doc.values()):
        return "expected an object mapping categoryId to campaignId"
    return {str(k): v for k, v in doc.items()}
