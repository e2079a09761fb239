"""sms_wave_send's rules under generated waves, answers and crashes, with a fake clock: no
one-second window above the rate, the cap on calls in flight never exceeded, every registrant
in exactly one outcome per channel, and after a crash anywhere and a re-run every fan with a
number got at most one text, exactly one unless its entry says unknown."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Success

from adapters.sms.runner import AsyncTaskRunner, SerialTaskRunner, ThreadTaskRunner
from domain.models import ObjectRef
from domain.once import HELD, EntryState
from domain.ports import TaskRunner
from domain.sms import Accepted, NoAnswer, OptedOut, Refused, SmsMessage, Throttled
from domain.workers.sms_wave_send import SendInput, config_key, sms_wave_send
from tests.support.sms_fakes import BUCKET, SendWorld, fan, put_wave

texts = st.sampled_from(["hi", "a" * 200, "a" * 159 + "\u2019", "€" * 100, "x" * 400])
answers = st.sampled_from(["ok", "ok", "ok", "opted", "refused", "noanswer", "throttle"])
# Every rule holds whichever runner drives the sends: one at a time, or on one event loop.
runners = pytest.mark.parametrize(
    "runner",
    [SerialTaskRunner(), AsyncTaskRunner(), AsyncTaskRunner(step_threads=3)],
    ids=["serial", "asyncio", "asyncio-steps-in-threads"],
)


def world_with(rows: list[dict[str, str]], script: dict[str, str]) -> SendWorld:
    world = SendWorld()
    put_wave(world.store, "w", rows)

    def answer(message: SmsMessage, attempt: int) -> Any:
        kind = script.get(message.key, "ok")
        if kind == "throttle" and attempt < 2:
            return Throttled("429")
        return {
            "opted": OptedOut(),
            "refused": Refused("bad"),
            "noanswer": NoAnswer("timeout"),
        }.get(kind, Accepted(f"id-{message.key}"))

    assert world.gateway is not None
    world.gateway.script = answer
    return world


def worst_second(calls: list[tuple[float, int]]) -> int:
    return max(sum(p for t, p in calls if s <= t < s + 1.0) for s, _ in calls)


@runners
@given(st.lists(st.tuples(texts, answers), min_size=1, max_size=40), st.integers(6, 20))
def test_no_one_second_window_holds_more_parts_than_the_rate(
    runner: TaskRunner, fans: list[tuple[str, str]], rate: int
) -> None:
    rows = [fan(n, smsText=text) for n, (text, _) in enumerate(fans)]
    world = world_with(rows, {f"sms#w#fan{n}": a for n, (_, a) in enumerate(fans)})
    result = sms_wave_send(
        SendInput("w"), ports=world.ports(rate=rate, cap=4, runner=runner), options=world.options()
    )
    assert isinstance(result, Success)
    assert world.gateway is not None
    assert worst_second(world.gateway.calls) <= rate


@runners
@settings(max_examples=40)
@given(
    st.lists(
        st.tuples(answers, st.booleans(), st.booleans(), st.sampled_from(["", "TRUE", "x"])),
        min_size=1,
        max_size=40,
    ),
    st.sampled_from(["both", "email-on-sms-failure"]),
    st.integers(1, 7),
)
def test_every_registrant_lands_in_exactly_one_outcome_per_channel(
    runner: TaskRunner, fans: list[tuple[str, bool, bool, str]], channels: str, chunk: int
) -> None:
    rows = []
    for n, (_, phone, email, flag) in enumerate(fans):
        row = fan(n, doNotText=flag)
        if not phone:
            row["mobileNumber"] = ""
        if not email:
            row["email"] = ""
        rows.append(row)
    world = world_with(rows, {f"sms#w#fan{n}": f[0] for n, f in enumerate(fans)})
    put_wave(world.store, "w", rows, {"channels": channels})
    result = sms_wave_send(
        SendInput("w"),
        ports=world.ports(runner=runner),
        options=world.options(chunk_rows=chunk),
    )
    assert isinstance(result, Success)
    count = result.unwrap().to_json()["count"]
    bad = sum(1 for f in fans if f[3] == "x")
    registrants = len(fans) - bad
    assert count["total"] == len(fans) == count["ok"] + count["failed"]
    assert sum(count["detail"]["sms"].values()) == registrants
    assert sum(count["detail"]["email"].values()) == registrants
    assert len(count["rejected"]) == bad


def test_the_cap_on_calls_in_flight_is_reached_and_never_exceeded() -> None:
    """A gateway that holds each call until `cap` calls are in flight at once (a barrier):
    the wave completes only if the sender keeps `cap` in flight, and never more."""
    cap = 8
    world = SendWorld()
    put_wave(world.store, "w", [fan(n) for n in range(cap * 6)])
    barrier = threading.Barrier(cap, timeout=10)
    assert world.gateway is not None
    world.gateway.before_answer = lambda _: barrier.wait()  # type: ignore[assignment,return-value]
    result = sms_wave_send(
        SendInput("w"),
        ports=world.ports(cap=cap, runner=ThreadTaskRunner()),
        options=world.options(in_flight=cap * 4, chunk_rows=5),
    )
    assert isinstance(result, Success), result
    assert world.gateway.most_in_flight == cap
    assert result.unwrap().counts.sms["sent"] == cap * 6


def test_the_cap_holds_on_the_event_loop_too() -> None:
    """AsyncTaskRunner: each call waits at a barrier of `cap` coroutines; the wave completes
    only if `cap` calls are in flight at once, and the count never goes above it."""
    cap = 8
    world = SendWorld()
    put_wave(world.store, "w", [fan(n) for n in range(cap * 6)])
    assert world.gateway is not None
    gateway = world.gateway
    barrier: list[asyncio.Barrier] = []

    async def send_async(message: SmsMessage) -> Any:
        if not barrier:
            barrier.append(asyncio.Barrier(cap))
        with gateway.lock:
            gateway.in_flight += 1
            gateway.most_in_flight = max(gateway.most_in_flight, gateway.in_flight)
        await asyncio.wait_for(barrier[0].wait(), 10)
        gateway.in_flight -= 1
        return Accepted(f"m-{message.key}")

    gateway.send_async = send_async  # type: ignore[method-assign]
    result = sms_wave_send(
        SendInput("w"),
        ports=world.ports(cap=cap, runner=AsyncTaskRunner()),
        options=world.options(in_flight=cap * 4, chunk_rows=5),
    )
    assert isinstance(result, Success), result
    assert gateway.most_in_flight == cap
    assert result.unwrap().counts.sms["sent"] == cap * 6


class SyncOnly:
    """A gateway with a blocking `send` only (End User Messaging, SNS: botocore)."""

    def __init__(self, gateway: Any) -> None:
        self.send = gateway.send


def test_the_event_loop_runner_sends_through_a_blocking_gateway_in_threads() -> None:
    world = world_with([fan(n) for n in range(30)], {"sms#w#fan3": "throttle"})
    ports = world.ports(cap=5, runner=AsyncTaskRunner())
    ports.gateway = SyncOnly(world.gateway)  # type: ignore[assignment]

    result = sms_wave_send(SendInput("w"), ports=ports, options=world.options(chunk_rows=7))

    assert isinstance(result, Success), result
    assert result.unwrap().counts.sms["sent"] == 30
    assert world.gateway is not None
    assert all(n == 1 for n in world.gateway.delivered.values())
    assert len(world.gateway.delivered) == 30


class Crash(BaseException):
    """kill -9: nothing after it runs, not even an except Exception."""


@runners
@settings(max_examples=60)
@given(
    st.integers(2, 25),
    st.sampled_from(["before_call", "after_call", "ledger_finish", "ledger_start", "email"]),
    st.integers(0, 24),
    st.lists(answers, min_size=25, max_size=25),
    st.booleans(),
)
def test_a_crash_anywhere_and_a_rerun_text_every_fan_at_most_once(
    runner: TaskRunner, fans: int, where: str, at: int, script: list[str], proven_dead: bool
) -> None:
    """The re-run comes after the killed run's lease and claims lapse, or (`proven_dead`: a
    kill -9 on this machine) at once: then the dead run's claims count as expired for it, and
    it leaves none of them held (skipped as held_by_another_run) for a later run."""
    at = at % fans
    world = world_with(
        [fan(n) for n in range(fans)], {f"sms#w#fan{n}": script[n] for n in range(fans)}
    )
    assert world.gateway is not None and world.ledger is not None
    victim = f"sms#w#fan{at}"
    gateway, ledger, leases = world.gateway, world.ledger, world.leases
    assert leases is not None
    original_send, original_start, original_finish = gateway.send, ledger.start_many, ledger.finish

    def die() -> Crash:
        if proven_dead:  # kill -9 on this machine: the lease stays, its holder provably gone
            leases.kill("run-1")
        return Crash()

    def send(message: SmsMessage) -> Any:
        if where == "before_call" and message.key == victim:
            raise die()
        answer = original_send(message)
        if where == "after_call" and message.key == victim:
            raise die()
        return answer

    def start(entries: Any) -> Any:
        # The group's starts written, then killed before any of its calls: every one unknown
        started = original_start(entries)
        if where == "ledger_start" and any(e.key == victim for e in entries):
            raise die()
        return started

    def finish(settlements: Any) -> Any:
        if where in ("ledger_finish", "email") and any(
            e.key == (victim if where == "ledger_finish" else f"email#w#fan{at}")
            for e, _ in settlements
        ):
            raise die()
        return original_finish(settlements)

    gateway.send = send  # type: ignore[method-assign]
    ledger.start_many = start  # type: ignore[method-assign]
    ledger.finish = finish  # type: ignore[method-assign]
    with contextlib.suppress(Crash):
        sms_wave_send(SendInput("w"), ports=world.ports(runner=runner), options=world.options())
    gateway.send, ledger.start_many, ledger.finish = original_send, original_start, original_finish  # type: ignore[method-assign]
    # Not proven dead: the killed run's lease and claims lapse; a new process runs it again.
    if not proven_dead:
        world.clock.advance(3600)
    ref = ObjectRef(BUCKET, config_key("triggered", "w"))
    if ref not in world.store.objects:
        world.store.put_bytes(ref, b"{}")
    again = sms_wave_send(
        SendInput("w"),
        ports=world.ports(holder="run-2", runner=runner),
        options=world.options("run-2"),
    )
    assert not isinstance(again, Failure), again
    entries = ledger.read([f"sms#w#fan{n}" for n in range(fans)])
    for n in range(fans):
        number = f"+1212555{n:04d}"
        texts_sent = gateway.delivered.get(number, 0)
        assert texts_sent <= 1
        entry = entries[f"sms#w#fan{n}"]
        if entry.state is not EntryState.UNKNOWN and script[n] in ("ok", "throttle"):
            assert texts_sent == 1, (n, entry)
    counts = again.unwrap().counts
    assert sum(counts.sms.values()) == fans
    assert counts.sms["unknown"] == sum(
        1 for e in entries.values() if e.state is EntryState.UNKNOWN
    )
    assert not [e for e in entries.values() if e.state in HELD]  # none left to a later run
