"""processScoredFiles end to end over HTTP: S3 event in, Kinesis, S3 and Slack out.

The expectation is computed independently: the same worker run on the same bytes with in-memory
fakes. What went through the emulator must match it record for record, so every adapter on the
way (S3 streaming reads, the Kinesis producer, multipart CSV writes, the Slack webhook) is shown
to carry everything and add nothing.
"""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from adapters.campaign_config import derive_band_salt
from adapters.clock import FixedClock
from domain.models import Campaign, ObjectRef
from domain.workers.process_scored_files import process_scored_files
from entrypoints import bootstrap
from entrypoints.events import s3_put_event
from entrypoints.lambda_handlers import RetryableFailure, process_scored_files_handler
from local.sample_data import blacklist_lines, scored_lines
from tests.support.fake_services import FakeSlackWebhook
from tests.support.http_server import LocalHttpServer, running_server
from tests.support.memory_objects import InMemoryObjectStore
from tests.support.memory_scored_files import (
    InMemoryCampaignDirectory,
    InMemoryRecordStream,
    RecordingNotifier,
)

pytestmark = pytest.mark.integration

CAMPAIGN = "camp-42"
SECRET = "integration-band-secret"
BLACKLIST_KEY = "blacklist/emails.txt"


@pytest.fixture
def slack() -> Iterator[FakeSlackWebhook]:
    server: LocalHttpServer
    with running_server() as server:
        yield FakeSlackWebhook(server)


