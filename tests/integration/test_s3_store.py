"""S3ObjectStore over HTTP against the in-process emulator."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import pytest

from adapters.aws.clients import ClientFactory, ClientOptions
from adapters.aws.s3 import S3ObjectStore
from adapters.aws.s3_multipart import UPLOAD_THREAD_PREFIX
from domain.models import ObjectNotFound, ObjectRef, OverlongLine
from domain.streaming import DependencyUnavailable
from tests.support.http_server import Fault, LocalHttpServer
from tests.support.s3_faults import INTERNAL_ERROR, SLOW_DOWN

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
PART = 5 * MIB  # S3's smallest part: many parts for few bytes


@pytest.fixture
def bucket(make_bucket: Callable[[], str]) -> str:
    return make_bucket()


def store(s3_client: Any, **options: Any) -> S3ObjectStore:
    return S3ObjectStore(s3_client, **options)


def uploads_in_progress(s3_client: Any, bucket: str) -> list[dict[str, Any]]:
    return list(s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


def upload_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(UPLOAD_THREAD_PREFIX)]


def proxied(server: LocalHttpServer, *, max_attempts: int = 3) -> Any:
    """An S3 client through the proxy, botocore's standard retries (the one retry layer)."""
    options = ClientOptions(endpoint_url=server.url, max_attempts=max_attempts)
    return ClientFactory(options).client("s3")


def part_uploads(server: LocalHttpServer, number: int) -> list[Any]:
    return [
        r
        for r in server.requests
        if r.method == "PUT" and r.query.get("partNumber") == [str(number)]
    ]


def write_in_pieces(writer: Any, data: bytes, piece: int) -> None:
    for start in range(0, len(data), piece):
        writer.write(data[start : start + piece])


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 1024 * 1024])
def test_iter_lines_strips_lf_and_crlf_whatever_the_chunking(
    s3_client: Any, bucket: str, chunk_size: int
) -> None:
    body = b"a\tb\r\nc\n\r\n\nlast line\r\nno newline at end"
    ref = ObjectRef(bucket, "scored/lines.txt")
    s3 = store(s3_client, chunk_size=chunk_size)
    s3.put_bytes(ref, body)
    assert list(s3.iter_lines(ref)) == [
        b"a\tb",
        b"c",
        b"",
        b"",
        b"last line",
        b"no newline at end",
    ]


def test_iter_lines_keeps_a_bom_for_the_parser_and_no_extra_line_at_the_end(
    s3_client: Any, bucket: str
) -> None:
    text = "\ufeffglobalUserId\temail\r\nu1\tzoë@example.com\r\n"
    ref = ObjectRef(bucket, "scored/bom.txt")
    s3 = store(s3_client, chunk_size=5)
    s3.put_bytes(ref, text.encode("utf-8"))
    lines = list(s3.iter_lines(ref))
    assert lines == [b"\xef\xbb\xbfglobalUserId\temail", "u1\tzoë@example.com".encode()]


def test_iter_lines_streams_a_large_object_line_by_line(s3_client: Any, bucket: str) -> None:
    rows = [f"fan-{i}\t{i / 100_000:.5f}".encode() for i in range(100_000)]
    ref = ObjectRef(bucket, "scored/large.txt")
    s3 = store(s3_client, chunk_size=64 * 1024)
    s3.put_bytes(ref, b"\r\n".join(rows) + b"\r\n")
    assert list(s3.iter_lines(ref)) == rows


@pytest.mark.parametrize("chunk_size", [1, 16, 1024])
def test_a_line_longer_than_the_bound_comes_as_its_length_and_reading_goes_on(
    s3_client: Any, bucket: str, chunk_size: int
) -> None:
    ref = ObjectRef(bucket, "scored/binary.bin")
    s3 = store(s3_client, chunk_size=chunk_size, max_line_bytes=100)
    s3.put_bytes(ref, b"short\r\n" + b"x" * 500 + b"\r\n" + b"y" * 100 + b"\r\nend")
    assert list(s3.iter_lines(ref)) == [b"short", OverlongLine(500), b"y" * 100, b"end"]


def test_missing_object_is_object_not_found(s3_client: Any, bucket: str) -> None:
    s3 = store(s3_client)
    missing = ObjectRef(bucket, "nope.txt")
    with pytest.raises(ObjectNotFound, match=f"no object at s3://{bucket}/nope.txt"):
        s3.read_bytes(missing)
    with pytest.raises(ObjectNotFound):
        list(s3.iter_lines(missing))
    assert s3.head(missing) is None


