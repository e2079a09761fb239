"""save_campaign_data with the real Avro lake on S3 and dead letters on SQS, for the daemon test.

`build(settings)` is the probe `lake` of the test KCL child (tests/support/kcl_child.py): the
registry's save_campaign_data wrapped in the same fault hooks as the probe (crash after the lake
write, before the checkpoint; a per-batch delay), switched on by environment variables.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from adapters.avro import read_container
from domain.ports import StreamWorker
from domain.records import DEDUPE_FIELD
from entrypoints import registry
from entrypoints.settings import Settings
from tests.support.kcl_probe import FaultHooks


def build(settings: Settings) -> StreamWorker:
    return FaultHooks(registry.stream_worker("save_campaign_data", settings))


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


def dead_letter_counts(sqs: Any, queue_url: str) -> Counter[tuple[str, str]]:
    """How many dead letters each (shard, sequence number) has in the queue (all read, then
    deleted: a FIFO queue hands out a group's next messages only once these are deleted)."""
    seen: Counter[tuple[str, str]] = Counter()
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=600, WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            return seen
        for message in messages:
            body = json.loads(message["Body"])
            seen[(body["shardId"], body["sequenceNumber"])] += 1
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)
            ],
        )
