"""The Leases port (domain/ports.py): one run at a time per name.

ObjectLeases keeps each lease as a small object written with conditional puts (domain/lease.py's
BlobLease over a VersionedBlobs: S3's `If-None-Match` / `If-Match` in production, the in-memory
store in tests), `{prefix}{name}.json` in one bucket. The tests' fake with the same rules on a
dict is tests/support/memory_leases.MemoryLeases.

`holder` names the run in the refusal a second run gets: the registry passes
`{host}/{pid}/{run id}`, so an operator can tell a live run from a crashed one. `liveness`
(adapters/process_liveness.ProcLiveness, wired in entrypoints/bootstrap.py) records this process's
identity in each lease and lets a re-run take over at once the lease of a holder provably dead
(killed on this machine, in this boot and pid namespace); any other holder keeps its term.
"""

from __future__ import annotations

import os
import socket
import uuid

from returns.result import Failure, Result, Success

from domain.lease import DEFAULT_LEASE_SECONDS, BlobLease
from domain.models import LeaseHeld, ObjectRef
from domain.ports import Clock, Lease, ProcessLiveness, VersionedBlobs

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
        liveness: ProcessLiveness | None = None,
    ) -> None:
        self.blobs, self.bucket, self.prefix = blobs, bucket, prefix
        self.holder, self.clock, self.seconds = holder, clock, seconds
        self.subject, self.consequence = subject, consequence
        self.liveness = liveness

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
            liveness=self.liveness,
        )
        match lease.acquire():
            case Failure(held):
                return Failure(held)
        return Success(lease)
