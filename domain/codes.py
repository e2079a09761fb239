"""Access-code value types shared by the code workers (generate, assign, publish) and wave prep.

Frozen dataclasses: no behaviour, no I/O. The ports that use them are in domain/ports.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

# The original's placeholder for TM-managed inventory: never assigned, never streamed as a code.
TM_PLACEHOLDER_CODE = "TM"


class CodeType(StrEnum):
    TM = "tm"
    EXTERNAL = "external"


@dataclass(frozen=True, slots=True)
class CodeRequest:
    """What the issuer (the original's Pacman `generatePasswords`) needs for one fan's code."""

    product_id: str
    source: str
    begin: datetime
    end: datetime
    global_user_id: str
    # The same key again gets the same code back from an issuer that keeps keys (the DynamoDB
    # issuer, the in-memory one): a re-run after a kill mid-chunk reuses the codes the killed run
    # was issued but never recorded, instead of leaving them issued and held by nobody.
    # generate_sms_wave_codes passes `{wave}#{globalUserId}`. Pacman's contract has no such key.
    issue_key: str = ""


@dataclass(frozen=True, slots=True)
class Reservation:
    """Codes held for a campaign under a caller's key; they expire unless assigned.

    `key` is the caller's natural key (e.g. campaign + date key + market for wave prep), so a
    retry with the same key gets the same codes back instead of reserving more.
    """

    key: str
    reserve_id: str
    codes: tuple[str, ...]
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AssignCount:
    """The code service's `{count: {in, updated}}`: codes sent, and codes newly assigned.

    `conflicts` counts codes that belong to another campaign and were left alone (the DynamoDB
    inventory reports them; the code service's contract has no such field, so it stays 0).
    received = updated + already assigned to this campaign + conflicts.
    """

    received: int
    updated: int
    conflicts: int = 0

    def __add__(self, more: AssignCount) -> AssignCount:
        return AssignCount(
            self.received + more.received,
            self.updated + more.updated,
            self.conflicts + more.conflicts,
        )


@dataclass(frozen=True, slots=True)
class IssuedCode:
    """A code issued to one fan of one wave, and the wave row that first held the fan.

    Recorded before the code is written anywhere else, so a re-run reuses it; `row` (1-based
    data row of the wave CSV) tells a later row with the same fan apart as a duplicate.
    """

    code: str
    row: int
