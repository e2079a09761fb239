"""The wave prep status the admin reads, one per (campaign, date key), and who may start a run.

JSON shape (the admin's `WavePrep`):

    {"date": {"started": ISO, "finished": ISO | null}, "status": "TRIGGERED|FINISHED|FAILED",
     "dateKey": "2026-12-01", "error": {"message": "..."} | null, "path": "s3://.../x.zip" | null,
     "attempts": 1, "count": {"name": "total", "eligible": n, "selected": n, "waitlisted": n,
                              "markets": [{"name": ..., "eligible": ..., ...}, ...]} | null}

Who may start (decided here, enforced with a conditional write on the status object):
- no status yet: attempt 1;
- FINISHED or FAILED with attempts < MAX_ATTEMPTS: the next attempt;
- attempts == MAX_ATTEMPTS (+ one per operator grant): refused, nothing changes (a person must
  look: the original's "manual intervention"; `grant_attempt` is their audited way to allow one
  more, recorded in `attemptGrants` with who, when and why);
- TRIGGERED: a run is under way, refused; unless it started longer ago than the stale limit
  (a run killed by a Lambda timeout never writes FAILED): it then counts as a failed attempt.

A run that refuses its input (no markets CSV, a CSV that does not match the campaign, a bad
code file) selected and reserved nothing: it writes FAILED with `attemptSpent: false` and the
attempts it found, so the corrected upload runs.
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
class Grant:
    """An operator allowed one more attempt: who, when, why (kept in the status for audit)."""

    by: str
    at: datetime
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"by": self.by, "at": self.at.isoformat(), "reason": self.reason}


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
    grants: tuple[Grant, ...] = ()

    @property
    def allowed_attempts(self) -> int:
        return MAX_ATTEMPTS + len(self.grants)

    def to_json(self) -> dict[str, Any]:
        grants = {"attemptGrants": [g.to_json() for g in self.grants]} if self.grants else {}
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
            **grants,
            **self.extra,
        }

    def finish(self, when: datetime, path: str, count: WaveCount, **extra: Any) -> WaveStatus:
        return replace(
            self, phase=Phase.FINISHED, finished=when, path=path, count=count, extra=extra
        )

    def fail(self, when: datetime, message: str, count: WaveCount | None = None) -> WaveStatus:
        return replace(self, phase=Phase.FAILED, finished=when, error=message, count=count)

    def refuse(self, when: datetime, message: str) -> WaveStatus:
        """FAILED without spending the attempt: the input was refused before anything was
        selected or reserved (the attempt this run claimed is given back)."""
        failed = self.fail(when, message)
        return replace(
            failed, attempts=self.attempts - 1, extra={**self.extra, "attemptSpent": False}
        )


# Fields status_from_json reads into WaveStatus; any other key is carried in `extra` so that a
# grant rewriting a FINISHED status keeps its counts.
_READ = frozenset({"campaignId", "dateKey", "status", "attempts", "date", "error", "path"})


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
    grants = tuple(_grant(g) for g in doc.get("attemptGrants") or ())
    extra = {k: v for k, v in doc.items() if k not in _READ and k != "attemptGrants"}
    return WaveStatus(
        campaign_id=campaign_id,
        date_key=date_key,
        phase=phase,
        attempts=attempts,
        started=started,
        finished=_time(finished_raw, "date.finished") if finished_raw else None,
        error=error.get("message") if isinstance(error, dict) else None,
        path=doc.get("path") if isinstance(doc.get("path"), str) else None,
        extra=extra,
        grants=grants,
    )


def _grant(doc: Any) -> Grant:
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), str) for k in ("by", "reason")):
        raise ValueError(f"attemptGrants entry {doc!r} is not {{by, at, reason}}")
    return Grant(doc["by"], _time(doc.get("at"), "attemptGrants.at"), doc["reason"])


def _time(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"{name} is missing")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} {value!r} is not ISO 8601") from None


@dataclass(frozen=True, slots=True)
class Refusal:
    kind: str  # 'running' | 'attempts_exhausted' | grant_attempt's refusals
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
    grants = current.grants if current is not None else ()
    allowed = MAX_ATTEMPTS + len(grants)
    if attempts >= allowed:
        return Refusal(
            "attempts_exhausted",
            f"wave prep {campaign_id}/{date_key} has had its {allowed} attempts "
            f"(last: {current.phase if current else '-'}); it needs a person to look, who may "
            "allow one more (campaign-workers allow-wave-prep-attempt, docs/wave-prep.md)",
        )
    return WaveStatus(
        campaign_id, date_key, Phase.TRIGGERED, attempts + 1, started=now, grants=grants
    )


def grant_attempt(
    current: WaveStatus | None,
    campaign_id: str,
    date_key: str,
    *,
    by: str,
    reason: str,
    now: datetime,
    stale_after: timedelta,
) -> WaveStatus | Refusal:
    """The status with one more attempt allowed, recorded as a Grant (who, when, why); or why
    not: only a wave that has used all its attempts and is not running gets one."""
    wave = f"wave prep {campaign_id}/{date_key}"
    if not by.strip() or not reason.strip():
        return Refusal("grant_incomplete", f"{wave}: say who allows the attempt and why")
    if current is None:
        return Refusal("no_wave", f"{wave} has never run: it has all its attempts")
    if current.phase is Phase.TRIGGERED and now - current.started < stale_after:
        return Refusal("running", f"{wave} is running (attempt {current.attempts})")
    if current.attempts < current.allowed_attempts:
        left = current.allowed_attempts - current.attempts
        return Refusal("attempts_remain", f"{wave} has {left} attempt(s) left: nothing to allow")
    return replace(current, grants=(*current.grants, Grant(by.strip(), now, reason.strip())))
