"""The job runtime: one failure value, one mapping to Lambda and exit codes, EMF counts, the
AWS wrappers taken off in entrypoints, progress lines without a terminal, one correlation id."""

from __future__ import annotations

import json

import pytest

from entrypoints import lambda_handlers, registry, runtime
from entrypoints.events import unwrap
from entrypoints.runtime import Exit, JobFailure, RetryableFailure, WorkerFailed

BODY = {"waveFilePrefix": "camp1_w1", "config": "{}"}


@pytest.mark.parametrize(
    "event",
    [
        BODY,
        {"data": BODY},
        {"Payload": BODY},
        {"Payload": BODY, "StatusCode": 200, "ExecutedVersion": "$LATEST"},
        {"input": BODY},
        {"body": json.dumps(BODY)},
        json.dumps(BODY),
        {"Payload": {"data": BODY}, "StatusCode": 200},
    ],
)
def test_every_wrapper_a_direct_trigger_sends_is_taken_off(event: object) -> None:
    assert unwrap(event) == BODY


def test_an_s3_notification_becomes_its_object() -> None:
    event = {"Records": [{"s3": {"bucket": {"name": "b"}, "object": {"key": "a%3D1+b.csv"}}}]}
    assert unwrap(event) == {"bucket": "b", "key": "a=1 b.csv"}


@pytest.mark.parametrize(
    ("failures", "code"),
    [
        ([], Exit.OK),
        ([JobFailure("down", "x", retryable=True)], Exit.FAILED),
        ([JobFailure("bad", "x")], Exit.REFUSED),
        ([JobFailure("table", "x", environment=True)], Exit.ENVIRONMENT),
        ([JobFailure("down", "x", retryable=True), JobFailure("bad", "x")], Exit.REFUSED),
    ],
)
def test_one_mapping_from_failures_to_exit_codes(failures: list[JobFailure], code: Exit) -> None:
    assert runtime.exit_code(failures) == code


def test_lambda_raises_to_retry_and_returns_or_raises_to_stop() -> None:
    with pytest.raises(RetryableFailure, match="s3://b/k: down: gone"):
        runtime.raise_for_lambda([("s3://b/k: ", JobFailure("down", "gone", True))], "return")
    runtime.raise_for_lambda([("", JobFailure("bad", "no"))], "return")
    with pytest.raises(WorkerFailed, match="bad: no"):
        runtime.raise_for_lambda([("", JobFailure("bad", "no"))], "raise")


def test_counts_are_emf_with_the_worker_the_only_dimension(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "campaign-workers")
    runtime.emit_metrics("merge_avro_files", {"in": 5, "files": 2}, {"prefix": "2026/11/30"})
    emf = json.loads(capsys.readouterr().out)
    directive = emf["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "campaign-workers"
    assert directive["Dimensions"] == [["worker"]]
    names = [m["Name"] for m in directive["Metrics"]]
    assert names == ["in", "out", "rejected", "failed", "files"]
    assert (emf["worker"], emf["in"], emf["out"], emf["prefix"]) == (
        "merge_avro_files",
        [5.0],
        [0.0],
        "2026/11/30",
    )


def test_progress_lines_come_at_most_every_period_without_a_terminal() -> None:
    now = [0.0]
    said: list[str] = []
    tick = runtime.progress_lines(
        "merging", "records", every_seconds=15, clock=lambda: now[0], say=said.append
    )
    tick(10)
    now[0] = 16.0
    tick(2000)
    tick(2500)
    now[0] = 40.0
    tick(9000)
    assert said == ["merging: 2,000 records", "merging: 9,000 records"]


def test_every_job_has_a_handler_and_a_command_from_its_entry() -> None:
    for worker in registry.JOBS:
        handler = getattr(lambda_handlers, f"{worker.name}_handler")
        assert callable(handler) and worker.handler.endswith(f".{worker.name}_handler")
        assert worker.job is not None and worker.cli is not None
