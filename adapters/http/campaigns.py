"""CampaignDirectory over the campaign service's HTTP contract.

    GET {base}/campaigns/{campaignId}         -> the campaign document (see campaign_config.py)
    GET {base}/campaigns/{campaignId}/markets -> [{"id", "name"}, ...] (wave prep)
    GET {base}/campaigns/ids?categoryIds=a,b  -> {"a": "campaign-1", ...}
                                                 (unknown ids left out or null; a list of
                                                 {"categoryId", "campaignId"} is accepted too)

404 -> Failure 'not_found'; other 4xx or a document that does not map -> Failure 'invalid';
5xx/timeouts past the retries -> DependencyUnavailable (raised).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from returns.result import Failure, Result, Success

from adapters.campaign_config import _as_bytes, campaign_from_json, is_open, markets_from_json
from adapters.http.client import JsonHttpClient, JsonResponse
from domain.models import Campaign, FailureKind, LookupFailure
from domain.wave_prep.markets import CampaignMarket

# Ids per categoryIds query: keeps the URL well under common 8 KiB limits.
CATEGORY_BATCH = 100


class HttpCampaignDirectory:
    def __init__(self, client: JsonHttpClient, *, band_secret: bytes | str = b"") -> None:
        self._client = client
        self._band_secret = _as_bytes(band_secret)

    def get_campaign(self, campaign_id: str) -> Result[Campaign, LookupFailure]:
        what = f"campaign {campaign_id!r}"
        if not campaign_id.strip():
            return Failure(LookupFailure(what, FailureKind.INVALID, "empty campaign id"))
        match self._client.get(f"/campaigns/{quote(campaign_id, safe='')}"):
            case Failure(error):
                return Failure(error.to_lookup_failure(what))
            case Success(found):
                mapped = campaign_from_json(
                    found.body, requested_id=campaign_id, band_secret=self._band_secret
                )
        match mapped:
            case Failure(why):
                return Failure(found.wrong_shape(why).to_lookup_failure(what))
            case Success(campaign):
                return Success(campaign)
        raise AssertionError("a Result is a Success or a Failure")

    def open_campaigns(self) -> Result[Sequence[Campaign], LookupFailure]:
        """GET /campaigns?status=open (OpenCampaigns): a list of campaign documents, bare or as
        `{campaigns: [...]}` / `{data: [...]}`; a document that does not map is skipped."""
        what = "open campaigns"
        match self._client.get("/campaigns", params={"status": "open"}):
            case Failure(error):
                return Failure(error.to_lookup_failure(what))
            case Success(found):
                body = found.body
        if isinstance(body, Mapping):
            body = body.get("campaigns", body.get("data"))
        if not isinstance(body, list):
            return Failure(found.wrong_shape("not a list of campaigns").to_lookup_failure(what))
        campaigns: list[Campaign] = []
        for doc in body:
            declared = (
                next((doc[k] for k in ("id", "campaignId", "_id") if doc.get(k)), None)
                if isinstance(doc, Mapping)
                else None
            )
            if declared is None or not is_open(doc):
                continue
            mapped = campaign_from_json(
                doc, requested_id=str(declared), band_secret=self._band_secret
            )
            if isinstance(mapped, Success):
                campaigns.append(mapped.unwrap())
        return Success(campaigns)

    def markets(self, campaign_id: str) -> Result[tuple[CampaignMarket, ...], LookupFailure]:
        """GET /campaigns/{id}/markets (CampaignMarkets)."""
        what = f"markets of campaign {campaign_id!r}"
        match self._client.get(f"/campaigns/{quote(campaign_id, safe='')}/markets"):
            case Failure(error):
                return Failure(error.to_lookup_failure(what))
            case Success(found):
                mapped = markets_from_json(found.body)
        match mapped:
            case Failure(why):
                return Failure(found.wrong_shape(why).to_lookup_failure(what))
            case Success(markets):
                return Success(markets)
        raise AssertionError("a Result is a Success or a Failure")

    def campaign_ids_for_categories(
        self, category_ids: Sequence[str]
    ) -> Result[Mapping[str, str], LookupFailure]:
        wanted = list(dict.fromkeys(c for c in category_ids if c))
        found: dict[str, str] = {}
        for start in range(0, len(wanted), CATEGORY_BATCH):
            batch = wanted[start : start + CATEGORY_BATCH]
            what = f"campaign ids for {len(batch)} categories"
            match self._client.get("/campaigns/ids", params={"categoryIds": ",".join(batch)}):
                case Failure(error):
                    return Failure(error.to_lookup_failure(what))
                case Success(answer):
                    pairs = _category_pairs(answer)
            if isinstance(pairs, LookupFailure):
                return Failure(LookupFailure(what, pairs.kind, pairs.detail))
            # Answers for ids we did not ask about are ignored: they cannot be ours.
            found.update({c: pairs[c] for c in batch if c in pairs})
        return Success(found)


def _category_pairs(response: JsonResponse) -> dict[str, str] | LookupFailure:
    body: Any = response.body
    if isinstance(body, list):
        if not all(isinstance(item, Mapping) for item in body):
            return _shape(response, "a list whose items are not all objects")
        body = {item.get("categoryId"): item.get("campaignId") for item in body}
    if not isinstance(body, Mapping):
        return _shape(response, "expected an object mapping categoryId to campaignId")
    pairs: dict[str, str] = {}
    for category, campaign in body.items():
        if campaign is None:
            continue  # the service says: unknown
        if not isinstance(campaign, str | int) or isinstance(campaign, bool) or campaign == "":
            return _shape(response, f"campaign id for {category!r} is {campaign!r}")
        pairs[str(category)] = str(campaign)
    return pairs


def _shape(response: JsonResponse, why: str) -> LookupFailure:
    return response.wrong_shape(why).to_lookup_failure("campaign ids for categories")
