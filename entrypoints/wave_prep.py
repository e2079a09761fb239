"""process_sms_wave_files' output shape (the upload service reads `success` and `key`) and the
operator's grant of another attempt; its adapters come from bootstrap (docs/wave-prep.md)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from returns.result import Failure, Result, Success

from adapters.clock import SystemClock
from adapters.logging import mask_text
from domain.wave_prep.status import WaveStatus
from domain.workers.process_sms_wave_files import (
    WavePrepCounts,
    WavePrepFailure,
    allow_another_attempt,
)
from entrypoints.bootstrap import Container

log = logging.getLogger(__name__)


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
        status=c.wave_status,
        clock=SystemClock(),
        stale_after=timedelta(minutes=s.wave_stale_minutes),
    )


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
