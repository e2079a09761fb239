"""Hand-written stream workers and event builders for the runtime tests (no mocks)."""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from domain.ports import StreamWorker
from domain.streaming import BatchCounts, DependencyUnavailable, IncomingRecord
from entrypoints.settings import Settings


@dataclass
class ScriptedWorker:
    """Handles JSON records, dead-letters the rest; fails transiently as scripted.

    - `failing`: sequence numbers whose batch always fails (a dependency that never comes back).
    - `transient_failures`: the first n calls fail, later ones succeed.
    """

    failing: frozenset[str] = frozenset()
    transient_failures: int = 0
    name: str = "scripted"
    calls: int = 0
    batches: list[list[str]] = field(default_factory=list)
    handled: list[str] = field(default_factory=list)
    dead_lettered: list[str] = field(default_factory=list)

    def __call__(self, batch: Sequence[IncomingRecord]) -> BatchCounts:
        self.calls += 1
        if any(record.sequence_number in self.failing for record in batch):
            raise DependencyUnavailable("fake-dependency", "answers 503")
        if self.transient_failures > 0:
            self.transient_failures -= 1
            raise DependencyUnavailable("fake-dependency", "throttled")
        self.batches.append([record.sequence_number for record in batch])
        dead = 0
        for record in batch:
            try:
                json.loads(record.data)
            except ValueError:
                self.dead_lettered.append(record.sequence_number)
                dead += 1
            else:
                self.handled.append(record.sequence_number)
        return BatchCounts(received=len(batch), handled=len(batch) - dead, dead_lettered=dead)


def kinesis_event(
    shards: Mapping[str, Sequence[bytes]], *, stream: str = "vf1-input-stream", start: int = 1
) -> tuple[dict[str, object], dict[str, list[str]]]:
    """A Lambda Kinesis event (records of each shard in order, shards interleaved) and the
    sequence numbers per shard."""
    arn = f"arn:aws:kinesis:us-east-1:123456789012:stream/{stream}"
    per_shard: dict[str, list[str]] = {}
    queues: list[list[dict[str, object]]] = []
    counter = start
    for shard_id, payloads in shards.items():
        entries: list[dict[str, object]] = []
        for payload in payloads:
            sequence = f"{counter:056d}"
            counter += 1
            per_shard.setdefault(shard_id, []).append(sequence)
            entries.append(
                {
                    "kinesis": {
                        "kinesisSchemaVersion": "1.0",
                        "partitionKey": f"pk-{counter}",
                        "sequenceNumber": sequence,
                        "data": base64.b64encode(payload).decode(),
                        "approximateArrivalTimestamp": 1_795_000_000.5,
                    },
                    "eventSource": "aws:kinesis",
                    "eventID": f"{shard_id}:{sequence}",
                    "eventSourceARN": arn,
                    "awsRegion": "us-east-1",
                }
            )
        queues.append(entries)
    # Interleave shards as Lambda may (order within a shard kept).
    records: list[dict[str, object]] = []
    while any(queues):
        for queue in queues:
            if queue:
                records.append(queue.pop(0))
    return {"Records": records}, per_shard


def json_payloads(count: int, kinds: Iterable[str] = ("registration", "scoring")) -> list[bytes]:
    kinds = tuple(kinds)
    return [json.dumps({"type": kinds[i % len(kinds)], "n": i}).encode() for i in range(count)]


@dataclass
class FileProbe:
    """Appends each batch's sequence numbers as one JSON line to a file; prints noise to stdout
    (the KCL child must keep stdout for the protocol even so)."""

    path: Path
    name: str = "file-probe"

    def __call__(self, batch: Sequence[IncomingRecord]) -> BatchCounts:
        print("noise a careless library writes to stdout")
        os.write(1, b"noise written straight to file descriptor 1\n")
        sys.stdout.flush()
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps([r.sequence_number for r in batch]) + "\n")
        return BatchCounts(received=len(batch), handled=len(batch))


def build_file_probe(_settings: Settings) -> StreamWorker:
    return FileProbe(Path(os.environ["PROBE_FILE"]))


@dataclass
class MemoryCheckpoints:
    """streams.checkpoints.CheckpointStore in memory: forward only, like the real ones;
    `fail_puts` makes the next n puts raise (a watermark write that did not happen)."""

    saved: dict[tuple[str, str], str] = field(default_factory=dict)
    fail_puts: int = 0

    def get(self, stream: str, shard_id: str) -> str | None:
        return self.saved.get((stream, shard_id))

    def put(self, stream: str, shard_id: str, sequence_number: str) -> None:
        from streams.checkpoints import position

        if self.fail_puts > 0:
            self.fail_puts -= 1
            raise DependencyUnavailable("memory checkpoints", "told to fail")
        current = self.saved.get((stream, shard_id))
        if current is None or position(current) < position(sequence_number):
            self.saved[(stream, shard_id)] = sequence_number
