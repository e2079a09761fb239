"""Hand-written fakes for sending a wave: an SMS gateway that answers from a script and records
every text it accepted (or may have accepted), an email queue, a clock whose time moves only
when someone sleeps (wall and monotonic together), and a wave written into an in-memory store."""

from __future__ import annotations

import asyncio
import csv
import heapq
import io
import itertools
import json
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.sms.pacer import ThrottlePacer
from adapters.sms.runner import SerialTaskRunner
from domain.models import ObjectRef
from domain.ports import TaskRunner
from domain.sms import COLUMNS, Accepted, EmailRequest, SmsAnswer, SmsMessage
from domain.waves import wave_csv_key
from domain.workers.sms_wave_send import SendOptions, SendPorts, config_key
from tests.support.memory_leases import MemoryLeases
from tests.support.memory_ledger import MemoryOnceLedger
from tests.support.memory_objects import InMemoryObjectStore

BUCKET = "scoring"
START = datetime(2024, 5, 1, 12, tzinfo=UTC)


class SteppingClock:
    """Monotonic seconds and a UTC wall clock that move together, only when slept."""

    def __init__(self) -> None:
        self.t = 0.0
        self.lock = threading.Lock()
        self._sleepers: list[tuple[float, int]] = []
        self._order = itertools.count()

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.t += max(0.0, seconds)

    async def sleep_async(self, seconds: float) -> None:
        # Coroutines' sleeps overlap, as on a real clock: each wakes at its own time, the
        # earliest first (a heap of wake times). Adding each sleep to the time, or waking in
        # the order they slept, would wake an earlier sleeper late, at someone else's time.
        me = (self.t + max(0.0, seconds), next(self._order))
        heapq.heappush(self._sleepers, me)
        try:
            await asyncio.sleep(0)  # the coroutines ready now run (and sleep) first
            while self._sleepers[0] != me:
                await asyncio.sleep(0)
            with self.lock:
                self.t = max(self.t, me[0])
        finally:
            self._sleepers.remove(me)
            heapq.heapify(self._sleepers)

    def now(self) -> datetime:
        return START + timedelta(seconds=self.t)

    def advance(self, seconds: float) -> None:
        self.sleep(seconds)


@dataclass
class FakeGateway:
    """Answers from `script(message, attempt)` (default: accepted). `delivered` holds every
    number whose text may have gone (accepted or no answer: the provider got it)."""

    clock: SteppingClock
    script: Callable[[SmsMessage, int], SmsAnswer] | None = None
    delivered: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    calls: list[tuple[float, int]] = field(default_factory=list)  # (time, parts)
    attempts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    in_flight: int = 0
    most_in_flight: int = 0
    before_answer: Callable[[SmsMessage], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, message: SmsMessage) -> SmsAnswer:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            attempt = self.attempts[message.key]
            self.attempts[message.key] += 1
            self.calls.append((self.clock.monotonic(), message.parts))
        try:
            answer = self.script(message, attempt) if self.script else Accepted(f"m-{message.key}")
            if type(answer).__name__ in ("Accepted", "NoAnswer"):
                with self.lock:
                    self.delivered[message.to] += 1
            if self.before_answer is not None:
                self.before_answer(message)
            return answer
        finally:
            with self.lock:
                self.in_flight -= 1

    async def send_async(self, message: SmsMessage) -> SmsAnswer:
        """For AsyncTaskRunner: the call is made (and timed) now, its answer comes after
        other coroutines had their turn, so calls interleave."""
        answer = self.send(message)
        await asyncio.sleep(0)
        return answer

    async def aclose(self) -> None:
        pass


@dataclass
class FakeEmailQueue:
    max_batch: int = 10
    sent: list[EmailRequest] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)

    def send(self, requests: Sequence[EmailRequest]) -> Mapping[str, str | None]:
        assert len(requests) <= self.max_batch
        self.batches.append(len(requests))
        self.sent.extend(requests)
        return {r.dedupe_id: f"q-{r.dedupe_id[:8]}" for r in requests}


def wave_csv(rows: Sequence[Mapping[str, str]], *, bom: bool = True, crlf: bool = True) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\r\n" if crlf else "\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row.get(c, "") for c in COLUMNS})
    return (b"\xef\xbb\xbf" if bom else b"") + buffer.getvalue().encode()


def fan(n: int, **values: str) -> dict[str, str]:
    row = {
        "globalUserId": f"fan{n}",
        "mobileNumber": f"+1212555{n:04d}",
        "email": f"fan{n}@example.com",
        "smsText": f"Your code is C{n}",
        "doNotText": "FALSE",
        "code": f"C{n}",
    }
    row.update(values)
    return row


def put_wave(
    store: InMemoryObjectStore,
    wave: str,
    rows: Sequence[Mapping[str, str]],
    config: Mapping[str, Any] | None = None,
    state: str = "triggered",
) -> None:
    store.put_bytes(ObjectRef(BUCKET, wave_csv_key(wave)), wave_csv(rows))
    body = {"notifyDate": "2024-05-01T10:00:00Z", "campaignId": "c1", **(config or {})}
    store.put_bytes(ObjectRef(BUCKET, config_key(state, wave)), json.dumps(body).encode())


@dataclass
class SendWorld:
    clock: SteppingClock = field(default_factory=SteppingClock)
    store: InMemoryObjectStore = field(default_factory=InMemoryObjectStore)
    ledger: MemoryOnceLedger | None = None
    leases: MemoryLeases | None = None
    emails: FakeEmailQueue = field(default_factory=FakeEmailQueue)
    gateway: FakeGateway | None = None

    def __post_init__(self) -> None:
        self.ledger = self.ledger or MemoryOnceLedger(self.clock.now)
        self.leases = self.leases or MemoryLeases(self.clock, "run-1")
        self.gateway = self.gateway or FakeGateway(self.clock)

    def ports(
        self,
        *,
        rate: float | None = None,
        cap: int = 200,
        runner: TaskRunner | None = None,
        holder: str = "run-1",
    ) -> SendPorts:
        assert self.ledger and self.leases and self.gateway
        return SendPorts(
            store=self.store,
            ledger=self.ledger,
            gateway=self.gateway,
            emails=self.emails,
            runner=runner or SerialTaskRunner(),
            pacer=ThrottlePacer(rate, cap, self.clock, burst=6 if rate else None),
            leases=self.leases.sharing(holder),
            monotonic=self.clock,
        )

    @staticmethod
    def options(owner: str = "run-1", **kwargs: Any) -> SendOptions:
        return SendOptions(bucket=BUCKET, owner=owner, **kwargs)
