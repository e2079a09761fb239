"""Parsing the AWS events our Lambda handlers receive. Bad events get an error naming the shape
received (keys and event source, never values) and where."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from domain.models import ObjectRef


class BadEvent(ValueError):
    """The event is not of the shape this handler takes. The message names the shape received
    (its keys, its eventSource) and where, never a value: values can be people's data."""


@dataclass(frozen=True)
class S3Notifications:
    """What an event says about objects: the created ones to process, and what it also
    carried that is acknowledged and logged but not processed (test events, removals)."""

    created: tuple[ObjectRef, ...]
    ignored: tuple[str, ...] = ()

    def __add__(self, other: S3Notifications) -> S3Notifications:
        return S3Notifications(self.created + other.created, self.ignored + other.ignored)


_NOTHING = S3Notifications(())


def _shape(value: object) -> str:
    """A value's shape for an error message: its type, and a mapping's keys (never values)."""
    if isinstance(value, Mapping):
        keys = ", ".join(sorted(str(k) for k in value)[:12])
        source = value.get("eventSource") or value.get("EventSource") or value.get("source")
        origin = f" from {source}" if isinstance(source, str) and len(source) < 40 else ""
        return f"an object{origin} with keys [{keys}]"
    return f"a {type(value).__name__}"


def s3_notifications(event: Mapping[str, Any]) -> S3Notifications:
    """Every object an S3 notification names, however it was delivered.

    - S3 -> Lambda: `Records[].s3` (eventSource aws:s3);
    - S3 -> SQS -> Lambda: `Records[].body` is the S3 notification's JSON (`s3SqsEvent`);
    - S3 -> SNS -> Lambda: `Records[].Sns.Message` is it; S3 -> SNS -> SQS: the SQS body is the
      SNS envelope, its `Message` the notification;
    - S3 -> EventBridge -> Lambda: `detail-type` "Object Created", `detail.bucket/object`.

    `s3:TestEvent` (S3 sends one to a queue or topic when the notification is configured) and
    `ObjectRemoved:*` records are acknowledged, listed in `ignored`, not processed: raising
    would make Lambda retry an event no retry can change.

    Keys in S3's own notifications are form-encoded (`+` is a space, %XX the rest) and are
    decoded; EventBridge's are not encoded (decoding them would turn a literal `+` into a space).
    """
    if "detail-type" in event and event.get("source") == "aws.s3":
        return _eventbridge(event)
    if event.get("Event") == "s3:TestEvent":
        return S3Notifications((), (f"s3:TestEvent for bucket {event.get('Bucket')!s:.63}",))
    records = event.get("Records")
    if not isinstance(records, list) or not records:
        raise BadEvent(f"not an S3 notification: received {_shape(event)}")
    found = _NOTHING
    for index, record in enumerate(records):
        found += _record(record, f"Records[{index}]")
    return found


def _record(record: object, where: str) -> S3Notifications:
    if not isinstance(record, Mapping):
        raise BadEvent(f"{where} is {_shape(record)}, not an event record")
    if "s3" in record:
        return _s3_record(record, where)
    if "Sns" in record:  # S3 -> SNS -> Lambda
        sns = record["Sns"]
        message = sns.get("Message") if isinstance(sns, Mapping) else None
        return _embedded(message, f"{where}.Sns.Message")
    if record.get("eventSource") == "aws:sqs" or "body" in record:  # S3 [-> SNS] -> SQS
        return _embedded(record.get("body"), f"{where}.body")
    raise BadEvent(f"{where} is not an S3, SQS or SNS record: received {_shape(record)}")


def _embedded(text: object, where: str) -> S3Notifications:
    """An S3 notification carried as JSON text inside an SQS body or an SNS message."""
    if not isinstance(text, str):
        raise BadEvent(f"{where} is {_shape(text)}, not JSON text")
    try:
        inner = json.loads(text)
    except ValueError:
        raise BadEvent(f"{where} is not JSON") from None
    if not isinstance(inner, Mapping):
        raise BadEvent(f"{where} holds {_shape(inner)}, not an S3 notification")
    if inner.get("Type") == "Notification" and "Message" in inner:  # SNS envelope inside SQS
        return _embedded(inner["Message"], f"{where}.Message")
    try:
        return s3_notifications(inner)
    except BadEvent as bad:
        raise BadEvent(f"{where}: {bad}") from None


