"""Doing an effect once (a text sent, a code issued): the rules of the once-ledger's entries.

An entry is keyed by the effect's natural id (say `sms#{campaign}#{wave}#{fan}`) and moves:

    (none) --claim--> CLAIMED(owner, expiry) --start--> STARTED --finish--> DONE(result)
                                                                         | FAILED(reason)
                                                                         | UNKNOWN(reason)

- CLAIMED: `owner` holds the entry until `expires_at`; nothing has been attempted. An expired
  claim (its owner died before starting) is taken over by the next claimer.
- A claimer may name `dead_owners`: owners it has proof are dead (the holder of the lease it
  took over early because that process was proven gone: domain/lease.py). Their entries count
  as expired for this claim, under the same rules (CLAIMED taken over, STARTED turned UNKNOWN),
  so a re-run after a kill -9 does not skip the dead run's claims until their expiry. Only
  exact owner names: never a live owner (a claimer naming itself is refused).
- STARTED: the owner recorded "attempt started" *before* calling the outside world. From here
  the effect may have happened. An expired STARTED entry is never taken over: the next claimer
  turns it UNKNOWN (the owner died between the call and the record) and does not act.
- DONE (with what the effect returned: a provider's message id), FAILED (with a reason: it did
  not happen and will not be tried under this key) and UNKNOWN are settled: claims answer them.
- UNKNOWN is reported, and reconciled to DONE or FAILED from an outside lookup (a delivery
  receipt) with `resolve`; the owner that made the call may also settle it when its answer comes
  after all (a slow provider), since it knows what happened.
- `record`: an effect that is safe to repeat under its own key (an issuer that keeps issue
  keys returns the same code to the same key) needs no claim and no start: its result is
  written DONE at once, only where the key has no entry, and the first record wins (the issued
  codes of a wave: domain/issued_codes.py).
- `release`: the owner gives the key back (deleted), only when it knows the effect did not happen
  (it never started, or the provider refused before acting, e.g. throttling): the key can be
  claimed again at once.

Every change writes `version + 1` conditionally on the version read (a compare-and-set), so two
writers never both win a transition; these functions decide the transitions, storage only
compares and sets (adapters/aws/dynamo_ledger.py, tests/support/memory_ledger.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum


class EntryState(StrEnum):
    CLAIMED = "claimed"
    STARTED = "started"
    DONE = "done"
    FAILED = "failed"
    UNKNOWN = "unknown"


SETTLED = frozenset({EntryState.DONE, EntryState.FAILED, EntryState.UNKNOWN})
HELD = frozenset({EntryState.CLAIMED, EntryState.STARTED})
_FINAL = frozenset({EntryState.DONE, EntryState.FAILED})


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    state: EntryState
    owner: str
    expires_at: datetime
    version: int
    # DONE: what the effect returned; FAILED / UNKNOWN: why (never a phone or a message body).
    detail: str = ""

    def held_by(self, owner: str) -> bool:
        return self.state in HELD and self.owner == owner


@dataclass(frozen=True, slots=True)
class Done:
    result: str


@dataclass(frozen=True, slots=True)
class Failed:
    reason: str


@dataclass(frozen=True, slots=True)
class Unsure:
    """The owner's call ended without an answer (a timeout): the effect may have happened."""

    reason: str


Outcome = Done | Failed | Unsure
Resolution = Done | Failed

# Why an entry became UNKNOWN when its owner vanished after starting.
EXPIRED_AFTER_START = "claim expired after its attempt started"
# ... when its owner was proven dead (a run killed on this machine) before its claim expired.
OWNER_DEAD_AFTER_START = "its run died after its attempt started"


class LedgerConflict(Exception):
    """A transition the entry's state does not allow (a caller's bug, or a claim lost to
    expiry): names the key and the states, never what the effect carried."""

    def __init__(self, key: str, wanted: str, entry: Entry | None) -> None:
        found = "no entry" if entry is None else f"{entry.state} by {entry.owner!r}"
        super().__init__(f"once-ledger entry {key!r}: cannot {wanted}: it is {found}")
        self.key, self.entry = key, entry


def check_ttl(ttl: timedelta) -> None:
    if ttl <= timedelta(0):
        raise ValueError(f"a claim's ttl must be positive, got {ttl}")


