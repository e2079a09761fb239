import json
from pathlib import Path
from typing import Any

import pytest

from domain.models import ObjectRef
from entrypoints.events import (
    BadEvent,
    S3Notifications,
    s3_notifications,
    s3_object_refs,
    s3_put_event,
)


def test_keys_in_s3_notifications_are_url_decoded():
    ref = ObjectRef("scoring", "scored/camp 1.2026-11-28T10:00:00Z+ü.txt")
    assert s3_object_refs(s3_put_event(ref)) == [ref]


def test_every_record_of_an_event_is_returned_in_order():
    first, second = ObjectRef("b", "scored/a.1.txt"), ObjectRef("b", "scored/b.2.txt")
    event = {"Records": s3_put_event(first)["Records"] + s3_put_event(second)["Records"]}
    assert s3_object_refs(event) == [first, second]


@pytest.mark.parametrize(
    ("event", "names"),
    [
        ({}, "not an S3 notification: received an object with keys []"),
        ({"Records": []}, "keys [Records]"),
        ({"Records": [{"s3": {"bucket": {}}}]}, "Records[0]"),
        ({"Records": [{"s3": {"bucket": {"name": "b"}, "object": {"key": ""}}}]}, "empty"),
    ],
)
def test_malformed_events_name_what_is_wrong(event, names):
    with pytest.raises(BadEvent, match=names.replace("[", r"\[").replace("]", r"\]")):
        s3_object_refs(event)


EVENTS = Path(__file__).resolve().parents[1] / "events"


def sample(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))
    return loaded


@pytest.mark.parametrize(
    ("name", "created"),
    [
        (
            "s3_object_created",
            ObjectRef("lambda-artifacts-deafc19498e3f2df", "b21b84d653bb07b05b1e6b33684dc11b"),
        ),
        ("s3_sqs", ObjectRef("xxx", "test.pdf")),
        ("s3_sns", ObjectRef("xxx", "test.pdf")),
        ("s3_sns_sqs", ObjectRef("xxx", "test.pdf")),
        ("s3_eventbridge_object_created", ObjectRef("example-bucket", "IMG_m7fzo3.jpg")),
    ],
)
def test_every_way_s3_delivers_a_created_object_names_it(name: str, created: ObjectRef) -> None:
    assert s3_notifications(sample(name)) == S3Notifications((created,))


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("s3_test_event_sqs", "s3:TestEvent for bucket amzn-s3-demo-bucket"),
        ("s3_object_removed", "ObjectRemoved:Delete for s3://lambda-artifacts-deafc19498e3f2df/"),
        ("s3_eventbridge_object_deleted", "Object Deleted for s3://example-bucket/IMG_m7fzo3.jpg"),
    ],
)
def test_test_events_and_removals_are_acknowledged_not_processed(name: str, said: str) -> None:
    found = s3_notifications(sample(name))
    assert found.created == ()
    [ignored] = found.ignored
    assert ignored.startswith(said)


def test_keys_are_decoded_the_way_each_delivery_encodes_them() -> None:
    direct = sample("s3_sqs")
    inner = json.loads(direct["Records"][0]["body"])
    inner["Records"][0]["s3"]["object"]["key"] = "scored/camp+1%2B2.20261128T1000.txt"
    direct["Records"][0]["body"] = json.dumps(inner)
    assert s3_object_refs(direct) == [ObjectRef("xxx", "scored/camp 1+2.20261128T1000.txt")]
    # EventBridge does not encode keys: a `+` in one is a plus.
    bridged = sample("s3_eventbridge_object_created")
    bridged["detail"]["object"]["key"] = "scored/camp+1.20261128T1000.txt"
    assert s3_object_refs(bridged) == [
        ObjectRef("example-bucket", "scored/camp+1.20261128T1000.txt")
    ]


@pytest.mark.parametrize(
    ("event", "names"),
    [
        ({"detail": {"x": 1}, "source": "aws.ec2"}, "keys [detail, source]"),
        (
            sample("s3_sqs") | {"Records": [{"eventSource": "aws:sqs", "body": "[1, 2]"}]},
            "Records[0].body holds a list",
        ),
        (
            {"Records": [{"eventSource": "aws:kinesis", "kinesis": {"data": "secret"}}]},
            "from aws:kinesis with keys [eventSource, kinesis]",
        ),
        ({"Records": [{"body": "not json +12015550144"}]}, "Records[0].body is not JSON"),
    ],
)
def test_an_unknown_shape_is_named_by_its_keys_never_its_values(
    event: dict[str, Any], names: str
) -> None:
    with pytest.raises(BadEvent) as raised:
        s3_notifications(event)
    assert names in str(raised.value)
    assert "secret" not in str(raised.value) and "2015550144" not in str(raised.value)