def test_put_head_read_copy_list_delete(s3_client: Any, bucket: str) -> None:
    s3 = store(s3_client)
    original = ObjectRef(bucket, "campaigns/c1.json")
    s3.put_bytes(original, b'{"campaignId": "c1"}', content_type="application/json")
    info = s3.head(original)
    assert info is not None and info.size == 20 and info.last_modified is not None
    assert s3_client.head_object(Bucket=bucket, Key=original.key)["ContentType"] == (
        "application/json"
    )
    copied = ObjectRef(bucket, "archive/c1.json")
    s3.copy(original, copied)
    assert s3.read_bytes(copied) == b'{"campaignId": "c1"}'
    assert b"".join(s3.iter_chunks(copied)) == b'{"campaignId": "c1"}'
    s3.delete(original)
    s3.delete(original)  # idempotent
    assert s3.head(original) is None
    with pytest.raises(ObjectNotFound):
        s3.copy(original, copied)


def test_list_objects_pages_through_everything_under_a_prefix(s3_client: Any, bucket: str) -> None:
    s3 = store(s3_client, list_page_size=10)
    keys = [f"scored/c{i:04}.txt" for i in range(35)]  # four pages
    for key in keys:
        s3_client.put_object(Bucket=bucket, Key=key, Body=b"x")
    s3_client.put_object(Bucket=bucket, Key="other/ignored.txt", Body=b"x")
    listed = list(s3.list_objects(bucket, "scored/"))
    assert [i.ref.key for i in listed] == keys
    assert {i.size for i in listed} == {1}


def test_small_writes_become_one_put_without_a_multipart_upload(
    s3_client: Any, bucket: str
) -> None:
    s3 = store(s3_client)
    ref = ObjectRef(bucket, "scrubbed/small.csv")
    with s3.open_writer(ref, content_type="text/csv") as out:
        assert out.write(b"a,b\r\n") == 5
        out.write(b"1,2\r\n")
    assert s3.read_bytes(ref) == b"a,b\r\n1,2\r\n"
    assert out.upload_id is None and out.parts == []  # type: ignore[attr-defined]


