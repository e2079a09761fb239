"""PutRecords without botocore's per-entry model walk: the producer's lean request.

`LeanPutRecords(client).put_records(StreamName=..., Records=[...])` answers like the boto3
client's `put_records` (the parsed JSON, with a result per entry; ClientError for an error
answer, botocore's ConnectionError/HTTPClientError for a dropped or timed-out connection), so
KinesisRecordStream's retries, partial-failure resends, deadline and error classes are the
same code for both. What it leaves out, and why that is safe:
- botocore validates every entry against the service model (~30 % of the producer's CPU a
  record, measured in benchmarks/README.md): split_batches already rejects what Kinesis would
  (empty or long keys, oversized records and batches) before a request is built;
- botocore serialises each entry by walking the model and parses each result the same way
  (another ~45 %): the body here is one orjson.dumps of plain dicts (base64 of the record's
  bytes, by pybase64: 1.4 -> 0.6 µs a record for the body against the standard library's
  b64encode + decode) and the answer one orjson.loads.
What it keeps: the client's endpoint, region, credentials (refreshed as botocore refreshes
them) and its pooled HTTP session with the client's timeouts; SigV4 by botocore's SigV4Auth,
once per request. Every attribute is looked up on the client per call, so a deadline-fitted
client (adapters/aws/clients.py) still hands out the session whose timeouts fit the deadline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import pybase64
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError, NoCredentialsError

OPERATION = "PutRecords"
CONTENT_TYPE = "application/x-amz-json-1.1"


def error_code(kind: str) -> str:
    """Kinesis' `__type` ("com.amazonaws...#ResourceNotFoundException") as botocore names it."""
    return kind.rsplit("#", 1)[-1].split(":", 1)[0]


def client_error(status: int, body: bytes, request_id: str = "") -> ClientError:
    """The ClientError botocore would raise for this answer (code, message, HTTP status)."""
    try:
        parsed = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        code = error_code(str(parsed.get("__type") or parsed.get("code") or status))
        message = str(parsed.get("message") or parsed.get("Message") or "")
    else:  # a proxy's HTML page: keep the status, and a little of the body to say what
        code, message = str(status), body[:200].decode("utf-8", "replace")
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": request_id},
        },
        OPERATION,
    )


class LeanPutRecords:
    """The boto3 Kinesis client's put_records, built and parsed directly (module docstring).
    `client` is a boto3 Kinesis client (or a deadline-fitted one)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        metadata = client.meta.service_model.metadata
        if metadata.get("protocol") != "json":
            raise ValueError(f"not a JSON-protocol client: {metadata.get('protocol')!r}")
        self._target = f"{metadata['targetPrefix']}.{OPERATION}"

    def put_records(
        self, *, StreamName: str, Records: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        body = orjson.dumps(
            {
                "Records": [
                    {
                        "Data": pybase64.b64encode_as_string(entry["Data"]),
                        "PartitionKey": entry["PartitionKey"],
                    }
                    for entry in Records
                ],
                "StreamName": StreamName,
            }
        )
        client = self.client
        signer = client._request_signer
        request = AWSRequest(
            method="POST",
            url=client.meta.endpoint_url,
            data=body,
            headers={
                "Content-Type": CONTENT_TYPE,
                "X-Amz-Target": self._target,
                "Content-Length": str(len(body)),
            },
        )
        # botocore's signer resolves refreshable credentials (role sessions) on every call.
        credentials = signer._credentials
        if credentials is None:
            raise NoCredentialsError()
        frozen = credentials.get_frozen_credentials()
        SigV4Auth(frozen, signer.signing_name, signer.region_name).add_auth(request)
        # The client's own pooled session: its timeouts, its pool; a dropped connection or a
        # timeout raises botocore's ConnectionError / HTTPClientError as the client would.
        response = client._endpoint.http_session.send(request.prepare())
        content = response.content
        if response.status_code != 200:
            raise client_error(
                response.status_code, content, response.headers.get("x-amzn-RequestId", "")
            )
        try:
            parsed = orjson.loads(content)
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            # Not retryable: the producer raises KinesisPutFailed naming the stream.
            raise client_error(200, b'{"__type":"MalformedResponse","message":"not JSON"}')
        return parsed
