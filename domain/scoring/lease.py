"""Who may stream a scored file now: one run at a time, by a lease object beside its progress,
`progress/{campaignId}.{timestamp}/lease.json`. The lease itself is domain/lease.py's (the one
lease every worker that must not overlap uses); its docstring states the rules."""

from __future__ import annotations

from domain.lease import DEFAULT_LEASE_SECONDS, BlobLease, LeaseHeld

# The scored file's lease keeps its name: its refusal reads "holds this file; nothing streamed".
FileLease = BlobLease

__all__ = ["DEFAULT_LEASE_SECONDS", "FileLease", "LeaseHeld"]
