"""The JSON -> Campaign mapping and S3CampaignDirectory over an in-memory ObjectStore."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from returns.result import Failure

from adapters.campaign_config import (
    S3CampaignDirectory,
    campaign_from_json,
    derive_band_salt,
)
from domain.models import BandTier, ObjectInfo, ObjectNotFound, ObjectRef
from domain.ports import CampaignDirectory

BUCKET = "vf-scoring"
SECRET = b"band secret"


class DictStore:
    """Just the ObjectStore reads this directory uses; counts reads to show the cache works.
    (A local fake: tests/support/memory_objects.py was not written yet when this test was.)"""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.reads = 0
        self.lists = 0

    def put_json(self, key: str, doc: Any) -> None:
        self.objects[(BUCKET, key)] = json.dumps(doc).encode()

    def read_bytes(self, ref: ObjectRef) -> bytes:
        self.reads += 1
        try:
            return self.objects[(ref.bucket, ref.key)]
        except KeyError:
            raise ObjectNotFound(ref) from None

    def list_objects(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        self.lists += 1
        for (b, key), data in sorted(self.objects.items()):
            if b == bucket and key.startswith(prefix):
                yield ObjectInfo(ObjectRef(b, key), len(data))

    # The rest of the port, unused here.
    def iter_lines(self, ref: ObjectRef) -> Iterator[bytes]:
        raise NotImplementedError

    def iter_chunks(
        self, ref: ObjectRef, start: int = 0, end: int | None = None
    ) -> Iterator[bytes]:
        raise NotImplementedError

    def put_bytes(self, ref: ObjectRef, data: bytes, content_type: str = "") -> None:
        self.objects[(ref.bucket, ref.key)] = data

    def open_writer(self, ref: ObjectRef, content_type: str = "") -> AbstractContextManager[Any]:
        raise NotImplementedError

    def head(self, ref: ObjectRef) -> ObjectInfo | None:
        data = self.objects.get((ref.bucket, ref.key))
        return None if data is None else ObjectInfo(ref, len(data))

    def copy(self, source: ObjectRef, target: ObjectRef) -> None:
        raise NotImplementedError

    def delete(self, ref: ObjectRef) -> None:
        self.objects.pop((ref.bucket, ref.key), None)


class Ticker:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store() -> DictStore:
    return DictStore()


def directory(store: DictStore, ticker: Ticker | None = None) -> CampaignDirectory:
    return S3CampaignDirectory(
        store,
        BUCKET,
        prefix="campaigns/",
        band_secret=SECRET,
        cache_seconds=60,
        monotonic=ticker or Ticker(),
    )


def test_reads_and_maps_a_config(store: DictStore) -> None:
    store.put_json(
        "campaigns/c-1.json",
        {
            "campaignId": "c-1",
            "name": "Tour",
            "options": {"allowIntlPhones": True, "bandTiers": {"a": [0.5, 1.0], "b": [0.1, 0.5]}},
            "homeRegion": "ca",
            "slackChannel": "#c1",
        },
    )
    campaign = directory(store).get_campaign("c-1").unwrap()
    assert campaign.allow_intl_phones is True
    assert campaign.home_region == "CA"
    assert campaign.band_tiers == (BandTier("a", 0.5, 1.0), BandTier("b", 0.1, 0.5))
    assert campaign.slack_channel == "#c1"
    assert campaign.band_salt == hmac.new(SECRET, b"c-1", hashlib.sha256).digest()


def test_missing_config_is_not_found_naming_the_object(store: DictStore) -> None:
    failure = directory(store).get_campaign("c-9").failure()
    assert failure.kind == "not_found"
    assert "s3://vf-scoring/campaigns/c-9.json" in failure.detail


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"options": {"homeRegion": "USA"}}', "homeRegion"),
        (b'{"bandTiers": [{"name": "x", "low": 0.9, "high": 0.2}]}', "bandTiers 'x'"),
        (b'{"categoryIds": "k1"}', "categoryIds"),
        (b'{"bandSalt": 42}', "bandSalt"),
    ],
)
def test_bad_configs_are_invalid_naming_object_and_field(
    store: DictStore, raw: bytes, reason: str
) -> None:
    store.objects[(BUCKET, "campaigns/c-1.json")] = raw
    failure = directory(store).get_campaign("c-1").failure()
    assert failure.kind == "invalid"
    assert "s3://vf-scoring/campaigns/c-1.json" in failure.detail
    assert reason in failure.detail


@pytest.mark.parametrize("bad_id", ["", "../secrets", "a/b", ".hidden"])
def test_ids_that_would_reach_other_objects_are_refused(store: DictStore, bad_id: str) -> None:
    assert directory(store).get_campaign(bad_id).failure().kind == "invalid"
    assert store.reads == 0


def test_category_index_object_is_used_when_present(store: DictStore) -> None:
    store.put_json("campaigns/categories.json", {"k1": "c-1", "k2": "c-2"})
    store.put_json("campaigns/c-3.json", {"categoryIds": ["k3"]})  # not in the index: unseen
    found = directory(store).campaign_ids_for_categories(["k1", "k3"]).unwrap()
    assert found == {"k1": "c-1"}
    assert store.lists == 0


def test_bad_index_is_invalid(store: DictStore) -> None:
    store.put_json("campaigns/categories.json", ["k1"])
    failure = directory(store).campaign_ids_for_categories(["k1"]).failure()
    assert (failure.kind, "categories.json" in failure.detail) == ("invalid", True)


def test_without_index_configs_are_scanned_and_cached(
    store: DictStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.put_json("campaigns/c-1.json", {"categoryIds": ["k1", "k2"]})
    store.put_json("campaigns/c-2.json", {"categoryIds": ["k3", "k1"]})
    store.objects[(BUCKET, "campaigns/c-broken.json")] = b"{"
    store.put_json("campaigns/archive/c-old.json", {"categoryIds": ["k9"]})
    ticker = Ticker()
    campaigns = directory(store, ticker)
    with caplog.at_level(logging.WARNING):
        found = campaigns.campaign_ids_for_categories(["k1", "k2", "k3", "k9"]).unwrap()
    # k1 is claimed by two configs: the first in key order keeps it; nested keys are not configs
    assert found == {"k1": "c-1", "k2": "c-1", "k3": "c-2"}
    assert any("c-broken.json" in str(getattr(r, "key", "")) for r in caplog.records)
    reads = store.reads
    ticker.now = 59
    campaigns.campaign_ids_for_categories(["k1"])
    assert (store.reads, store.lists) == (reads, 1)
    ticker.now = 61
    campaigns.campaign_ids_for_categories(["k1"])
    assert store.lists == 2


def test_no_categories_asked_reads_nothing(store: DictStore) -> None:
    assert directory(store).campaign_ids_for_categories([]).unwrap() == {}
    assert store.reads == store.lists == 0


# --- the shared mapping ---------------------------------------------------------------------------


@given(secret=st.binary(min_size=1), campaign_id=st.text(min_size=1))
def test_derived_salt_is_stable_and_keyed(secret: bytes, campaign_id: str) -> None:
    doc = {"id": campaign_id}
    first = campaign_from_json(doc, requested_id=campaign_id, band_secret=secret).unwrap()
    again = campaign_from_json(doc, requested_id=campaign_id, band_secret=secret).unwrap()
    assert first.band_salt == again.band_salt == derive_band_salt(secret, campaign_id)
    other = campaign_from_json(doc, requested_id=campaign_id, band_secret=secret + b"x").unwrap()
    assert other.band_salt != first.band_salt


def test_given_salt_wins_and_no_salt_stays_empty() -> None:
    given_salt = campaign_from_json({"bandSalt": "s"}, requested_id="c", band_secret=SECRET)
    assert given_salt.unwrap().band_salt == b"s"
    assert campaign_from_json({}, requested_id="c").unwrap().band_salt == b""


tier_bounds = st.tuples(st.floats(0, 1, allow_nan=False), st.floats(0, 1, allow_nan=False)).filter(
    lambda b: b[0] < b[1]
)


@given(st.lists(tier_bounds, min_size=1, max_size=5))
def test_valid_tiers_round_trip(bounds: list[tuple[float, float]]) -> None:
    raw = [{"name": f"t{i}", "low": low, "high": high} for i, (low, high) in enumerate(bounds)]
    campaign = campaign_from_json({"options": {"bandTiers": raw}}, requested_id="c").unwrap()
    assert campaign.band_tiers == tuple(
        BandTier(f"t{i}", low, high) for i, (low, high) in enumerate(bounds)
    )


@given(st.one_of(st.integers(), st.text(), st.none(), st.lists(st.integers())))
def test_non_boolean_allow_intl_is_refused(value: object) -> None:
    result = campaign_from_json({"options": {"allowIntlPhones": value}}, requested_id="c")
    if value is None:
        assert result.unwrap().allow_intl_phones is False
    else:
        assert isinstance(result, Failure)
        assert "allowIntlPhones" in result.failure()


def test_a_fanlist_campaigns_scoring_and_its_slack_stats_settings_are_read(
    store: DictStore,
) -> None:
    store.put_json(
        "campaigns/f-1.json",
        {
            "id": "f-1",
            "scoring": " XNUM ",
            "slack": {"channels": {"stats": "#f1"}, "noAlert": True},
        },
    )
    campaign = directory(store).get_campaign("f-1").unwrap()
    assert (campaign.scoring, campaign.stats_channel, campaign.no_alert) == ("xnum", "#f1", True)


@pytest.mark.parametrize(
    ("slack", "field"),
    [("#x", "slack"), ({"channels": "x"}, "slack.channels"), ({"noAlert": "yes"}, "noAlert")],
)
def test_a_bad_slack_setting_is_refused_naming_it(store: DictStore, slack: Any, field: str) -> None:
    store.put_json("campaigns/f-2.json", {"id": "f-2", "slack": slack})
    outcome = directory(store).get_campaign("f-2")
    assert isinstance(outcome, Failure) and field in str(outcome.failure())


def test_open_campaigns_are_those_not_closed_and_a_broken_config_is_skipped(
    store: DictStore,
) -> None:
    store.put_json("campaigns/a.json", {"id": "a", "status": "open"})
    store.put_json("campaigns/b.json", {"id": "b"})
    store.put_json("campaigns/c.json", {"id": "c", "status": "Closed"})
    store.put_json("campaigns/d.json", {"id": "d", "options": "not an object"})
    store.put_json("campaigns/categories.json", {"cat": "a"})
    store.objects[(BUCKET, "campaigns/e.json")] = b"{broken"
    found = S3CampaignDirectory(store, BUCKET).open_campaigns().unwrap()
    assert [c.campaign_id for c in found] == ["a", "b"]
