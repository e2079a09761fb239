"""HttpCampaignDirectory over real HTTP against the fake campaign service, failures included."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator

import pytest
from returns.result import Failure

from adapters.http.campaigns import CATEGORY_BATCH, HttpCampaignDirectory
from adapters.http.client import JsonHttpClient
from domain.backoff import no_wait
from domain.models import DEFAULT_BAND_TIERS, BandTier
from domain.ports import CampaignDirectory
from domain.streaming import DependencyUnavailable
from tests.support.fake_services import FakeCampaignService
from tests.support.http_server import Fault, LocalHttpServer, Response, running_server

pytestmark = pytest.mark.integration

TOKEN = "campaign-token"
SECRET = b"deployment band secret"


@pytest.fixture
def server() -> Iterator[LocalHttpServer]:
    with running_server() as s:
        yield s


@pytest.fixture
def service(server: LocalHttpServer) -> FakeCampaignService:
    return FakeCampaignService(server, token=TOKEN)


def directory(server: LocalHttpServer, *, band_secret: bytes = SECRET) -> CampaignDirectory:
    client = JsonHttpClient(
        "campaign service",
        server.url,
        token=TOKEN,
        read_timeout=0.5,
        retry=no_wait(retries=2),
    )
    return HttpCampaignDirectory(client, band_secret=band_secret)


def test_maps_every_field(server: LocalHttpServer, service: FakeCampaignService) -> None:
    service.add(
        {
            "id": "c-1",
            "name": " Spring Tour ",
            "options": {
                "allowIntlPhones": True,
                "homeRegion": "gb",
                "bandTiers": [{"name": "top", "low": 0.9, "high": 1.0}],
                "slackChannel": "#tour",
            },
            "bandSalt": "given-salt",
            "categoryIds": ["cat-1", "cat-2"],
        }
    )
    campaign = directory(server).get_campaign("c-1").unwrap()
    assert campaign.campaign_id == "c-1"
    assert campaign.name == "Spring Tour"
    assert campaign.allow_intl_phones is True
    assert campaign.home_region == "GB"
    assert campaign.band_tiers == (BandTier("top", 0.9, 1.0),)
    assert campaign.slack_channel == "#tour"
    assert campaign.band_salt == b"given-salt"
    assert campaign.category_ids == ("cat-1", "cat-2")


def test_defaults_and_derived_salt(server: LocalHttpServer, service: FakeCampaignService) -> None:
    service.add({"id": "c-2", "name": "Minimal"})
    campaign = directory(server).get_campaign("c-2").unwrap()
    assert campaign.allow_intl_phones is False
    assert campaign.home_region == "US"
    assert campaign.band_tiers == DEFAULT_BAND_TIERS
    assert campaign.band_salt == hmac.new(SECRET, b"c-2", hashlib.sha256).digest()


def test_no_salt_and_no_secret_leaves_salt_empty(
    server: LocalHttpServer, service: FakeCampaignService
) -> None:
    service.add({"id": "c-3"})
    assert directory(server, band_secret=b"").get_campaign("c-3").unwrap().band_salt == b""


def test_unknown_campaign_is_not_found(
    server: LocalHttpServer, service: FakeCampaignService
) -> None:
    result = directory(server).get_campaign("nope")
    assert isinstance(result, Failure)
    assert result.failure().kind == "not_found"
    assert "GET /campaigns/nope -> HTTP 404" in result.failure().detail


def test_wrong_token_is_invalid(server: LocalHttpServer, service: FakeCampaignService) -> None:
    service.add({"id": "c-1"})
    service.token = "another"
    assert directory(server).get_campaign("c-1").failure().kind == "invalid"


def test_wrong_shape_is_invalid_naming_the_field(
    server: LocalHttpServer, service: FakeCampaignService
) -> None:
    service.add({"id": "c-4", "options": {"allowIntlPhones": "yes"}})
    failure = directory(server).get_campaign("c-4").failure()
    assert failure.kind == "invalid"
    assert "allowIntlPhones" in failure.detail
    assert "campaign service: GET /campaigns/c-4" in failure.detail


def test_document_for_another_campaign_is_invalid(
    server: LocalHttpServer, service: FakeCampaignService
) -> None:
    service.campaigns["c-5"] = {"id": "c-6"}
    assert "c-6" in directory(server).get_campaign("c-5").failure().detail


def test_garbage_body_is_invalid(server: LocalHttpServer, service: FakeCampaignService) -> None:
    service.add({"id": "c-1"})
    server.inject(Fault.garbage())
    failure = directory(server).get_campaign("c-1").failure()
    assert (failure.kind, "not JSON" in failure.detail) == ("invalid", True)


def test_transient_failures_are_retried(
    server: LocalHttpServer, service: FakeCampaignService
) -> None:
    service.add({"id": "c-1"})
    server.inject(Fault.status(502), times=1)
    server.inject(Fault.slow(1.0), times=1)
    assert directory(server).get_campaign("c-1").unwrap().campaign_id == "c-1"
    assert len(server.requests) == 3


def test_down_service_raises(server: LocalHttpServer, service: FakeCampaignService) -> None:
    server.inject(Fault.status(503), times=3)
    with pytest.raises(DependencyUnavailable, match="campaign service"):
        directory(server).get_campaign("c-1")


def test_ids_with_slashes_are_escaped(
    server: LocalHttpServer, service: FakeCampaignService
) -> None:
    assert directory(server).get_campaign("a/b").failure().kind == "not_found"
    assert server.requests[0].path == "/campaigns/a%2Fb"


def test_category_lookup_leaves_unknown_ids_out(
    server: LocalHttpServer, service: FakeCampaignService
) -> None:
    service.add({"id": "c-1", "categoryIds": ["k1", "k2"]})
    service.add({"id": "c-2", "categoryIds": ["k3"]})
    found = directory(server).campaign_ids_for_categories(["k1", "k3", "k9", "k1"]).unwrap()
    assert found == {"k1": "c-1", "k3": "c-2"}
    (request,) = server.requests
    assert request.query["categoryIds"] == ["k1,k3,k9"]


def test_category_lookup_batches(server: LocalHttpServer, service: FakeCampaignService) -> None:
    categories = [f"k{i}" for i in range(CATEGORY_BATCH * 2 + 5)]
    service.add({"id": "c-1", "categoryIds": categories})
    found = directory(server).campaign_ids_for_categories(categories).unwrap()
    assert found == dict.fromkeys(categories, "c-1")
    sizes = [len(r.query["categoryIds"][0].split(",")) for r in server.requests]
    assert sizes == [CATEGORY_BATCH, CATEGORY_BATCH, 5]


def test_category_lookup_of_nothing_makes_no_call(server: LocalHttpServer) -> None:
    assert directory(server).campaign_ids_for_categories([]).unwrap() == {}
    assert server.requests == []


def test_category_lookup_accepts_the_list_form_and_ignores_unasked_ids(
    server: LocalHttpServer,
) -> None:
    server.route(
        "GET",
        "/campaigns/ids",
        lambda _r: Response.json(
            [
                {"categoryId": "k1", "campaignId": "c-1"},
                {"categoryId": "k2", "campaignId": None},
                {"categoryId": "other", "campaignId": "c-9"},
            ]
        ),
    )
    assert directory(server).campaign_ids_for_categories(["k1", "k2"]).unwrap() == {"k1": "c-1"}


def test_category_lookup_wrong_shape_is_invalid(server: LocalHttpServer) -> None:
    server.route("GET", "/campaigns/ids", lambda _r: Response.json({"k1": {"nested": True}}))
    failure = directory(server).campaign_ids_for_categories(["k1"]).failure()
    assert failure.kind == "invalid"
    assert "unexpected response shape" in failure.detail
