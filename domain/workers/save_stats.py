"""saveStats (every 5 minutes): per open campaign, counts from what the workers already keep,
written as `{STATS_PREFIX}{campaignId}.json` in the scoring bucket (docs/stats.md).

Read, never MongoDB:
- the lake (campaign data bucket, `avro/{registration,scoring,codeAssignment}/`): each period
  once (domain/stats.files_to_read), every file streamed record by record; the open campaigns
  are counted in one pass over the lake, not one per campaign;
- wave prep's status objects `wavePrep/{campaignId}/status/{dateKey}.json`: each wave's state
  and its selected fans per market;
- the SMS wave configs `smsWaves/{state}/{campaignId}_{suffix}_csv.json`: each wave's state,
  and the completed/failed ones' `sendResult` (texts and emails per outcome);
- generate_sms_wave_codes' `smsWaves/configs/{campaignId}_{suffix}.normalized.json`: the
  codes issued per wave (`codeCounts`).
Memory: one record at a time, the counters, and one listing of keys (keys, not records).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from returns.result import Failure, Result, Success

from domain.models import FailureKind, ObjectNotFound, ObjectRef
from domain.ports import BlobListing, BlobReader, BlobWriter, Clock, LakeRecords, OpenCampaigns
from domain.stats import (
    STATS_TYPES,
    CampaignTally,
    SendTally,
    campaign_normalized_configs,
    campaign_sent_configs,
    files_to_read,
    sms_wave_states,
    stats_document,
    wave_prep_summary,
)
from domain.waves import iso_millis


class StatsStore(BlobListing, BlobReader, BlobWriter, Protocol):
    """Both buckets: the lake listed, status objects read, stats objects written."""


@dataclass(frozen=True)
class StatsRun:
    campaigns: int = 0
    files: int = 0
    records: int = 0
    took_seconds: float = 0.0
    written: tuple[str, ...] = ()
    unreadable: dict[str, str] = field(default_factory=dict)  # key -> why (a status object)

    def to_json(self) -> dict[str, Any]:
        return {
            "campaigns": self.campaigns,
            "files": self.files,
            "records": self.records,
            "tookSeconds": round(self.took_seconds, 3),
            "written": list(self.written),
            "unreadable": dict(self.unreadable),
        }


@dataclass(frozen=True)
class StatsFailure:
    kind: str  # campaigns_unavailable (retryable)
    message: str
    retryable: bool = False

    def __str__(self) -> str:
        return self.message


def stats_key(prefix: str, campaign_id: str) -> str:
    return f"{prefix}{campaign_id}.json"


def save_stats(
    _request: Any,
    *,
    campaigns: OpenCampaigns,
    lake: LakeRecords,
    store: StatsStore,
    lake_bucket: str,
    scoring_bucket: str,
    prefix: str,
    clock: Clock,
    monotonic: Callable[[], float],
    on_progress: Callable[[int], None] | None = None,
) -> Result[StatsRun, StatsFailure]:
    started = monotonic()
    match campaigns.open_campaigns():
        case Failure(failure):
            retryable = failure.kind == FailureKind.UNAVAILABLE
            return Failure(StatsFailure("campaigns_unavailable", str(failure), retryable))
        case Success(found):
            open_now = {c.campaign_id: c for c in found}
    tallies = {cid: CampaignTally() for cid in open_now}
    files = records = 0
    for record_type in STATS_TYPES:
        listing = store.list_objects(lake_bucket, f"avro/{record_type}/")
        for key in files_to_read(record_type, (o.ref.key for o in listing)):
            files += 1
            for record in lake.records(ObjectRef(lake_bucket, key)):
                records += 1
                tally = tallies.get(str(record.get("campaignId") or ""))
                if tally is not None:
                    tally.add(record_type, record)
                if on_progress is not None and records % 100_000 == 0:
                    on_progress(records)
    wave_keys = [o.ref.key for o in store.list_objects(scoring_bucket, "smsWaves/")]
    written: list[str] = []
    unreadable: dict[str, str] = {}
    generated_at = iso_millis(clock.now())
    for cid, campaign in sorted(open_now.items()):
        statuses = _statuses(store, scoring_bucket, cid, unreadable)
        sends = _sends(store, scoring_bucket, wave_keys, cid, unreadable)
        doc = stats_document(
            cid,
            campaign.name,
            tallies[cid],
            wave_prep_summary(statuses),
            sms_wave_states(wave_keys, cid),
            generated_at,
            monotonic() - started,
            sends,
        )
        ref = ObjectRef(scoring_bucket, stats_key(prefix, cid))
        store.put_bytes(ref, json.dumps(doc, indent=2, sort_keys=True).encode(), "application/json")
        written.append(ref.uri)
    return Success(
        StatsRun(len(open_now), files, records, monotonic() - started, tuple(written), unreadable)
    )


def _sends(
    store: StatsStore,
    bucket: str,
    wave_keys: list[str],
    campaign_id: str,
    unreadable: dict[str, str],
) -> SendTally:
    """Codes per wave from the normalized configs, texts and emails from the sent configs:
    one config read at a time."""
    sends = SendTally()
    for wave, key in campaign_normalized_configs(wave_keys, campaign_id).items():
        doc = _read_object(store, ObjectRef(bucket, key), unreadable)
        if doc is not None:
            sends.add_codes(wave, doc)
    for key in campaign_sent_configs(wave_keys, campaign_id).values():
        doc = _read_object(store, ObjectRef(bucket, key), unreadable)
        if doc is not None:
            sends.add_sent(doc)
    return sends


def _read_object(
    store: StatsStore, ref: ObjectRef, unreadable: dict[str, str]
) -> Mapping[str, Any] | None:
    try:
        doc = json.loads(store.read_bytes(ref))
    except ObjectNotFound:
        return None  # removed since the listing
    except ValueError:
        unreadable[ref.key] = "not JSON"
        return None
    if not isinstance(doc, Mapping):
        unreadable[ref.key] = "not a JSON object"
        return None
    return doc


def _statuses(
    store: StatsStore, bucket: str, campaign_id: str, unreadable: dict[str, str]
) -> list[Mapping[str, Any]]:
    found: list[Mapping[str, Any]] = []
    for info in store.list_objects(bucket, f"wavePrep/{campaign_id}/status/"):
        doc = _read_object(store, info.ref, unreadable)
        if doc is not None:
            found.append(doc)
    return found
