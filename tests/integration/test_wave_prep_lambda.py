"""Wave prep through its Lambda handler and its CLI command, on the emulator, with fans from
the Avro lake (the AWS-native path: no entry, campaign or code service)."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
from returns.result import Success

from adapters.avro import AvroSchemas
from entrypoints import cli
from entrypoints.lambda_handlers import RetryableFailure, process_sms_wave_files_handler
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


def _cli(capsys: pytest.CaptureFixture[str], *more: str) -> tuple[int, dict[str, Any]]:
    code = cli.main(["process-sms-wave-files", CAMPAIGN, DATE_KEY, "--quiet", *more])
    return code, json.loads(capsys.readouterr().out)


def test_a_wave_the_cli_refuses_or_no_rerun_can_cure_exits_2(
    wave: dict[str, str], s3_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    s3_client.put_object(
        Bucket=wave["scoring"],
        Key=f"wavePrep/{CAMPAIGN}/data/{DATE_KEY}.csv",
        Body=market_csv([("m1", "NY", 5, "TM"), ("m9", "Nowhere", 3, "external")]),
    )
    code, mismatch = _cli(capsys)
    assert (code, mismatch["error"]["kind"], mismatch["retryable"]) == (
        2,
        "markets_mismatch",
        False,
    )
    s3_client.put_object(
        Bucket=wave["scoring"],
        Key=f"wavePrep/{CAMPAIGN}/data/{DATE_KEY}.csv",
        Body=market_csv([("m1", "NY", 5, "TM"), ("m2", "LA", 3, "external")]),
    )
    assert _cli(capsys)[0] == 0 and _cli(capsys)[0] == 0
    code, exhausted = _cli(capsys)
    assert (code, exhausted["status"], exhausted["error"]["kind"]) == (
        2,
        "REFUSED",
        "attempts_exhausted",
    )


def test_a_missing_codes_table_is_the_environment_not_a_retryable_outage(
    wave: dict[str, str],
    s3_client: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No uploaded codes: the external market reserves from the codes table, which is not there.
    s3_client.delete_object(
        Bucket=wave["scoring"], Key=f"wavePrep/{CAMPAIGN}/nonTmCodes/{DATE_KEY}.csv"
    )
    monkeypatch.setenv("CODES_TABLE", "no-such-codes-table")
    code, result = _cli(capsys)
    assert code == 3
    assert (result["error"]["kind"], result["retryable"]) == ("codes_missing", False)
    assert (
        "no-such-codes-table" in result["error"]["message"]
        or "ResourceNotFound" in (result["error"]["message"])
    )
    answer = process_sms_wave_files_handler({"campaignId": CAMPAIGN, "dateKey": DATE_KEY}, None)
    assert (answer["error"]["kind"], answer["retryable"]) == ("codes_missing", False)


def test_step_functions_lambda_invoke_output_is_unwrapped(wave: dict[str, str]) -> None:
    # What a Step Functions `arn:aws:states:::lambda:invoke` task hands the next state whole.
    event = {
        "ExecutedVersion": "$LATEST",
        "Payload": {"campaignId": CAMPAIGN, "dateKey": DATE_KEY, "randomSelection": True},
        "SdkHttpMetadata": {
            "AllHttpHeaders": {"Content-Type": ["application/json"]},
            "HttpHeaders": {"Content-Type": "application/json"},
            "HttpStatusCode": 200,
        },
        "SdkResponseMetadata": {"RequestId": "5d3f6a36-0f3e-4a4a-9f4b-6c0f3f8f8f8f"},
        "StatusCode": 200,
    }
    answer = process_sms_wave_files_handler(event, None)
    assert answer["success"] and answer["count"]["selected"] == 8


def _status(s3_client: Any, bucket: str) -> dict[str, Any]:
    key = f"wavePrep/{CAMPAIGN}/status/{DATE_KEY}.json"
    doc: dict[str, Any] = json.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())
    return doc


def test_input_mistakes_do_not_spend_attempts_so_the_corrected_upload_runs(
    wave: dict[str, str], s3_client: Any
) -> None:
    event = {"data": {"campaignId": CAMPAIGN, "dateKey": DATE_KEY}}
    markets_key = f"wavePrep/{CAMPAIGN}/data/{DATE_KEY}.csv"
    s3_client.delete_object(Bucket=wave["scoring"], Key=markets_key)  # not uploaded yet
    missing = process_sms_wave_files_handler(event, None)
    assert (missing["status"], missing["error"]["kind"]) == ("REFUSED", "markets_missing")
    status = _status(s3_client, wave["scoring"])
    assert (status["status"], status["attempts"], status["attemptSpent"]) == ("FAILED", 0, False)
    assert "markets_missing" in status["error"]["message"]
    s3_client.put_object(  # the upload forgets LA
        Bucket=wave["scoring"], Key=markets_key, Body=market_csv([("m1", "NY", 5, "TM")])
    )
    mismatch = process_sms_wave_files_handler(event, None)
    assert (mismatch["status"], mismatch["error"]["kind"]) == ("REFUSED", "markets_mismatch")
    assert _status(s3_client, wave["scoring"])["attempts"] == 0
    s3_client.put_object(
        Bucket=wave["scoring"],
        Key=markets_key,
        Body=market_csv([("m1", "NY", 5, "TM"), ("m2", "LA", 3, "external")]),
    )
    done = process_sms_wave_files_handler(event, None)
    assert done["success"] and done["attempt"] == 1
    assert _status(s3_client, wave["scoring"])["status"] == "FINISHED"


def test_an_operator_allows_one_more_attempt_on_record(
    wave: dict[str, str], s3_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    grant = ["allow-wave-prep-attempt", CAMPAIGN, DATE_KEY, "--by", "ops@", "--reason", "re-upload"]
    assert cli.main(grant) == 2  # never ran: it has its attempts
    assert "no_wave" in capsys.readouterr().err
    assert _cli(capsys)[0] == 0
    assert cli.main(grant) == 2  # one attempt left: nothing to allow
    assert "attempts_remain" in capsys.readouterr().err
    assert _cli(capsys)[0] == 0
    code, exhausted = _cli(capsys)
    assert (code, exhausted["error"]["kind"]) == (2, "attempts_exhausted")
    assert "allow-wave-prep-attempt" in exhausted["error"]["message"]
    assert cli.main([*grant[:4], "alice", "--reason", "the LA venue moved; rerun approved"]) == 0
    capsys.readouterr()
    status = _status(s3_client, wave["scoring"])
    assert [(g["by"], g["reason"]) for g in status["attemptGrants"]] == [
        ("alice", "the LA venue moved; rerun approved")
    ]
    assert status["attemptGrants"][0]["at"] and status["count"]["selected"] == 8  # kept
    code, third = _cli(capsys)
    assert (code, third["attempt"]) == (0, 3)
    assert _status(s3_client, wave["scoring"])["attemptGrants"][0]["by"] == "alice"
    assert _cli(capsys)[1]["error"]["kind"] == "attempts_exhausted"


def test_a_code_services_error_body_reaches_no_status_response_or_output_unmasked(
    wave: dict[str, str],
    s3_client: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.support.http_server import Response, running_server

    s3_client.delete_object(
        Bucket=wave["scoring"], Key=f"wavePrep/{CAMPAIGN}/nonTmCodes/{DATE_KEY}.csv"
    )
    body = "cannot reserve for jane.doe@fanmail.net +13125550199"
    with running_server() as codes:
        codes.route("GET", f"/{CAMPAIGN}/reserve", lambda r: Response.text(body, status=400))
        monkeypatch.setenv("CODE_SERVICE_URL", codes.url)
        answer = process_sms_wave_files_handler({"campaignId": CAMPAIGN, "dateKey": DATE_KEY}, None)
        status = json.dumps(_status(s3_client, wave["scoring"]))
        code, printed = _cli(capsys)
    assert answer["error"]["kind"] == printed["error"]["kind"] == "codes_refused" and code == 2
    for shown in (json.dumps(answer), status, json.dumps(printed)):
        assert "cannot reserve for" in shown  # the body is there, to say what went wrong
        assert "jane.doe@fanmail.net" not in shown and "3125550199" not in shown


def test_fan_records_that_do_not_parse_are_logged_without_the_id_they_carry(
    wave: dict[str, str], capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.fake_wave_services import FakeScoringService, entry
    from tests.support.http_server import running_server

    with running_server() as server:
        service = FakeScoringService(server)
        bad = entry(1, "high", ["m1"], _id={"globalUserId": "jane.doe@fanmail.net"})  # type: ignore[arg-type]
        service.entries[CAMPAIGN] = [entry(i, 0.5, ["m1"]) for i in range(3)] + [bad]
        monkeypatch.setenv("WAVE_FAN_SOURCE", "entry_service")
        monkeypatch.setenv("ENTRY_SERVICE_URL", server.url)
        capfd.readouterr()
        answer = process_sms_wave_files_handler({"campaignId": CAMPAIGN, "dateKey": DATE_KEY}, None)
    assert answer["success"] and answer["count"]["ineligible"] == {"bad_record": 1}
    logged = capfd.readouterr().err
    assert "fan records that do not parse" in logged and "score is not a number" in logged
    assert "jane.doe@fanmail.net" not in logged


def test_two_waves_on_different_days_before_the_lake_knows_share_no_fan(
    wave: dict[str, str], s3_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    later = "2026-12-08"
    s3_client.put_object(
        Bucket=wave["scoring"],
        Key=f"wavePrep/{CAMPAIGN}/data/{later}.csv",
        Body=market_csv([("m1", "NY", 5, "TM"), ("m2", "LA", 3, "TM")]),
    )

    def chosen(date_key: str) -> set[str]:
        key = f"wavePrep/{CAMPAIGN}/prepped/prepped.{date_key}.zip"
        raw = s3_client.get_object(Bucket=wave["scoring"], Key=key)["Body"].read()
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            return {
                line.split(",")[0]
                for name in archive.namelist()
                if name.startswith("masterCodes/")
                for line in archive.read(name).decode().splitlines()[1:]
            }

    assert _cli(capsys)[0] == 0
    code = cli.main(["process-sms-wave-files", CAMPAIGN, later, "--quiet"])
    second = json.loads(capsys.readouterr().out)
    assert code == 0 and second["count"]["selected"] == 8
    assert second["count"]["ineligible"]["already_coded"] == 8
    assert len(chosen(DATE_KEY)) == len(chosen(later)) == 8
    assert not chosen(DATE_KEY) & chosen(later)
    # reassign: the first wave's fans compete again (the lake-independent ledger is ignored).
    s3_client.delete_object(Bucket=wave["scoring"], Key=f"wavePrep/{CAMPAIGN}/status/{later}.json")
    assert cli.main(["process-sms-wave-files", CAMPAIGN, later, "--quiet", "--reassign"]) == 0
    capsys.readouterr()
    assert chosen(later) == chosen(DATE_KEY)


class _Context:
    """A Lambda context with `remaining_ms` left of its invocation."""

    aws_request_id = "req-w"
    function_name = "wave-prep"
    memory_limit_in_mb = 2048
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:wave-prep"

    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def _originals() -> dict[str, Any]:
    from adapters.leases import ObjectLeases
    from adapters.wave_selections import StoredWaveSelections

    return {
        "acquire": ObjectLeases.acquire,
        "selected_elsewhere": StoredWaveSelections.selected_elsewhere,
    }


_ORIGINAL = _originals()


def _two_waves_at_once(
    wave: dict[str, str],
    s3_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    contexts: dict[str, Any],
    hold_until_other_ends: bool,
) -> tuple[dict[str, Any], bool]:
    """Starts wave prep of two date keys of the campaign at once, through the Lambda handler in
    two threads. The first wave to read the selection ledger holds its selection open until
    the other has knocked on the campaign's lease (or has ended, `hold_until_other_ends`), or
    has reached the ledger too (as it could before the lease): no interleaving is left to luck."""
    from adapters.leases import ObjectLeases
    from adapters.wave_selections import StoredWaveSelections

    later = "2026-12-08"
    s3_client.put_object(
        Bucket=wave["scoring"],
        Key=f"wavePrep/{CAMPAIGN}/data/{later}.csv",
        Body=market_csv([("m1", "NY", 5, "TM"), ("m2", "LA", 3, "TM")]),
    )
    arrived: list[str] = []
    knocked, ended, go = threading.Event(), threading.Event(), threading.Event()
    read_ledger, acquire = _ORIGINAL["selected_elsewhere"], _ORIGINAL["acquire"]

    def selected_elsewhere(self: Any, campaign_id: str, date_key: str) -> frozenset[str]:
        arrived.append(date_key)
        if len(arrived) == 1:
            assert go.wait(timeout=60), "the other wave neither knocked nor reached the ledger"
        else:
            go.set()  # both read the ledger: the race the lease closes
        return frozenset(read_ledger(self, campaign_id, date_key))

    def knocking(self: Any, name: str) -> Any:
        got = acquire(self, name)
        if not isinstance(got, Success):
            knocked.set()
            if not hold_until_other_ends:
                go.set()
        return got

    monkeypatch.setattr(StoredWaveSelections, "selected_elsewhere", selected_elsewhere)
    monkeypatch.setattr(ObjectLeases, "acquire", knocking)
    results: dict[str, Any] = {}

    def run(date_key: str) -> None:
        event = {"data": {"campaignId": CAMPAIGN, "dateKey": date_key}}
        try:
            results[date_key] = process_sms_wave_files_handler(event, contexts[date_key])
        except Exception as raised:  # RetryableFailure: the response is in its message
            results[date_key] = raised
        finally:
            if len(results) == 1 and hold_until_other_ends:
                ended.set()
                go.set()

    threads = [threading.Thread(target=run, args=(day,)) for day in (DATE_KEY, later)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return results, knocked.is_set()


def _chosen(s3_client: Any, bucket: str, date_key: str) -> set[str]:
    key = f"wavePrep/{CAMPAIGN}/prepped/prepped.{date_key}.zip"
    raw = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        return {
            line.split(",")[0]
            for name in archive.namelist()
            if name.startswith("masterCodes/")
            for line in archive.read(name).decode().splitlines()[1:]
        }


def _status_of(s3_client: Any, bucket: str, date_key: str) -> dict[str, Any]:
    key = f"wavePrep/{CAMPAIGN}/status/{date_key}.json"
    doc: dict[str, Any] = json.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())
    return doc


def test_two_waves_of_a_campaign_started_at_once_take_turns_and_share_no_fan(
    wave: dict[str, str], s3_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    contexts = {DATE_KEY: None, "2026-12-08": _Context(remaining_ms=900_000)}
    results, knocked = _two_waves_at_once(wave, s3_client, monkeypatch, contexts, False)
    assert all(r["success"] and r["attempt"] == 1 for r in results.values()), results
    first, later = (_chosen(s3_client, wave["scoring"], day) for day in (DATE_KEY, "2026-12-08"))
    assert len(first) == len(later) == 8 and not first & later
    assert knocked  # the second waited for the first's lease
    assert sorted(r["count"]["ineligible"].get("already_coded", 0) for r in results.values()) == [
        0,
        8,
    ]
    for day in results:
        assert _status_of(s3_client, wave["scoring"], day)["attempts"] == 1


def test_a_wave_that_cannot_wait_for_the_other_is_refused_as_busy_and_spends_no_attempt(
    wave: dict[str, str], s3_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two seconds left of each invocation: a wave waits one, then is refused.
    contexts = {day: _Context(remaining_ms=2_000) for day in (DATE_KEY, "2026-12-08")}
    results, knocked = _two_waves_at_once(wave, s3_client, monkeypatch, contexts, True)
    refused = [day for day, r in results.items() if isinstance(r, RetryableFailure)]
    assert knocked and len(refused) == 1, results
    (busy,) = refused
    (holder,) = set(results) - {busy}
    assert results[holder]["success"] and results[holder]["attempt"] == 1
    assert "campaign_busy" in str(results[busy]) and f"wave {holder} on" in str(results[busy])
    status = _status_of(s3_client, wave["scoring"], busy)
    assert (status["status"], status["attempts"], status["attemptSpent"]) == ("FAILED", 0, False)
    from adapters.leases import ObjectLeases
    from adapters.wave_selections import StoredWaveSelections

    for cls, name in ((ObjectLeases, "acquire"), (StoredWaveSelections, "selected_elsewhere")):
        monkeypatch.setattr(cls, name, _ORIGINAL[name])  # the lease and ledger as they are
    again = process_sms_wave_files_handler({"campaignId": CAMPAIGN, "dateKey": busy}, None)
    assert again["success"] and again["attempt"] == 1
    first, later = (_chosen(s3_client, wave["scoring"], day) for day in (DATE_KEY, "2026-12-08"))
    assert not first & later
