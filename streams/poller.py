"""A local, in-process shard poller: the third runtime, for the demo and for tests.

No lease table, no Java: ListShards, then per shard GetShardIterator (AFTER_SEQUENCE_NUMBER of
its checkpoint, or TRIM_HORIZON) and GetRecords, each batch driven through the same runtime as
the KCL and Lambda, and a checkpoint after each batch that was fully handled. One process owns
all shards: this is not a fleet (use the KCL for that).

Checkpoints live in a small JSON file (written to a temporary file and renamed over the old one,
so a crash mid-write leaves the previous checkpoints intact) or in a DynamoDB table.
A child shard is read only once its parent is finished, so resharding keeps per-key order.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import ClientError

from domain.backoff import Backoff
from domain.streaming import BatchCounts, IncomingRecord, StreamWorker
from streams.runtime import DEFAULT_BATCH_BACKOFF, run_batch

_log = logging.getLogger(__name__)

_THROTTLED = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "LimitExceededException"}
)
_ITERATOR_EXPIRED = "ExpiredIteratorException"
SHARD_END = "SHARD_END"


class CheckpointStore(Protocol):
    def get(self, stream: str, shard_id: str) -> str | None: ...

    def put(self, stream: str, shard_id: str, sequence_number: str) -> None: ...


class BatchAbandoned(RuntimeError):
    """A batch still failing after its retry budget; it is not checkpointed (nor anything after)."""

    def __init__(self, stream: str, shard_id: str, sequence_number: str, detail: str) -> None:
        super().__init__(
            f"{stream}/{shard_id}: batch at {sequence_number} abandoned, not checkpointed: {detail}"
        )
        self.stream = stream
        self.shard_id = shard_id
        self.sequence_number = sequence_number


@dataclass
class FileCheckpoints:
    """Checkpoints in a JSON file `{stream: {shard: sequence}}`, replaced atomically on each put."""

    path: Path

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(text)
        except json.JSONDecodeError as broken:
            raise ValueError(f"checkpoint file {self.path} is not JSON: {broken}") from None
        if not isinstance(data, dict):
            raise ValueError(f"checkpoint file {self.path} must hold an object, not {type(data)}")
        return data

    def get(self, stream: str, shard_id: str) -> str | None:
        return self._load().get(stream, {}).get(shard_id)

    def put(self, stream: str, shard_id: str, sequence_number: str) -> None:
        data = self._load()
        data.setdefault(stream, {})[shard_id] = sequence_number
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name + ".")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(data, out, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


@dataclass
class DynamoCheckpoints:
    """Checkpoints in a DynamoDB table keyed `shardKey` = `{stream}/{shard}` (created if absent)."""

    dynamodb: Any
    table: str
    _ready: bool = field(default=False, init=False)

    def _ensure_table(self) -> None:
        if self._ready:
            return
        try:
            self.dynamodb.create_table(
                TableName=self.table,
                KeySchema=[{"AttributeName": "shardKey", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "shardKey", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            self.dynamodb.get_waiter("table_exists").wait(TableName=self.table)
        except self.dynamodb.exceptions.ResourceInUseException:
            pass
        self._ready = True

    def get(self, stream: str, shard_id: str) -> str | None:
        self._ensure_table()
        item = self.dynamodb.get_item(
            TableName=self.table,
            Key={"shardKey": {"S": f"{stream}/{shard_id}"}},
            ConsistentRead=True,
        ).get("Item")
        return item["sequenceNumber"]["S"] if item else None

    def put(self, stream: str, shard_id: str, sequence_number: str) -> None:
        self._ensure_table()
        self.dynamodb.put_item(
            TableName=self.table,
            Item={
                "shardKey": {"S": f"{stream}/{shard_id}"},
                "sequenceNumber": {"S": sequence_number},
            },
        )


@dataclass
class PollerCounts:
    batches: int = 0
    records: int = 0
    counts: BatchCounts = field(default_factory=BatchCounts)
    finished_shards: list[str] = field(default_factory=list)


@dataclass
class _ShardState:
    shard_id: str
    parent: str | None
    iterator: str | None = None
    finished: bool = False
    caught_up: bool = False


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@dataclass
class ShardPoller:
    """Polls every shard of `stream` and drives `worker` batch by batch.

    `kinesis` is a boto3 Kinesis client. `limit` is GetRecords' Limit (at most 10,000).
    """

    kinesis: Any
    stream: str
    worker: StreamWorker
    checkpoints: CheckpointStore
    limit: int = 1000
    backoff: Backoff = DEFAULT_BATCH_BACKOFF
    throttle_backoff: Backoff = field(default_factory=lambda: Backoff(0.2, 5.0, retries=20))
    idle_seconds: float = 1.0
    sleep: Callable[[float], None] = time.sleep

    def _shards(self) -> list[_ShardState]:
        shards: list[_ShardState] = []
        for page in self.kinesis.get_paginator("list_shards").paginate(StreamName=self.stream):
            shards.extend(
                _ShardState(shard_id=s["ShardId"], parent=s.get("ParentShardId"))
                for s in page["Shards"]
            )
        return shards

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
        return str(self._call("get_shard_iterator", **arguments)["ShardIterator"])

    def _call(self, operation: str, **arguments: Any) -> Any:
        for attempt in range(self.throttle_backoff.tries):
            if attempt:
                self.throttle_backoff.wait(attempt)
            try:
                return getattr(self.kinesis, operation)(**arguments)
            except ClientError as failure:
                if _code(failure) not in _THROTTLED or attempt == self.throttle_backoff.retries:
                    raise
                _log.warning("%s throttled on %s (try %d)", operation, self.stream, attempt + 1)
        raise AssertionError("unreachable")

    def _records(self, shard_id: str, raw: list[Mapping[str, Any]]) -> list[IncomingRecord]:
        return [
            IncomingRecord(
                stream=self.stream,
                shard_id=shard_id,
                sequence_number=str(r["SequenceNumber"]),
                partition_key=str(r["PartitionKey"]),
                data=bytes(r["Data"]),
                arrived_at=(
                    r["ApproximateArrivalTimestamp"].astimezone(UTC)
                    if r.get("ApproximateArrivalTimestamp") is not None
                    else None
                ),
            )
            for r in raw
        ]

    def _poll_once(self, shard: _ShardState, totals: PollerCounts) -> None:
        if shard.iterator is None:
            shard.iterator = self._iterator(shard.shard_id)
            if shard.iterator is None:
                shard.finished = True
                return
        try:
            answer = self._call("get_records", ShardIterator=shard.iterator, Limit=self.limit)
        except ClientError as failure:
            if _code(failure) != _ITERATOR_EXPIRED:
                raise
            shard.iterator = None  # fetch a new one from the checkpoint next round
            return
        batch = self._records(shard.shard_id, answer.get("Records", []))
        if batch:
            outcome = run_batch(self.worker, batch, backoff=self.backoff)
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
            # A closed shard read to its end: mark it so its children may start.
            self.checkpoints.put(self.stream, shard.shard_id, SHARD_END)
            shard.finished = True
            totals.finished_shards.append(shard.shard_id)

    def run(
        self,
        *,
        until_caught_up: bool = True,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> PollerCounts:
        """Polls round-robin until every shard is caught up (if asked) or `should_stop()`."""
        totals = PollerCounts()
        shards = self._shards()
        known = {s.shard_id for s in shards}
        while not should_stop():
            done = {s.shard_id for s in shards if s.finished}
            # A child waits for its parent (when we know the parent) to be read to its end.
            active = [
                s
                for s in shards
                if not s.finished
                and (s.parent is None or s.parent not in known or s.parent in done)
            ]
            if not active:
                break
            for shard in active:
                self._poll_once(shard, totals)
            if until_caught_up and all(s.caught_up or s.finished for s in active):
                waiting = [s for s in shards if not s.finished and s not in active]
                if not waiting:
                    break
            if all(s.caught_up for s in active if not s.finished):
                self.sleep(self.idle_seconds)
        return totals