def _s3_record(record: Mapping[str, Any], where: str) -> S3Notifications:
    name = record.get("eventName")
    try:
        s3 = record["s3"]
        bucket = s3["bucket"]["name"]
        key = s3["object"]["key"]
    except (KeyError, TypeError):
        raise BadEvent(f"S3 event {where} lacks s3.bucket.name/s3.object.key") from None
    if not isinstance(bucket, str) or not isinstance(key, str) or not bucket or not key:
        raise BadEvent(f"S3 event {where} has an empty bucket or key")
    ref = ObjectRef(bucket, unquote_plus(key))
    if isinstance(name, str) and name.startswith("ObjectCreated:"):
        return S3Notifications((ref,))
    return S3Notifications((), (f"{name!s:.40} for {ref.uri}",))


def _eventbridge(event: Mapping[str, Any]) -> S3Notifications:
    kind = event.get("detail-type")
    detail = event.get("detail")
    try:
        bucket = detail["bucket"]["name"]  # type: ignore[index]
        key = detail["object"]["key"]  # type: ignore[index]
    except (KeyError, TypeError):
        raise BadEvent(
            f"EventBridge S3 event lacks detail.bucket.name/detail.object.key: "
            f"detail is {_shape(detail)}"
        ) from None
    if not isinstance(bucket, str) or not isinstance(key, str) or not bucket or not key:
        raise BadEvent("EventBridge S3 event has an empty bucket or key")
    ref = ObjectRef(bucket, key)
    if kind == "Object Created":
        return S3Notifications((ref,))
    return S3Notifications((), (f"{kind!s:.40} for {ref.uri}",))


def s3_object_refs(event: Mapping[str, Any]) -> list[ObjectRef]:
    """The created objects an S3 notification names (see s3_notifications)."""
    return list(s3_notifications(event).created)


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


def unwrap(event: Any) -> Any:
    """A directly invoked job's input from any of its callers (the one place AWS wrappers come
    off; domain parsers see the input itself):
    - direct invoke: the input;
    - Step Functions: the state's input, or a lambda:invoke task's whole output
      `{Payload, StatusCode, ...}` (or `{Payload}` / `{input}` alone);
    - the upload service: `{"data": {...}}`;
    - API Gateway's proxy `{"body": "<json>"}`, or the input as JSON text;
    - an S3 notification naming one created object: `{bucket, key}` (key URL-decoded)."""
    for _ in range(4):  # wrappers nest at most a few deep (a Payload holding {data})
        if isinstance(event, str | bytes):
            try:
                event = json.loads(event)
            except ValueError:
                return event
        if not isinstance(event, Mapping):
            return event
        if "Payload" in event and ("StatusCode" in event or set(event) == {"Payload"}):
            event = event["Payload"]
        elif isinstance(event.get("data"), Mapping | str) and "Records" not in event:
            event = event["data"]
        elif set(event) == {"input"}:
            event = event["input"]
        elif isinstance(event.get("body"), str) and "Records" not in event:
            event = event["body"]
        else:
            break
    records = event.get("Records") if isinstance(event, Mapping) else None
    if isinstance(records, list) and records and isinstance(records[0], Mapping):
        # An S3 notification's first object (whatever its eventName: a direct test event has
        # none); its key URL-decoded. Malformed: left as it is, for the parser to name.
        try:
            s3 = records[0]["s3"]
            bucket, key = s3["bucket"]["name"], s3["object"]["key"]
        except (KeyError, TypeError):
            return event
        if isinstance(bucket, str) and isinstance(key, str):
            return {"bucket": bucket, "key": unquote_plus(key)}
    return event
