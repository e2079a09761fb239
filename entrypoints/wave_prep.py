"""process_sms_wave_files bound to adapters (its registry factory), and its input and output
shapes for the Lambda handler and the CLI.

Adapters, by settings (README's settings table):
- store, status, reservation ledger and zip: the scoring bucket (S3, conditional writes);
- campaign and markets: the campaign service, or the campaign JSON configs in the bucket;
- eligible fans: the entry service, the Avro lake, or Athena over the lake (`fan_source()`);
- codes: the code service, or the DynamoDB codes table.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from returns.result import Failure, Result, Success

from adapters.aws.athena_fans import AthenaEligibleFans
from adapters.aws.lake_fans import LakeEligibleFans
from adapters.aws.wave_prep import S3ReservationLedger, S3WaveStatusStore
from adapters.campaign_config import S3CampaignDirectory
from adapters.clock import SystemClock
from adapters.http.campaigns import HttpCampaignDirectory
from adapters.http.client import JsonHttpClient
from adapters.http.eligible_fans import HttpEligibleFans
from adapters.leases import ObjectLeases, run_holder
from adapters.logging import mask_text
from adapters.wave_package import ZipPackage
from adapters.wave_selections import StoredWaveSelections
from domain.ports import CampaignMarkets, EligibleFans
from domain.wave_prep.request import WavePrepRequest
from domain.wave_prep.status import WaveStatus
from domain.wave_prep.turns import SelectionTurns
from domain.workers.process_sms_wave_files import (
    WavePrepCounts,
    WavePrepFailure,
    allow_another_attempt,
    process_sms_wave_files,
)
from entrypoints.bootstrap import Container
from entrypoints.settings import reveal

log = logging.getLogger(__name__)


# The campaign-wide lease over a wave's selection (domain/wave_prep/turns.py), one per campaign.
SELECTION_LEASE_PREFIX = "wavePrep/selectionLeases/"


class WavePrepRun(Protocol):
    def __call__(
        self,
        request: WavePrepRequest,
        *,
        deadline: datetime | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> Result[WavePrepCounts, WavePrepFailure]: ...


def _client(c: Container, name: str, url: str) -> JsonHttpClient:
    return JsonHttpClient(name, url, token=reveal(c.settings.service_token))


def _fans(c: Container) -> EligibleFans:
    s = c.settings
    source = s.fan_source()
    if source == "entry_service":
        assert s.entry_service_url is not None  # fan_source() checked it
        return HttpEligibleFans(_client(c, "entry service", s.entry_service_url))
    if source == "athena":
        return AthenaEligibleFans(c.athena)
    return LakeEligibleFans(c.store, s.campaign_data_bucket)


def _markets(c: Container) -> CampaignMarkets:
    s = c.settings
    if s.campaign_service_url:
        return HttpCampaignDirectory(_client(c, "campaign service", s.campaign_service_url))
    return S3CampaignDirectory(c.store, s.scoring_bucket, prefix=s.campaign_config_prefix)


def build(c: Container) -> WavePrepRun:
    s = c.settings
    fans, markets, codes = _fans(c), _markets(c), c.code_inventory

    def run(
        request: WavePrepRequest,
        *,
        deadline: datetime | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> Result[WavePrepCounts, WavePrepFailure]:
        clock = SystemClock()
        leases = ObjectLeases(
            c.store,
            s.scoring_bucket,
            SELECTION_LEASE_PREFIX,
            # The refused wave is told which wave holds it, and where that run is.
            holder=f"wave {request.date_key} on {run_holder()}",
            clock=clock,
            seconds=s.run_lease_seconds,
            subject="the fan selection of campaign {name}",
            consequence="nothing was selected",
        )
        turns = SelectionTurns(
            leases, time.sleep, wait=timedelta(seconds=s.wave_prep_lease_wait_seconds)
        )
        return process_sms_wave_files(
            request,
            bucket=s.scoring_bucket,
            store=c.store,
            campaigns=c.campaigns,
            markets=markets,
            fans=fans,
            codes=codes,
            ledger=S3ReservationLedger(c.store, s.scoring_bucket),
            status=S3WaveStatusStore(c.store, s.scoring_bucket),
            package=ZipPackage(c.store),
            selections=StoredWaveSelections(c.store, s.scoring_bucket),
            turns=turns,
            clock=clock,
            reserve_batch=s.wave_reserve_batch,
            stale_after=timedelta(minutes=s.wave_stale_minutes),
            deadline=deadline,
            on_progress=on_progress,
        )

    return run


def deadline(context: Any) -> datetime | None:
    """When this Lambda invocation ends (None outside Lambda): a wave waiting for another of its
    campaign stops waiting with half of what is left (domain/wave_prep/turns.py)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    return SystemClock().now() + timedelta(milliseconds=remaining())


def allow_attempt(
    c: Container, campaign_id: str, date_key: str, *, by: str, reason: str
) -> Result[WaveStatus, WavePrepFailure]:
    """The operator's grant of one more attempt (docs/wave-prep.md, "Status and attempts")."""
    s = c.settings
    return allow_another_attempt(
        campaign_id,
        date_key,
        by=by,
        reason=reason,
        status=S3WaveStatusStore(c.store, s.scoring_bucket),
        clock=SystemClock(),
        stale_after=timedelta(minutes=s.wave_stale_minutes),
    )


def wave_input(event: Any) -> Any:
    """The wave's input from any of its callers: direct or Step Functions (the input itself, or
    a lambda:invoke task's whole output `{Payload, StatusCode, ...}`), the upload service
    (`{"data": {...}}`), or an API Gateway proxy (`{"body": "<json>"}`)."""
    if isinstance(event, Mapping) and "campaignId" not in event and "Payload" in event:
        return wave_input(event["Payload"])
    if isinstance(event, Mapping):
        if isinstance(event.get("data"), Mapping):
            return event["data"]
        if isinstance(event.get("body"), str):
            import json

            try:
                return json.loads(event["body"])
            except ValueError:
                return event
    return event


def outcome_dict(outcome: Result[WavePrepCounts, WavePrepFailure]) -> dict[str, Any]:
    """The response: `success` as the upload service reads it, `key` as the original returned."""
    match outcome:
        case Success(counts):
            return {
                "success": True,
                "key": counts.package.key,
                "path": counts.package.uri,
                "status": "FINISHED",
                "attempt": counts.attempt,
                "count": {
                    "read": counts.fans_read,
                    "eligible": counts.eligible,
                    "selected": counts.selected,
                    "waitlisted": counts.waitlisted,
                    "duplicates": counts.duplicates,
                    "ineligible": counts.ineligible,
                    "codesReserved": counts.codes_reserved,
                    "codesReused": counts.codes_reused,
                    "markets": [
                        {
                            "id": m.market_id,
                            "name": m.name,
                            "capacity": m.capacity,
                            "eligible": m.eligible,
                            "selected": m.selected,
                            "waitlisted": m.waitlisted,
                            "sms": m.sms,
                            "email": m.email,
                        }
                        for m in counts.markets
                    ],
                },
            }
        case Failure(failure):
            return {
                "success": False,
                "status": "FAILED" if failure.attempt is not None else "REFUSED",
                "attempt": failure.attempt,
                # Masked: it can quote a dependency's error body, contacts and all.
                "error": {"kind": failure.kind, "message": mask_text(failure.message)},
                "retryable": failure.retryable,
            }
    raise TypeError(f"not a wave prep outcome: {outcome!r}")
