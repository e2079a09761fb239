"""Wave prep through its Lambda handler and its CLI command, on the emulator, with fans from
the Avro lake (the AWS-native path: no entry, campaign or code service)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from typing import Any

import pytest

from adapters.avro import AvroSchemas
from entrypoints import cli
from entrypoints.lambda_handlers import process_sms_wave_files_handler
from tests.support.wave_world import market_csv

pytestmark = pytest.mark.integration

CAMPAIGN, DATE_KEY = "camp-w", "2026-12-01"


@pytest.fixture
def wave(
    emulator: Any, make_bucket: Callable[[], str], s3_client: Any, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    scoring, lake = make_bucket(), make_bucket()
    for name, value in {
        "AWS_ENDPOINT_URL": emulator.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "SCORING_BUCKET": scoring,
        "CAMPAIGN_DATA_BUCKET": lake,
        "WAVE_FAN_SOURCE": "lake",
        "BAND_SECRET": "secret",
    }.items():
        monkeypatch.setenv(name, value)
    config = {"id": CAMPAIGN, "markets": [{"id": "m1", "name": "NY"}, {"id": "m2", "name": "LA"}]}
    s3_client.put_object(Bucket=scoring, Key=f"campaigns/{CAMPAIGN}.json", Body=json.dumps(config))
    markets = market_csv([("m1", "NY", 5, "TM"), ("m2", "LA", 3, "external")])
    s3_client.put_object(
        Bucket=scoring, Key=f"wavePrep/{CAMPAIGN}/data/{DATE_KEY}.csv", Body=markets
    )
    codes = "code\n" + "\n".join(f"EXT{i}" for i in range(10)) + "\n"
    s3_client.put_object(
        Bucket=scoring, Key=f"wavePrep/{CAMPAIGN}/nonTmCodes/{DATE_KEY}.csv", Body=codes
    )
    records = [
        {"type": "scoring", "dedupeId": f"d{i}", "campaignId": CAMPAIGN, "globalUserId": f"g{i}",
         "email": f"fan{i}@example.com", "phone": f"+1212555{i:04d}", "marketId": f"m{1 + i % 2}",
         "score": i / 40, "tags": []}
        for i in range(40)
    ]  # fmt: skip
    body = AvroSchemas().encode("scoring", records)
    s3_client.put_object(Bucket=lake, Key="avro/scoring/2026/12/01/x.avro", Body=body)
    return {"scoring": scoring}


def _zip(s3_client: Any, bucket: str) -> dict[str, list[str]]:
    key = f"wavePrep/{CAMPAIGN}/prepped/prepped.{DATE_KEY}.zip"
    raw = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        return {n: archive.read(n).decode().splitlines()[1:] for n in archive.namelist()}


def test_the_upload_services_trigger_runs_the_wave_and_a_third_is_refused(
    wave: dict[str, str], s3_client: Any
) -> None:
    event = {"data": {"campaignId": CAMPAIGN, "dateKey": DATE_KEY}}
    first = process_sms_wave_files_handler(event, None)
    assert first["success"] and first["count"]["selected"] == 8 and first["attempt"] == 1
    files = _zip(s3_client, wave["scoring"])
    assert [line.split(",")[6] for line in files["masterCodes/m2.csv"]] == ["EXT0", "EXT1", "EXT2"]
    assert {line.split(",")[6] for line in files["masterCodes/m1.csv"]} == {"TM"}
    status_key = f"wavePrep/{CAMPAIGN}/status/{DATE_KEY}.json"
    status = json.loads(s3_client.get_object(Bucket=wave["scoring"], Key=status_key)["Body"].read())
    assert status["status"] == "FINISHED" and status["count"]["markets"][0]["selected"] == 5
    assert process_sms_wave_files_handler(event, None)["attempt"] == 2
    third = process_sms_wave_files_handler(event, None)
    assert not third["success"] and third["error"]["kind"] == "attempts_exhausted"


def test_bad_input_is_refused_without_touching_anything(
    wave: dict[str, str], s3_client: Any
) -> None:
    refused = process_sms_wave_files_handler({"campaignId": CAMPAIGN, "dateKey": "soon"}, None)
    assert refused["status"] == "REFUSED" and "not a date" in refused["error"]["message"]
    listed = s3_client.list_objects_v2(Bucket=wave["scoring"], Prefix=f"wavePrep/{CAMPAIGN}/status")
    assert listed.get("KeyCount") == 0


def test_the_cli_runs_the_wave(wave: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["process-sms-wave-files", CAMPAIGN, DATE_KEY, "--random-selection", "--quiet"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["success"] and result["count"]["selected"] == 8
