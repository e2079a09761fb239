"""A model-based (hypothesis stateful) test of a OnceLedger: workers claiming (also two at once,
in threads), starting, calling the outside world (which answers, times out, refuses, or the
worker dies before or after the call), finishing, releasing; time passing past claims' expiry;
a worker's next process claiming over its dead predecessor (`claim` naming it dead: the lease proved
that process dead), alone or with the other worker at the same moment; a reconciler resolving
UNKNOWN entries from what really happened.

A plain model of each key's entry (state, owner, expiry, detail) is kept beside the ledger and
compared after every step. The invariants:
- no key's effect ever happens twice (an effect happens only after a successful `start`);
- DONE means the effect happened once; CLAIMED, FAILED or no entry means it did not happen
  (a release or a failure is only recorded by a worker whose call did not act);
- the ledger's entries are the model's.

`build(clock)` makes the ledger under test; subclasses bind it (memory fake, DynamoDB).
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from domain.once import (
    EXPIRED_AFTER_START,
    OWNER_DEAD_AFTER_START,
    Done,
    Entry,
    EntryState,
    Failed,
    LedgerConflict,
    Unsure,
)

WORKERS = ("w1", "w2")
KEYS = ("k1", "k2", "k3")
# Keys of an effect safe to repeat under its own key (a wave's issued codes): only `record`ed.
RECORDED = ("r1", "r2")
TTL = timedelta(seconds=30)
START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
_RUNS = itertools.count()


@dataclass(frozen=True)
class Expected:
    state: EntryState
    owner: str
    expires_at: datetime
    detail: str = ""


class LedgerModel(RuleBasedStateMachine):
    build: Callable[[Callable[[], datetime]], Any]

    def __init__(self) -> None:
        super().__init__()
        self.now = START
        self.ledger = type(self).build(lambda: self.now)
        # Keys unique to this run: a DynamoDB table outlives it.
        self.prefix = f"m{next(_RUNS)}x{id(self)}x"
        self.generation: Counter[str] = Counter()
        self.held: dict[str, dict[str, Entry]] = {w: {} for w in WORKERS}
        self.model: dict[str, Expected] = {}
        self.effects: Counter[str] = Counter()
        self.recorded: dict[str, tuple[str, str]] = {}  # key -> (owner, result) of the first

    def owner(self, worker: str) -> str:
        return f"{self.prefix}{worker}#{self.generation[worker]}"

    def key(self, key: str) -> str:
        return self.prefix + key

    def dead_owner(self, worker: str) -> str | None:
        """The owner of the worker's previous process (crashed: provably dead), if any."""
        generation = self.generation[worker]
        return f"{self.prefix}{worker}#{generation - 1}" if generation else None

    def _expired(self, current: Expected, dead: frozenset[str]) -> bool:
        return current.expires_at <= self.now or current.owner in dead

    def _expect_claim(self, key: str, owner: str, dead: frozenset[str] = frozenset()) -> Expected:
        """The model of a claim: what the entry is afterwards."""
        current = self.model.get(key)
        if current is None or (
            current.state is EntryState.CLAIMED and self._expired(current, dead)
        ):
            return Expected(EntryState.CLAIMED, owner, self.now + TTL)
        if current.state is EntryState.STARTED and self._expired(current, dead):
            why = EXPIRED_AFTER_START if current.expires_at <= self.now else OWNER_DEAD_AFTER_START
            return Expected(EntryState.UNKNOWN, current.owner, current.expires_at, why)
        return current

    def _took(self, worker: str, key: str, entry: Entry) -> None:
        if entry.held_by(self.owner(worker)):
            self.held[worker][key] = entry

    @rule(worker=st.sampled_from(WORKERS), keys=st.lists(st.sampled_from(KEYS), min_size=1))
    def claim(self, worker: str, keys: list[str]) -> None:
        owner = self.owner(worker)
        answers = self.ledger.claim([self.key(k) for k in keys], owner, TTL)
        for key in dict.fromkeys(keys):
            expected = self._expect_claim(key, owner)
            entry = answers[self.key(key)]
            assert (entry.state, entry.owner, entry.detail) == (
                expected.state,
                expected.owner,
                expected.detail,
            ), (key, entry, expected)
            self.model[key] = expected
            self._took(worker, key, entry)

    @precondition(lambda self: any(self.generation.values()))
    @rule(worker=st.sampled_from(WORKERS), keys=st.lists(st.sampled_from(KEYS), min_size=1))
    def claim_over_a_dead_predecessor(self, worker: str, keys: list[str]) -> None:
        """The worker's new process took its dead predecessor's lease at once: that owner's
        entries count as expired for it, nobody else's (an older process's stay live)."""
        dead = self.dead_owner(worker)
        if dead is None:
            return
        owner = self.owner(worker)
        answers = self.ledger.claim([self.key(k) for k in keys], owner, TTL, frozenset({dead}))
        for key in dict.fromkeys(keys):
            expected = self._expect_claim(key, owner, frozenset({dead}))
            entry = answers[self.key(key)]
            got = (entry.state, entry.owner, entry.detail)
            assert got == (expected.state, expected.owner, expected.detail), (key, entry)
            self.model[key] = expected
            self._took(worker, key, entry)

    @precondition(lambda self: any(self.generation.values()))
    @rule(key=st.sampled_from(KEYS), worker=st.sampled_from(WORKERS))
    def both_claim_over_a_dead_run_at_once(self, key: str, worker: str) -> None:
        """Both workers name `worker`'s dead process at the same moment: of two claimers of
        its entry exactly one wins (a compare-and-set on the version read)."""
        dead = self.dead_owner(worker)
        if dead is None:
            return
        owners = [self.owner(w) for w in WORKERS]
        before = self.model.get(key)
        with ThreadPoolExecutor(2) as pool:
            answers = list(
                pool.map(
                    lambda o: self.ledger.claim([self.key(key)], o, TTL, frozenset({dead}))[
                        self.key(key)
                    ],
                    owners,
                )
            )
        winners = [w for w, e in zip(WORKERS, answers, strict=True) if e.held_by(self.owner(w))]
        gone = frozenset({dead})
        if before is None or (before.state is EntryState.CLAIMED and self._expired(before, gone)):
            assert len(winners) == 1, answers
            winner = winners[0]
            self.model[key] = Expected(EntryState.CLAIMED, self.owner(winner), self.now + TTL)
            self.held[winner][key] = next(e for e in answers if e.owner == self.owner(winner))
        else:
            self.model[key] = self._expect_claim(key, owners[0], gone)
            assert not any(
                e.held_by(self.owner(w)) and w not in self._holders(key)
                for w, e in zip(WORKERS, answers, strict=True)
            )
            for w, entry in zip(WORKERS, answers, strict=True):
                self._took(w, key, entry)

    @rule(key=st.sampled_from(KEYS))
    def both_claim_at_once(self, key: str) -> None:
        owners = [self.owner(w) for w in WORKERS]
        before = self.model.get(key)
        with ThreadPoolExecutor(2) as pool:
            answers = list(
                pool.map(
                    lambda o: self.ledger.claim([self.key(key)], o, TTL)[self.key(key)], owners
                )
            )
        winners = [w for w, e in zip(WORKERS, answers, strict=True) if e.held_by(self.owner(w))]
        was_free = before is None or (
            before.state is EntryState.CLAIMED and before.expires_at <= self.now
        )
        if was_free:
            assert len(winners) == 1, answers  # exactly one wins, the other is told who
            winner = winners[0]
            self.model[key] = Expected(EntryState.CLAIMED, self.owner(winner), self.now + TTL)
            self.held[winner][key] = next(e for e in answers if e.owner == self.owner(winner))
        else:
            self.model[key] = self._expect_claim(key, owners[0])
            assert not any(
                e.held_by(self.owner(w)) and w not in self._holders(key)
                for w, e in zip(WORKERS, answers, strict=True)
            )
            for worker, entry in zip(WORKERS, answers, strict=True):
                self._took(worker, key, entry)

    def _holders(self, key: str) -> set[str]:
        current = self.model.get(key)
        return {w for w in WORKERS if current is not None and current.owner == self.owner(w)}

    @rule(worker=st.sampled_from(WORKERS), key=st.sampled_from(KEYS))
    def start(self, worker: str, key: str) -> None:
        entry = self.held[worker].get(key)
        if entry is None or entry.state is not EntryState.CLAIMED:
            return
        current = self.model.get(key)
        may = (
            current is not None
            and current.state is EntryState.CLAIMED
            and current.owner == entry.owner
            and current.expires_at > self.now
        )
        try:
            started = self.ledger.start(entry)
        except LedgerConflict:
            assert not may, (key, current)
            del self.held[worker][key]
            return
        assert may, (key, current)
        assert current is not None
        self.model[key] = Expected(EntryState.STARTED, entry.owner, current.expires_at)
        self.held[worker][key] = started

    @rule(worker=st.sampled_from(WORKERS), keys=st.lists(st.sampled_from(KEYS), min_size=1))
    def start_many(self, worker: str, keys: list[str]) -> None:
        """A sender's group started in one call: each key started where the worker's claim is
        live, the others answered as they are (taken over, lapsed), none an error."""
        claimed = {
            k: e
            for k in dict.fromkeys(keys)
            if (e := self.held[worker].get(k)) is not None and e.state is EntryState.CLAIMED
        }
        if not claimed:
            return
        answers = self.ledger.start_many(list(claimed.values()))
        for key, entry in claimed.items():
            current = self.model.get(key)
            may = (
                current is not None
                and current.state is EntryState.CLAIMED
                and current.owner == entry.owner
                and current.expires_at > self.now
            )
            answer = answers.get(self.key(key))
            if not may:
                assert answer is None or not (
                    answer.state is EntryState.STARTED
                    and answer.owner == entry.owner
                    and answer.version > entry.version
                ), (key, answer, current)
                del self.held[worker][key]
                continue
            assert current is not None and answer is not None, (key, current)
            assert (answer.state, answer.owner) == (EntryState.STARTED, entry.owner), answer
            self.model[key] = Expected(EntryState.STARTED, entry.owner, current.expires_at)
            self.held[worker][key] = answer

    @rule(
        worker=st.sampled_from(WORKERS),
        key=st.sampled_from(KEYS),
        answer=st.sampled_from(
            [
                "sent",
                "timed out",
                "refused: release",
                "refused: failed",
                "died before",
                "died after",
            ]
        ),
    )
    def call(self, worker: str, key: str, answer: str) -> None:
        """The outside world, called only on a started entry the worker holds."""
        entry = self.held[worker].get(key)
        if entry is None or entry.state is not EntryState.STARTED:
            return
        if entry.expires_at <= self.now:
            # Past its claim's expiry a worker does not call (its calls' timeout is well under
            # the ttl): it gives the key back, or records that it did not act.
            del self.held[worker][key]
            self._give_back(key, entry)
            return
        if answer in ("sent", "timed out", "died after"):
            self.effects[key] += 1
        if answer.startswith("died"):
            self.crash(worker)
            return
        del self.held[worker][key]
        if answer == "refused: release":
            self._give_back(key, entry)
            return
        outcomes: dict[str, Done | Failed | Unsure] = {
            "sent": Done(f"msg-{key}"),
            "timed out": Unsure("timed out"),
            "refused: failed": Failed("refused"),
        }
        outcome = outcomes[answer]
        self._finish(key, entry, outcome)

    def _give_back(self, key: str, entry: Entry) -> None:
        """Release when the worker's start stands; once turned UNKNOWN the key is no longer
        the worker's to give back: it records FAILED instead (it knows it did not act)."""
        if self.model[key].state is EntryState.STARTED:
            self.ledger.release(entry)
            del self.model[key]
            return
        try:
            self.ledger.release(entry)
        except LedgerConflict:
            pass
        else:
            raise AssertionError("released an entry that is not held")
        self._finish(key, entry, Failed("not sent"))

    def _finish(self, key: str, entry: Entry, outcome: Done | Failed | Unsure) -> None:
        current = self.model[key]
        settled = self.ledger.finish([(entry, outcome)])[self.key(key)]
        if current.state in (EntryState.DONE, EntryState.FAILED):
            assert settled.state is current.state
            return
        state = {Done: EntryState.DONE, Failed: EntryState.FAILED, Unsure: EntryState.UNKNOWN}[
            type(outcome)
        ]
        detail = outcome.result if isinstance(outcome, Done) else outcome.reason
        if current.state is EntryState.UNKNOWN and isinstance(outcome, Unsure):
            detail = current.detail
        self.model[key] = Expected(state, current.owner, current.expires_at, detail)
        assert (settled.state, settled.detail) == (state, detail)

    @rule(worker=st.sampled_from(WORKERS))
    def crash(self, worker: str) -> None:
        """The worker dies: what it held is forgotten, a new process has a new owner id."""
        self.held[worker].clear()
        self.generation[worker] += 1

    @rule(seconds=st.sampled_from([1, 20, 31]))
    def time_passes(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @precondition(lambda self: any(e.state is EntryState.UNKNOWN for e in self.model.values()))
    @rule(data=st.data())
    def reconcile(self, data: st.DataObject) -> None:
        """An outside lookup says whether the effect happened."""
        unknown = sorted(k for k, e in self.model.items() if e.state is EntryState.UNKNOWN)
        key = data.draw(st.sampled_from(unknown))
        resolution = Done(f"found-{key}") if self.effects[key] else Failed("never arrived")
        entry = self.ledger.resolve(self.key(key), resolution)
        current = self.model[key]
        state = EntryState.DONE if self.effects[key] else EntryState.FAILED
        detail = resolution.result if isinstance(resolution, Done) else resolution.reason
        self.model[key] = Expected(state, current.owner, current.expires_at, detail)
        assert (entry.state, entry.detail) == (state, detail)

    @rule(
        worker=st.sampled_from(WORKERS),
        keys=st.lists(st.sampled_from(RECORDED), min_size=1, unique=True),
        result=st.sampled_from(["0012345", "B", "C"]),
    )
    def record(self, worker: str, keys: list[str], result: str) -> None:
        """The first record of a key wins, whoever comes later gets it back."""
        owner = self.owner(worker)
        answers = self.ledger.record({self.key(k): Done(result) for k in keys}, owner)
        for key in keys:
            self.recorded.setdefault(key, (owner, result))
            entry = answers[self.key(key)]
            assert (entry.state, (entry.owner, entry.detail)) == (
                EntryState.DONE,
                self.recorded[key],
            )

    @rule(key=st.sampled_from(RECORDED), results=st.lists(st.sampled_from("XYZ"), min_size=2))
    def record_at_once(self, key: str, results: list[str]) -> None:
        """Several runs record one key at the same moment (threads): one result wins for all."""
        barrier = threading.Barrier(len(results))
        answers: list[Entry] = []

        def run(i: int, result: str) -> None:
            barrier.wait()
            found = self.ledger.record({self.key(key): Done(result)}, f"{self.prefix}r{i}")
            answers.append(found[self.key(key)])

        threads = [threading.Thread(target=run, args=ir) for ir in enumerate(results)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        won = {(e.owner, e.detail) for e in answers}
        assert len(won) == 1, won
        if key in self.recorded:
            assert won == {self.recorded[key]}
        self.recorded.setdefault(key, won.pop())

    @invariant()
    def recorded_entries_are_the_first_records(self) -> None:
        found = self.ledger.read([self.key(k) for k in RECORDED])
        actual = {k: (e.owner, e.detail) for k in RECORDED if (e := found.get(self.key(k)))}
        assert actual == self.recorded

    @invariant()
    def no_effect_happens_twice(self) -> None:
        assert all(n <= 1 for n in self.effects.values()), self.effects

    @invariant()
    def the_ledger_is_the_model(self) -> None:
        found = self.ledger.read([self.key(k) for k in KEYS])
        actual = {
            k: (e.state, e.owner, e.detail)
            for k in KEYS
            if (e := found.get(self.key(k))) is not None
        }
        expected = {k: (e.state, e.owner, e.detail) for k, e in self.model.items()}
        assert actual == expected

    @invariant()
    def a_settled_entry_says_what_happened(self) -> None:
        for key in KEYS:
            entry = self.model.get(key)
            if entry is None or entry.state in (EntryState.CLAIMED, EntryState.FAILED):
                assert self.effects[key] == 0, (key, entry)
            elif entry.state is EntryState.DONE:
                assert self.effects[key] == 1, (key, entry)
