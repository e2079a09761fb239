"""A stream worker for runtime tests: stores each batch under a name taken from the batch itself.

Each batch becomes one S3 object `probe/{shard}/{first sequence number}.json` listing the
records' sequence numbers and data, the way save_campaign_data names its lake objects: a replayed
batch (same first record) rewrites the same object. Counting sequence numbers across all objects
then shows exactly-once delivery: each appears once, none is missing. Each object also says
when it was written (`processed-ns` metadata, the probe's wall clock in ns): the order in which
batches of different shards were processed, for the order-per-key checks.

Faults, switched on by environment variables (the daemon's children inherit them):
- PROBE_CRASH_MARKER=<path>, PROBE_CRASH_AFTER=<n>: on its n-th batch the process writes the
  object, creates the marker and dies (os._exit) before it can checkpoint - the "killed between
  writing the lake object and checkpointing" case. Only once: the marker stops a second crash.
- PROBE_BATCH_DELAY=<seconds>: sleep per batch, so a test can kill a child mid-stream.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from domain.ports import StreamWorker
from domain.streaming import BatchCounts, IncomingRecord
from entrypoints.settings import Settings

PREFIX = "probe/"


def object_key(batch: Sequence[IncomingRecord]) -> str:
    first = batch[0]
    return f"{PREFIX}{first.shard_id}/{int(first.sequence_number):030d}.json"


class ProbeWorker:
    name = "probe"

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    def __call__(self, batch: Sequence[IncomingRecord]) -> BatchCounts:
        body = json.dumps(
            [[r.sequence_number, r.data.decode("utf-8", "replace")] for r in batch]
        ).encode()
        self.s3.put_object(
            Bucket=self.bucket,
            Key=object_key(batch),
            Body=body,
            Metadata={"processed-ns": str(time.time_ns())},
        )
        return BatchCounts(received=len(batch), handled=len(batch))


class FaultHooks:
    """Wraps a worker with the faults the environment asks for (see the module docstring)."""

    def __init__(self, inner: StreamWorker) -> None:
        self.inner = inner
        self.name = inner.name
        self.batches = 0
        self.crash_after = int(os.environ.get("PROBE_CRASH_AFTER", "0") or 0)
        marker = os.environ.get("PROBE_CRASH_MARKER")
        self.crash_marker = Path(marker) if marker else None
        self.delay = float(os.environ.get("PROBE_BATCH_DELAY", "0") or 0)

    def __call__(self, batch: Sequence[IncomingRecord]) -> BatchCounts:
        self.batches += 1
        counts = self.inner(batch)
        if self.delay:
            time.sleep(self.delay)
        if (
            self.crash_marker is not None
            and self.crash_after
            and self.batches >= self.crash_after
            and not self.crash_marker.exists()
        ):
            first = batch[0]
            self.crash_marker.write_text(f"{os.getpid()} {first.shard_id} {first.sequence_number}")
            os._exit(70)  # after the write, before the checkpoint
        return counts


def build(settings: Settings) -> StreamWorker:
    s3 = boto3.client("s3", endpoint_url=settings.endpoint_for("s3"), region_name=settings.region)
    return FaultHooks(ProbeWorker(s3, settings.campaign_data_bucket))


def stored_sequence_numbers(s3: Any, bucket: str) -> list[tuple[str, str]]:
    """(shard, sequence number) of every record in every probe object, duplicates kept."""
    found: list[tuple[str, str]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX):
        for item in page.get("Contents", []):
            shard = item["Key"].split("/")[1]
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            found.extend((shard, seq) for seq, _data in json.loads(body))
    return found


@dataclass(frozen=True)
class StoredBatch:
    """One probe object: when it was written, its shard, and its records' (sequence, data)."""

    processed_ns: int
    shard: str
    records: tuple[tuple[str, str], ...]


def stored_batches(s3: Any, bucket: str) -> list[StoredBatch]:
    """Every probe object, in the order they were written."""
    batches: list[StoredBatch] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX):
        for item in page.get("Contents", []):
            answer = s3.get_object(Bucket=bucket, Key=item["Key"])
            records = tuple((seq, data) for seq, data in json.loads(answer["Body"].read()))
            written = int(answer["Metadata"]["processed-ns"])
            batches.append(StoredBatch(written, item["Key"].split("/")[1], records))
    return sorted(batches, key=lambda batch: batch.processed_ns)
