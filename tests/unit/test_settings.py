import contextlib
import io
import json
import logging
from dataclasses import asdict

import pytest

from adapters.logging import configure_logging
from entrypoints.settings import Settings, reveal


def test_one_endpoint_serves_every_service_unless_a_service_has_its_own():
    settings = Settings.from_env(
        {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566", "AWS_ENDPOINT_URL_KINESIS": "http://k:1"}
    )
    assert settings.endpoint_for("s3") == "http://127.0.0.1:4566"
    assert settings.endpoint_for("kinesis") == "http://k:1"


def test_without_an_endpoint_clients_go_to_aws():
    assert Settings.from_env({}).endpoint_for("s3") is None


def test_names_come_from_the_environment_and_are_trimmed():
    settings = Settings.from_env({"SCORING_BUCKET": " my-bucket ", "SCORED_OUTPUT_STREAM": "s"})
    assert (settings.scoring_bucket, settings.scored_output_stream) == ("my-bucket", "s")


def test_scored_fans_go_to_the_input_stream_unless_told_otherwise():
    assert Settings.from_env({"INPUT_STREAM": "in"}).scored_output_stream == "in"
    assert Settings.from_env({}).scored_output_stream == Settings().input_stream


def test_transform_runs_in_one_process_inside_lambda_and_on_every_core_elsewhere():
    auto = Settings.from_env({})
    assert auto.processes_for_transform(in_lambda=True) == 1
    assert auto.processes_for_transform(in_lambda=False) >= 1
    assert Settings.from_env({"TRANSFORM_PROCESSES": "3"}).processes_for_transform(True) == 3


def test_a_malformed_number_names_the_variable():
    with pytest.raises(ValueError, match="TRANSFORM_PROCESSES"):
        Settings.from_env({"TRANSFORM_PROCESSES": "many"})


COUNTS = [
    "SCORED_FILE_CHUNK_ROWS",
    "SCORED_FILE_CHECKPOINT_ROWS",
    "PACMAN_CONCURRENCY",
    "ISSUE_CONCURRENCY",
    "MAX_LINE_BYTES",
    "WAVE_RESERVE_BATCH",
    "WAVE_STALE_MINUTES",
    "MERGE_MAX_BYTES",
    "MERGE_MAX_RECORDS",
    "MERGE_KEYS_IN_MEMORY",
    "KINESIS_MAX_IN_FLIGHT",
    "SMS_MAX_IN_FLIGHT",
]


@pytest.mark.parametrize("raw", ["0", "-5"])
@pytest.mark.parametrize("name", COUNTS)
def test_a_count_below_one_is_refused_naming_the_variable(name: str, raw: str) -> None:
    # 0 rows a chunk would read nothing and call the file done; 0 calls in flight would wait
    # forever; a 0-byte line bound would reject every row.
    with pytest.raises(ValueError, match=f"{name} must be at least 1, got {raw}"):
        Settings.from_env({name: raw})
    assert Settings.from_env({"SCORED_FILE_CHUNK_ROWS": "5000"}).scored_file_chunk_rows == 5000


def test_secrets_never_show_in_the_repr() -> None:
    secrets = {
        "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/webhook-secret",
        "SERVICE_TOKEN": "token-secret",
        "BAND_SECRET": "band-secret",
    }
    settings = Settings.from_env({**secrets, "SCORING_BUCKET": "visible-bucket"})
    shown = repr(settings) + str(settings)
    assert "visible-bucket" in shown
    assert not [name for name, value in secrets.items() if value in shown]


def test_secrets_never_show_in_asdict_public_formatting_or_a_log_line() -> None:
    """Issue 17 item 7: `dataclasses.asdict(settings)` held every secret."""
    secrets = {
        "SLACK_WEBHOOK_URL": "https://hooks.example.test/services/T0/B0/webhook-secret",
        "SERVICE_TOKEN": "token-secret",
        "BAND_SECRET": "band-secret",
    }
    settings = Settings.from_env({**secrets, "SCORING_BUCKET": "visible-bucket"})
    dumped = asdict(settings)
    assert not [v for v in secrets.values() if v in json.dumps(dumped, default=str)]
    out = io.StringIO()
    root = logging.getLogger()
    level = root.level
    try:
        with contextlib.redirect_stderr(out):
            configure_logging("DEBUG")
            logging.getLogger("campaign.test").debug("settings %s", dumped, extra=dumped)
            logging.getLogger("campaign.test").info("public", extra={"settings": settings.public()})
    finally:
        root.setLevel(level)
    shown = [
        json.dumps(dumped, default=str),
        str(dumped),
        json.dumps(settings.public()),
        f"{settings.service_token} {settings.band_secret!s} {settings.slack_webhook_url!r}",
        out.getvalue(),
    ]
    assert "visible-bucket" in shown[0] and "visible-bucket" in shown[2]
    assert settings.public()["service_token"] == "***"
    leaked = [(n, text) for text in shown for n, v in secrets.items() if v in text]
    assert not leaked
    # The adapters still get the values.
    assert reveal(settings.service_token) == "token-secret"
    assert settings.band_secret is not None and settings.band_secret.reveal() == "band-secret"
    assert Settings.from_env({}).service_token is None and reveal(None) is None
    assert settings == Settings.from_env({**secrets, "SCORING_BUCKET": "visible-bucket"})
    assert hash(settings) == hash(
        Settings.from_env({**secrets, "SCORING_BUCKET": "visible-bucket"})
    )
