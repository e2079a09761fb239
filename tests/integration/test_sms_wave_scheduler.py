"""The scheduler on the emulator: two schedulers at the same moment over S3 conditional writes
move every due wave to triggered once and start one Step Functions execution per wave (its name
derived from the wave; StartExecution with the same name and input returns the running one)."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from adapters.aws.s3 import S3ObjectStore
from adapters.aws.step_functions import StepFunctionsSendStarter
from adapters.clock import FixedClock
from domain.models import ObjectRef
from domain.waves import wave_csv_key
from domain.workers.sms_wave_scheduler import execution_name, sms_wave_scheduler
from tests.conftest import unique_name

DEFINITION = json.dumps({"StartAt": "Send", "States": {"Send": {"Type": "Pass", "End": True}}})


def test_two_schedulers_at_once_trigger_and_start_every_wave_once(
    s3_client: Any, aws: Any, make_bucket: Callable[[], str]
) -> None:
    bucket = make_bucket()
    sfn = aws.client("stepfunctions")
    machine = sfn.create_state_machine(
        name=unique_name("sms-wave"),
        definition=DEFINITION,
        roleArn="arn:aws:iam::123456789012:role/sfn",
        type="STANDARD",
    )["stateMachineArn"]
    store = S3ObjectStore(s3_client)
    waves = [f"c1_w{n}" for n in range(12)]
    for wave in waves:
        body = json.dumps({"notifyDate": "2024-05-01T00:00:00Z", "campaignId": "c1"}).encode()
        store.put_bytes(ObjectRef(bucket, f"smsWaves/scheduled/{wave}_csv.json"), body)
        store.put_bytes(ObjectRef(bucket, wave_csv_key(wave)), b"globalUserId\r\nf1\r\n")
    store.put_bytes(ObjectRef(bucket, "smsWaves/scheduled/c1_bad_csv.json"), b"{oops")
    starter = StepFunctionsSendStarter(sfn, machine)
    clock = FixedClock(datetime(2024, 5, 1, 12, tzinfo=UTC))

    def run() -> Any:
        return sms_wave_scheduler(store=store, starter=starter, clock=clock, bucket=bucket)

    with ThreadPoolExecutor(2) as pool:
        first, second = (f.result() for f in [pool.submit(run), pool.submit(run)])
    assert sorted(first.triggered + second.triggered) == sorted(waves)
    listed = {o.ref.key for o in store.list_objects(bucket, "smsWaves/")}
    assert not any(k.startswith("smsWaves/scheduled/") for k in listed)
    assert {f"smsWaves/triggered/{w}_csv.json" for w in waves} <= listed
    assert "smsWaves/failed/c1_bad_csv.json" in listed
    failed = json.loads(store.read_bytes(ObjectRef(bucket, "smsWaves/failed/c1_bad_csv.json")))
    assert failed["schedulerError"] == "config is not JSON"
    executions = sfn.list_executions(stateMachineArn=machine)["executions"]
    assert sorted(e["name"] for e in executions) == sorted(execution_name(w) for w in waves)
    # a scheduler that starts a wave again gets the same execution, not a second one
    again = starter.start(waves[0])
    assert again.startswith(machine.replace(":stateMachine:", ":execution:")) or "already" in again
    assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == len(waves)
