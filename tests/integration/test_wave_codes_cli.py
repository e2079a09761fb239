"""generate-sms-wave-codes refusing bad input through the installed `campaign-workers` CLI, run
as a person runs it (a subprocess against the emulator): exit 2, one line naming the problem, no
traceback, and nothing written to the bucket (issue 17 item 6)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.wave_files import fan, wave_csv

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).with_name("campaign-workers"))
PREFIX = "camp7_wave1"
CONFIG = {
    "campaignId": "camp7",
    "generateOfferCode": True,
    "notifyDate": "2026-07-04T18:00:00Z",
    "productId": "prod-1",
    "source": "vf",
}


@pytest.fixture
def cli(
    emulator: Any, make_bucket: Callable[[], str], s3_client: Any, tmp_path: Path
) -> Callable[..., tuple[int, str, str, list[str]]]:
    """Runs the CLI; returns (exit code, stdout, stderr, the bucket's keys afterwards)."""
    bucket = make_bucket()
    s3_client.put_object(
        Bucket=bucket, Key=f"smsWaves/csv/{PREFIX}.csv", Body=wave_csv([fan(i) for i in range(5)])
    )
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": emulator.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "SCORING_BUCKET": bucket,
        "CODES_TABLE": "codes-never-reached",
    }

    def run(*argv: str) -> tuple[int, str, str, list[str]]:
        done = subprocess.run(
            [CLI, *argv, "--quiet"], env=env, cwd=tmp_path, capture_output=True, text=True
        )
        listing = s3_client.list_objects_v2(Bucket=bucket)
        keys = sorted(item["Key"] for item in listing.get("Contents", []))
        return done.returncode, done.stdout, done.stderr, keys

    return run


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


ONLY_THE_WAVE = [f"smsWaves/csv/{PREFIX}.csv"]


def test_a_prefix_with_a_newline_is_refused_naming_the_prefix_and_writes_nothing(
    cli: Callable[..., tuple[int, str, str, list[str]]],
) -> None:
    code, out, err, keys = cli(
        "generate-sms-wave-codes", "camp7_wave\n1", "--config", json.dumps(CONFIG)
    )
    line = " ".join(err.split())
    assert (code, out) == (2, ""), err
    assert "waveFilePrefix" in line and "control character" in line, err
    assert "Traceback" not in err and "404" not in err
    assert keys == ONLY_THE_WAVE


def test_a_config_file_that_does_not_exist_is_one_line_and_exit_2(
    cli: Callable[..., tuple[int, str, str, list[str]]],
) -> None:
    code, out, err, keys = cli("generate-sms-wave-codes", PREFIX, "--config", "@nope.json")
    assert (code, out) == (2, "")
    assert "--config @nope.json" in one_line(err) and "No such file" in err
    assert keys == ONLY_THE_WAVE


@pytest.mark.parametrize("notify", ["9999-12-31T23:00:00Z", "0001-01-01"])
def test_a_notify_date_whose_window_leaves_the_calendar_is_exit_2_naming_the_field(
    cli: Callable[..., tuple[int, str, str, list[str]]], notify: str
) -> None:
    config = json.dumps({**CONFIG, "notifyDate": notify})
    code, out, err, keys = cli("generate-sms-wave-codes", PREFIX, "--config", config)
    assert (code, out) == (2, "")
    assert "config.notifyDate" in one_line(err)
    assert keys == ONLY_THE_WAVE
