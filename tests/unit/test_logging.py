"""Structured logs: JSON lines on stderr only, correlation ids, phones and emails masked."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.logging import (
    MaskingFormatter,
    configure_logging,
    correlation,
    current_correlation_id,
    mask_text,
    mask_value,
)

ROOT = Path(__file__).resolve().parents[2]


def format_record(message: str, *args: object, **extra: object) -> dict[str, object]:
    record = logging.LogRecord("campaign.test", logging.INFO, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    parsed: dict[str, object] = json.loads(MaskingFormatter().format(record))
    return parsed


def test_examples_from_the_house_rules() -> None:
    assert mask_text("call +15555554567 now") == "call +1******4567 now"
    assert mask_text("mail john.doe@example.com") == "mail j***@example.com"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("(555) 123-4567", "******4567"),
        ("555-123-4567", "******4567"),
        ("+44 20 7946 0958", "+4*******0958"),
        ("tel:+1-555-123-4567.", "tel:+1******4567."),
        ("5551234567", "******4567"),
    ],
)
def test_phone_formats(text: str, masked: str) -> None:
    assert mask_text(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "sent 200000 records in 12 batches",
        "row 1234567 rejected",
        "at 2026-11-28 16:00:24 UTC",
        "endpoint 192.168.100.200",
        "sequence 49590338271490256608559692538361571095921575989136588898",
        "version 3.2.0",
    ],
)
def test_counts_dates_and_sequence_numbers_survive(text: str) -> None:
    assert mask_text(text) == text


@given(st.sampled_from(["US", "GB", "DE", "FR", "AU", "BR", "IN", "JP", "MX", "CA"]))
def test_every_example_number_is_masked_in_e164_and_national_form(region: str) -> None:
    number = phonenumbers.example_number(region)
    assert number is not None
    for style in (
        phonenumbers.PhoneNumberFormat.E164,
        phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    ):
        text = phonenumbers.format_number(number, style)
        digits = "".join(c for c in text if c.isdigit())
        masked = mask_text(f"phone {text} rejected")
        assert digits not in "".join(c for c in masked if c.isdigit())
        assert masked.endswith(f"{digits[-4:]} rejected")


@given(
    local=st.from_regex(r"[a-z][a-z0-9._+-]{0,20}", fullmatch=True),
    domain=st.from_regex(r"[a-z][a-z0-9-]{0,10}\.(com|org|co\.uk)", fullmatch=True),
)
def test_every_email_keeps_only_its_first_letter_and_domain(local: str, domain: str) -> None:
    masked = mask_text(f"blacklisted {local}@{domain}!")
    assert masked == f"blacklisted {local[0]}***@{domain}!"


def test_json_line_shape_and_masked_extra_fields() -> None:
    with correlation("corr-1"):
        entry = format_record(
            "rejected fan %s",
            "jane@example.com",
            email="jane@example.com",
            phone="+15555554567",
            detail={"contacts": ["+15555550000", "bob@example.org"], "count": 3},
            rows=12,
        )
    assert entry["level"] == "INFO"
    assert entry["logger"] == "campaign.test"
    assert entry["correlation_id"] == "corr-1"
    assert entry["message"] == "rejected fan j***@example.com"
    assert entry["email"] == "j***@example.com"
    assert entry["phone"] == "+1******4567"
    assert entry["detail"] == {"contacts": ["+1******0000", "b***@example.org"], "count": 3}
    assert entry["rows"] == 12
    assert str(entry["timestamp"]).endswith("+00:00")


def test_sensitive_keys_are_masked_even_when_unrecognised() -> None:
    assert mask_value("not-a-number", "phone") == "********"
    assert mask_value("12", "phoneNumber") == "**"


def test_exception_text_is_masked() -> None:
    try:
        raise ValueError("bad phone +15555554567")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    entry = json.loads(MaskingFormatter().format(record))
    assert "+1******4567" in entry["exception"]
    assert "5555554567" not in entry["exception"]


def test_correlation_ids_nest_and_are_per_thread() -> None:
    assert current_correlation_id() is None
    seen: list[str | None] = []
    with correlation("outer"):
        with correlation() as generated:
            assert current_correlation_id() == generated != "outer"
        assert current_correlation_id() == "outer"
        thread = threading.Thread(target=lambda: seen.append(current_correlation_id()))
        thread.start()
        thread.join()
    assert seen == [None]
    assert current_correlation_id() is None


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    chatty = {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)  # configure_logging turned it on; pytest owns warnings here
    for name, chatty_level in chatty.items():
        logging.getLogger(name).setLevel(chatty_level)


def test_configure_logging_writes_json_to_stderr_only(
    capsys: pytest.CaptureFixture[str], restore_root_logging: None
) -> None:
    configure_logging("DEBUG")
    logging.getLogger("campaign.test").info("hello %s", "+15555554567", extra={"n": 1})
    out, err = capsys.readouterr()
    assert out == ""
    entry = json.loads(err.strip().splitlines()[-1])
    assert entry["message"] == "hello +1******4567"
    assert entry["n"] == 1


def test_a_process_that_logs_keeps_stdout_for_the_protocol() -> None:
    script = (
        "import logging, sys\n"
        "logging.basicConfig(stream=sys.stdout)\n"  # a library's handler on stdout
        "from adapters.logging import configure_logging, correlation\n"
        "configure_logging('INFO')\n"
        "with correlation('c-9'):\n"
        "    logging.getLogger('w').warning('fan %s', 'a@b.example.com')\n"
        "    logging.getLogger('httpx').info('HTTP Request: POST https://hooks/secret')\n"
        "print('PROTOCOL')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout == "PROTOCOL\n"
    (line,) = done.stderr.strip().splitlines()
    entry = json.loads(line)
    assert (entry["message"], entry["correlation_id"], entry["level"]) == (
        "fan a***@b.example.com",
        "c-9",
        "WARNING",
    )


def test_shard_ids_are_ids_not_phones() -> None:
    assert mask_text(
        "shardId-000000000006 at 49590338271490256608559692538361571095921575989136588898"
    ) == ("shardId-000000000006 at 49590338271490256608559692538361571095921575989136588898")
    assert mask_text("shard shardId-000000000006 fan 2015550144") == (
        "shard shardId-000000000006 fan ******0144"
    )


class _Context:
    function_name = "save-selection"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:save-selection"
    aws_request_id = "req-7"


def test_lambda_lines_carry_request_cold_start_function_xray_and_correlation(
    capsys: pytest.CaptureFixture[str],
    restore_root_logging: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from entrypoints.lambda_handlers import lambda_entry

    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")
    configure_logging("INFO")

    @lambda_entry
    def handler(event: object, context: object) -> str:
        logging.getLogger("domain.somewhere").info("fan %s", "ann@example.org")
        return "done"

    assert handler({}, _Context()) == "done"
    assert handler({}, _Context()) == "done"
    first, second = (json.loads(line) for line in capsys.readouterr().err.strip().splitlines())
    for entry in (first, second):
        assert entry["message"] == "fan a***@example.org"
        assert entry["logger"] == "domain.somewhere"
        assert entry["function_name"] == "save-selection"
        assert entry["function_request_id"] == entry["correlation_id"] == "req-7"
        assert entry["xray_trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
    assert second["cold_start"] is False
