"""The wave prep status the admin reads, one per (campaign, date key), and who may start a run.

JSON shape (the admin's `WavePrep`):

    {"date": {"started": ISO, "finished": ISO | null}, "status": "TRIGGERED|FINISHED|FAILED",
     "dateKey": "2026-12-01", "error": {"message": "..."} | null, "path": "s3://.../x.zip" | null,
     "attempts": 1, "count": {"name": "total", "eligible": n, "selected": n, "waitlisted": n,
                              "markets": [{"name": ..., "eligible": ..., ...}, ...]} | null}

Who may start (decided here, enforced with a conditional write on the status object):
- no status yet: attempt 1;
- FINISHED or FAILED with attempts < MAX_ATTEMPTS: the next attempt;
- attempts == MAX_ATTEMPTS: refused, nothing changes (a person must look: the original's
  "manual intervention");
- TRIGGERED: a run is under way, refused; unless it started longer ago than the stale limit
  (a run killed by a Lambda timeout never writes FAILED): it then counts as a failed attempt.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

MAX_ATTEMPTS = 2


class Phase(StrEnum):
    TRIGGERED = "TRIGGERED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class WaveCount:
    name: str
    eligible: int
    selected: int
    waitlisted: int
    markets: tuple[WaveCount, ...] = ()

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "name": self.name,
            "eligible": self.eligible,
            "selected": self.selected,
            "waitlisted": self.waitlisted,
        }
        if self.markets:
            doc["markets"] = [m.to_json() for m in self.markets]
        return doc


@dataclass(frozen=True, slots=True)
class WaveStatus:
    campaign_id: str
    date_key: str
    phase: Phase
    attempts: int
    started: datetime
    finished: datetime | None = None
    error: str | None = None
    path: str | None = None
    count: WaveCount | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "campaignId": self.campaign_id,
            "dateKey": self.date_key,
            "status": str(self.phase),
            "attempts": self.attempts,
            "date": {
                "started": self.started.isoformat(),
                "finished": self.finished.isoformat() if self.finished else None,
            },
            "error": {"message": self.error} if self.error else None,
            "path": self.path,
            "count": self.count.to_json() if self.count else None,
            **self.extra,
        }

    def finish(self, when: datetime, path: str, count: WaveCount, **extra: Any) -> WaveStatus:
        return replace(
            self, phase=Phase.FINISHED, finished=when, path=path, count=count, extra=extra
        )

    def fail(self, when: datetime, message: str, count: WaveCount | None = None) -> WaveStatus:
        return replace(self, phase=Phase.FAILED, finished=when, error=message, count=count)


def status_from_json(doc: Any, campaign_id: str, date_key: str) -> WaveStatus:
    """Reads a status written by this worker (or the original). Raises ValueError naming the
    field: a status nobody can read must stop a run, not be overwritten as if absent."""
    if not isinstance(doc, dict):
        raise ValueError("status is not a JSON object")
    try:
        phase = Phase(str(doc.get("status")))
    except ValueError:
        raise ValueError(f"status {doc.get('status')!r} is not one of {list(Phase)}") from None
    attempts = doc.get("attempts")
    if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 0:
        raise ValueError(f"attempts {attempts!r} is not a whole number")
    dates = doc.get("date") or {}
    started = _time(dates.get("started") if isinstance(dates, dict) else None, "date.started")
    finished_raw = dates.get("finished") if isinstance(dates, dict) else None
    error = doc.get("error")
    return WaveStatus(
        campaign_id=campaign_id,
        date_key=date_key,
        phase=phase,
        attempts=attempts,
        started=started,
        finished=_time(finished_raw, "date.finished") if finished_raw else None,
        error=error.get("message") if isinstance(error, dict) else None,
        path=doc.get("path") if isinstance(doc.get("path"), str) else None,
    )


def _time(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"{name} is missing")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} {value!r} is not ISO 8601") from None


@dataclass(frozen=True, slots=True)
class Refusal:
    kind: str  # 'running' | 'attempts_exhausted'
    message: str


def next_attempt(
    current: WaveStatus | None,
    campaign_id: str,
    date_key: str,
    now: datetime,
    stale_after: timedelta,
) -> WaveStatus | Refusal:
    """The TRIGGERED status a new run writes, or why it may not start (see module docstring)."""
    attempts = 0 if current is None else current.attempts
    running = current is not None and current.phase is Phase.TRIGGERED
    if running and current is not None and now - current.started < stale_after:
        return Refusal(
            "running",
            f"wave prep {campaign_id}/{date_key} is running (attempt {attempts}, started "
            f"{current.started.isoformat()}); wait for it to finish or fail",
        )
    if attempts >= MAX_ATTEMPTS:
        return Refusal(
            "attempts_exhausted",
            f"wave prep {campaign_id}/{date_key} has had its {MAX_ATTEMPTS} attempts "
            f"(last: {current.phase if current else '-'}); it needs a person to look",
        )
    return WaveStatus(campaign_id, date_key, Phase.TRIGGERED, attempts + 1, started=now)