def test_large_writes_go_up_in_parts_as_they_fill(s3_client: Any, bucket: str) -> None:
    s3 = store(s3_client, uploads_in_flight=2)
    ref = ObjectRef(bucket, "scrubbed/large.csv")
    piece = os.urandom(MIB // 2 + 17)  # odd sizes so parts straddle writes
    expected = bytearray()
    with s3.open_writer(ref, content_type="text/csv") as out:
        for _ in range(40):  # ~20 MiB: two full 8 MiB parts and a tail
            out.write(piece)
            expected += piece
            # Parts go up as they fill: at most 2 on the wire and one part filling.
            sent = len(out.parts) + out.parts_in_flight  # type: ignore[attr-defined]
            assert out.parts_in_flight <= 2  # type: ignore[attr-defined]
            assert len(expected) - 8 * MIB * sent < 8 * MIB
        assert s3.head(ref) is None, "nothing visible before the block ends"
    assert len(out.parts) == 3  # type: ignore[attr-defined]
    assert s3.read_bytes(ref) == bytes(expected)
    assert s3_client.head_object(Bucket=bucket, Key=ref.key)["ContentType"] == "text/csv"
    assert uploads_in_progress(s3_client, bucket) == []
    assert upload_threads() == []


@pytest.mark.parametrize("uploads_in_flight", [0, 1, 3])
def test_a_many_part_object_round_trips_byte_exact_in_part_order(
    s3_client: Any, bucket: str, uploads_in_flight: int
) -> None:
    s3 = store(s3_client, part_size=PART, uploads_in_flight=uploads_in_flight)
    ref = ObjectRef(bucket, f"lake/many-{uploads_in_flight}.avro")
    data = os.urandom(7 * PART + 12_345)  # 8 parts, the last one short
    with s3.open_writer(ref, "avro/binary") as out:
        out.write(data[:10])
        out.write(data[10 : 2 * PART + 3])  # more than a part in one write
        write_in_pieces(out, data[2 * PART + 3 :], 300_007)
    assert upload_threads() == []
    assert s3.read_bytes(ref) == data
    head = s3_client.head_object(Bucket=bucket, Key=ref.key)
    assert head["ETag"].strip('"').endswith("-8")
    assert [p["PartNumber"] for p in out.parts] == list(range(1, 9))  # type: ignore[attr-defined]
    assert uploads_in_progress(s3_client, bucket) == []


@pytest.mark.parametrize("fault", [SLOW_DOWN, INTERNAL_ERROR], ids=["throttle", "5xx"])
def test_a_part_that_fails_once_is_retried_by_botocore_and_the_object_completes(
    s3_proxy: LocalHttpServer, s3_client: Any, bucket: str, fault: Fault
) -> None:
    s3_proxy.inject(fault, method="PUT", query={"partNumber": "2"})
    s3 = store(proxied(s3_proxy), part_size=PART)
    ref = ObjectRef(bucket, "lake/retried.avro")
    data = os.urandom(4 * PART + 99)
    with s3.open_writer(ref) as out:
        write_in_pieces(out, data, MIB)
    assert s3_client.get_object(Bucket=bucket, Key=ref.key)["Body"].read() == data
    assert [r.fault for r in part_uploads(s3_proxy, 2)] == [fault.name, None]
    assert uploads_in_progress(s3_client, bucket) == []
    assert upload_threads() == []


def test_a_part_that_keeps_failing_aborts_the_upload_and_names_the_part(
    s3_proxy: LocalHttpServer, s3_client: Any, bucket: str
) -> None:
    s3_proxy.inject(INTERNAL_ERROR, times=1000, method="PUT", query={"partNumber": "2"})
    s3 = store(proxied(s3_proxy, max_attempts=2), part_size=PART)
    ref = ObjectRef(bucket, "lake/never.avro")
    with (
        pytest.raises(DependencyUnavailable, match=rf"{ref.uri} .*part 2 .*InternalError"),
        s3.open_writer(ref) as out,
    ):
        write_in_pieces(out, os.urandom(6 * PART), MIB)
    assert upload_threads() == []
    assert [r.method for r in s3_proxy.requests][-1] == "DELETE"  # the abort, after the parts
    # botocore's 2 tries (the one retry layer) and no loop around them.
    assert len(part_uploads(s3_proxy, 2)) == 2
    assert s3_client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert uploads_in_progress(s3_client, bucket) == []


def test_an_error_in_the_with_block_aborts_with_parts_on_the_wire(
    s3_proxy: LocalHttpServer, s3_client: Any, bucket: str
) -> None:
    # Part 2 is still being answered when the block fails: the abort waits for it, then goes.
    s3_proxy.inject(Fault.slow(0.5), method="PUT", query={"partNumber": "2"})
    s3 = store(proxied(s3_proxy), part_size=PART, uploads_in_flight=2)
    ref = ObjectRef(bucket, "lake/refused.avro")
    with pytest.raises(RuntimeError, match="source 7 refused"), s3.open_writer(ref) as out:
        write_in_pieces(out, os.urandom(3 * PART + 1), MIB)
        raise RuntimeError("source 7 refused")
    assert upload_threads() == []
    requests = [(r.method, r.query.get("partNumber", [""])[0]) for r in s3_proxy.requests]
    assert s3_client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert uploads_in_progress(s3_client, bucket) == []
    # Parts 1 and 2 went up, part 3 maybe (it was cut; the abort may have come before it
    # started), the byte left over never; the abort came last.
    assert requests[0] == ("POST", "") and requests[-1] == ("DELETE", "")
    assert {n for m, n in requests[1:-1] if m == "PUT"} in ({"1", "2"}, {"1", "2", "3"})


def test_a_completed_upload_aborts_its_keys_uploads_abandoned_before_it_and_no_other(
    s3_client: Any, bucket: str
) -> None:
    ref = ObjectRef(bucket, "avro/registration/merged/2024/05/03.avro")
    # What a writer killed part-way leaves: an upload begun, a part sent, never completed.
    abandoned = s3_client.create_multipart_upload(Bucket=bucket, Key=ref.key)["UploadId"]
    s3_client.upload_part(
        Bucket=bucket, Key=ref.key, UploadId=abandoned, PartNumber=1, Body=os.urandom(PART)
    )
    other = s3_client.create_multipart_upload(Bucket=bucket, Key=ref.key + ".other")["UploadId"]
    data = os.urandom(2 * PART + 7)

    with store(s3_client, part_size=PART).open_writer(ref, "avro/binary") as out:
        out.write(data)

    assert store(s3_client).read_bytes(ref) == data
    left = uploads_in_progress(s3_client, bucket)
    assert [(u["Key"], u["UploadId"]) for u in left] == [(ref.key + ".other", other)]


def test_delete_many_deletes_each_in_batches_of_a_thousand_and_a_missing_key_is_no_error(
    s3_client: Any, bucket: str, make_bucket: Callable[[], str]
) -> None:
    objects = store(s3_client)
    other = make_bucket()
    refs = [ObjectRef(bucket, f"progress/x/part-{n:06d}") for n in range(1, 1_004)]
    for ref in [*refs, ObjectRef(bucket, "keep"), ObjectRef(other, "gone")]:
        s3_client.put_object(Bucket=ref.bucket, Key=ref.key, Body=b"x")
    objects.delete_many([*refs, ObjectRef(bucket, "never-there"), ObjectRef(other, "gone")])
    assert [info.ref.key for info in objects.list_objects(bucket, "")] == ["keep"]
    assert list(objects.list_objects(other, "")) == []
