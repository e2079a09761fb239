"""The emulator's h2c door: HTTP/2 with prior knowledge (what the KCL's client speaks)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from local.emulator_h2c import start_h2c_listener

pytestmark = pytest.mark.integration

_AUTH = (
    "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/kinesis/aws4_request, "
    "SignedHeaders=host, Signature=0"
)


def _kinesis(client: httpx.Client, url: str, action: str, body: dict[str, Any]) -> Any:
    answer = client.post(
        url + "/",
        content=json.dumps(body),
        headers={
            "X-Amz-Target": f"Kinesis_20131202.{action}",
            "Content-Type": "application/x-amz-json-1.1",
            "Authorization": _AUTH,
        },
    )
    assert answer.http_version == "HTTP/2", answer.http_version
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_records_put_over_http1_are_read_over_http2_from_the_same_backends(
    emulator: Any, kinesis_client: Any, make_stream: Callable[..., str]
) -> None:
    stream = make_stream(shards=1)
    kinesis_client.put_records(
        StreamName=stream,
        Records=[{"Data": f"record-{n}".encode(), "PartitionKey": str(n)} for n in range(3)],
    )
    listener = start_h2c_listener(emulator.server)
    try:
        with httpx.Client(http1=False, http2=True, timeout=10) as client:
            shards = _kinesis(client, listener.url, "ListShards", {"StreamName": stream})
            shard = shards["Shards"][0]["ShardId"]
            iterator = _kinesis(
                client,
                listener.url,
                "GetShardIterator",
                {"StreamName": stream, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"},
            )["ShardIterator"]
            records = _kinesis(client, listener.url, "GetRecords", {"ShardIterator": iterator})
    finally:
        listener.stop()
    assert [base64.b64decode(r["Data"]) for r in records["Records"]] == [
        b"record-0",
        b"record-1",
        b"record-2",
    ]


def test_the_listener_stops_and_frees_its_port(emulator: Any) -> None:
    listener = start_h2c_listener(emulator.server)
    listener.stop()
    with pytest.raises(httpx.ConnectError), httpx.Client(http1=False, http2=True) as client:
        client.get(listener.url + "/", timeout=2)
