"""One wave of a campaign at a time between reading the selection ledger and recording its own
selection (issue 17 item 2): two waves on different date keys started at the same moment both
read the ledger before either had recorded, and both chose the same top fans.

The span is guarded by a campaign-wide lease (the Leases port; production: an S3 object written
with conditional puts, domain/lease.py). A wave that finds it held waits its turn, polling, up to
`wait` or half of the time its invocation has left, whichever is sooner (the other half is for
its own run: a wave killed by its Lambda timeout while waiting would have spent its attempt);
then it is refused as busy, naming the holder, without spending an attempt. A crashed holder's
lease is taken over after its term.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from returns.result import Failure, Result, Success

from domain.models import LeaseHeld
from domain.ports import Clock, Lease, Leases

# The campaign-wide lease over a wave's selection, one object per campaign id.
SELECTION_LEASE_PREFIX = "wavePrep/selectionLeases/"
# A campaign's widest wave reads ~2 M fans in ~30 s of CPU: five minutes covers a queue of a few.
DEFAULT_WAIT = timedelta(minutes=5)
# One conditional read a second while waiting: the holder's release is seen within a second.
DEFAULT_POLL = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class SelectionTurns:
    """How a wave takes its campaign's selection lease: `leases` keyed by campaign id, `sleep`
    between polls (injected: tests advance a fake clock instead of waiting)."""

    leases: Leases
    sleep: Callable[[float], None]
    wait: timedelta = DEFAULT_WAIT
    poll: timedelta = DEFAULT_POLL

    def give_up_at(self, now: datetime, deadline: datetime | None) -> datetime:
        """When a wave stops waiting: after `wait`, or half of what is left before `deadline`
        (the invocation's end), whichever is sooner."""
        limit = now + self.wait
        if deadline is not None:
            limit = min(limit, now + max(deadline - now, timedelta(0)) / 2)
        return limit

    def take(
        self, campaign_id: str, clock: Clock, deadline: datetime | None
    ) -> Result[Lease, LeaseHeld]:
        """The campaign's lease, once no other wave holds it; or who held it at the give-up."""
        give_up = self.give_up_at(clock.now(), deadline)
        while True:
            match self.leases.acquire(campaign_id):
                case Success(lease):
                    return Success(lease)
                case Failure(held):
                    left = (give_up - clock.now()).total_seconds()
                    if left <= 0:
                        return Failure(held)
                    self.sleep(min(self.poll.total_seconds(), left))


def busy_message(campaign_id: str, held: LeaseHeld) -> str:
    since = "" if held.since is None else f" since {held.since:%Y-%m-%dT%H:%M:%SZ}"
    return (
        f"another wave of campaign {campaign_id} ({held.holder}) is selecting fans{since}, "
        f"its lease running until {held.expires_at:%Y-%m-%dT%H:%M:%SZ}; nothing was selected "
        "or reserved and no attempt was spent: trigger this wave again"
    )
