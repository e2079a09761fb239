"""Per-shard checkpoints that never move backwards: the poller's, and the Lambda handler's
watermarks.

A checkpoint is the sequence number of the last record fully handled in a shard, or SHARD_END
once a closed shard was read to its end (its children may then start). `put` only ever moves a
checkpoint forward: in DynamoDB with a conditional write on a fixed-width position (sequence
numbers have up to 129 digits, more than a DynamoDB number holds, so they are compared as
zero-padded strings), so two writers racing (a Lambda retry and its straggler, two pollers
sharing a table) can never set a shard back and make it replay into a second lake object.

`namespace` separates readers of one stream: two workers reading the input stream (the lake
and the code-assignment transform) each have their own checkpoints.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

SHARD_END = "SHARD_END"
_SEQUENCE_DIGITS = 130


def position(checkpoint: str) -> str:
    """A checkpoint as a string that sorts in stream order (SHARD_END after every number)."""
    if checkpoint == SHARD_END:
        return "~"
    return checkpoint.rjust(_SEQUENCE_DIGITS, "0")


def is_at_or_before(sequence_number: str, checkpoint: str | None) -> bool:
    """True when a record at `sequence_number` was already handled under `checkpoint`."""
    return checkpoint is not None and position(sequence_number) <= position(checkpoint)


class CheckpointStore(Protocol):
    def get(self, stream: str, shard_id: str) -> str | None: ...

    def put(self, stream: str, shard_id: str, sequence_number: str) -> None:
        """Moves the shard's checkpoint forward to `sequence_number` (never back)."""
        ...


@dataclass
class FileCheckpoints:
    """Checkpoints in a JSON file `{stream: {shard: sequence}}`, replaced atomically on each put
    (written to a temporary file and renamed, so a crash mid-write keeps the previous ones).
    One process per file."""

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
        shards = data.setdefault(stream, {})
        current = shards.get(shard_id)
        if current is not None and position(current) >= position(sequence_number):
            return
        shards[shard_id] = sequence_number
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
    """Checkpoints in a DynamoDB table keyed `shardKey` (S) = `{stream}/{shard}`, created on
    first use if absent and `create_if_missing` (a Lambda role should not need CreateTable: the
    deployment creates its table). Safe to share between processes (the write is conditional)."""

    dynamodb: Any
    table: str
    create_if_missing: bool = True
    _ready: bool = field(default=False, init=False)

    def _ensure_table(self) -> None:
        if self._ready or not self.create_if_missing:
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
        # A failed condition: already at or past it (someone handled as far or further).
        with contextlib.suppress(self.dynamodb.exceptions.ConditionalCheckFailedException):
            self.dynamodb.put_item(
                TableName=self.table,
                Item={
                    "shardKey": {"S": f"{stream}/{shard_id}"},
                    "sequenceNumber": {"S": sequence_number},
                    "position": {"S": position(sequence_number)},
                },
                ConditionExpression="attribute_not_exists(shardKey) OR #p < :p",
                ExpressionAttributeNames={"#p": "position"},
                ExpressionAttributeValues={":p": {"S": position(sequence_number)}},
            )
