"""The once-ledger in memory (OnceLedger): domain/once.py's rules over a dict, every write a
compare-and-set on the entry's version, as the DynamoDB one does. For workers' unit tests; the
ledger model (tests/support/ledger_model.py) holds it to the same behaviour as DynamoDB's."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from domain.codes import IssuedCode
from domain.issued_codes import OnceIssuedCodes
from domain.once import (
    Done,
    Entry,
    LedgerConflict,
    Outcome,
    Resolution,
    check_dead_owners,
    check_ttl,
    on_claim,
    on_finish,
    on_record,
    on_release,
    on_resolve,
    on_start,
)
from domain.streaming import DependencyUnavailable


class MemoryOnceLedger:
    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._entries: dict[str, Entry] = {}
        self._lock = threading.Lock()
        self.writes = 0

    def _cas(self, key: str, expected: int, new: Entry | None) -> bool:
        """Writes `new` (None: deletes) only if the entry's version is `expected` (0: none)."""
        with self._lock:
            current = self._entries.get(key)
            if (current.version if current else 0) != expected:
                return False
            if new is None:
                del self._entries[key]
            else:
                self._entries[key] = new
            self.writes += 1
            return True

    def _current(self, key: str) -> Entry | None:
        with self._lock:
            return self._entries.get(key)

    def claim(
        self,
        keys: Sequence[str],
        owner: str,
        ttl: timedelta,
        dead_owners: frozenset[str] = frozenset(),
    ) -> Mapping[str, Entry]:
        check_ttl(ttl)
        check_dead_owners(owner, dead_owners)
        answers: dict[str, Entry] = {}
        for key in dict.fromkeys(keys):
            while True:
                current = self._current(key)
                new = on_claim(current, key, owner, self._clock(), ttl, dead_owners)
                if new is None:
                    assert current is not None
                    answers[key] = current
                    break
                if self._cas(key, current.version if current else 0, new):
                    answers[key] = new
                    break
        return answers

    def record(self, results: Mapping[str, Done], owner: str) -> Mapping[str, Entry]:
        answers: dict[str, Entry] = {}
        for key, done in results.items():
            while True:
                current = self._current(key)
                new = on_record(current, key, owner, self._clock(), done)
                if new is None:
                    assert current is not None
                    answers[key] = current
                    break
                if self._cas(key, 0, new):
                    answers[key] = new
                    break
        return answers

    def start(self, entry: Entry) -> Entry:
        new = on_start(entry, entry.key, entry.owner, self._clock())
        if not self._cas(entry.key, entry.version, new):
            raise LedgerConflict(entry.key, "start", self._current(entry.key))
        return new

    def start_many(self, entries: Sequence[Entry]) -> Mapping[str, Entry]:
        answers: dict[str, Entry] = {}
        for entry in entries:
            try:
                answers[entry.key] = self.start(entry)
            except LedgerConflict as conflict:
                if conflict.entry is not None:
                    answers[entry.key] = conflict.entry
        return answers

    def finish(self, settlements: Sequence[tuple[Entry, Outcome]]) -> Mapping[str, Entry]:
        settled: dict[str, Entry] = {}
        for entry, outcome in settlements:
            current: Entry | None = entry
            while True:
                new = on_finish(current, entry.key, entry.owner, outcome)
                if new == current or self._cas(entry.key, current.version if current else 0, new):
                    settled[entry.key] = new
                    break
                current = self._current(entry.key)
        return settled

    def release(self, entry: Entry) -> None:
        on_release(entry, entry.key, entry.owner)
        if not self._cas(entry.key, entry.version, None):
            raise LedgerConflict(entry.key, "release", self._current(entry.key))

    def resolve(self, key: str, resolution: Resolution) -> Entry:
        while True:
            current = self._current(key)
            new = on_resolve(current, key, resolution)
            if self._cas(key, current.version if current else 0, new):
                return new

    def read(self, keys: Sequence[str]) -> Mapping[str, Entry]:
        with self._lock:
            return {k: self._entries[k] for k in keys if k in self._entries}


class MemoryIssuedCodes(OnceIssuedCodes):
    """The issued-code ledger as production has it (OnceIssuedCodes) over a MemoryOnceLedger,
    for the wave workers' unit tests. `fail_next`: that many next calls raise
    DependencyUnavailable; `entries`: (wave, globalUserId) -> the code recorded."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        super().__init__(MemoryOnceLedger(clock), owner="test-run")
        self.fail_next = 0
        self.entries: dict[tuple[str, str], IssuedCode] = {}

    def _trip(self) -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise DependencyUnavailable("memory ledger", "told to fail")

    def recall(self, wave: str, global_user_ids: Sequence[str]) -> Mapping[str, IssuedCode]:
        self._trip()
        return super().recall(wave, global_user_ids)

    def record(self, wave: str, issued: Mapping[str, IssuedCode]) -> Mapping[str, IssuedCode]:
        self._trip()
        held = super().record(wave, issued)
        self.entries.update({(wave, g): code for g, code in held.items()})
        return held
