"""A triggered wave on the emulator for sms_wave_send's integration tests: its CSV and
trigger config in S3, a ledger table in DynamoDB, and the settings that point the worker at
them and at a local TM SMS service."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from adapters.aws.dynamo_ledger import create_ledger_table
from domain.workers.sms_wave_send import config_key
from tests.conftest import unique_name
from tests.support.sms_fakes import wave_csv


def triggered_wave(
    *,
    wave: str,
    campaign: str,
    rows: Iterable[Any],
    bucket: str,
    endpoint_url: str,
    sms_url: str,
    email_queue: str,
    aws: Any,
    s3_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    extra: Mapping[str, str] = {},
) -> str:
    """Puts the wave in `bucket`, creates its ledger table and sets the worker's environment
    (plus `extra`); returns the table's name."""
    s3_client.put_object(Bucket=bucket, Key=f"smsWaves/csv/{wave}.csv", Body=wave_csv(list(rows)))
    s3_client.put_object(
        Bucket=bucket,
        Key=config_key("triggered", wave),
        Body=json.dumps({"notifyDate": "2024-01-01T00:00:00Z", "campaignId": campaign}),
    )
    table = unique_name("once")
    create_ledger_table(aws.client("dynamodb"), table)
    settings = {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "SCORING_BUCKET": bucket,
        "LEDGER_TABLE": table,
        "SMS_GATEWAY": "tm",
        "SMS_SERVICE_URL": sms_url,
        "SMS_WAVE_EMAIL_QUEUE": email_queue,
        "SMS_PARTS_PER_SECOND": "0",
        **extra,
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    return table
