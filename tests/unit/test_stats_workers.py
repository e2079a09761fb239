"""save_stats and slack_stats on in-memory fakes."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from typing import Any

from adapters.clock import FixedClock
from domain.models import Campaign, ObjectRef
from domain.workers.save_stats import save_stats
from domain.workers.slack_stats import slack_stats
from tests.support.memory_objects import InMemoryObjectStore
from tests.support.memory_scored_files import RecordingNotifier
from tests.support.memory_stats import MemoryLakeRecords, MemoryOpenCampaigns

LAKE, SCORING = "campaign-data", "vf-scoring"
AT = datetime(2026, 3, 1, 12, tzinfo=UTC)


def reg(cid: str) -> dict[str, Any]:
    return {"campaignId": cid, "globalUserId": "g"}


def world() -> tuple[InMemoryObjectStore, MemoryLakeRecords]:
    files: dict[str, list[dict[str, Any]]] = {
        # a day with a merged file: its sources are not read again
        "avro/registration/2026/02/01/a.avro": [reg("c1")] * 5,
        "avro/registration/merged/2026/02/01.avro": [reg("c1")] * 4,
        # a day not merged yet
        "avro/registration/2026/02/02/b.avro": [reg("c1"), reg("c2"), reg("closed")],
        "avro/scoring/2026/02/02/s.avro": [
            {"campaignId": "c1", "verdict": True, "tags": ["unconfirmed"]},
            {"campaignId": "c1", "verdict": False, "tags": ["blacklisted"]},
            {"campaignId": "c1", "verdict": False, "tags": []},
            {"campaignId": "c1", "verdict": None, "tags": []},
        ],
        "avro/codeAssignment/2026/02/03/x.avro": [
            {"campaignId": "c1", "marketId": "m1", "code": "A"},
            {"campaignId": "c1", "marketId": "m2", "code": "B"},
        ],
    }
    store = InMemoryObjectStore()
    for key in files:
        store.put_bytes(ObjectRef(LAKE, key), b"")
    status = {
        "campaignId": "c1", "dateKey": "2026-02-10", "status": "FINISHED",
        "count": {"name": "all", "eligible": 9, "selected": 3, "waitlisted": 1, "markets": [
            {"name": "Boston", "eligible": 5, "selected": 2, "waitlisted": 1},
            {"name": "Chicago", "eligible": 4, "selected": 1, "waitlisted": 0},
        ]},
    }  # fmt: skip
    store.put_bytes(
        ObjectRef(SCORING, "wavePrep/c1/status/2026-02-10.json"), json.dumps(status).encode()
    )
    store.put_bytes(ObjectRef(SCORING, "wavePrep/c1/status/2026-02-11.json"), b"{not json")
    store.put_bytes(ObjectRef(SCORING, "smsWaves/scheduled/c1_w1_csv.json"), b"{}")
    store.put_bytes(ObjectRef(SCORING, "smsWaves/triggered/c1_w1_csv.json"), b"{}")
    store.put_bytes(ObjectRef(SCORING, "smsWaves/scheduled/c2_w9_csv.json"), b"{}")
    return store, MemoryLakeRecords(files)


def run_save(store: InMemoryObjectStore, lake: MemoryLakeRecords, campaigns: list[Campaign]) -> Any:
    ticks = itertools.count()
    return save_stats(
        {},
        campaigns=MemoryOpenCampaigns(campaigns),
        lake=lake,
        store=store,
        lake_bucket=LAKE,
        scoring_bucket=SCORING,
        prefix="stats/",
        clock=FixedClock(AT),
        monotonic=lambda: float(next(ticks)),
    )


def stats_of(store: InMemoryObjectStore, cid: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(store.read_bytes(ObjectRef(SCORING, f"stats/{cid}.json")))
    return doc


def test_open_campaigns_get_counts_from_the_lake_each_period_once_and_from_the_status_objects() -> (
    None
):
    store, lake = world()
    done = run_save(store, lake, [Campaign("c1", name="Tour"), Campaign("c2")]).unwrap()
    c1 = stats_of(store, "c1")
    assert (c1["registrations"], c1["scored"], c1["accepted"], c1["rejected"]) == (5, 4, 2, 2)
    assert c1["rejectedByReason"] == {"blacklisted": 1, "verdict_false": 1}
    assert c1["selectedByMarket"] == {"Boston": 2, "Chicago": 1} and c1["selected"] == 3
    assert c1["codes"]["published"] == 2
    assert c1["codes"]["publishedByMarket"] == {"m1": 1, "m2": 1}
    assert c1["wavePrep"] == {"2026-02-10": "FINISHED"}
    assert c1["smsWaves"] == {"c1_w1": "triggered"}
    assert c1["tookSeconds"] > 0 and c1["generatedAt"] == "2026-03-01T12:00:00.000Z"
    assert stats_of(store, "c2")["registrations"] == 1
    assert "avro/registration/2026/02/01/a.avro" not in lake.read
    assert done.unreadable == {"wavePrep/c1/status/2026-02-11.json": "not JSON"}
    assert done.campaigns == 2 and done.files == 4 and done.took_seconds > 0


def sent_config(sms: dict[str, int], email: dict[str, int]) -> bytes:
    count = {"total": 0, "ok": 0, "failed": 0, "detail": {"sms": sms, "email": email}}
    return json.dumps({"waveName": "w", "sendResult": {"waveName": "w", "count": count}}).encode()


def test_codes_issued_per_wave_and_texts_and_emails_per_outcome_come_from_the_wave_configs() -> (
    None
):
    store, lake = world()
    put = lambda key, body: store.put_bytes(ObjectRef(SCORING, key), body)  # noqa: E731
    codes = {"in": 5, "out": 4, "errors": 1, "issued": 3, "reused": 1, "kept": 0}
    put("smsWaves/configs/c1_w1.normalized.json", json.dumps({"codeCounts": codes}).encode())
    put("smsWaves/configs/c1_w2.normalized.json", b'{"genCodes": true}')  # still generating
    put("smsWaves/configs/c2_w9.normalized.json", json.dumps({"codeCounts": codes}).encode())
    put("smsWaves/configs/c1_w3.normalized.json", b"[1]")
    zero = {"sent": 0, "failed": 0, "skipped": 0, "opted_out": 0, "unknown": 0}
    put(
        "smsWaves/completed/c1_w1_csv.json",
        sent_config({**zero, "sent": 3, "opted_out": 1}, {**zero, "sent": 2, "skipped": 2}),
    )
    # a crash between the put and the delete left the wave in failed and completed: once
    put("smsWaves/failed/c1_w1_csv.json", sent_config({**zero, "sent": 99}, zero))
    put("smsWaves/completed/c1_w4_csv.json", sent_config({**zero, "failed": 1, "unknown": 1}, zero))
    put("smsWaves/failed/c1_w5_csv.json", b'{"sendResult": {"reason": "no wave file"}}')
    put("smsWaves/completed/c2_w9_csv.json", sent_config({**zero, "sent": 50}, zero))
    done = run_save(store, lake, [Campaign("c1"), Campaign("c2")]).unwrap()
    c1 = stats_of(store, "c1")
    assert c1["codes"]["issued"] == 4 and c1["codes"]["reused"] == 1
    assert (c1["codes"]["kept"], c1["codes"]["waveRows"], c1["codes"]["waveErrors"]) == (0, 4, 1)
    assert c1["codes"]["byWave"] == {
        "c1_w1": {"out": 4, "errors": 1, "issued": 3, "reused": 1, "kept": 0}
    }
    assert c1["texts"] == {"sent": 3, "failed": 1, "skipped": 0, "opted_out": 1, "unknown": 1}
    assert c1["emails"] == {"sent": 2, "failed": 0, "skipped": 2, "opted_out": 0, "unknown": 0}
    assert stats_of(store, "c2")["texts"]["sent"] == 50
    assert done.unreadable["smsWaves/configs/c1_w3.normalized.json"] == "not a JSON object"


def test_a_campaign_with_no_waves_has_zero_codes_issued_and_zero_texts() -> None:
    store, lake = world()
    run_save(store, lake, [Campaign("c2")]).unwrap()
    c2 = stats_of(store, "c2")
    assert c2["codes"]["issued"] == 0 and c2["codes"]["byWave"] == {}
    assert c2["texts"]["sent"] == 0 and c2["emails"] == dict.fromkeys(c2["emails"], 0)


def test_a_closed_campaign_gets_no_stats_object() -> None:
    store, lake = world()
    run_save(store, lake, [Campaign("c1")]).unwrap()
    assert store.head(ObjectRef(SCORING, "stats/closed.json")) is None


def test_the_campaign_directory_down_is_a_retryable_failure() -> None:
    store, lake = world()
    failure = save_stats(
        {}, campaigns=MemoryOpenCampaigns(unavailable=True), lake=lake, store=store,
        lake_bucket=LAKE, scoring_bucket=SCORING, prefix="stats/", clock=FixedClock(AT),
        monotonic=lambda: 0.0,
    ).failure()  # fmt: skip
    assert failure.retryable and failure.kind == "campaigns_unavailable"


def test_slack_stats_posts_to_the_stats_channel_and_skips_no_alert_and_missing_objects() -> None:
    store, lake = world()
    campaigns = [
        Campaign("c1", name="Tour", stats_channel="#c1-stats", slack_channel="#alerts"),
        Campaign("c2", no_alert=True),
        Campaign("c3"),
    ]
    run_save(store, lake, campaigns[:2]).unwrap()
    notifier = RecordingNotifier()
    done = slack_stats(
        {}, campaigns=MemoryOpenCampaigns(campaigns), store=store, notifier=notifier,
        bucket=SCORING, prefix="stats/",
    ).unwrap()  # fmt: skip
    assert (done.posted, done.skipped_no_alert, done.missing) == (("c1",), ("c2",), ("c3",))
    [note] = notifier.notifications
    assert note.channel == "#c1-stats" and "Tour" in note.title
    assert ("Selected: Boston", "2") in note.fields and ("Registrations", "5") in note.fields
    assert ("Codes issued", "0") in note.fields and ("Texts sent", "0") in note.fields


def test_a_notifier_failure_is_reported_per_campaign_not_raised() -> None:
    store, lake = world()
    run_save(store, lake, [Campaign("c1")]).unwrap()
    done = slack_stats(
        {}, campaigns=MemoryOpenCampaigns([Campaign("c1")]), store=store,
        notifier=RecordingNotifier(fail_with="slack 500"), bucket=SCORING, prefix="stats/",
    ).unwrap()  # fmt: skip
    assert done.failed == {"c1": "slack 500"} and done.posted == ()
