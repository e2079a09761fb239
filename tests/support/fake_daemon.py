"""Plays the MultiLangDaemon's side of the protocol: JSON lines to the child, checkpoint answers.

Messages as KCL 3's multilang daemon writes them (one JSON object per line on the child's stdin);
the child answers with `{"action": "status", "responseFor": ...}` when done with an action, and
may first ask `{"action": "checkpoint", ...}`, which the daemon answers with the same fields
plus `error` when the checkpoint was refused.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, TextIO


class ChildExited(Exception):
    """The child closed its stdout (exited) before answering."""


def initialize(shard_id: str, sequence_number: str = "TRIM_HORIZON") -> dict[str, Any]:
    return {
        "action": "initialize",
        "shardId": shard_id,
        "sequenceNumber": sequence_number,
        "subSequenceNumber": 0,
    }


def process_records(records: Sequence[tuple[str, bytes]]) -> dict[str, Any]:
    return {
        "action": "processRecords",
        "millisBehindLatest": 0,
        "records": [
            {
                "action": "record",
                "data": base64.b64encode(data).decode(),
                "partitionKey": f"pk-{sequence}",
                "sequenceNumber": sequence,
                "subSequenceNumber": 0,
                "approximateArrivalTimestamp": 1_795_000_000_123,
            }
            for sequence, data in records
        ],
    }


LEASE_LOST = {"action": "leaseLost"}
SHARD_ENDED = {"action": "shardEnded"}
SHUTDOWN_REQUESTED = {"action": "shutdownRequested"}


@dataclass
class FakeDaemon:
    """Writes actions to `to_child`, reads `from_child`, answers checkpoints.

    `checkpoint_errors` scripts the answers: each checkpoint request takes the next entry
    (None = accepted); when the list runs out every checkpoint is accepted.
    """

    to_child: IO[str]
    from_child: IO[str]
    checkpoint_errors: list[str | None] = field(default_factory=list)
    checkpoints: list[tuple[str | None, int | None]] = field(default_factory=list)
    refused: list[tuple[str | None, str]] = field(default_factory=list)

    def send(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        """Sends one action; returns every message the child wrote until its status for it."""
        self.to_child.write(json.dumps(message) + "\n")
        self.to_child.flush()
        seen: list[dict[str, Any]] = []
        while True:
            line = self.from_child.readline()
            if not line:
                raise ChildExited(f"child exited while handling {message['action']}: {seen}")
            if not line.strip():
                continue  # amazon_kclpy surrounds each message with blank lines
            answer = json.loads(line)  # anything but JSON on stdout is a protocol violation
            seen.append(answer)
            if answer["action"] == "checkpoint":
                error = self.checkpoint_errors.pop(0) if self.checkpoint_errors else None
                reply = {
                    "action": "checkpoint",
                    "sequenceNumber": answer["sequenceNumber"],
                    "subSequenceNumber": answer["subSequenceNumber"],
                }
                if error is None:
                    self.checkpoints.append((answer["sequenceNumber"], answer["subSequenceNumber"]))
                else:
                    reply["error"] = error
                    self.refused.append((answer["sequenceNumber"], error))
                self.to_child.write(json.dumps(reply) + "\n")
                self.to_child.flush()
                continue
            if answer == {"action": "status", "responseFor": message["action"]}:
                return seen
            raise AssertionError(f"unexpected message {answer} while handling {message}")


@dataclass
class InProcessChild:
    """Runs `target(stdin, stdout)` (a record processor's main loop) in a thread over OS pipes."""

    target: Callable[[TextIO, TextIO], None]
    exit_code: int | None = None
    error: BaseException | None = None
    daemon: FakeDaemon | None = None
    _thread: threading.Thread | None = None

    def start(self, checkpoint_errors: list[str | None] | None = None) -> FakeDaemon:
        child_in_r, child_in_w = os.pipe()
        child_out_r, child_out_w = os.pipe()
        stdin = os.fdopen(child_in_r, "r", encoding="utf-8")
        stdout = os.fdopen(child_out_w, "w", encoding="utf-8")

        def run() -> None:
            try:
                self.target(stdin, stdout)
                self.exit_code = 0
            except SystemExit as exiting:
                self.exit_code = int(exiting.code or 0)
            except BaseException as failure:
                self.error = failure
            finally:
                stdout.close()
                stdin.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        self.daemon = FakeDaemon(
            to_child=os.fdopen(child_in_w, "w", encoding="utf-8"),
            from_child=os.fdopen(child_out_r, "r", encoding="utf-8"),
            checkpoint_errors=list(checkpoint_errors or []),
        )
        return self.daemon

    def finish(self, timeout: float = 10.0) -> int | None:
        assert self.daemon is not None and self._thread is not None
        with contextlib.suppress(BrokenPipeError):
            self.daemon.to_child.close()
        self._thread.join(timeout)
        if self.error is not None:
            raise self.error
        return self.exit_code
