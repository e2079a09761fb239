import pytest

from domain.models import ObjectRef
from entrypoints.events import BadEvent, s3_object_refs, s3_put_event


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
        ({}, "no Records"),
        ({"Records": []}, "no Records"),
        ({"Records": [{"s3": {"bucket": {}}}]}, "Records[0]"),
        ({"Records": [{"s3": {"bucket": {"name": "b"}, "object": {"key": ""}}}]}, "empty"),
    ],
)
def test_malformed_events_name_what_is_wrong(event, names):
    with pytest.raises(BadEvent, match=names.replace("[", r"\[").replace("]", r"\]")):
        s3_object_refs(event)
