"""Who may stream a scored file now: one run at a time, by a lease object beside its progress.

Two runs of the same file at the same moment (S3 delivering an event twice, an operator's CLI
run beside the Lambda's) both streamed it: every fan texted twice. Resuming (progress.py) could
not stop it, because each run puts a chunk before it checkpoints it. So a run takes the lease
`progress/{campaignId}.{timestamp}/lease.json` before it reads the progress or puts anything:

- **Taking it**: no lease object, or one that has expired or was released, is taken with a
  conditional write (create only if absent / replace only that version: S3's `If-None-Match`
  and `If-Match`). Of two runs racing for it exactly one write succeeds; the other run is told
  who holds the file and until when, and stops having streamed nothing.
- **Keeping it**: the holder renews it (a conditional write over its own last version, with a
  new expiry) before a put whenever less than half of the term is left, so every put starts
  with at least half the term (default 60 of 120 s) before anyone else may take over. A renewal
  that finds another version means another run took the file over: this one stops.
- **A crash** (kill -9, a Lambda timeout) leaves the lease to expire: at most one term later a
  re-run takes it over and resumes from the last checkpoint. A stale lease never blocks for
  longer than the term; an unreadable lease object counts as expired.
- **Releasing it**: at the end of a run (done, stranded, stopped, or an exception) the holder
  marks it released, so a retry can start at once.

Exclusive as long as a put finishes within half the term and the clocks of the machines agree
to within a few seconds (the expiry is a UTC time the holder writes and others read). A holder
stalled past its lease is treated as crashed: the records of the put it was in may be put again
by the run that takes over, as for a crash (consumers de-duplicate by `dedupeId`), and the
stalled run stops at its next renewal or at its next checkpoint, which is created only if absent
(progress.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from returns.result import Failure, Result, Success

from domain.models import ObjectRef
from domain.ports import Clock, VersionedBlobs

DEFAULT_LEASE_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class LeaseHeld:
    """Another run holds the file: who, and when its lease ends unless renewed."""

    holder: str
    expires_at: datetime

    def __str__(self) -> str:
        return (
            f"another run ({self.holder}) holds this file until "
            f"{self.expires_at:%Y-%m-%dT%H:%M:%SZ}; nothing was streamed; run it again after that"
        )


@dataclass(frozen=True, slots=True)
class _Terms:
    holder: str
    expires_at: datetime
    released: bool = False
    renewals: int = 0

    def to_bytes(self) -> bytes:
        # `renewals` keeps every write distinct: a version is the ETag, the MD5 of these bytes.
        state = {
            "holder": self.holder,
            "expiresAt": self.expires_at.isoformat(),
            "released": self.released,
            "renewals": self.renewals,
        }
        return json.dumps(state, sort_keys=True).encode("utf-8")

    @staticmethod
    def from_bytes(data: bytes) -> _Terms | None:
        """The lease's terms, or None when the object is not a lease (it counts as expired)."""
        try:
            state = json.loads(data)
            return _Terms(
                holder=str(state["holder"]),
                expires_at=datetime.fromisoformat(state["expiresAt"]),
                released=bool(state["released"]),
                renewals=int(state["renewals"]),
            )
        except (ValueError, TypeError, KeyError):
            return None

    def holds_at(self, now: datetime) -> bool:
        return not self.released and now < self.expires_at


class FileLease:
    """One run's lease on one scored file (module docstring). Not thread-safe: one per run."""

    def __init__(
        self, blobs: VersionedBlobs, ref: ObjectRef, holder: str, clock: Clock, seconds: float
    ) -> None:
        if seconds <= 0:
            raise ValueError(f"a lease lasts more than 0 s, got {seconds}")
        self.blobs, self.ref, self.holder, self.clock = blobs, ref, holder, clock
        self.term = timedelta(seconds=seconds)
        self._version: str | None = None
        self._terms: _Terms | None = None

    def acquire(self) -> Result[None, LeaseHeld]:
        """Takes the lease, unless another run holds it."""
        found = self.blobs.read_versioned(self.ref)
        now = self.clock.now()  # after the read: the term starts as close to the write as can be
        expected: str | None = None
        renewals = 0
        if found is not None:
            data, expected = found
            current = _Terms.from_bytes(data)
            if current is not None and current.holds_at(now):
                return Failure(LeaseHeld(current.holder, current.expires_at))
            renewals = current.renewals + 1 if current is not None else 0
        terms = _Terms(self.holder, now + self.term, renewals=renewals)
        version = self.blobs.put_versioned(self.ref, terms.to_bytes(), expected)
        if version is None:
            return Failure(self._winner(now))
        self._version, self._terms = version, terms
        return Success(None)

    def _winner(self, now: datetime) -> LeaseHeld:
        """Who took the lease in the moment between our read and our write."""
        found = self.blobs.read_versioned(self.ref)
        terms = None if found is None else _Terms.from_bytes(found[0])
        if terms is None:
            return LeaseHeld("unknown", now + self.term)
        return LeaseHeld(terms.holder, terms.expires_at)

    def keep(self) -> bool:
        """Before a put: True when this run still holds the lease with at least half its term
        ahead (renewing it when less is left); False when another run took it over."""
        if self._terms is None or self._version is None:
            return False
        now = self.clock.now()
        if self._terms.expires_at - now >= self.term / 2:
            return True
        return self._write(_Terms(self.holder, now + self.term, renewals=self._terms.renewals + 1))

    def release(self) -> None:
        """Marks the lease released (when this run still holds it), so a retry starts at once."""
        if self._terms is None or self._version is None:
            return
        terms = self._terms
        self._write(_Terms(self.holder, self.clock.now(), True, terms.renewals + 1))
        self._terms = self._version = None

    def _write(self, terms: _Terms) -> bool:
        version = self.blobs.put_versioned(self.ref, terms.to_bytes(), self._version)
        if version is None:  # another run took the file over
            self._terms = self._version = None
            return False
        self._terms, self._version = terms, version
        return True
