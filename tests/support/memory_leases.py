"""Leases (domain/ports.py) on a dict, thread-safe: the rules of adapters/leases.ObjectLeases
(one holder per name, a term, taken over once expired, kept by renewing past half-term, taken
over at once from a holder proven dead) for unit tests of the workers that take leases, and a
benchmark of the wave code worker."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from returns.result import Failure, Result, Success

from domain.lease import DEFAULT_LEASE_SECONDS
from domain.models import LeaseHeld
from domain.ports import Clock, Lease


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
        dead: set[str] | None = None,
    ) -> None:
        self.clock, self.holder, self.term = clock, holder, timedelta(seconds=seconds)
        self.table: dict[str, _Held] = {} if table is None else table
        self._lock = lock or threading.Lock()
        # Holders proven dead (ProcLiveness in production): their leases are taken at once.
        self.dead: set[str] = set() if dead is None else dead

    def sharing(self, holder: str) -> MemoryLeases:
        """Another run's view of the same leases."""
        term = self.term.total_seconds()
        return MemoryLeases(self.clock, holder, term, self.table, self._lock, self.dead)

    def kill(self, holder: str) -> None:
        """`holder`'s process is gone, provably (kill -9 on this machine): its leases stay as
        they are (a killed process releases nothing) and are taken over at once."""
        with self._lock:
            self.dead.add(holder)

    def acquire(self, name: str) -> Result[Lease, LeaseHeld]:
        with self._lock:
            now = self.clock.now()
            held = self.table.get(name)
            from_dead: str | None = None
            if held is not None and now < held.expires_at:
                if held.holder not in self.dead:
                    return Failure(LeaseHeld(held.holder, held.expires_at, held.since, name))
                from_dead = held.holder
            mine = _Held(self.holder, now, now + self.term)
            self.table[name] = mine
            return Success(_MemoryLease(self, name, mine, from_dead))


class _MemoryLease:
    def __init__(
        self, leases: MemoryLeases, name: str, held: _Held, from_dead: str | None = None
    ) -> None:
        self.leases, self.name, self.held = leases, name, held
        self._from_dead = from_dead

    @property
    def taken_from_dead(self) -> str | None:
        return self._from_dead

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
            if self.held.holder in self.leases.dead:
                return  # killed: its `finally` never ran
            if self.leases.table.get(self.name) is self.held:
                del self.leases.table[self.name]
