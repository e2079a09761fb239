"""The code inventory's rules (CodeInventory), pure: what the DynamoDB inventory and the
in-memory one store differently and decide alike. They used to be written twice, once in each
adapter (adapters/aws/dynamo_inventory.py, tests/support/memory_codes.py), and could drift; the
stateful model (tests/support/inventory_model.py) holds both to them.

- A reservation holds its codes for HOLD (24 h) from the last call with its key; a hold that
  has run out frees the code (it may be reserved again), unless the code was assigned.
- Assigning: a code that belongs to another campaign is a conflict (left alone); one already
  assigned to this campaign is counted `already` (idempotent: a re-run updates none); any
  other is assigned. A code the inventory has never seen (issued by an HTTP Pacman, or kept
  from a wave file) counts as assigned to the campaign from then on, so it can never go to
  another.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

HOLD = timedelta(hours=24)


class CodeStatus(StrEnum):
    AVAILABLE = "available"
    RESERVED = "reserved"
    ASSIGNED = "assigned"
    ISSUED = "issued"


class AssignOutcome(StrEnum):
    UPDATED = "updated"
    ALREADY = "already"
    CONFLICT = "conflict"


def hold_until(now: datetime) -> datetime:
    """When a hold taken or renewed at `now` runs out."""
    return now + HOLD


def is_free(status: str, free_at: datetime | None, now: datetime) -> bool:
    """May be reserved now: available, or reserved with a hold that has run out."""
    return status == CodeStatus.AVAILABLE or (
        status == CodeStatus.RESERVED and free_at is not None and free_at <= now
    )


def seen_status(status: str, free_at: datetime | None, now: datetime) -> str:
    """The status a lookup reports: a reserved code whose hold ran out is available."""
    return CodeStatus.AVAILABLE if is_free(status, free_at, now) else status


def assign_outcome(
    owner: str | None, status: str | None, campaign_id: str, *, seen: bool = True
) -> AssignOutcome:
    """What assigning a code to `campaign_id` does, from the code as stored (`seen=False`: the
    inventory has no such code; it is recorded as assigned to the campaign)."""
    if not seen:
        return AssignOutcome.UPDATED
    if owner is not None and owner != campaign_id:
        return AssignOutcome.CONFLICT
    if status == CodeStatus.ASSIGNED:
        return AssignOutcome.ALREADY
    return AssignOutcome.UPDATED
