"""sms-wave-send as a person runs it (a subprocess against the emulator): the dry run reads the
wave and sends nothing; the send texts every fan through SNS (read back from the emulator),
queues their emails on SQS (read back), records each in the DynamoDB ledger, moves the config
to completed; run again, it sends nothing twice. The scheduler triggers a due wave."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.aws.dynamo_ledger import create_ledger_table
from tests.conftest import unique_name
from tests.support.sms_fakes import fan, wave_csv

CLI = str(Path(sys.executable).with_name("campaign-workers"))
WAVE = "c9_wave1"


def test_dry_run_then_send_then_rerun_over_the_emulator(
    emulator: Any, aws: Any, s3_client: Any, make_bucket: Callable[[], str], tmp_path: Path
) -> None:
    if not hasattr(emulator, "server"):
        pytest.skip("reads the in-process emulator's SNS backend")
    from moto.sns.models import sns_backends

    bucket = make_bucket()
    rows = [fan(n) for n in range(12)] + [fan(99, mobileNumber="1.20156E+10")]
    s3_client.put_object(Bucket=bucket, Key=f"smsWaves/csv/{WAVE}.csv", Body=wave_csv(rows))
    s3_client.put_object(
        Bucket=bucket,
        Key=f"smsWaves/scheduled/{WAVE}_csv.json",
        Body=json.dumps({"notifyDate": "2024-01-01T00:00:00Z", "campaignId": "c9"}),
    )
    table = unique_name("once")
    create_ledger_table(aws.client("dynamodb"), table)
    sqs = aws.client("sqs")
    queue = sqs.create_queue(QueueName=unique_name("emails"))["QueueUrl"]
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": emulator.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "SCORING_BUCKET": bucket,
        "LEDGER_TABLE": table,
        "SMS_GATEWAY": "sns",
        "SMS_WAVE_EMAIL_QUEUE": queue,
        "SMS_PARTS_PER_SECOND": "0",
    }

    def run(*argv: str) -> tuple[int, Any, str]:
        done = subprocess.run([CLI, *argv], env=env, cwd=tmp_path, capture_output=True, text=True)
        out = json.loads(done.stdout) if done.stdout.strip() else None
        return done.returncode, out, done.stderr

    def texts() -> list[tuple[str, str]]:
        return [
            text
            for backend in sns_backends.values()
            for regional in backend.values()
            for text in regional.sms_messages.values()
            if text[1].startswith("Your code is C")
        ]

    before = len(texts())
    code, plan, err = run("sms-wave-send", WAVE, "--dry-run", "--quiet")
    assert code == 0, err
    assert plan["fans"] == {"sms": 12, "email": 13, "badRows": 0}
    assert len(texts()) == before
    # not triggered yet: refused, nothing sent
    code, _, err = run("sms-wave-send", WAVE, "--quiet")
    assert code == 2 and "not triggered" in err
    code, scheduled, err = run("sms-wave-scheduler")
    assert code == 0, err
    assert scheduled["triggered"] == [] and scheduled["notStarted"][0]["wave"] == WAVE
    code, result, err = run("sms-wave-send", WAVE, "--quiet")
    assert code == 0, err
    assert result["count"]["detail"]["sms"]["sent"] == 12
    assert result["count"]["detail"]["sms"]["failed"] == 1
    assert result["count"]["detail"]["email"]["sent"] == 13
    sent = texts()[before:]
    assert sorted(number for number, _ in sent) == sorted(f"+1212555{n:04d}" for n in range(12))
    messages = []
    while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
        messages.extend(batch)
        sqs.delete_message_batch(
            QueueUrl=queue,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
            ],
        )
    assert len(messages) == 13 and all("data" in json.loads(m["Body"]) for m in messages)
    keys = {o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert f"smsWaves/completed/{WAVE}_csv.json" in keys
    # run again (a Step Functions retry, an operator): nothing sent twice, the same counts
    s3_client.copy_object(
        Bucket=bucket,
        Key=f"smsWaves/triggered/{WAVE}_csv.json",
        CopySource={"Bucket": bucket, "Key": f"smsWaves/completed/{WAVE}_csv.json"},
    )
    code, again, err = run("sms-wave-send", WAVE, "--quiet")
    assert code == 0, err
    assert again["count"]["detail"] == result["count"]["detail"]
    assert len(texts()) == before + 12
    assert "+1212" not in err and "example.com" not in err
