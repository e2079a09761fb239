"""Parsing the AWS events our Lambda handlers receive. Bad events get an error naming the field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from domain.models import ObjectRef


class BadEvent(ValueError):
    """The event is not of the shape this handler takes; the message names what and where."""


def s3_object_refs(event: Mapping[str, Any]) -> list[ObjectRef]:
    """Every object an S3 ObjectCreated notification names, keys URL-decoded.

    S3 encodes keys in notifications like a form (`+` for space, %XX for the rest): a key with
    a space or a non-ASCII character would otherwise be looked up under the wrong name.
    """
    records = event.get("Records")
    if not isinstance(records, list) or not records:
        raise BadEvent("S3 event has no Records list")
    refs = []
    for index, record in enumerate(records):
        try:
            s3 = record["s3"]
            bucket = s3["bucket"]["name"]
            key = s3["object"]["key"]
        except (KeyError, TypeError) as missing:
            raise BadEvent(f"S3 event Records[{index}] lacks s3.bucket.name/s3.object.key") from (
                missing
            )
        if not isinstance(bucket, str) or not isinstance(key, str) or not bucket or not key:
            raise BadEvent(f"S3 event Records[{index}] has an empty bucket or key")
        refs.append(ObjectRef(bucket, unquote_plus(key)))
    return refs


def s3_put_event(ref: ObjectRef, size: int = 0) -> dict[str, Any]:
    """The notification S3 sends for a new object (the demo and tests invoke handlers with it)."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": ref.bucket, "arn": f"arn:aws:s3:::{ref.bucket}"},
                    "object": {"key": quote_plus(ref.key, safe="/"), "size": size},
                },
            }
        ]
    }
