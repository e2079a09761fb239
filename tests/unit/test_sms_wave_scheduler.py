"""sms_wave_scheduler over the in-memory store: due waves triggered and started once, even when
a second scheduler runs in the middle of the first; bad configs failed once, with the reason."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from adapters.clock import FixedClock
from domain.models import ObjectRef
from domain.streaming import DependencyUnavailable
from domain.waves import wave_csv_key
from domain.workers.sms_wave_scheduler import execution_name, sms_wave_scheduler
from tests.support.memory_objects import InMemoryObjectStore

B = "scoring"
NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


@dataclass
class Starter:
    """Records starts by execution name (idempotent, as STANDARD Step Functions)."""

    started: dict[str, int] = field(default_factory=dict)
    during: Callable[[], None] | None = None
    down: bool = False

    def start(self, wave: str) -> str:
        if self.down:
            raise DependencyUnavailable("step functions", "down")
        if self.during is not None:
            during, self.during = self.during, None
            during()
        name = execution_name(wave)
        self.started[name] = self.started.get(name, 0) + 1
        return f"arn:exec:{name}"


def scheduled(store: InMemoryObjectStore, wave: str, body: bytes, csv: bool = True) -> None:
    store.put_bytes(ObjectRef(B, f"smsWaves/scheduled/{wave}_csv.json"), body)
    if csv:
        store.put_bytes(ObjectRef(B, wave_csv_key(wave)), b"globalUserId\r\nf1\r\n")


def keys(store: InMemoryObjectStore, state: str) -> list[str]:
    return sorted(r.key for r in store.objects if r.key.startswith(f"smsWaves/{state}/"))


def test_due_waves_are_triggered_and_started_and_later_ones_wait() -> None:
    store = InMemoryObjectStore()
    scheduled(store, "c1_due", json.dumps({"notifyDate": "2024-05-01T11:59:00Z"}).encode())
    scheduled(store, "c1_later", json.dumps({"notifyDate": "2024-05-01T12:05:00Z"}).encode())
    starter = Starter()
    result = sms_wave_scheduler(store=store, starter=starter, clock=FixedClock(NOW), bucket=B)
    assert result.triggered == ["c1_due"] and result.waiting == 1
    assert keys(store, "triggered") == ["smsWaves/triggered/c1_due_csv.json"]
    assert keys(store, "scheduled") == ["smsWaves/scheduled/c1_later_csv.json"]
    assert starter.started == {execution_name("c1_due"): 1}


def test_two_schedulers_at_once_trigger_a_wave_once() -> None:
    """The second scheduler runs while the first is between its move and its delete."""
    store = InMemoryObjectStore()
    scheduled(store, "c1_w", json.dumps({"notifyDate": "2024-05-01"}).encode())
    starter = Starter()
    second: list[object] = []
    starter.during = lambda: second.append(
        sms_wave_scheduler(store=store, starter=starter, clock=FixedClock(NOW), bucket=B)
    )
    first = sms_wave_scheduler(store=store, starter=starter, clock=FixedClock(NOW), bucket=B)
    other = second[0]
    # one triggered it, the other found it triggered: one wave moved, one execution name
    assert first.already == ["c1_w"] or first.triggered == ["c1_w"]
    assert sorted(first.triggered + other.triggered) == ["c1_w"]  # type: ignore[attr-defined]
    assert list(starter.started) == [execution_name("c1_w")]
    assert keys(store, "scheduled") == []


def test_a_start_that_fails_is_tried_again_by_the_next_run() -> None:
    store = InMemoryObjectStore()
    scheduled(store, "c1_w", json.dumps({"notifyDate": "2024-05-01"}).encode())
    starter = Starter(down=True)
    result = sms_wave_scheduler(store=store, starter=starter, clock=FixedClock(NOW), bucket=B)
    assert result.not_started[0]["wave"] == "c1_w"
    assert keys(store, "scheduled") and keys(store, "triggered")
    starter.down = False
    result = sms_wave_scheduler(store=store, starter=starter, clock=FixedClock(NOW), bucket=B)
    assert result.already == ["c1_w"] and starter.started == {execution_name("c1_w"): 1}
    assert keys(store, "scheduled") == []


@pytest.mark.parametrize(
    ("body", "csv", "reason"),
    [
        (b"{not json", True, "config is not JSON"),
        (b"[1]", True, "config is not a JSON object"),
        (b"{}", True, "notifyDate is missing or not a string"),
        (b'{"notifyDate": "soon"}', True, "notifyDate is not an ISO 8601 date or date-time"),
        (b'{"notifyDate": "2024-05-01"}', False, "the wave file smsWaves/csv/c1_w.csv does not"),
    ],
)
def test_a_bad_config_goes_to_failed_once_with_its_reason(
    body: bytes, csv: bool, reason: str
) -> None:
    store = InMemoryObjectStore()
    scheduled(store, "c1_w", body, csv=csv)
    starter = Starter()
    result = sms_wave_scheduler(store=store, starter=starter, clock=FixedClock(NOW), bucket=B)
    assert result.failed[0]["reason"].startswith(reason)
    failed = json.loads(store.objects[ObjectRef(B, "smsWaves/failed/c1_w_csv.json")])
    assert failed["schedulerError"].startswith(reason)
    assert keys(store, "scheduled") == [] and not starter.started
    again = sms_wave_scheduler(store=store, starter=starter, clock=FixedClock(NOW), bucket=B)
    assert again.failed == []  # once, not retried forever


def test_execution_names_are_valid_stable_and_distinct() -> None:
    name = execution_name("c1_wave 2024/05 ü")
    assert len(name) <= 80 and all(c.isalnum() or c in "-_" for c in name)
    assert name == execution_name("c1_wave 2024/05 ü")
    assert execution_name("a b") != execution_name("a_b")
    assert len(execution_name("x" * 300)) <= 80
