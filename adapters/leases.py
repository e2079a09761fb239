"""The Leases port (domain/ports.py): one run at a time per name.

ObjectLeases keeps each lease as a small object written with conditional puts (domain/lease.py's
BlobLease over a VersionedBlobs: S3's `If-None-Match` / `If-Match` in production, the in-memory
store in tests), `{prefix}{name}.json` in one bucket. MemoryLeases is a hand-written fake with
the same rules on a dict, for unit tests of the workers that take leases.

`holder` names the run in the refusal a second run gets: the registry passes
`{host}/{pid}/{run id}`, so an operator can tell a live run from a crashed one.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from returns.result import Failure, Result, Success

from domain.lease import DEFAULT_LEASE_SECONDS, BlobLease
from domain.models import LeaseHeld, ObjectRef
from domain.ports import Clock, Lease, VersionedBlobs

MERGE_LEASE_PREFIX = "leases/merge_avro_files/"


def run_holder() -> str:
    """Names this run in a lease, for the refusal a second run gets: host/pid/run id."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:12]}"


class ObjectLeases:
    def __init__(
        self,
        blobs: VersionedBlobs,
        bucket: str,
        prefix: str,
        *,
        holder: str,
        clock: Clock,
        seconds: float = DEFAULT_LEASE_SECONDS,
        subject: str = "{name}",
        consequence: str = "this run did nothing",
    ) -> None:
        self.blobs, self.bucket, self.prefix = blobs, bucket, prefix
        self.holder, self.clock, self.seconds = holder, clock, seconds
        self.subject, self.consequence = subject, consequence

    def ref(self, name: str) -> ObjectRef:
        return ObjectRef(self.bucket, f"{self.prefix}{name}.json")

    def acquire(self, name: str) -> Result[Lease, LeaseHeld]:
        lease = BlobLease(
            self.blobs,
            self.ref(name),
            self.holder,
            self.clock,
            self.seconds,
            subject=self.subject.format(name=name),
            consequence=self.consequence,
        )
        match lease.acquire():
            case Failure(held):
                return Failure(held)
        return Success(lease)


@dataclass
class _Held:
    holder: str
    since: datetime
    expires_at: datetime


class MemoryLeases:
    """Leases on a dict (thread-safe). `holder` is this instance's run; give each simulated run
    its own MemoryLeases over a shared `table` to model two processes."""

    def __init__(
        self,
        clock: Clock,
        holder: str = "run",
        seconds: float = DEFAULT_LEASE_SECONDS,
        table: dict[str, _Held] | None = None,
        lock: threading.Lock | None = None,
    ) -> None:
        self.clock, self.holder, self.term = clock, holder, timedelta(seconds=seconds)
        self.table: dict[str, _Held] = {} if table is None else table
        self._lock = lock or threading.Lock()

    def sharing(self, holder: str) -> MemoryLeases:
        """Another run's view of the same leases."""
        return MemoryLeases(self.clock, holder, self.term.total_seconds(), self.table, self._lock)

    def acquire(self, name: str) -> Result[Lease, LeaseHeld]:
        with self._lock:
            now = self.clock.now()
            held = self.table.get(name)
            if held is not None and now < held.expires_at:
                return Failure(LeaseHeld(held.holder, held.expires_at, held.since, name))
            mine = _Held(self.holder, now, now + self.term)
            self.table[name] = mine
            return Success(_MemoryLease(self, name, mine))


class _MemoryLease:
    def __init__(self, leases: MemoryLeases, name: str, held: _Held) -> None:
        self.leases, self.name, self.held = leases, name, held

    def keep(self) -> bool:
        with self.leases._lock:
            if self.leases.table.get(self.name) is not self.held:
                return False
            now = self.leases.clock.now()
            if self.held.expires_at - now < self.leases.term / 2:
                self.held.expires_at = now + self.leases.term
            return True

    def seconds_left(self) -> float:
        with self.leases._lock:
            if self.leases.table.get(self.name) is not self.held:
                return 0.0
            return max(0.0, (self.held.expires_at - self.leases.clock.now()).total_seconds())

    def release(self) -> None:
        with self.leases._lock:
            if self.leases.table.get(self.name) is self.held:
                del self.leases.table[self.name]
