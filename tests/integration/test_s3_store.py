"""S3ObjectStore over HTTP against the in-process emulator."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from adapters.aws.s3 import S3ObjectStore
from domain.models import ObjectNotFound, ObjectRef, OverlongLine

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


@pytest.fixture
def bucket(make_bucket: Callable[[], str]) -> str:
    return make_bucket()


def store(s3_client: Any, **options: Any) -> S3ObjectStore:
    return S3ObjectStore(s3_client, **options)


def uploads_in_progress(s3_client: Any, bucket: str) -> list[dict[str, Any]]:
    return list(s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


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
    s3 = store(s3_client)
    ref = ObjectRef(bucket, "scrubbed/large.csv")
    piece = os.urandom(MIB // 2 + 17)  # odd sizes so parts straddle writes
    expected = bytearray()
    with s3.open_writer(ref, content_type="text/csv") as out:
        for _ in range(40):  # ~20 MiB: two full 8 MiB parts and a tail
            out.write(piece)
            expected += piece
            # Parts are uploaded as they fill: never more than one part buffered.
            assert len(expected) - 8 * MIB * len(out.parts) < 8 * MIB  # type: ignore[attr-defined]
        assert len(out.parts) == 2  # type: ignore[attr-defined]
        assert s3.head(ref) is None, "nothing visible before the block ends"
    assert s3.read_bytes(ref) == bytes(expected)
    assert s3_client.head_object(Bucket=bucket, Key=ref.key)["ContentType"] == "text/csv"
    assert uploads_in_progress(s3_client, bucket) == []


def test_an_error_inside_the_writer_aborts_and_leaves_no_object(
    s3_client: Any, bucket: str
) -> None:
    s3 = store(s3_client)
    ref = ObjectRef(bucket, "scrubbed/broken.csv")
    with pytest.raises(RuntimeError, match="row 1234 exploded"), s3.open_writer(ref) as out:
        out.write(os.urandom(9 * MIB))  # one part already uploaded
        assert len(out.parts) == 1  # type: ignore[attr-defined]
        raise RuntimeError("row 1234 exploded")
    assert s3.head(ref) is None
    assert uploads_in_progress(s3_client, bucket) == []


def test_an_error_in_a_small_writer_leaves_no_object(s3_client: Any, bucket: str) -> None:
    s3 = store(s3_client)
    ref = ObjectRef(bucket, "scrubbed/broken-small.csv")
    with pytest.raises(ValueError, match="bad row"), s3.open_writer(ref) as out:
        out.write(b"a,b\r\n")
        raise ValueError("bad row")
    assert s3.head(ref) is None


def test_rewriting_replaces_the_old_object_only_when_the_new_one_is_complete(
    s3_client: Any, bucket: str
) -> None:
    s3 = store(s3_client)
    ref = ObjectRef(bucket, "scrubbed/again.csv")
    s3.put_bytes(ref, b"old")
    with pytest.raises(RuntimeError), s3.open_writer(ref) as out:
        out.write(os.urandom(9 * MIB))
        raise RuntimeError("interrupted")
    assert s3.read_bytes(ref) == b"old"


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, None, b"0123456789"),
        (0, 4, b"0123"),
        (4, None, b"456789"),
        (3, 7, b"3456"),
        (8, 64, b"89"),  # a range running past the end: what there is
        (10, None, b""),  # starting at the end (S3 answers 416): nothing
        (64, 128, b""),
        (5, 5, b""),
    ],
)
def test_iter_chunks_reads_a_byte_range(
    s3_client: Any, bucket: str, start: int, end: int | None, expected: bytes
) -> None:
    ref = ObjectRef(bucket, "lake/range.bin")
    s3 = store(s3_client, chunk_size=3)
    s3.put_bytes(ref, b"0123456789")

    assert b"".join(s3.iter_chunks(ref, start, end)) == expected


def test_a_range_of_a_missing_object_is_object_not_found(s3_client: Any, bucket: str) -> None:
    with pytest.raises(ObjectNotFound):
        list(store(s3_client).iter_chunks(ObjectRef(bucket, "lake/none.bin"), 0, 64))
