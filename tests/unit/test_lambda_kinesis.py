from __future__ import annotations

import pytest

from domain.backoff import no_wait
from streams.lambda_kinesis import (
    MalformedEvent,
    handle_kinesis_event,
    incoming_record,
    kinesis_handler,
    stream_of,
)
from tests.support.stream_fakes import ScriptedWorker, json_payloads, kinesis_event


def test_a_fully_handled_batch_reports_no_failures() -> None:
    event, per_shard = kinesis_event({"shardId-000000000000": json_payloads(5)})
    worker = ScriptedWorker()
    result = handle_kinesis_event(event, worker, backoff=no_wait())
    assert result.response() == {"batchItemFailures": []}
    assert worker.handled == per_shard["shardId-000000000000"]
    assert result.counts.received == 5
    assert result.counts.handled == 5


def test_poison_records_are_dead_lettered_and_do_not_block_the_shard() -> None:
    payloads = [b'{"type":"registration"}', b"\xff\xfe not json", b"{broken", b'{"type":"x"}']
    event, per_shard = kinesis_event({"shardId-000000000000": payloads})
    worker = ScriptedWorker()
    result = handle_kinesis_event(event, worker, backoff=no_wait())
    sequences = per_shard["shardId-000000000000"]
    assert result.response() == {"batchItemFailures": []}
    assert worker.dead_lettered == sequences[1:3]
    assert worker.handled == [sequences[0], sequences[3]]
    assert result.counts.dead_lettered == 2


def test_a_transient_failure_is_retried_and_the_batch_then_succeeds() -> None:
    event, per_shard = kinesis_event({"shardId-000000000000": json_payloads(3)})
    worker = ScriptedWorker(transient_failures=2)
    result = handle_kinesis_event(event, worker, backoff=no_wait(retries=3))
    assert result.response() == {"batchItemFailures": []}
    assert worker.calls == 3
    assert worker.handled == per_shard["shardId-000000000000"]


def test_a_failed_chunk_reports_its_first_record_and_everything_after_it_in_that_shard() -> None:
    event, per_shard = kinesis_event(
        {"shardId-000000000000": json_payloads(6), "shardId-000000000001": json_payloads(4)}
    )
    first, second = per_shard["shardId-000000000000"], per_shard["shardId-000000000001"]
    worker = ScriptedWorker(failing=frozenset({first[3]}))
    result = handle_kinesis_event(event, worker, chunk_size=2, backoff=no_wait(retries=1))
    # Chunks [0,1] [2,3] [4,5]: the second fails, so 2..5 are reported, 4..5 never attempted.
    assert result.failed_sequence_numbers == first[2:]
    assert worker.handled == first[:2] + second
    assert all(first[4] not in batch and first[5] not in batch for batch in worker.batches)


def test_a_bug_in_the_worker_stops_the_shard_instead_of_losing_records() -> None:
    event, per_shard = kinesis_event({"shardId-000000000000": json_payloads(3)})

    class Broken(ScriptedWorker):
        def __call__(self, batch):  # type: ignore[no-untyped-def]
            raise KeyError("a bug")

    result = handle_kinesis_event(event, Broken(), backoff=no_wait())
    assert result.failed_sequence_numbers == per_shard["shardId-000000000000"]


def test_records_keep_shard_stream_and_raw_bytes() -> None:
    event, per_shard = kinesis_event({"shardId-000000000007": [b"\x00\x01raw"]}, stream="in")
    record = incoming_record(event["Records"][0], 0)  # type: ignore[index]
    assert record.shard_id == "shardId-000000000007"
    assert record.stream == "in"
    assert record.sequence_number == per_shard["shardId-000000000007"][0]
    assert record.data == b"\x00\x01raw"
    assert record.arrived_at is not None


def test_data_that_is_not_base64_is_kept_for_the_worker_to_dead_letter() -> None:
    event, _ = kinesis_event({"shardId-000000000000": [b"x"]})
    entry = event["Records"][0]  # type: ignore[index]
    entry["kinesis"]["data"] = "not base64!"
    assert incoming_record(entry, 0).data == b"not base64!"


def test_a_non_kinesis_event_is_a_clear_error() -> None:
    with pytest.raises(MalformedEvent, match="no Records"):
        handle_kinesis_event({"detail": {}}, ScriptedWorker())
    with pytest.raises(MalformedEvent, match=r"Records\[0\].*kinesis"):
        handle_kinesis_event({"Records": [{"s3": {}}]}, ScriptedWorker())


def test_the_handler_builds_its_worker_once_and_shapes_the_response() -> None:
    built: list[ScriptedWorker] = []

    def build() -> ScriptedWorker:
        built.append(ScriptedWorker(failing=frozenset({f"{2:056d}"})))
        return built[-1]

    handler = kinesis_handler(build, backoff=no_wait(retries=0), chunk_size=1)
    event, per_shard = kinesis_event({"shardId-000000000000": json_payloads(3)})
    assert handler(event, None) == {
        "batchItemFailures": [{"itemIdentifier": s} for s in per_shard["shardId-000000000000"][1:]]
    }
    handler(event, None)
    assert len(built) == 1


def test_stream_name_comes_from_the_arn() -> None:
    assert stream_of("arn:aws:kinesis:us-east-1:1:stream/prd2011-dev1-vf1-input-stream") == (
        "prd2011-dev1-vf1-input-stream"
    )


def test_each_invocation_reports_its_counts_as_the_workers_metrics() -> None:
    reported: list[tuple[str, dict[str, int]]] = []
    worker = ScriptedWorker(failing=frozenset({f"{3:056d}"}))
    handler = kinesis_handler(
        lambda: worker,
        backoff=no_wait(retries=0),
        chunk_size=1,
        report=lambda name, counts: reported.append((name, dict(counts))),
    )
    payloads = [b'{"type":"registration"}', b"{broken", *json_payloads(2)]
    event, _ = kinesis_event({"shardId-000000000000": payloads})
    handler(event, None)
    assert reported == [
        (
            worker.name,
            {"in": 2, "out": 1, "rejected": 0, "failed": 2, "deadLettered": 1, "skipped": 0},
        )
    ]


def test_the_stream_handler_emits_one_emf_line_per_invocation_inside_lambda(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from entrypoints import lambda_handlers

    counts = {"in": 4, "out": 3, "rejected": 0, "failed": 1, "deadLettered": 0, "skipped": 0}
    lambda_handlers._report("save_campaign_data", counts)
    assert capsys.readouterr().out == ""  # outside Lambda stdout is the caller's
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "save-campaign-data")
    lambda_handlers._report("save_campaign_data", counts)
    emf = json.loads(capsys.readouterr().out)
    directive = emf["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "campaign-workers"
    assert directive["Dimensions"] == [["worker"]]
    assert emf["worker"] == "save_campaign_data"
    # Powertools writes each metric's values as a list (one per add_metric call).
    assert {m["Name"]: emf[m["Name"]] for m in directive["Metrics"]} == {
        name: [float(value)] for name, value in counts.items()
    }
