"""The record processor against the daemon's JSON-lines protocol, message by message."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TextIO

import pytest

pytest.importorskip("amazon_kclpy")

from domain.backoff import no_wait
from streams.kcl import (
    EXIT_BATCH_ABANDONED,
    EXIT_CHECKPOINT_FAILED,
    EXIT_LEASE_LOST,
    EXIT_WORKER_FAILED,
    run_processor,
)
from tests.support.fake_daemon import (
    LEASE_LOST,
    SHARD_ENDED,
    SHUTDOWN_REQUESTED,
    ChildExited,
    FakeDaemon,
    InProcessChild,
    initialize,
    process_records,
)
from tests.support.stream_fakes import ScriptedWorker

SHARD = "shardId-000000000003"
RECORDS = [("101", b'{"type":"registration"}'), ("102", b"not json"), ("107", b'{"type":"x"}')]


def _child(worker: ScriptedWorker, retries: int = 2) -> InProcessChild:
    def target(stdin: TextIO, stdout: TextIO) -> None:
        run_processor(
            worker,
            "vf1-input-stream",
            input_file=stdin,
            output_file=stdout,
            error_file=io.StringIO(),
            batch_backoff=no_wait(retries=retries),
            checkpoint_backoff=no_wait(retries=retries),
        )

    return InProcessChild(target)


def test_a_handled_batch_is_checkpointed_at_its_last_record() -> None:
    worker = ScriptedWorker()
    child = _child(worker)
    daemon = child.start()
    assert daemon.send(initialize(SHARD)) == [{"action": "status", "responseFor": "initialize"}]
    messages = daemon.send(process_records(RECORDS))
    assert messages[0] == {"action": "checkpoint", "sequenceNumber": "107", "subSequenceNumber": 0}
    assert daemon.checkpoints == [("107", 0)]
    assert worker.batches == [["101", "102", "107"]]
    assert worker.dead_lettered == ["102"]
    assert child.finish() == 0


def test_records_reach_the_worker_decoded_with_their_shard() -> None:
    seen = []

    class Keeping(ScriptedWorker):
        def __call__(self, batch):  # type: ignore[no-untyped-def]
            seen.extend(batch)
            return super().__call__(batch)

    child = _child(Keeping())
    daemon = child.start()
    daemon.send(initialize(SHARD))
    daemon.send(process_records(RECORDS))
    child.finish()
    assert [(r.shard_id, r.sequence_number, r.data) for r in seen] == [
        (SHARD, s, d) for s, d in RECORDS
    ]
    assert seen[0].stream == "vf1-input-stream"
    assert seen[0].partition_key == "pk-101"
    assert seen[0].arrived_at is not None


def test_a_throttled_checkpoint_is_retried_until_it_is_accepted() -> None:
    child = _child(ScriptedWorker(), retries=3)
    daemon = child.start(checkpoint_errors=["ThrottlingException", "ThrottlingException"])
    daemon.send(initialize(SHARD))
    messages = daemon.send(process_records(RECORDS))
    assert [m["action"] for m in messages] == ["checkpoint"] * 3 + ["status"]
    assert daemon.refused == [("107", "ThrottlingException")] * 2
    assert daemon.checkpoints == [("107", 0)]
    assert child.finish() == 0


def test_a_transient_worker_failure_replays_the_batch_then_checkpoints_once() -> None:
    worker = ScriptedWorker(transient_failures=2)
    child = _child(worker, retries=2)
    daemon = child.start()
    daemon.send(initialize(SHARD))
    daemon.send(process_records(RECORDS))
    assert worker.calls == 3
    assert daemon.checkpoints == [("107", 0)]
    assert child.finish() == 0


def test_a_spent_retry_budget_exits_non_zero_without_checkpointing() -> None:
    worker = ScriptedWorker(failing=frozenset({"102"}))
    child = _child(worker, retries=2)
    daemon = child.start()
    daemon.send(initialize(SHARD))
    with pytest.raises(Exception, match="child exited while handling processRecords"):
        daemon.send(process_records(RECORDS))
    assert daemon.checkpoints == []
    assert worker.calls == 3
    assert child.finish() == EXIT_BATCH_ABANDONED


def test_a_worker_bug_exits_without_checkpointing_instead_of_skipping_the_batch() -> None:
    class Broken(ScriptedWorker):
        def __call__(self, batch):  # type: ignore[no-untyped-def]
            raise KeyError("a bug")

    child = _child(Broken())
    daemon = child.start()
    daemon.send(initialize(SHARD))
    with pytest.raises(Exception, match="child exited"):
        daemon.send(process_records(RECORDS))
    assert daemon.checkpoints == []
    assert child.finish() == EXIT_WORKER_FAILED


def test_a_checkpoint_throttled_past_its_budget_exits_so_the_batch_is_replayed() -> None:
    child = _child(ScriptedWorker(), retries=1)
    daemon = child.start(checkpoint_errors=["ThrottlingException"] * 2)
    daemon.send(initialize(SHARD))
    with pytest.raises(Exception, match="child exited"):
        daemon.send(process_records(RECORDS))
    assert daemon.checkpoints == []
    assert child.finish() == EXIT_CHECKPOINT_FAILED


def test_after_a_lost_lease_nothing_is_checkpointed() -> None:
    child = _child(ScriptedWorker())
    daemon = child.start()
    daemon.send(initialize(SHARD))
    assert daemon.send(LEASE_LOST) == [{"action": "status", "responseFor": "leaseLost"}]
    assert daemon.checkpoints == []
    assert child.finish() == 0


def test_a_checkpoint_refused_because_the_lease_is_gone_stops_the_processor() -> None:
    """Not retried, and no further batch is taken: the process exits so the daemon
    reassigns the shard (before, it went on and handled the next batch)."""
    worker = ScriptedWorker()
    child = _child(worker, retries=5)
    daemon = child.start(checkpoint_errors=["ShutdownException"])
    daemon.send(initialize(SHARD))
    with pytest.raises(ChildExited) as exited:
        daemon.send(process_records(RECORDS))
    assert str(exited.value).count("'checkpoint'") == 1, "the refused checkpoint was retried"
    assert daemon.checkpoints == []
    assert daemon.refused == [("107", "ShutdownException")]
    assert child.finish() == EXIT_LEASE_LOST
    assert worker.calls == 1, "a batch was handled after the lease was lost"


def test_a_batch_that_arrives_after_lease_lost_is_not_handled() -> None:
    worker = ScriptedWorker()
    child = _child(worker)
    daemon = child.start()
    daemon.send(initialize(SHARD))
    daemon.send(LEASE_LOST)
    with pytest.raises(ChildExited):
        daemon.send(process_records(RECORDS))
    assert worker.calls == 0
    assert daemon.checkpoints == []
    assert child.finish() == EXIT_LEASE_LOST


def test_shard_end_is_checkpointed() -> None:
    child = _child(ScriptedWorker())
    daemon = child.start()
    daemon.send(initialize(SHARD))
    daemon.send(process_records(RECORDS))
    messages = daemon.send(SHARD_ENDED)
    assert messages == [
        {"action": "checkpoint", "sequenceNumber": None, "subSequenceNumber": None},
        {"action": "status", "responseFor": "shardEnded"},
    ]
    assert daemon.checkpoints == [("107", 0), (None, None)]
    assert child.finish() == 0


def test_a_shutdown_request_checkpoints() -> None:
    child = _child(ScriptedWorker())
    daemon = child.start()
    daemon.send(initialize(SHARD))
    messages = daemon.send(SHUTDOWN_REQUESTED)
    assert [m["action"] for m in messages] == ["checkpoint", "status"]
    assert daemon.checkpoints == [(None, None)]
    assert child.finish() == 0


def test_the_child_process_keeps_stdout_for_the_protocol(tmp_path: Path) -> None:
    """The real child runtime (entrypoints.kcl_main.serve) over pipes, with a worker that prints."""
    probe = tmp_path / "batches.jsonl"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PROBE_FILE": str(probe), "PYTHONPATH": str(root)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.kcl_child",
            "file_probe",
            "--stream",
            "in",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert process.stdin is not None and process.stdout is not None
    daemon = FakeDaemon(to_child=process.stdin, from_child=process.stdout)
    try:
        daemon.send(initialize(SHARD))
        daemon.send(process_records(RECORDS))
        daemon.send(process_records([("108", b"{}")]))
        daemon.send(SHUTDOWN_REQUESTED)
        process.stdin.close()
        rest = process.stdout.read()
        assert process.stderr is not None
        errors = process.stderr.read()
        process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, errors
    assert rest.strip() == ""  # nothing but protocol was ever written to stdout
    assert "noise" in errors  # the worker's prints went to stderr instead
    assert daemon.checkpoints == [("107", 0), ("108", 0), (None, None)]
    assert [json.loads(line) for line in probe.read_text().splitlines()] == [
        ["101", "102", "107"],
        ["108"],
    ]
