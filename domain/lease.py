"""One run at a time of a piece of work (a scored file, a wave's codes, a lake day's merge), by a
lease object written with conditional puts (S3's `If-None-Match` / `If-Match`; the in-memory
store's equivalent). First written for scored files (domain/scoring/lease.py): two runs of the
same file at the same moment (S3 delivering an event twice, an operator's CLI run beside the
Lambda's) both streamed it, every fan texted twice. Then two runs of one wave both issued a code
to every fan, and two merges of one lake day both merged and queued a move. A run takes the
lease before it reads any progress or writes anything:

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
- **A holder provably dead** is taken over at once, not after the term (an operator's CLI run
  killed with kill -9 and run again on the same machine was refused for up to 120 s by a
  process that no longer existed). The lease records its holder's process identity (`process`:
  host, kernel boot id, pid namespace, pid, start time); a re-run whose ProcessLiveness port
  proves that process gone (same host, boot and namespace, and no process with that pid and
  start time) takes the lease with the same conditional write as an expired one, so of two
  re-runs racing one wins. Anything unsure (another host, boot or container, an unreadable
  /proc, a lease without or with a malformed `process`) keeps the wait for the term: a Lambda
  sandbox is never taken over early. The lease then names the dead holder
  (`taken_from_dead`; also when its lease had expired or been released, if the holder is
  provably dead): where that name owns the dead run's ledger claims (the SMS send), the
  re-run names it dead to the ledger, whose entries it held count as expired at once (a claim
  taken over, a started text turned UNKNOWN, never resent: domain/once.py, docs/sending.md).
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
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from returns.result import Failure, Result, Success

from domain.models import LeaseHeld, ObjectRef, ProcessIdentity
from domain.ports import Clock, Lease, Leases, ProcessLiveness, VersionedBlobs

__all__ = ["DEFAULT_LEASE_SECONDS", "BlobLease", "LeaseHeld", "leased"]

R = TypeVar("R")

DEFAULT_LEASE_SECONDS = 120.0

_log = logging.getLogger(__name__)


def _identity_json(identity: ProcessIdentity) -> dict[str, str | int]:
    return {
        "host": identity.host,
        "bootId": identity.boot_id,
        "pidNamespace": identity.pid_namespace,
        "pid": identity.pid,
        "startTime": identity.start_time,
    }


def _positive(value: object) -> int | None:
    # bool is an int too: a `true` pid is malformed, not pid 1.
    ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
    return value if ok and isinstance(value, int) else None


def _identity_from_json(state: object) -> ProcessIdentity | None:
    """The holder's identity, or None when absent or malformed (then nobody can prove the holder
    dead, and the lease keeps its term)."""
    if not isinstance(state, dict):
        return None
    host, boot_id = state.get("host"), state.get("bootId")
    namespace, pid, start = (_positive(state.get(k)) for k in ("pidNamespace", "pid", "startTime"))
    if not (isinstance(host, str) and host and isinstance(boot_id, str) and boot_id):
        return None
    if namespace is None or pid is None or start is None:
        return None
    return ProcessIdentity(host, boot_id, namespace, pid, start)


@dataclass(frozen=True, slots=True)
class _Terms:
    holder: str
    expires_at: datetime
    released: bool = False
    renewals: int = 0
    since: datetime | None = None  # when this holder took it (renewals keep it)
    process: ProcessIdentity | None = None  # the holder's process, to prove it dead

    def to_bytes(self) -> bytes:
        # `renewals` keeps every write distinct: a version is the ETag, the MD5 of these bytes.
        state = {
            "holder": self.holder,
            "expiresAt": self.expires_at.isoformat(),
            "released": self.released,
            "renewals": self.renewals,
            **({"since": self.since.isoformat()} if self.since else {}),
            **({"process": _identity_json(self.process)} if self.process else {}),
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
                since=datetime.fromisoformat(state["since"]) if "since" in state else None,
                process=_identity_from_json(state.get("process")),
            )
        except (ValueError, TypeError, KeyError):
            return None

    def holds_at(self, now: datetime) -> bool:
        return not self.released and now < self.expires_at


class BlobLease:
    """One run's lease on one piece of work (module docstring). Not thread-safe: one per run.
    `subject` and `consequence` word the refusal a second run gets ("this file", "nothing was
    streamed"). `liveness` records this process in the lease and takes over a provably dead
    holder's at once; without it, a holder is taken over only after its term."""

    def __init__(
        self,
        blobs: VersionedBlobs,
        ref: ObjectRef,
        holder: str,
        clock: Clock,
        seconds: float,
        *,
        subject: str = "this file",
        consequence: str = "nothing was streamed",
        liveness: ProcessLiveness | None = None,
    ) -> None:
        if seconds <= 0:
            raise ValueError(f"a lease lasts more than 0 s, got {seconds}")
        self.blobs, self.ref, self.holder, self.clock = blobs, ref, holder, clock
        self.subject, self.consequence = subject, consequence
        self.liveness = liveness
        self.term = timedelta(seconds=seconds)
        self._version: str | None = None
        self._terms: _Terms | None = None
        self._taken_from_dead: str | None = None

    @property
    def taken_from_dead(self) -> str | None:
        """The holder proven dead whose lease this run took over early, else None."""
        return self._taken_from_dead

    def acquire(self) -> Result[None, LeaseHeld]:
        """Takes the lease, unless another run holds it."""
        found = self.blobs.read_versioned(self.ref)
        now = self.clock.now()  # after the read: the term starts as close to the write as can be
        expected: str | None = None
        renewals = 0
        dead: ProcessIdentity | None = None
        if found is not None:
            data, expected = found
            current = _Terms.from_bytes(data)
            # Asked of an expired or released lease too: a run that died after its term (or
            # released the lease on its way down) still owns ledger claims a re-run may take.
            dead = None if current is None else self._provably_dead(current)
            if current is not None and current.holds_at(now) and dead is None:
                return Failure(self._held(current))
            renewals = current.renewals + 1 if current is not None else 0
        process = self.liveness.identity() if self.liveness is not None else None
        terms = _Terms(self.holder, now + self.term, renewals=renewals, since=now, process=process)
        # Taking a dead holder's lease is the same If-Match write: of two re-runs, one wins.
        version = self.blobs.put_versioned(self.ref, terms.to_bytes(), expected)
        if version is None:
            return Failure(self._winner(now))
        if dead is not None and current is not None:
            if current.holds_at(now):
                _log.warning(
                    "took over the lease of a dead holder early",
                    extra={"lease": self.ref.key, "deadHolder": current.holder, "pid": dead.pid},
                )
            self._taken_from_dead = current.holder
        self._version, self._terms = version, terms
        return Success(None)

    def _provably_dead(self, terms: _Terms) -> ProcessIdentity | None:
        """The holder's identity when this process can prove it dead, else None."""
        if self.liveness is None or terms.process is None:
            return None
        return terms.process if self.liveness.provably_dead(terms.process) else None

    def _winner(self, now: datetime) -> LeaseHeld:
        """Who took the lease in the moment between our read and our write."""
        found = self.blobs.read_versioned(self.ref)
        terms = None if found is None else _Terms.from_bytes(found[0])
        if terms is None:
            return LeaseHeld("unknown", now + self.term, None, self.subject, self.consequence)
        return self._held(terms)

    def _held(self, terms: _Terms) -> LeaseHeld:
        return LeaseHeld(
            terms.holder, terms.expires_at, terms.since, self.subject, self.consequence
        )

    def keep(self) -> bool:
        """Before a put: True when this run still holds the lease with at least half its term
        ahead (renewing it when less is left); False when another run took it over."""
        if self._terms is None or self._version is None:
            return False
        now = self.clock.now()
        if self._terms.expires_at - now >= self.term / 2:
            return True
        terms = self._terms
        return self._write(
            _Terms(
                self.holder, now + self.term, False, terms.renewals + 1, terms.since, terms.process
            )
        )

    def seconds_left(self) -> float:
        """Seconds before another run may take the lease over (0 when lost or lapsed)."""
        if self._terms is None:
            return 0.0
        return max(0.0, (self._terms.expires_at - self.clock.now()).total_seconds())

    def release(self) -> None:
        """Marks the lease released (when this run still holds it), so a retry starts at once."""
        if self._terms is None or self._version is None:
            return
        terms = self._terms
        now = self.clock.now()
        self._write(_Terms(self.holder, now, True, terms.renewals + 1, terms.since, terms.process))
        self._terms = self._version = None

    def _write(self, terms: _Terms) -> bool:
        version = self.blobs.put_versioned(self.ref, terms.to_bytes(), self._version)
        if version is None:  # another run took the file over
            self._terms = self._version = None
            return False
        self._terms, self._version = terms, version
        return True


def leased(
    leases: Leases, name: str, busy: Callable[[LeaseHeld], R], run: Callable[[Lease], R]
) -> R:
    """`run(lease)` holding the lease on `name`, released however it ends (an exception too, so a
    retry starts at once instead of waiting out the term); `busy(held)` when another run holds
    it, having written nothing. The one wrapper every leased worker uses."""
    match leases.acquire(name):
        case Failure(held):
            return busy(held)
        case Success(lease):
            pass
    try:
        return run(lease)
    finally:
        lease.release()