@pytest.fixture
def pipeline(
    emulator: Any,
    make_bucket: Callable[[], str],
    make_stream: Callable[..., str],
    s3_client: Any,
    slack: FakeSlackWebhook,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    bucket, stream = make_bucket(), make_stream(shards=2)
    for name, value in {
        "AWS_ENDPOINT_URL": emulator.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "SCORING_BUCKET": bucket,
        "SCORED_OUTPUT_STREAM": stream,
        "BLACKLIST_KEY": BLACKLIST_KEY,
        "BAND_SECRET": SECRET,
        "SLACK_WEBHOOK_URL": slack.url,
        "TRANSFORM_PROCESSES": "1",
    }.items():
        monkeypatch.setenv(name, value)
    config = {"id": CAMPAIGN, "name": "Camp", "options": {"allowIntlPhones": False}}
    s3_client.put_object(Bucket=bucket, Key=f"campaigns/{CAMPAIGN}.json", Body=orjson.dumps(config))
    blacklist = "\n".join(blacklist_lines(40)) + "\n"
    s3_client.put_object(Bucket=bucket, Key=BLACKLIST_KEY, Body=blacklist.encode())
    return {"bucket": bucket, "stream": stream, "blacklist": blacklist.encode()}


def upload(s3_client: Any, bucket: str, key: str, body: bytes) -> ObjectRef:
    s3_client.put_object(Bucket=bucket, Key=key, Body=body)
    return ObjectRef(bucket, key)


def sample_file(fans: int, seed: int = 11) -> bytes:
    return ("\n".join(scored_lines(fans, seed=seed)) + "\n").encode()


def expected_run(
    ref: ObjectRef, body: bytes, blacklist: bytes
) -> tuple[Any, list[dict[str, Any]], bytes]:
    """The same worker on the same bytes, with fakes only: the independent expectation."""
    store = InMemoryObjectStore({ref: body, ObjectRef(ref.bucket, BLACKLIST_KEY): blacklist})
    stream = InMemoryRecordStream()
    salt = derive_band_salt(SECRET.encode(), CAMPAIGN)
    outcome = process_scored_files(
        ref,
        store=store,
        stream=stream,
        campaigns=InMemoryCampaignDirectory([Campaign(CAMPAIGN, "Camp", band_salt=salt)]),
        notifier=RecordingNotifier(),
        clock=FixedClock(datetime(2026, 11, 28, tzinfo=UTC)),
        encode=orjson.dumps,
        blacklist=ObjectRef(ref.bucket, BLACKLIST_KEY),
    )
    counts = outcome.unwrap()
    records = [orjson.loads(r.data) for r in stream.records]
    return counts, records, store.read_bytes(counts.scrubbed)


def streamed(
    read_stream: Callable[[str], dict[str, list[dict[str, Any]]]], name: str
) -> list[dict[str, Any]]:
    return [orjson.loads(r["Data"]) for rs in read_stream(name).values() for r in rs]


def by_fan(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["globalUserId"]: r for r in records}


def test_an_s3_event_streams_every_accepted_fan_and_writes_the_scrubbed_file(
    pipeline, s3_client, read_stream, slack
):
    body = sample_file(3_000)
    ref = upload(s3_client, pipeline["bucket"], f"scored/{CAMPAIGN}.20261128T1000.txt", body)

    response = process_scored_files_handler(s3_put_event(ref), None)

    [result] = response["files"]
    assert result["status"] == "ok"
    counts, want_records, want_scrubbed = expected_run(ref, body, pipeline["blacklist"])
    got = streamed(read_stream, pipeline["stream"])
    assert len(got) == result["count"]["out"] == counts.rows_out
    assert by_fan(got) == by_fan(want_records)
    assert len(by_fan(got)) == len(got), "a fan was streamed twice"
    scrubbed = s3_client.get_object(Bucket=ref.bucket, Key=f"scrubbed/{CAMPAIGN}.20261128T1000.csv")
    assert scrubbed["Body"].read() == want_scrubbed
    assert result["count"]["in"] == 3_000 == result["count"]["out"] + result["count"]["rejected"]
    assert len(slack.messages) == 1
    assert "3,000" in str(slack.messages[0]) or "3000" in str(slack.messages[0])


def test_every_input_row_appears_once_in_the_scrubbed_csv_with_its_verdict(
    pipeline, s3_client, read_stream
):
    body = sample_file(1_500, seed=5)
    ref = upload(s3_client, pipeline["bucket"], f"scored/{CAMPAIGN}.1.txt", body)
    [result] = process_scored_files_handler(s3_put_event(ref), None)["files"]

    raw = s3_client.get_object(Bucket=ref.bucket, Key=f"scrubbed/{CAMPAIGN}.1.csv")["Body"].read()
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == 1_500
    verdicts = Counter(row["verdict"] for row in rows)
    assert verdicts["true"] == result["count"]["out"]
    assert sum(verdicts.values()) - verdicts["true"] == result["count"]["rejected"]
    streamed_fans = set(by_fan(streamed(read_stream, pipeline["stream"])))
    accepted_fans = {row["globalUserId"] for row in rows if row["verdict"] == "true"}
    assert streamed_fans == accepted_fans


def test_two_processes_produce_exactly_what_one_does(
    pipeline, s3_client, read_stream, monkeypatch, make_stream
):
    body = sample_file(2_500, seed=3)
    ref = upload(s3_client, pipeline["bucket"], f"scored/{CAMPAIGN}.seq.txt", body)
    process_scored_files_handler(s3_put_event(ref), None)
    one = streamed(read_stream, pipeline["stream"])

    second_stream = make_stream(shards=2)
    monkeypatch.setenv("SCORED_OUTPUT_STREAM", second_stream)
    monkeypatch.setenv("TRANSFORM_PROCESSES", "2")
    from entrypoints import runtime

    runtime.reset_settings()  # settings are read once per process: this stands for a new one
    # A completed file is not processed again unless its done marker is removed.
    s3_client.delete_object(Bucket=pipeline["bucket"], Key=f"progress/{CAMPAIGN}.seq/done.json")
    process_scored_files_handler(s3_put_event(ref), None)
    two = streamed(read_stream, second_stream)

    assert by_fan(one) == by_fan(two)
    assert len(one) == len(two)


def test_url_encoded_keys_in_the_notification_find_the_object(pipeline, s3_client, read_stream):
    key = f"scored/{CAMPAIGN}.2026-11-28 10:00:00.txt"
    ref = upload(s3_client, pipeline["bucket"], key, sample_file(50))
    event = s3_put_event(ref)
    assert "%3A" in event["Records"][0]["s3"]["object"]["key"]

    [result] = process_scored_files_handler(event, None)["files"]

    assert result["status"] == "ok"
    assert len(streamed(read_stream, pipeline["stream"])) == result["count"]["out"] > 0


def test_a_header_without_required_columns_fails_the_file_and_streams_nothing(
    pipeline, s3_client, read_stream
):
    body = b"globalUserId\tscore\tfirstName\ngu1\t0.9\tAna\n"
    ref = upload(s3_client, pipeline["bucket"], f"scored/{CAMPAIGN}.bad.txt", body)

    [result] = process_scored_files_handler(s3_put_event(ref), None)["files"]

    assert result["status"] == "failed"
    assert result["error"]["kind"] == "missing_columns"
    assert "email" in result["error"]["message"] and "phone" in result["error"]["message"]
    assert result["retryable"] is False
    assert streamed(read_stream, pipeline["stream"]) == []


def test_garbage_rows_are_rejected_with_reasons_and_the_rest_go_through(
    pipeline, s3_client, read_stream
):
    lines = list(scored_lines(20, seed=1))
    garbage = [
        "gu-x\tjust\ttwo",
        "\t\t\t\t\t\t\t\t\t0.5",
        "gu-y\tm\tA\tB\ta@b.com\t1\ttrue\t1\ten\tNaN?",
    ]
    body = ("\n".join(lines[:10] + garbage + lines[10:]) + "\n").encode()
    ref = upload(s3_client, pipeline["bucket"], f"scored/{CAMPAIGN}.garbage.txt", body)

    [result] = process_scored_files_handler(s3_put_event(ref), None)["files"]

    count = result["count"]
    assert result["status"] == "ok"
    assert count["in"] == 23 == count["out"] + count["rejected"]
    assert count["rejected"] >= 3
    assert sum(count["rejectedByReason"].values()) == count["rejected"]
    assert len(streamed(read_stream, pipeline["stream"])) == count["out"]


def test_a_line_too_long_to_be_a_fan_is_one_rejected_row_and_the_file_goes_on(  # header = line 1
    pipeline, s3_client, read_stream, monkeypatch
):
    monkeypatch.setenv("MAX_LINE_BYTES", "1024")
    lines = list(scored_lines(5))
    body = ("\n".join([*lines[:3], "x" * 5000, *lines[3:]]) + "\n").encode()
    ref = upload(s3_client, pipeline["bucket"], f"scored/{CAMPAIGN}.long.txt", body)

    [result] = process_scored_files_handler(s3_put_event(ref), None)["files"]

    assert result["status"] == "ok"
    assert result["count"]["in"] == 6  # five fans and the long line
    assert result["count"]["rejectedByReason"]["line_too_long"] == 1
    scrubbed_ref = ObjectRef.parse(result["scrubbed"])
    scrubbed = s3_client.get_object(Bucket=scrubbed_ref.bucket, Key=scrubbed_ref.key)
    rows = list(csv.DictReader(io.StringIO(scrubbed["Body"].read().decode())))
    [long_row] = [row for row in rows if row["reason"].startswith("line_too_long")]
    assert long_row["row"] == "4"
    assert len(streamed(read_stream, pipeline["stream"])) == result["count"]["out"]


def test_a_run_killed_mid_file_and_retried_resumes_and_ends_as_one_run(
    pipeline, s3_client, read_stream, monkeypatch
):
    # The killed run's lease outlives it by up to its term: a short one, so the retry that
    # comes after it is soon (each put here takes well under half of it).
    monkeypatch.setenv("SCORED_FILE_LEASE_SECONDS", "8")
    # Checkpoints every 6,000 lines (3 chunks): killed after the second, mid-file, with chunks
    # put since it that the retry may put again.
    monkeypatch.setenv("SCORED_FILE_CHECKPOINT_ROWS", "6000")
    body = sample_file(30_000, seed=5)
    ref = upload(s3_client, pipeline["bucket"], f"scored/{CAMPAIGN}.kill.txt", body)
    event = orjson.dumps(s3_put_event(ref)).decode()
    child = subprocess.Popen(  # the Lambda sandbox, killed part-way (a timeout, an OOM)
        [sys.executable, "-c", KILLED_HANDLER, event], env=dict(os.environ)
    )
    kill_after_two_checkpoints(child, s3_client, pipeline["bucket"], f"{CAMPAIGN}.kill")

    # The sandbox killed was another Lambda sandbox (another boot): its death cannot be proven
    # from here, so its lease keeps its term (a holder killed on this machine would be taken
    # over at once: test_a_cli_run_killed_with_sigkill_is_taken_over_at_once_by_a_rerun).
    held_in_another_sandbox(s3_client, pipeline["bucket"], f"progress/{CAMPAIGN}.kill/lease.json")
    # A retry at once finds the dead run's lease still running: refused, nothing streamed.
    with pytest.raises(RetryableFailure, match=r"another run \(.*\) holds this file until"):
        process_scored_files_handler(s3_put_event(ref), None)
    result = retry_until_the_lease_expires(ref)  # Lambda's next retry comes after it

    counts, want_records, want_scrubbed = expected_run(ref, body, pipeline["blacklist"])
    assert result["status"] == "ok" and result["resumedAtLine"] > 2
    assert result["count"] == lambda_counts(counts)
    got = Counter(orjson.dumps(r) for r in streamed(read_stream, pipeline["stream"]))
    want = Counter(orjson.dumps(r) for r in want_records)
    assert set(got) == set(want)
    # Only what was put since the last checkpoint may be there twice: fewer than 6,000 lines
    # held, and the chunk in flight (2,000 rows a chunk).
    assert sum(got.values()) - sum(want.values()) < 6_000 + 2_000
    assert result["resumedAtLine"] < 30_000, "killed after the whole file was checkpointed"
    key = f"scrubbed/{CAMPAIGN}.kill.csv"
    assert s3_client.get_object(Bucket=pipeline["bucket"], Key=key)["Body"].read() == want_scrubbed
    [again] = process_scored_files_handler(s3_put_event(ref), None)["files"]
    assert again["alreadyProcessed"] is True and again["count"] == result["count"]


def held_in_another_sandbox(s3_client: Any, bucket: str, key: str) -> None:
    """Rewrites a lease as a holder in another Lambda sandbox (another boot id) wrote it."""
    lease = orjson.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert lease["process"]["pid"] > 0 and not lease["released"]
    lease["process"]["bootId"] = "another-sandbox-boot-id"
    s3_client.put_object(Bucket=bucket, Key=key, Body=orjson.dumps(lease))


def test_a_cli_run_killed_with_sigkill_is_taken_over_at_once_by_a_rerun(
    pipeline, s3_client, read_stream, monkeypatch, capfd
):
    """An operator's CLI run killed with kill -9 on this machine: its lease has 600 s left, but
    its holder is provably dead (this host, boot and pid namespace; no such process), so a
    re-run takes the file over at once and ends as one uninterrupted run would."""
    monkeypatch.setenv("SCORED_FILE_LEASE_SECONDS", "600")
    monkeypatch.setenv("SCORED_FILE_CHECKPOINT_ROWS", "6000")
    body = sample_file(30_000, seed=6)
    ref = upload(s3_client, pipeline["bucket"], f"scored/{CAMPAIGN}.cli.txt", body)
    child = subprocess.Popen(  # the operator's CLI run
        [sys.executable, "-c", KILLED_CLI, "process-scored-files", ref.uri, "--quiet"],
        env=dict(os.environ),
    )
    kill_after_two_checkpoints(child, s3_client, pipeline["bucket"], f"{CAMPAIGN}.cli")
    key = f"progress/{CAMPAIGN}.cli/lease.json"
    lease = orjson.loads(s3_client.get_object(Bucket=pipeline["bucket"], Key=key)["Body"].read())
    assert lease["process"]["pid"] == child.pid and not lease["released"]
    assert datetime.fromisoformat(lease["expiresAt"]) > datetime.now(UTC) + timedelta(minutes=5)

    capfd.readouterr()  # the killed run's lines

    [result] = process_scored_files_handler(s3_put_event(ref), None)["files"]  # at once

    lines = [orjson.loads(line) for line in capfd.readouterr().err.splitlines() if line[:1] == "{"]
    [took] = [line for line in lines if line["message"].startswith("took over the lease")]
    assert took["message"] == "took over the lease of a dead holder early"
    assert took["pid"] == child.pid and f"/{child.pid}/" in took["deadHolder"]
    counts, want_records, want_scrubbed = expected_run(ref, body, pipeline["blacklist"])
    assert result["status"] == "ok" and 2 < result["resumedAtLine"] < 30_000
    assert result["count"] == lambda_counts(counts)
    got = Counter(orjson.dumps(r) for r in streamed(read_stream, pipeline["stream"]))
    assert set(got) == set(Counter(orjson.dumps(r) for r in want_records))
    assert sum(got.values()) - len(want_records) < 6_000 + 2_000  # a checkpoint interval
    scrubbed = f"scrubbed/{CAMPAIGN}.cli.csv"
    got_scrubbed = s3_client.get_object(Bucket=pipeline["bucket"], Key=scrubbed)["Body"].read()
    assert got_scrubbed == want_scrubbed


KILLED_CLI = """
import sys
from entrypoints.cli import main
sys.exit(main(sys.argv[1:]))
"""


def kill_after_two_checkpoints(child: Any, s3_client: Any, bucket: str, name: str) -> None:
    """SIGKILL once the run has written its second checkpoint (mid-file: the tests' files hold
    more than two checkpoints' lines)."""
    parts = 0
    while child.poll() is None and parts < 2:
        listing = s3_client.list_objects_v2(Bucket=bucket, Prefix=f"progress/{name}/part-")
        parts = listing.get("KeyCount", 0)
        time.sleep(0.02)  # polling S3 for the checkpoints, not a proof of anything
    child.kill()
    assert child.wait() == -signal.SIGKILL, "the run ended before it could be killed"


def retry_until_the_lease_expires(ref: ObjectRef) -> dict[str, Any]:
    for _ in range(200):
        try:
            [result] = process_scored_files_handler(s3_put_event(ref), None)["files"]
        except RetryableFailure as refused:
            assert "holds this file" in str(refused)
            time.sleep(0.25)
            continue
        return dict(result)
    raise AssertionError("the lease never expired")


def test_two_runs_of_one_file_at_once_stream_it_once(pipeline, s3_client, read_stream, tmp_path):
    """Two Lambda sandboxes handed the same file at the same moment (S3 delivering the event
    twice): one streams it, the other is refused before it puts anything (it raises, so Lambda
    retries it later, and that retry finds the file done)."""
    body = sample_file(30_000, seed=8)
    ref = upload(s3_client, pipeline["bucket"], f"scored/{CAMPAIGN}.twice.txt", body)
    event = orjson.dumps(s3_put_event(ref)).decode()
    go = tmp_path / "go"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", RACING_HANDLER, event, str(go)],
            env=dict(os.environ),
            stdout=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    for child in children:  # both imported and waiting: then both start at once
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    go.touch()
    answers = [orjson.loads(child.communicate()[0]) for child in children]
    assert [child.returncode for child in children] == [0, 0]

    [done] = [a["files"][0] for a in answers if "files" in a]
    [refused] = [a["retry"] for a in answers if "retry" in a]
    assert done["status"] == "ok" and "alreadyProcessed" not in done
    assert "another run (" in refused and "nothing was streamed" in refused
    counts, want_records, want_scrubbed = expected_run(ref, body, pipeline["blacklist"])
    assert done["count"] == lambda_counts(counts)
    got = Counter(orjson.dumps(r) for r in streamed(read_stream, pipeline["stream"]))
    assert got == Counter(orjson.dumps(r) for r in want_records)  # each fan once
    key = f"scrubbed/{CAMPAIGN}.twice.csv"
    assert s3_client.get_object(Bucket=pipeline["bucket"], Key=key)["Body"].read() == want_scrubbed
    [again] = process_scored_files_handler(s3_put_event(ref), None)["files"]  # Lambda's retry
    assert again["alreadyProcessed"] is True and again["count"] == done["count"]


RACING_HANDLER = """
import json, sys, time
from pathlib import Path
from entrypoints.lambda_handlers import RetryableFailure, process_scored_files_handler
print("ready", flush=True)
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
try:
    print(json.dumps(process_scored_files_handler(json.loads(sys.argv[1]), None)))
except RetryableFailure as refused:
    print(json.dumps({"retry": str(refused)}))
"""


KILLED_HANDLER = """
import json, sys
from entrypoints.lambda_handlers import process_scored_files_handler
process_scored_files_handler(json.loads(sys.argv[1]), None)
"""


def lambda_counts(counts: Any) -> dict[str, Any]:
    from entrypoints.lambda_handlers import counts_dict

    return counts_dict(counts)


def test_an_empty_file_is_a_clear_failure(pipeline, s3_client):
    ref = upload(s3_client, pipeline["bucket"], f"scored/{CAMPAIGN}.empty.txt", b"")
    [result] = process_scored_files_handler(s3_put_event(ref), None)["files"]
    assert (result["status"], result["error"]["kind"]) == ("failed", "empty_file")


def test_a_key_not_named_like_a_scored_file_is_refused_by_name(pipeline, s3_client):
    ref = upload(s3_client, pipeline["bucket"], "scored/registrants.txt", sample_file(5))
    [result] = process_scored_files_handler(s3_put_event(ref), None)["files"]
    assert result["error"]["kind"] == "bad_key"
    assert "scored/registrants.txt" in result["error"]["message"]


def test_a_campaign_without_a_config_fails_the_file_without_a_retry(
    pipeline, s3_client, read_stream
):
    ref = upload(s3_client, pipeline["bucket"], "scored/nobody.1.txt", sample_file(5))

    [result] = process_scored_files_handler(s3_put_event(ref), None)["files"]

    assert (result["error"]["kind"], result["retryable"]) == ("campaign_not_found", False)
    assert "nobody" in result["error"]["message"]
    assert streamed(read_stream, pipeline["stream"]) == []


def test_an_unreachable_campaign_makes_lambda_retry_and_streams_nothing(
    pipeline, s3_client, read_stream, monkeypatch
):
    monkeypatch.setenv("CAMPAIGN_SERVICE_URL", "http://127.0.0.1:9")  # nothing listens there
    ref = upload(s3_client, pipeline["bucket"], f"scored/{CAMPAIGN}.down.txt", sample_file(5))
    with pytest.raises(RetryableFailure, match=r"down\.txt"):
        process_scored_files_handler(s3_put_event(ref), None)
    assert streamed(read_stream, pipeline["stream"]) == []


def test_the_container_is_reused_across_invocations_with_the_same_settings(pipeline):
    from entrypoints.settings import Settings

    first = bootstrap.container(Settings.from_env())
    assert bootstrap.container(Settings.from_env()) is first


def test_the_cli_processes_a_file_and_exits_zero(pipeline, s3_client, read_stream, capsys):
    from entrypoints.cli import main

    ref = upload(s3_client, pipeline["bucket"], f"scored/{CAMPAIGN}.cli.txt", sample_file(200))

    assert main(["process-scored-files", ref.uri, "--quiet", "--sequential"]) == 0

    out = capsys.readouterr().out
    assert "200" in out and "out (streamed)" in out
    assert len(streamed(read_stream, pipeline["stream"])) > 0


def test_the_cli_refuses_a_file_another_run_holds_with_one_message_and_streams_nothing(
    pipeline, s3_client, read_stream, capsys
):
    from entrypoints.cli import main

    ref = upload(s3_client, pipeline["bucket"], f"scored/{CAMPAIGN}.held.txt", sample_file(50))
    held = {"holder": "lambda/7/abc", "expiresAt": "2999-01-01T00:00:00+00:00"}
    s3_client.put_object(
        Bucket=pipeline["bucket"],
        Key=f"progress/{CAMPAIGN}.held/lease.json",
        Body=orjson.dumps({**held, "released": False, "renewals": 0}),
    )
    assert main(["process-scored-files", ref.uri, "--quiet", "--sequential"]) == 1
    out = " ".join(capsys.readouterr().out.split())  # rich wraps it to the terminal
    assert out.startswith(f"failed {ref.uri}: another run (lambda/7/abc) holds this file until")
    assert "2999-01-01T00:00:00Z; nothing was streamed" in out
    assert streamed(read_stream, pipeline["stream"]) == []


def test_the_cli_exits_non_zero_for_a_failed_file_and_two_for_a_bad_uri(pipeline, s3_client):
    from entrypoints.cli import main

    ref = upload(s3_client, pipeline["bucket"], f"scored/{CAMPAIGN}.e.txt", b"")
    assert main(["process-scored-files", ref.uri, "--quiet"]) == 2  # refused: README exit 2
    assert main(["process-scored-files", "not-a-uri", "--quiet"]) == 2


def test_no_log_line_of_a_debug_run_holds_a_fans_phone_or_email(
    pipeline, s3_client, capfd, monkeypatch
):
    """Every line the run writes (the handler, the worker, the adapters, boto3 and httpx under
    them) at LOG_LEVEL=DEBUG, through Powertools' Lambda context, grepped for the file's people."""
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    body = sample_file(300)
    ref = upload(s3_client, pipeline["bucket"], f"scored/{CAMPAIGN}.20261128T1200.txt", body)
    rows = list(csv.DictReader(io.StringIO(body.decode()), delimiter="\t"))
    emails = {r["email"].strip().lower() for r in rows if "@" in r["email"]}
    phones = {d[-10:] for r in rows if len(d := "".join(filter(str.isdigit, r["phone"]))) >= 10}
    assert len(emails) > 250 and len(phones) > 250  # the fixture has people to leak
    capfd.readouterr()

    response = process_scored_files_handler(s3_put_event(ref), LambdaContextStub())

    assert response["files"][0]["status"] == "ok"
    out, err = capfd.readouterr()
    lines = [orjson.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert len(lines) >= 2 and not out
    assert {line["function_request_id"] for line in lines} == {LambdaContextStub.aws_request_id}
    for line in err.splitlines():
        text = line.lower()
        assert not [e for e in emails if e in text], line[:200]
        assert not [p for p in phones if p in "".join(filter(str.isdigit, line))], line[:200]


class LambdaContextStub:
    """The attributes of the Lambda context object that Powertools' Logger reads."""

    function_name = "process-scored-files"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:process-scored-files"
    aws_request_id = "6f1c2c1e-8a53-4b76-a8a1-0d2b1f5e9c3a"


def test_a_file_announced_through_sqs_is_processed_and_a_test_event_only_acknowledged(
    pipeline, s3_client, read_stream
):
    ref = upload(s3_client, pipeline["bucket"], f"scored/{CAMPAIGN}.via sqs.txt", sample_file(50))
    through_sqs = {
        "Records": [
            {
                "eventSource": "aws:sqs",
                "messageId": "m1",
                "body": orjson.dumps(s3_put_event(ref)).decode(),
            },
            {
                "eventSource": "aws:sqs",
                "messageId": "m2",
                "body": '{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b"}',
            },
        ]
    }

    response = process_scored_files_handler(through_sqs, None)

    [result] = response["files"]
    assert (result["source"], result["status"]) == (ref.uri, "ok")
    assert response["ignored"] == ["s3:TestEvent for bucket b"]
    assert len(streamed(read_stream, pipeline["stream"])) == result["count"]["out"] > 0
