"""save_campaign_data with the real Avro lake on S3 and dead letters on SQS, for the daemon test.

`build(settings)` is a `module:factory` the KCL child (entrypoints.kcl_main) can load. It takes
the composition root's worker when bootstrap has one, else binds the worker to its adapters here,
and wraps it in the same fault hooks as the probe (crash after the lake write, before the
checkpoint; a per-batch delay), switched on by environment variables.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

import boto3

from adapters.avro import AvroSchemas, read_container
from adapters.aws.lake import S3Lake
from adapters.aws.sqs import SqsDeadLetters
from adapters.clock import SystemClock
from domain.records import DEDUPE_FIELD
from domain.streaming import BatchCounts, IncomingRecord, StreamWorker
from domain.workers.save_campaign_data import save_campaign_data
from entrypoints.settings import Settings
from tests.support.kcl_probe import FaultHooks


class _LakeWorker:
    name = "save_campaign_data"

    def __init__(self, settings: Settings) -> None:
        def client(service: str) -> Any:
            return boto3.client(
                service, endpoint_url=settings.endpoint_for(service), region_name=settings.region
            )

        sqs = client("sqs")
        self.schemas = AvroSchemas()
        self.archive = S3Lake(client("s3"), settings.campaign_data_bucket, self.schemas)
        self.dead_letters = SqsDeadLetters(sqs, settings.dead_letter_queue)
        self.clock = SystemClock()

    def __call__(self, batch: Sequence[IncomingRecord]) -> BatchCounts:
        return save_campaign_data(
            batch,
            archive=self.archive,
            schemas=self.schemas,
            dead_letters=self.dead_letters,
            clock=self.clock,
        )


def build(settings: Settings) -> StreamWorker:
    from entrypoints import bootstrap

    composed = getattr(bootstrap, "build_stream_worker", None)
    inner = composed("save_campaign_data", settings) if composed else _LakeWorker(settings)
    return FaultHooks(inner)


def lake_dedupe_ids(s3: Any, bucket: str) -> Counter[str]:
    """How many times each record (by dedupe id) is in the lake, over every Avro object."""
    seen: Counter[str] = Counter()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="avro/"):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            seen.update(str(record[DEDUPE_FIELD]) for record in read_container(body))
    return seen


def dead_lettered_sequence_numbers(sqs: Any, queue_url: str) -> set[tuple[str, str]]:
    """(shard, sequence number) of every dead letter in the queue (read, left in place)."""
    found: set[tuple[str, str]] = set()
    while True:
        answer = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=300, WaitTimeSeconds=0
        )
        messages = answer.get("Messages", [])
        if not messages:
            return found
        for message in messages:
            body = json.loads(message["Body"])
            found.add((body["shardId"], body["sequenceNumber"]))