def check_dead_owners(owner: str, dead_owners: frozenset[str]) -> None:
    if owner in dead_owners:
        raise ValueError(f"a claimer cannot name itself dead: {owner!r}")


def on_claim(
    current: Entry | None,
    key: str,
    owner: str,
    now: datetime,
    ttl: timedelta,
    dead_owners: frozenset[str] = frozenset(),
) -> Entry | None:
    """The entry to write for `owner`'s claim, or None when the claim changes nothing (the
    entry is held by someone whose claim is live, held by `owner` already, or settled). An
    entry held by one of `dead_owners` (proven dead) counts as expired."""
    if current is None:
        return Entry(key, EntryState.CLAIMED, owner, now + ttl, 1)
    expired = current.expires_at <= now or current.owner in dead_owners
    if current.state in SETTLED or not expired:
        return None
    if current.state is EntryState.STARTED:
        # Its owner may have made the call: acting again could make a second effect.
        return replace(
            current,
            state=EntryState.UNKNOWN,
            version=current.version + 1,
            detail=EXPIRED_AFTER_START if current.expires_at <= now else OWNER_DEAD_AFTER_START,
        )
    return Entry(key, EntryState.CLAIMED, owner, now + ttl, current.version + 1)


def on_record(
    current: Entry | None, key: str, owner: str, now: datetime, done: Done
) -> Entry | None:
    """DONE with `done`'s result where the key has no entry; None (the entry as it is stands)
    otherwise: the first record wins, whoever wrote it."""
    if current is None:
        return Entry(key, EntryState.DONE, owner, now, 1, done.result)
    return None


def on_start(current: Entry | None, key: str, owner: str, now: datetime) -> Entry:
    """STARTED, from `owner`'s live claim. Raises LedgerConflict otherwise: an expired claim
    may be taken over at any moment, so the attempt must not begin."""
    if (
        current is None
        or current.state is not EntryState.CLAIMED
        or current.owner != owner
        or current.expires_at <= now
    ):
        raise LedgerConflict(key, f"start for {owner!r}", current)
    return replace(current, state=EntryState.STARTED, version=current.version + 1)


def on_finish(current: Entry | None, key: str, owner: str, outcome: Outcome) -> Entry:
    """The owner's outcome. DONE and UNKNOWN only after STARTED (an effect without a recorded
    start could be repeated by a takeover); FAILED from CLAIMED too (decided not to act). The
    owner may also settle its own entry after it was turned UNKNOWN (its answer came late);
    one already DONE or FAILED stays as it is (returned unchanged: nothing to write)."""
    if current is not None and current.owner == owner and current.state in _FINAL:
        return current  # settled already (a reconciliation came first): the record stands
    allowed = {EntryState.STARTED, EntryState.UNKNOWN}
    if isinstance(outcome, Failed):
        allowed.add(EntryState.CLAIMED)
    if current is None or current.owner != owner or current.state not in allowed:
        raise LedgerConflict(key, f"record {type(outcome).__name__} for {owner!r}", current)
    if current.state is EntryState.UNKNOWN and isinstance(outcome, Unsure):
        return current
    return _settled(current, outcome)


def on_resolve(current: Entry | None, key: str, resolution: Resolution) -> Entry:
    """Reconciles an UNKNOWN entry from what the outside world says."""
    if current is None or current.state is not EntryState.UNKNOWN:
        raise LedgerConflict(key, "resolve", current)
    return _settled(current, resolution)


def on_release(current: Entry | None, key: str, owner: str) -> None:
    """Checks that `owner` may give the key back (it holds it); raises LedgerConflict."""
    if current is None or not current.held_by(owner):
        raise LedgerConflict(key, f"release for {owner!r}", current)


def _settled(current: Entry, outcome: Outcome) -> Entry:
    if isinstance(outcome, Done):
        state, detail = EntryState.DONE, outcome.result
    elif isinstance(outcome, Failed):
        state, detail = EntryState.FAILED, outcome.reason
    else:
        state, detail = EntryState.UNKNOWN, outcome.reason
    return replace(current, state=state, detail=detail, version=current.version + 1)
