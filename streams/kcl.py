"""An amazon-kclpy v3 record processor around any stream worker.

The MultiLangDaemon (Java) owns leases and reads the shard; it sends this process JSON lines on
stdin and reads our answers on stdout. So stdout carries the protocol only: every log goes to
stderr (a stray print would break the conversation with the daemon).

Rules, and the failure each prevents:
- Checkpoint after each batch the worker fully handled, at the batch's last sequence number.
  A restart then replays at most one batch, and a replayed batch starts at the same sequence
  number, so a worker that names its output after the batch's first record rewrites the same
  object instead of adding a duplicate.
- When the worker's retry budget is spent, exit non-zero WITHOUT checkpointing. A processor that
  merely raises is logged by the daemon, which then moves on to the next batch: the failed one
  would be skipped. Exiting makes the daemon stop (and our supervisor restart it) from the last
  checkpoint instead. A worker that raises anything else (a bug) is treated the same way.
- Retry a checkpoint that is throttled. Never handle or checkpoint anything after the lease is
  lost (another worker owns the shard now, and its checkpoint must not be overwritten): a
  checkpoint refused with ShutdownException, or a batch arriving after `lease_lost`, makes the
  process exit at once, so the daemon (restarted by our supervisor) reassigns the shard, instead
  of this processor going on with batches whose checkpoints would all be refused.
- Checkpoint at shard end (the KCL does not start the child shards until the parent's end is
  checkpointed) and when a graceful shutdown is requested.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn, Protocol

import orjson
from amazon_kclpy import dispatch, kcl
from amazon_kclpy.checkpoint_error import CheckpointError
from amazon_kclpy.v3 import processor as v3

from domain.backoff import Backoff
from domain.deadline import DeadlineScope, unscoped
from domain.ports import StreamWorker
from streams.kinesis_records import from_kcl
from streams.runtime import DEFAULT_BATCH_BACKOFF, DEFAULT_BATCH_DEADLINE_SECONDS, run_batch

_log = logging.getLogger(__name__)

# EX_TEMPFAIL: "temporary failure; the user is invited to retry". The daemon exits 1 when its
# child dies; the supervisor restarts it, and the batch is replayed from the last checkpoint.
EXIT_BATCH_ABANDONED = 75
EXIT_CHECKPOINT_FAILED = 76
EXIT_WORKER_FAILED = 70  # EX_SOFTWARE: the worker raised something other than DependencyUnavailable
# The lease was lost (a checkpoint refused with ShutdownException): another worker owns the
# shard. The batch is not handled again here; exiting makes the daemon drop this processor and
# take the shard up again from the last checkpoint if the lease comes back (EX_NOPERM).
EXIT_LEASE_LOST = 77

# Checkpoint errors the daemon may answer with (names of KCL exceptions).
_RETRYABLE_CHECKPOINT_ERRORS = frozenset(
    {"ThrottlingException", "KinesisClientLibDependencyException"}
)
# The lease is gone: another worker owns the shard, or this one is shutting down.
_LEASE_GONE_ERRORS = frozenset({"ShutdownException"})

DEFAULT_CHECKPOINT_BACKOFF = Backoff(base_seconds=0.1, cap_seconds=5.0, retries=8)


class Checkpointer(Protocol):
    def checkpoint(
        self, sequence_number: str | None = None, sub_sequence_number: int | None = None
    ) -> None: ...


class CheckpointAbandoned(Exception):
    """A checkpoint that could not be written within its budget (not a lost lease)."""


def load_action(line: str) -> Any:
    """amazon_kclpy's message decoding, with records left as plain dicts (orjson, no hook).

    amazon_kclpy decodes with the stdlib's json and an object hook that builds a Record object
    (with a local-time datetime) per record: about a third of the processor's time per batch.
    The top-level message still goes through amazon_kclpy's own dispatch table.
    """
    return dispatch.message_decode(orjson.loads(line))


def _exit(code: int) -> NoReturn:
    sys.exit(code)


@dataclass
class StreamRecordProcessor(v3.RecordProcessorBase):  # type: ignore[misc]
    """One shard's processor: decodes, runs the worker with retries, checkpoints.

    `exit` is sys.exit in production; tests pass a function that raises, to observe it.
    """

    worker: StreamWorker
    stream: str
    batch_backoff: Backoff = DEFAULT_BATCH_BACKOFF
    batch_deadline_seconds: float = DEFAULT_BATCH_DEADLINE_SECONDS
    checkpoint_backoff: Backoff = DEFAULT_CHECKPOINT_BACKOFF
    exit: Callable[[int], NoReturn] = _exit
    # Puts each batch's deadline in force for the worker's calls (adapters/deadline.py `within`).
    deadline_scope: DeadlineScope = unscoped
    shard_id: str = "unknown-shard"
    lease_is_lost: bool = False
    last_checkpoint: str | None = None

    def initialize(self, initialize_input: Any) -> None:
        self.shard_id = initialize_input.shard_id
        _log.info(
            "%s: shard %s starting after %s",
            self.worker.name,
            self.shard_id,
            initialize_input.sequence_number,
        )

    def process_records(self, process_records_input: Any) -> None:
        if self.lease_is_lost:
            # Another worker owns the shard: handling this batch would race its owner and
            # write objects the owner's checkpoints know nothing about.
            self._exit_lease_lost("a batch arrived after the lease was lost")
        arrivals: dict[int, datetime] = {}
        batch = [
            record
            for raw in process_records_input.records
            for record in from_kcl(self.stream, self.shard_id, raw, arrivals)
        ]
        if not batch:
            return
        try:
            outcome = run_batch(
                self.worker,
                batch,
                backoff=self.batch_backoff,
                deadline_seconds=self.batch_deadline_seconds,
                # This process exits when a batch is abandoned: a hung call dies with it.
                abandon_hung_calls=True,
                scope=self.deadline_scope,
            )
        except Exception:
            # A bug. Returning (or raising into amazon_kclpy, which logs and answers "done")
            # would let the next batch's checkpoint skip this one: exit, replay from here.
            _log.critical(
                "%s: shard %s batch at %s raised; exiting without checkpoint",
                self.worker.name,
                self.shard_id,
                batch[0].sequence_number,
                exc_info=True,
            )
            self.exit(EXIT_WORKER_FAILED)
        if outcome.exhausted:
            _log.critical(
                "%s: shard %s batch at %s abandoned after %d tries (%s); exiting without "
                "checkpoint so the daemon replays it",
                self.worker.name,
                self.shard_id,
                batch[0].sequence_number,
                outcome.attempts,
                outcome.last_error,
            )
            self.exit(EXIT_BATCH_ABANDONED)
        last = batch[-1]
        self._checkpoint_or_exit(
            process_records_input.checkpointer, last.sequence_number, last.sub_sequence_number
        )

    def lease_lost(self, lease_lost_input: Any) -> None:
        # Another worker owns the shard now; a checkpoint here would overwrite its progress.
        self.lease_is_lost = True
        _log.info("%s: lease on %s lost; not checkpointing", self.worker.name, self.shard_id)

    def shard_ended(self, shard_ended_input: Any) -> None:
        # The children of this shard start only once its end is checkpointed. Raising on
        # failure makes the daemon call shard_ended again, which is what we want.
        if self.checkpoint(shard_ended_input.checkpointer, None, None):
            _log.info("%s: shard %s ended and checkpointed", self.worker.name, self.shard_id)

    def shutdown_requested(self, shutdown_requested_input: Any) -> None:
        try:
            self.checkpoint(shutdown_requested_input.checkpointer, None, None)
        except CheckpointAbandoned as failure:
            # Shutting down anyway: the next owner replays from the previous checkpoint.
            _log.warning("%s: checkpoint at shutdown failed: %s", self.worker.name, failure)
        _log.info("%s: shard %s shut down on request", self.worker.name, self.shard_id)

    def checkpoint(
        self,
        checkpointer: Checkpointer,
        sequence_number: str | None,
        sub_sequence_number: int | None,
    ) -> bool:
        """Checkpoints, retrying throttling. False if the lease is gone; raises past the budget."""
        for attempt in self.checkpoint_backoff.attempts():
            try:
                checkpointer.checkpoint(sequence_number, sub_sequence_number)
            except CheckpointError as refused:
                error = str(refused.value)
                if error in _LEASE_GONE_ERRORS:
                    _log.info(
                        "%s: checkpoint on %s refused (%s): lease gone",
                        self.worker.name,
                        self.shard_id,
                        error,
                    )
                    return False
                if error in _RETRYABLE_CHECKPOINT_ERRORS:
                    _log.warning(
                        "%s: checkpoint on %s throttled (%s), try %d",
                        self.worker.name,
                        self.shard_id,
                        error,
                        attempt + 1,
                    )
                    continue
                raise CheckpointAbandoned(
                    f"checkpoint of {self.shard_id} at {sequence_number} refused: {error}"
                ) from refused
            self.last_checkpoint = sequence_number or "end"
            return True
        raise CheckpointAbandoned(
            f"checkpoint of {self.shard_id} at {sequence_number} still throttled after "
            f"{self.checkpoint_backoff.tries} tries"
        )

    def _exit_lease_lost(self, why: str) -> NoReturn:
        _log.warning(
            "%s: lease on %s lost (%s); exiting so the daemon reassigns the shard",
            self.worker.name,
            self.shard_id,
            why,
        )
        self.exit(EXIT_LEASE_LOST)

    def _checkpoint_or_exit(
        self, checkpointer: Checkpointer, sequence_number: str, sub_sequence_number: int
    ) -> None:
        try:
            if not self.checkpoint(checkpointer, sequence_number, sub_sequence_number):
                self.lease_is_lost = True
                self._exit_lease_lost(f"checkpoint at {sequence_number} refused")
        except CheckpointAbandoned as failure:
            # Going on would stack a second unconfirmed batch on top of this one, and a replay
            # would then start mid-way through what was written: exit and replay from here.
            _log.critical("%s: %s; exiting so the batch is replayed", self.worker.name, failure)
            self.exit(EXIT_CHECKPOINT_FAILED)


def run_processor(
    worker: StreamWorker,
    stream: str,
    *,
    input_file: Any = None,
    output_file: Any = None,
    error_file: Any = None,
    batch_backoff: Backoff = DEFAULT_BATCH_BACKOFF,
    batch_deadline_seconds: float = DEFAULT_BATCH_DEADLINE_SECONDS,
    checkpoint_backoff: Backoff = DEFAULT_CHECKPOINT_BACKOFF,
    deadline_scope: DeadlineScope = unscoped,
) -> None:
    """Speaks the MultiLang protocol on stdin/stdout (or the given files) until stdin closes."""
    processor = StreamRecordProcessor(
        worker=worker,
        stream=stream,
        batch_backoff=batch_backoff,
        batch_deadline_seconds=batch_deadline_seconds,
        checkpoint_backoff=checkpoint_backoff,
        deadline_scope=deadline_scope,
    )
    process = kcl.KCLProcess(
        processor,
        input_file=input_file or sys.stdin,
        output_file=output_file or sys.stdout,
        error_file=error_file or sys.stderr,
    )
    process.io_handler.load_action = load_action
    process.run()
