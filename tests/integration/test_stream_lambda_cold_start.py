"""The Kinesis Lambda handler (`entrypoints.lambda_handlers.stream_worker_handler`) cold-started
while SQS, its dead-letter queue's service, refuses connections (issue 7's left-out case).

A Lambda sandbox is a child process: it imports the handler module with SQS down (module-level
code runs at import, as in a cold start), then handles the events the test writes to its stdin,
one per line, as Lambda invokes it. SQS is an OutageProxy in front of the emulator; everything
else (the lake bucket, the watermark table) is the emulator itself. The worker is the real
save_campaign_data: lake objects in S3, dead letters in SQS, per-shard watermarks in DynamoDB.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from domain.records import DEDUPE_FIELD, RecordType, formatted
from tests.conftest import unique_name
from tests.support.kcl_lake import dead_letter_counts, lake_dedupe_ids
from tests.support.lambda_sandbox import Sandbox
from tests.support.stream_fakes import kinesis_event
from tests.support.stream_records import raw, sample_record
from tests.support.tcp_proxy import OutageProxy

pytestmark = pytest.mark.integration

POISON = b"\xff\xfe not json, not utf-8"
SHARD = "shardId-000000000000"


def test_a_cold_start_with_sqs_down_fails_the_batch_then_dead_letters_the_poison_once(
    emulator: Any,
    aws: Any,
    s3_client: Any,
    make_bucket: Callable[[], str],
    sqs_outage: OutageProxy,
) -> None:
    bucket = make_bucket()
    sqs = aws.client("sqs")
    queue_name = unique_name("dlq")
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    types = list(RecordType)
    payloads = [raw(sample_record(types[n % len(types)], n)) for n in range(24)]
    payloads[9] = POISON
    event, sequences = kinesis_event({SHARD: payloads}, stream=unique_name("stream"))
    poison = (SHARD, sequences[SHARD][9])
    good = Counter(formatted(json.loads(data))[DEDUPE_FIELD] for data in payloads if data != POISON)
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": emulator.endpoint_url,
        "AWS_ENDPOINT_URL_SQS": sqs_outage.url,  # refuses connections
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "WORKER": "save_campaign_data",
        "CAMPAIGN_DATA_BUCKET": bucket,
        "DEAD_LETTER_QUEUE": queue_name,  # a name: its URL is looked up in SQS, lazily
        "CHECKPOINT_TABLE": unique_name("watermarks"),
        "BATCH_DEADLINE_SECONDS": "3",
    }
    sandbox = Sandbox(env)
    try:
        assert sandbox.started == {"imported": True}  # the cold start did not need SQS

        # SQS still down: the poison cannot be dead-lettered, so the batch is not done. The
        # shard is reported from its failed chunk on (Lambda retries from there): the poison
        # is among the reported records, nothing after a reported record counts as handled.
        down = sandbox.invoke(event)
        failed = [item["itemIdentifier"] for item in down["batchItemFailures"]]
        assert failed and int(failed[0]) <= int(poison[1])
        assert not dead_letter_counts(sqs, queue_url), "a dead letter sent while SQS was down?"

        # SQS is back; Lambda retries the batch in the same (warm) sandbox.
        sqs_outage.up()
        assert sandbox.invoke(event) == {"batchItemFailures": []}
        # And once more, as an at-least-once delivery may: the watermark skips it all.
        assert sandbox.invoke(event) == {"batchItemFailures": []}
    finally:
        sandbox.close()
    assert sandbox.process.returncode == 0
    assert dead_letter_counts(sqs, queue_url) == Counter({poison: 1})  # dead-lettered once
    assert lake_dedupe_ids(s3_client, bucket) == good  # every good record in the lake once
