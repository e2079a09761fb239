"""sms-wave-send killed with kill -9 mid-wave on this machine, then run again at once (issue:
the re-run skipped the dead run's ledger claims as `held_by_another_run` for the rest of their
10-minute ttl). A CLI process sends through a local TM SMS service, its lease and wave on the
emulator's S3 and its ledger on the emulator's DynamoDB; it is killed while texts are in flight,
with the rest of its chunk claimed and not started. The re-run (the Lambda handler, in this
process) proves the holder dead, takes its lease and its claims over at once: every fan the dead
run never called is texted exactly once, the texts it started and did not record are UNKNOWN
and not sent again, and no number gets two texts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.once import OWNER_DEAD_AFTER_START
from domain.workers.sms_wave_send import SEND_LEASE_PREFIX
from entrypoints import runtime
from entrypoints.lambda_handlers import sms_wave_send_handler
from tests.conftest import unique_name
from tests.support.http_server import LocalHttpServer, Request, Response, http_server
from tests.support.sms_fakes import fan
from tests.support.sms_wave_env import triggered_wave

__all__ = ["http_server"]

pytestmark = pytest.mark.integration

WAVE = "c8_killed"
# More than a chunk (200 claimed at once) and a start group (100 started at once): killed in
# its first group, the dead run leaves texts started and texts only claimed.
FANS = 250
IN_FLIGHT = 2
KILLED_CLI = """
import sys
from entrypoints.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def wave(
    emulator: Any,
    aws: Any,
    s3_client: Any,
    make_bucket: Callable[[], str],
    http_server: LocalHttpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[str, str]]:
    bucket = make_bucket()
    table = triggered_wave(
        wave=WAVE,
        campaign="c8",
        rows=[fan(n, email="") for n in range(FANS)],
        bucket=bucket,
        endpoint_url=emulator.endpoint_url,
        sms_url=http_server.url,
        email_queue=unique_name("emails"),
        aws=aws,
        s3_client=s3_client,
        monkeypatch=monkeypatch,
        extra={"SMS_MAX_IN_FLIGHT": str(IN_FLIGHT), "RUN_LEASE_SECONDS": "600"},
    )
    runtime.reset_settings()
    yield bucket, table
    runtime.reset_settings()


def ledger_entries(dynamodb: Any, table: str) -> dict[str, dict[str, str]]:
    items: dict[str, dict[str, str]] = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for item in page["Items"]:
            items[item["pk"]["S"]] = {k: v.get("S", v.get("N", "")) for k, v in item.items()}
    return items


def number(request: Request) -> str:
    to: str = request.json()["message"]["to"]["phoneNumber"]
    return to


def test_a_send_killed_mid_wave_and_run_again_at_once_texts_every_fan_once(
    wave: tuple[str, str], aws: Any, s3_client: Any, http_server: LocalHttpServer
) -> None:
    bucket, table = wave
    dynamodb = aws.client("dynamodb")
    hang, answer = threading.Event(), threading.Event()
    hanging = Counter[str]()
    lock = threading.Lock()

    def texted(request: Request) -> Response:
        if hang.is_set() and not answer.is_set():  # in flight when the run is killed
            with lock:
                hanging[number(request)] += 1
            answer.wait(timeout=60)
        else:
            time.sleep(0.05)  # a provider's answer time: a few texts go out before the kill
        return Response.json({"messageId": f"tm-{request.json()['message']['messageId']}"})

    http_server.route("POST", "/sms", texted)
    child = subprocess.Popen(  # the operator's CLI run
        [sys.executable, "-c", KILLED_CLI, "sms-wave-send", WAVE, "--quiet"],
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Some of its texts recorded DONE (outcomes close in groups, or after a second)...
        while child.poll() is None and not any(
            e["state"] == "done" for e in ledger_entries(dynamodb, table).values()
        ):
            time.sleep(0.05)
        hang.set()
        # ...then its calls in flight hang (the provider may have texted them) and it is killed.
        while child.poll() is None and sum(hanging.values()) < IN_FLIGHT:
            time.sleep(0.02)
        child.kill()
        assert child.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    finally:
        answer.set()
    by_the_dead = Counter(number(r) for r in http_server.requests_to("POST", "/sms"))
    assert 0 < len(by_the_dead) < 100, "killed inside its first group of started texts"
    lease = json.loads(
        s3_client.get_object(Bucket=bucket, Key=f"{SEND_LEASE_PREFIX}{WAVE}.json")["Body"].read()
    )
    assert lease["process"]["pid"] == child.pid and not lease["released"]
    assert datetime.fromisoformat(lease["expiresAt"]) > datetime.now(UTC) + timedelta(minutes=5)
    before = ledger_entries(dynamodb, table)
    dead = {k for k, e in before.items() if e["owner"] == lease["holder"]}
    assert {before[k]["state"] for k in dead} >= {"claimed", "started"}
    assert len(dead) == 200  # the killed run's first chunk, every claim still live

    result = sms_wave_send_handler({"waveName": WAVE}, None)  # at once, the same machine

    texts = Counter(number(r) for r in http_server.requests_to("POST", "/sms"))
    assert set(texts.values()) == {1}  # no number texted twice
    by_the_rerun = set(texts) - set(by_the_dead)
    fans = {f"sms#{WAVE}#fan{n}": f"+1212555{n:04d}" for n in range(FANS)}
    # Every fan the dead run had not started (its claimed ones, and those it never reached):
    # texted by the re-run, at once rather than after the claims' 10 minutes.
    not_started = {k for k in fans if before.get(k, {}).get("state") in (None, "claimed")}
    assert len(not_started) == FANS - 100  # the first group of 100 was started
    assert by_the_rerun == {fans[k] for k in not_started}
    after = ledger_entries(dynamodb, table)
    states = Counter(e["state"] for e in after.values())
    assert set(states) <= {"done", "unknown"}, states  # nothing left held, nothing skipped
    # The dead run's started texts it did not record: UNKNOWN, still its own, never resent
    # (the calls it had in flight among them: the provider may have texted those).
    unknown = {k for k, e in after.items() if e["state"] == "unknown"}
    assert unknown == {k for k in dead if before[k]["state"] == "started"}
    assert {(after[k]["owner"], after[k]["detail"]) for k in unknown} == {
        (lease["holder"], OWNER_DEAD_AFTER_START)
    }
    assert {fans[k] for k in unknown if fans[k] in hanging} == set(hanging)
    assert not {fans[k] for k in unknown} & by_the_rerun
    sms = result["count"]["detail"]["sms"]
    assert sms["unknown"] == len(unknown) and sms["sent"] == FANS - len(unknown)
    assert sms["skipped"] == 0  # none `held_by_another_run`
