"""The code lifecycle end to end over HTTP (workflow 3): a wave CSV in S3 (emulator), codes from a
local Pacman, assigned in the DynamoDB inventory, published on Kinesis once although the config
is written twice, then read back through transform_code_assignments and save_selection to the
fans' entries. Every step runs through its Lambda handler with the real event shapes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from adapters.avro import AvroSchemas
from adapters.aws.dynamo_codes import create_codes_table
from domain.streaming import IncomingRecord
from domain.workers.save_selection import save_selection
from domain.workers.transform_code_assignments import transform_code_assignments
from entrypoints.lambda_handlers import (
    RetryableFailure,
    WorkerFailed,
    generate_sms_wave_codes_handler,
    load_code_assignments_to_stream_handler,
    process_scheduled_wave_handler,
)
from tests.conftest import unique_name
from tests.support.fake_code_services import FakePacman
from tests.support.http_server import Fault, LocalHttpServer, running_server
from tests.support.memory_scored_files import InMemoryCampaignDirectory, InMemoryRecordStream
from tests.support.memory_stream_workers import (
    MemoryDeadLetters,
    MemoryEntryDirectory,
    MemoryUserDirectory,
    MemoryVerdictQueue,
)
from tests.support.wave_files import HEADER, fan, parse_csv, wave_csv

pytestmark = pytest.mark.integration

FANS = 60
CONFIG = {
    "campaignId": "camp7",
    "categoryId": 77,
    "generateOfferCode": True,
    "notifyDate": "2026-07-04T18:00:00Z",
    "productId": "prod-1",
    "source": "vf",
}
PREFIX = "camp7_wave1"


@pytest.fixture
def pacman() -> Iterator[tuple[LocalHttpServer, FakePacman]]:
    with running_server() as server:
        yield server, FakePacman(server, token="tok")


@pytest.fixture
def world(
    emulator: Any,
    aws: Any,
    make_bucket: Callable[[], str],
    make_stream: Callable[..., str],
    pacman: tuple[LocalHttpServer, FakePacman],
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    bucket, stream, table = make_bucket(), make_stream(shards=2), unique_name("codes")
    create_codes_table(aws.client("dynamodb"), table)
    for name, value in {
        "AWS_ENDPOINT_URL": emulator.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "SCORING_BUCKET": bucket,
        "INPUT_STREAM": stream,
        "CODES_TABLE": table,
        "PACMAN_URL": pacman[0].url,
        "SERVICE_TOKEN": "tok",
        "ISSUE_CONCURRENCY": "8",
    }.items():
        monkeypatch.setenv(name, value)
    return {
        "bucket": bucket,
        "stream": stream,
        "table": table,
        "s3": aws.client("s3"),
        "dynamodb": aws.client("dynamodb"),
    }


def s3_event(bucket: str, key: str) -> dict[str, Any]:
    encoded = key.replace("_", "%5F").replace(" ", "+")
    # The shape S3 sends: without eventName a record is not a creation and is only acknowledged.
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": encoded}},
    }
    return {"Records": [record]}


def test_generate_assign_publish_and_select_each_code_once(
    world: dict[str, Any],
    pacman: tuple[LocalHttpServer, FakePacman],
    read_stream: Callable[[str], dict[str, list[dict[str, Any]]]],
) -> None:
    s3, bucket = world["s3"], world["bucket"]
    rows = [fan(i) for i in range(FANS)]
    s3.put_object(Bucket=bucket, Key=f"smsWaves/csv/{PREFIX}.csv", Body=wave_csv(rows, bom=True))
    server, fake = pacman
    server.inject(Fault.status(503), times=2)  # Pacman blips mid-file: retried, nothing lost

    # 1. Codes, through the upload service's body shape.
    generated = generate_sms_wave_codes_handler(
        {"data": {"waveFilePrefix": PREFIX, "config": CONFIG}}, None
    )
    assert generated["count"] == {"in": FANS, "out": FANS, "errors": 0, "errorsByReason": {}}
    wave = parse_csv(s3.get_object(Bucket=bucket, Key=f"smsWaves/csv/{PREFIX}.csv")["Body"].read())
    codes = {r["globalUserId"]: r["code"] for r in wave}
    assert len(set(codes.values())) == FANS == len(fake.issued)
    config = json.loads(
        s3.get_object(Bucket=bucket, Key=f"smsWaves/configs/{PREFIX}.normalized.json")[
            "Body"
        ].read()
    )
    assert (config["beginDate"], config["endDate"]) == (
        "2026-07-03T18:00:00.000Z",
        "2027-07-04T18:00:00.000Z",
    )
    again = generate_sms_wave_codes_handler({"waveFilePrefix": PREFIX, "config": CONFIG}, None)
    assert again["alreadyDone"] and len(fake.issued) == FANS

    # 2. Assigned to the campaign in the DynamoDB inventory; a second run updates none.
    key = f"smsWaves/csv/{PREFIX}.csv"
    assigned = process_scheduled_wave_handler({"key": key}, None)
    assert (assigned["in"], assigned["valid"], assigned["updated"]) == (FANS, FANS, FANS)
    assert process_scheduled_wave_handler({"data": {"key": key}}, None)["updated"] == 0

    # 3. Published once, though the config is written as triggered and then as completed.
    for state in ("triggered", "completed"):
        config_key = f"smsWaves/{state}/{PREFIX}_csv.json"
        s3.put_object(Bucket=bucket, Key=config_key, Body=json.dumps(CONFIG).encode())
        answer = load_code_assignments_to_stream_handler(s3_event(bucket, config_key), None)
        (result,) = answer["waves"]
        assert result["status"] == "ok" and result["count"] == {"rows": FANS, "streamed": FANS}
        assert result["alreadyStreamed"] is (state == "completed")
    on_stream = [r for rs in read_stream(world["stream"]).values() for r in rs]
    assert sorted(r["PartitionKey"] for r in on_stream) == sorted(codes.values())
    first = orjson.loads(on_stream[0]["Data"])
    assert first["type"] == "codeAssignment" and first["campaignId"] == "camp7"
    assert first["code"] == codes[first["globalUserId"]] and first["categoryId"] == "77"

    # 4. Through transform_code_assignments and save_selection to the entries.
    users = MemoryUserDirectory({fan(i)[0]: f"{i:024d}" for i in range(FANS)})
    selection_stream = InMemoryRecordStream()
    batch = [
        IncomingRecord("input", "shard", r["SequenceNumber"], r["PartitionKey"], r["Data"])
        for r in on_stream
    ]
    dead = MemoryDeadLetters()
    counts = transform_code_assignments(
        batch,
        users=users,
        campaigns=InMemoryCampaignDirectory.from_categories({"77": "camp7"}),
        schemas=AvroSchemas(),
        output=selection_stream,
        encode=orjson.dumps,
        dead_letters=dead,
    )
    assert (counts.handled, counts.dead_lettered) == (FANS, 0), dead.reasons()
    entries = MemoryEntryDirectory()
    selected = [
        IncomingRecord("sel", "shard", str(i), r.partition_key, r.data)
        for i, r in enumerate(selection_stream.records)
    ]
    saved = save_selection(
        selected, entries=entries, verdicts=MemoryVerdictQueue(), dead_letters=MemoryDeadLetters()
    )
    assert saved.handled == FANS
    assert {g: held for (_, g), held in entries.codes.items()} == {g: {c} for g, c in codes.items()}


def test_bad_input_fails_the_task_with_a_clear_error(world: dict[str, Any]) -> None:
    with pytest.raises(WorkerFailed, match=r"config\.notifyDate"):
        generate_sms_wave_codes_handler(
            {"waveFilePrefix": PREFIX, "config": {**CONFIG, "notifyDate": "soon"}}, None
        )
    with pytest.raises(WorkerFailed, match="source_missing"):
        generate_sms_wave_codes_handler({"waveFilePrefix": PREFIX, "config": CONFIG}, None)
    with pytest.raises(WorkerFailed, match=r"smsWaves/csv/nocampaign\.csv"):
        process_scheduled_wave_handler({"key": "smsWaves/csv/nocampaign.csv"}, None)
    answer = load_code_assignments_to_stream_handler(
        s3_event(world["bucket"], "smsWaves/triggered/other.json"), None
    )
    assert answer["waves"][0]["error"]["kind"] == "bad_key"


def test_pacman_down_mid_file_is_retryable_and_the_old_wave_survives(
    world: dict[str, Any], pacman: tuple[LocalHttpServer, FakePacman]
) -> None:
    s3, bucket = world["s3"], world["bucket"]
    original = wave_csv([fan(i) for i in range(20)], header=HEADER)
    s3.put_object(Bucket=bucket, Key=f"smsWaves/csv/{PREFIX}.csv", Body=original)
    server, _fake = pacman
    server.inject(Fault.status(500), times=10_000, path="/passwords")
    with pytest.raises(RetryableFailure, match="issuer_unavailable"):
        generate_sms_wave_codes_handler({"waveFilePrefix": PREFIX, "config": CONFIG}, None)
    assert s3.get_object(Bucket=bucket, Key=f"smsWaves/csv/{PREFIX}.csv")["Body"].read() == original


def test_the_code_service_over_http_with_faults_mid_file(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """process_scheduled_wave through HttpCodeInventory: a 503 and a 429 between batches are
    retried; a lasting outage is retryable and the re-run assigns the rest, updating none twice."""
    from tests.support.fake_code_services import FakeCodeService

    s3, bucket = world["s3"], world["bucket"]
    rows = [[*fan(i), f"K{i:05d}"] for i in range(6_000)] + [[*fan(9_999), "TM"]]
    key = "smsWaves/csv/camp9_sched.csv"
    s3.put_object(Bucket=bucket, Key=key, Body=wave_csv(rows, header=[*HEADER, "code"]))
    with running_server() as server:
        service = FakeCodeService(server, token="tok")
        monkeypatch.setenv("CODE_SERVICE_URL", server.url)
        server.inject(Fault.status(503), times=1, path="/camp9/assign")
        server.inject(Fault.throttle("0"), times=1, path="/camp9/assign")
        first = process_scheduled_wave_handler({"key": key}, None)
        assert (first["in"], first["valid"], first["updated"]) == (6_001, 6_000, 6_000)
        assert first["dropped"] == {"empty": 0, "placeholder": 1}
        assert [len(r.json()["codes"]) for r in server.requests_to("POST", "/camp9/assign")
                if r.fault is None] == [2_500, 2_500, 1_000]  # fmt: skip
        server.inject(Fault.status(500), times=10_000, path="/camp9/assign")
        with pytest.raises(RetryableFailure, match="inventory_unavailable"):
            process_scheduled_wave_handler({"key": key}, None)
    assert all(service.status("camp9", f"K{i:05d}") == "assigned" for i in range(6_000))


def test_the_cli_runs_the_same_three_steps_and_refuses_bad_input_with_an_error(
    world: dict[str, Any], tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from entrypoints.cli import Exit, main

    def run(*argv: str) -> tuple[int, Any, str]:
        code = main([*argv, "--quiet"])
        out, err = capsys.readouterr()
        return code, json.loads(out) if code == Exit.OK else out, err.strip()

    s3, bucket = world["s3"], world["bucket"]
    s3.put_object(
        Bucket=bucket,
        Key=f"smsWaves/csv/{PREFIX}.csv",
        Body=wave_csv([fan(i) for i in range(FANS)], bom=True),
    )
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(CONFIG), encoding="utf-8")

    code, generated, _ = run("generate-sms-wave-codes", PREFIX, "--config", json.dumps(CONFIG))
    assert (code, generated["count"]["out"]) == (Exit.OK, FANS)
    code, again, _ = run("generate-sms-wave-codes", PREFIX, "--config", f"@{config_file}")
    assert (code, again["alreadyDone"]) == (Exit.OK, True)

    key = f"smsWaves/csv/{PREFIX}.csv"
    code, assigned, _ = run("process-scheduled-wave", key)
    assert (code, assigned["updated"]) == (Exit.OK, FANS)
    code, assigned, _ = run("process-scheduled-wave", f"s3://{bucket}/{key}")
    assert (code, assigned["updated"]) == (Exit.OK, 0)

    config_key = f"smsWaves/triggered/{PREFIX}_csv.json"
    s3.put_object(Bucket=bucket, Key=config_key, Body=json.dumps(CONFIG).encode())
    code, streamed, _ = run("load-code-assignments-to-stream", f"s3://{bucket}/{config_key}")
    assert (code, streamed["count"]) == (Exit.OK, {"rows": FANS, "streamed": FANS})
    code, streamed, _ = run("load-code-assignments-to-stream", config_key)
    assert (code, streamed["alreadyStreamed"]) == (Exit.OK, True)

    for argv, says in [
        (("generate-sms-wave-codes", "a/b", "--config", "{}"), "waveFilePrefix"),
        (("generate-sms-wave-codes", PREFIX, "--config", "[]"), "config"),
        (("process-scheduled-wave", "elsewhere/file.csv"), "smsWaves/csv"),
        (("load-code-assignments-to-stream", "s3://"), "s3://"),
        (("load-code-assignments-to-stream", "smsWaves/triggered/other.json"), "other.json"),
    ]:
        code, out, err = run(*argv)
        assert (code, out) == (Exit.REFUSED, ""), (argv, err)
        assert err.startswith("error:") and says in " ".join(err.split()), err
        assert "Traceback" not in err


def test_a_kept_code_keeps_its_zeros_to_the_stream_and_tm_is_never_assigned_nor_streamed(
    world: dict[str, Any],
    pacman: tuple[LocalHttpServer, FakePacman],
    read_stream: Callable[[str], dict[str, list[dict[str, Any]]]],
) -> None:
    """Issue 17 item 1 end to end: a row already holding `0012345` keeps it (not a number, not
    reissued), is assigned once and published once; a `TM` row stays `TM`, is never assigned in
    the inventory and never appears on the stream (skipped and counted at each step)."""
    s3, bucket, db = world["s3"], world["bucket"], world["dynamodb"]
    rows = [[*fan(i), ""] for i in range(10)] + [[*fan(10), "0012345"], [*fan(11), "TM"]]
    key = f"smsWaves/csv/{PREFIX}.csv"
    s3.put_object(Bucket=bucket, Key=key, Body=wave_csv(rows, header=[*HEADER, "code"]))
    _server, fake = pacman

    generated = generate_sms_wave_codes_handler({"waveFilePrefix": PREFIX, "config": CONFIG}, None)
    assert (generated["issued"], generated["kept"], generated["count"]["out"]) == (10, 2, 12)
    assert len(fake.issued) == 10 and {i["globalUserId"] for i in fake.issued} == {
        fan(i)[0] for i in range(10)
    }
    wave = {
        r["globalUserId"]: r["code"]
        for r in parse_csv(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    }
    assert (wave[fan(10)[0]], wave[fan(11)[0]]) == ("0012345", "TM")

    assigned = process_scheduled_wave_handler({"key": key}, None)
    assert (assigned["in"], assigned["valid"], assigned["updated"]) == (12, 11, 11)
    assert assigned["dropped"] == {"empty": 0, "placeholder": 1}
    table = world["table"]
    kept = db.get_item(TableName=table, Key={"pk": {"S": "code#0012345"}}, ConsistentRead=True)
    assert kept["Item"]["campaignId"]["S"] == "camp7"
    assert "Item" not in db.get_item(TableName=table, Key={"pk": {"S": "code#TM"}})
    # The inventory's items are `code#…`; the wave's ledger (`issued#…`) remembers the TM row
    # only so a later row of that fan is a duplicate.
    inventory = [i for i in db.scan(TableName=table)["Items"] if i["pk"]["S"].startswith("code#")]
    assigned_codes = {i["code"]["S"] for i in inventory if i["status"]["S"] == "assigned"}
    assert assigned_codes == {c for c in wave.values() if c != "TM"}

    config_key = f"smsWaves/triggered/{PREFIX}_csv.json"
    s3.put_object(Bucket=bucket, Key=config_key, Body=json.dumps(CONFIG).encode())
    (streamed,) = load_code_assignments_to_stream_handler(s3_event(bucket, config_key), None)[
        "waves"
    ]
    assert streamed["count"] == {"rows": 12, "streamed": 11}
    assert streamed["skipped"]["placeholder"] == 1
    on_stream = [
        orjson.loads(r["Data"]) for rs in read_stream(world["stream"]).values() for r in rs
    ]
    assert sorted(r["code"] for r in on_stream) == sorted(c for c in wave.values() if c != "TM")
    (zeros,) = [r for r in on_stream if r["globalUserId"] == fan(10)[0]]
    assert zeros["code"] == "0012345"
    assert not any(r["globalUserId"] == fan(11)[0] or r["code"] == "TM" for r in on_stream)
