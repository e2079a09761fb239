"""A local shard poller: the third runtime, for the demo, for tests and for small deployments.

No lease table, no Java: ListShards, then per shard GetShardIterator (AFTER_SEQUENCE_NUMBER of
its checkpoint, or TRIM_HORIZON) and GetRecords, each batch driven through the same runtime as
the KCL and Lambda (streams/runtime.py: replays until the batch deadline), and a checkpoint
after each batch that was fully handled (streams/checkpoints.py).

Resharding, as Kinesis defines it:
- A shard is read only once every parent it has (ParentShardId and, for a merge,
  AdjacentParentShardId) has been read to its end and checkpointed SHARD_END: records of one
  partition key stay in order from parent to child. A parent no longer listed (trimmed by
  retention) does not hold its child back.
- Shards are listed again whenever one ends (its children appear), and every
  `relist_seconds` while following; without `--follow` the poller stops only when every shard
  it may read is caught up and a fresh listing shows no new one. It never stops with a shard it
  could read unread; a child it is waiting for because another poller owns its parent is named
  in a warning.

Several pollers on one stream (`--shards`): each is given the shards it owns by id, and a
child belongs to the poller that owns its ParentShardId (for a merge, the ShardToMerge), so
every shard has exactly one reader. The pollers must share their checkpoints (a DynamoDB table,
`--checkpoint-table`): a child whose other parent belongs to another poller waits for that
parent's SHARD_END there. Run one poller per shard set; two with the same set would both read
it (this is no lease protocol: use the KCL for a self-balancing fleet).

Retries: one layer per call. Kinesis calls are retried by botocore (standard mode); a GetRecords
still throttled after that skips the shard for this round (it is polled again next round, as
a KCL worker would), and any other failure ends the run without a checkpoint.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from domain.deadline import DeadlineScope, unscoped
from domain.ports import StreamWorker
from domain.streaming import BatchCounts
from streams.checkpoints import SHARD_END, CheckpointStore, DynamoCheckpoints, FileCheckpoints
from streams.kinesis_records import from_get_records
from streams.runtime import DEFAULT_BATCH_BACKOFF, DEFAULT_BATCH_DEADLINE_SECONDS, run_batch

__all__ = [
    "SHARD_END",
    "BatchAbandoned",
    "CheckpointStore",
    "DynamoCheckpoints",
    "FileCheckpoints",
    "PollerCounts",
    "ShardPoller",
]

_log = logging.getLogger(__name__)

_THROTTLED = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "LimitExceededException"}
)
_ITERATOR_EXPIRED = "ExpiredIteratorException"


class BatchAbandoned(RuntimeError):
    """A batch still failing at its deadline; it is not checkpointed (nor anything after)."""

    def __init__(self, stream: str, shard_id: str, sequence_number: str, detail: str) -> None:
        super().__init__(
            f"{stream}/{shard_id}: batch at {sequence_number} abandoned, not checkpointed: {detail}"
        )
        self.stream = stream
        self.shard_id = shard_id
        self.sequence_number = sequence_number


@dataclass
class PollerCounts:
    batches: int = 0
    records: int = 0
    counts: BatchCounts = field(default_factory=BatchCounts)
    finished_shards: list[str] = field(default_factory=list)


@dataclass
class _Shard:
    shard_id: str
    parents: tuple[str, ...]
    iterator: str | None = None
    finished: bool = False
    caught_up: bool = False


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@dataclass
class ShardPoller:
    """Polls the shards of `stream` this poller owns and drives `worker` batch by batch.

    `kinesis` is a boto3 Kinesis client (botocore retries its calls). `limit` is GetRecords'
    Limit (at most 10,000). `shards`: the shard ids this poller owns (None: all of them), plus
    their descendants by ParentShardId. `abandon_hung_calls`: see streams/runtime.py; only
    for a process that exits when a batch is abandoned (the CLI).
    """

    kinesis: Any
    stream: str
    worker: StreamWorker
    checkpoints: CheckpointStore
    limit: int = 1000
    backoff: Any = DEFAULT_BATCH_BACKOFF
    deadline_seconds: float | None = DEFAULT_BATCH_DEADLINE_SECONDS
    abandon_hung_calls: bool = False
    shards: Collection[str] | None = None
    idle_seconds: float = 1.0
    relist_seconds: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    # Puts each batch's deadline in force for the worker's calls (adapters/deadline.py `within`).
    deadline_scope: DeadlineScope = unscoped
    _known: dict[str, _Shard] = field(default_factory=dict, init=False, repr=False)
    _owned: set[str] = field(default_factory=set, init=False, repr=False)
    _ended: set[str] = field(default_factory=set, init=False, repr=False)
    _listed: set[str] = field(default_factory=set, init=False, repr=False)

    # --- lineage ------------------------------------------------------------------------------

    def _list(self) -> None:
        """Lists every shard; adds the new ones this poller owns."""
        listed: list[dict[str, Any]] = []
        for page in self.kinesis.get_paginator("list_shards").paginate(StreamName=self.stream):
            listed.extend(page["Shards"])
        self._listed = {s["ShardId"] for s in listed}
        owned_roots = set(self.shards) if self.shards is not None else None
        for shard in sorted(listed, key=lambda s: s["ShardId"]):
            shard_id = shard["ShardId"]
            parent = shard.get("ParentShardId")
            if owned_roots is None or shard_id in owned_roots or parent in self._owned:
                self._owned.add(shard_id)
            if shard_id in self._owned and shard_id not in self._known:
                parents = tuple(p for p in (parent, shard.get("AdjacentParentShardId")) if p)
                self._known[shard_id] = _Shard(shard_id, parents)
        if owned_roots is not None and (missing := owned_roots - self._listed):
            raise ValueError(f"{self.stream} has no shard {', '.join(sorted(missing))}")

    def _has_ended(self, shard_id: str) -> bool:
        """Read to its end and checkpointed (by this poller or by the one that owns it)."""
        if shard_id in self._ended:
            return True
        if shard_id not in self._listed:
            return True  # trimmed by retention: nothing of it left to wait for
        if self.checkpoints.get(self.stream, shard_id) == SHARD_END:
            self._ended.add(shard_id)
            return True
        return False

    def _readable(self) -> list[_Shard]:
        return [
            s
            for s in self._known.values()
            if not s.finished and all(self._has_ended(p) for p in s.parents)
        ]

    # --- reading ------------------------------------------------------------------------------

    def _iterator(self, shard_id: str) -> str | None:
        checkpoint = self.checkpoints.get(self.stream, shard_id)
        if checkpoint == SHARD_END:
            return None
        arguments: dict[str, Any] = {"StreamName": self.stream, "ShardId": shard_id}
        if checkpoint:
            arguments |= {
                "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                "StartingSequenceNumber": checkpoint,
            }
        else:
            arguments["ShardIteratorType"] = "TRIM_HORIZON"
        return str(self.kinesis.get_shard_iterator(**arguments)["ShardIterator"])

    def _end(self, shard: _Shard, totals: PollerCounts) -> None:
        self.checkpoints.put(self.stream, shard.shard_id, SHARD_END)
        shard.finished = True
        self._ended.add(shard.shard_id)
        totals.finished_shards.append(shard.shard_id)

    def _poll_once(self, shard: _Shard, totals: PollerCounts) -> None:
        if shard.iterator is None:
            shard.iterator = self._iterator(shard.shard_id)
            if shard.iterator is None:  # checkpointed SHARD_END by an earlier run
                shard.finished = True
                self._ended.add(shard.shard_id)
                return
        try:
            answer = self.kinesis.get_records(ShardIterator=shard.iterator, Limit=self.limit)
        except ClientError as failure:
            if _code(failure) == _ITERATOR_EXPIRED:
                shard.iterator = None  # a new one from the checkpoint next round
                return
            if _code(failure) in _THROTTLED:
                _log.warning("%s/%s: GetRecords throttled; next round", self.stream, shard.shard_id)
                shard.caught_up = False
                return
            raise
        batch = [
            record
            for raw in answer.get("Records", [])
            for record in from_get_records(self.stream, shard.shard_id, raw)
        ]
        if batch:
            outcome = run_batch(
                self.worker,
                batch,
                backoff=self.backoff,
                deadline_seconds=self.deadline_seconds,
                abandon_hung_calls=self.abandon_hung_calls,
                scope=self.deadline_scope,
            )
            if outcome.exhausted:
                raise BatchAbandoned(
                    self.stream, shard.shard_id, batch[0].sequence_number, str(outcome.last_error)
                )
            assert outcome.counts is not None
            self.checkpoints.put(self.stream, shard.shard_id, batch[-1].sequence_number)
            totals.batches += 1
            totals.records += len(batch)
            totals.counts += outcome.counts
        shard.iterator = answer.get("NextShardIterator")
        shard.caught_up = not batch and int(answer.get("MillisBehindLatest", 0) or 0) == 0
        if shard.iterator is None:
            # A closed shard read to its end: its children may start once this is recorded.
            self._end(shard, totals)

    def run(
        self,
        *,
        until_caught_up: bool = True,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> PollerCounts:
        """Polls round-robin until every shard it may read is caught up and a fresh listing
        shows nothing new to read (if asked), or until `should_stop()`."""
        totals = PollerCounts()
        self._list()
        listed_at = self.clock()
        while not should_stop():
            readable = self._readable()
            for shard in readable:
                self._poll_once(shard, totals)
            if any(s.finished for s in readable) or (
                self.clock() - listed_at >= self.relist_seconds
            ):
                self._list()  # an ended shard's children, or a reshard while following
                listed_at = self.clock()
                continue
            if all(s.caught_up or s.finished for s in readable):
                if until_caught_up:
                    self._list()
                    listed_at = self.clock()
                    # New shards start not caught up, so this holds only if none appeared.
                    if all(s.caught_up for s in self._readable()):
                        self._warn_blocked()
                        break
                    continue
                self.sleep(self.idle_seconds)
        return totals

    def _warn_blocked(self) -> None:
        blocked = [
            s.shard_id
            for s in self._known.values()
            if not s.finished and not all(self._has_ended(p) for p in s.parents)
        ]
        if blocked:
            _log.warning(
                "%s: stopping with %s unread: each waits for a parent another poller reads",
                self.stream,
                ", ".join(blocked),
            )
