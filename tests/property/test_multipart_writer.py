"""The S3 multipart writer, parts uploading in the background: for any sequence of writes, part
size and number of uploads in flight the object is the concatenation of the writes, cut into
parts as S3 requires; a part that fails, or an error in the with-block, leaves no object, no
upload and no thread behind."""

from __future__ import annotations

import base64
import hashlib
import itertools
import threading
import zlib
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st

from adapters.aws.s3_multipart import UPLOAD_THREAD_PREFIX, MultipartWriter
from domain.models import ObjectMismatch, ObjectRef
from domain.streaming import DependencyUnavailable

REF = ObjectRef("lake", "avro/registration/merged/2024/05/03.avro")


def _crc(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


class _MultipartS3:
    """Just enough of boto3's S3 client for a writer, keeping S3's rules: every part but the
    last at least the minimum size, the complete call's parts in ascending order with the
    ETags and CRC-32s S3 gave, a part or object whose bytes are not its CRC-32 refused
    (BadDigest); HEAD reports a multipart object's composite CRC-32 (`crc-of-crcs-N`). `failing`
    part numbers answer 500 every time (botocore's retries spent); `stored` changes an object's
    bytes as it is stored (a store that loses or alters what it was sent)."""

    def __init__(
        self,
        min_part: int,
        failing: frozenset[int] = frozenset(),
        stored: Any = None,
    ) -> None:
        self.min_part = min_part
        self.failing = failing
        self.stored = stored or (lambda body: body)
        self.checksums: dict[str, str] = {}
        self.objects: dict[str, bytes] = {}
        self.uploads: dict[str, dict[int, bytes]] = {}
        self.begun: dict[str, tuple[str, datetime]] = {}  # upload -> (key, Initiated)
        self.on_the_wire = 0
        self.most_on_the_wire = 0
        self._ids = itertools.count()
        self._lock = threading.Lock()

    def put_object(
        self,
        Bucket: str,
        Key: str,
        Body: bytes,
        ContentType: str,
        ChecksumAlgorithm: str | None = None,
        ChecksumCRC32: str | None = None,
    ) -> Any:
        assert ChecksumCRC32 in (None, _crc(Body)), "BadDigest"
        self.objects[Key] = self.stored(bytes(Body))
        self.checksums[Key] = _crc(self.objects[Key])
        return {"ETag": f'"{hashlib.md5(Body).hexdigest()}"', "ChecksumCRC32": _crc(Body)}

    def head_object(self, Bucket: str, Key: str, ChecksumMode: str = "") -> Any:
        return {"ContentLength": len(self.objects[Key]), "ChecksumCRC32": self.checksums[Key]}

    def create_multipart_upload(
        self, Bucket: str, Key: str, ContentType: str, ChecksumAlgorithm: str = "CRC32"
    ) -> Any:
        upload_id = f"upload-{next(self._ids)}"
        self.uploads[upload_id] = {}
        self.begun[upload_id] = (Key, datetime.now(UTC))
        return {"UploadId": upload_id}

    def list_multipart_uploads(self, Bucket: str, Prefix: str) -> Any:
        return {
            "Uploads": [
                {"Key": key, "UploadId": upload_id, "Initiated": initiated}
                for upload_id, (key, initiated) in self.begun.items()
                if upload_id in self.uploads and key.startswith(Prefix)
            ]
        }

    def upload_part(
        self,
        Bucket: str,
        Key: str,
        UploadId: str,
        PartNumber: int,
        Body: bytes,
        ChecksumAlgorithm: str | None = None,
        ChecksumCRC32: str | None = None,
    ) -> Any:
        with self._lock:
            self.on_the_wire += 1
            self.most_on_the_wire = max(self.most_on_the_wire, self.on_the_wire)
        try:
            if PartNumber in self.failing:
                raise ClientError(
                    {
                        "Error": {"Code": "InternalError", "Message": "try again"},
                        "ResponseMetadata": {"HTTPStatusCode": 500},
                    },
                    "UploadPart",
                )
            assert ChecksumCRC32 in (None, _crc(Body)), "BadDigest"
            with self._lock:
                self.uploads[UploadId][PartNumber] = bytes(Body)
            return {"ETag": f'"{hashlib.md5(Body).hexdigest()}"', "ChecksumCRC32": _crc(Body)}
        finally:
            with self._lock:
                self.on_the_wire -= 1

    def complete_multipart_upload(
        self, Bucket: str, Key: str, UploadId: str, MultipartUpload: Any
    ) -> Any:
        stored = self.uploads.pop(UploadId)
        listed = MultipartUpload["Parts"]
        numbers = [p["PartNumber"] for p in listed]
        assert numbers == sorted(numbers) == list(range(1, len(stored) + 1)), "InvalidPartOrder"
        for part in listed:
            body = stored[part["PartNumber"]]
            assert part["ETag"] == f'"{hashlib.md5(body).hexdigest()}"', "InvalidPart"
            assert part.get("ChecksumCRC32") in (None, _crc(body)), "InvalidPart"
        assert all(len(stored[n]) >= self.min_part for n in numbers[:-1]), "EntityTooSmall"
        parts = [self.stored(stored[n]) for n in numbers]
        self.objects[Key] = b"".join(parts)
        crcs = b"".join(base64.b64decode(_crc(part)) for part in parts)
        self.checksums[Key] = f"{_crc(crcs)}-{len(parts)}"
        return {}

    def abort_multipart_upload(self, Bucket: str, Key: str, UploadId: str) -> Any:
        # Aborted after every part on the wire answered: nothing may arrive for it later.
        assert self.on_the_wire == 0, "a part still arriving after the abort"
        self.uploads.pop(UploadId)
        return {}


def upload_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(UPLOAD_THREAD_PREFIX)]


writes = st.lists(st.binary(max_size=160), max_size=24)
part_sizes = st.integers(1, 48)
in_flight = st.integers(0, 3)


@given(writes, part_sizes, in_flight)
def test_the_object_is_the_concatenation_of_the_writes(
    pieces: list[bytes], part_size: int, uploads_in_flight: int
) -> None:
    s3 = _MultipartS3(part_size)
    with MultipartWriter(s3, REF, "avro/binary", part_size, uploads_in_flight) as out:
        for piece in pieces:
            assert out.write(piece) == len(piece)
            # The memory bound: the parts on the wire or waiting to be collected, one filling.
            assert out.parts_in_flight <= uploads_in_flight
        assert REF.key not in s3.objects, "nothing visible before the block ends"
    expected = b"".join(pieces)
    assert s3.objects[REF.key] == expected
    assert out.written == len(expected)
    full_parts, tail = divmod(len(expected), part_size)
    assert len(out.parts) == (0 if len(expected) < part_size else full_parts + (tail > 0))
    assert s3.uploads == {}
    assert s3.most_on_the_wire <= max(uploads_in_flight, 1)
    assert upload_threads() == []


@given(writes, part_sizes, in_flight)
def test_a_view_the_caller_reuses_after_writing_does_not_change_the_object(
    pieces: list[bytes], part_size: int, uploads_in_flight: int
) -> None:
    """The merge writes views of the chunks it read; it may overwrite them once write returns."""
    s3 = _MultipartS3(part_size)
    with MultipartWriter(s3, REF, "avro/binary", part_size, uploads_in_flight) as out:
        for piece in pieces:
            reused = bytearray(piece)
            out.write(memoryview(reused))
            reused[:] = b"\xff" * len(reused)
    assert s3.objects[REF.key] == b"".join(pieces)
    assert upload_threads() == []


@given(writes, part_sizes, in_flight, st.data())
def test_a_failing_part_leaves_no_object_and_no_upload_and_names_the_part(
    pieces: list[bytes], part_size: int, uploads_in_flight: int, data: st.DataObject
) -> None:
    total = len(b"".join(pieces))
    parts = 0 if total < part_size else -(-total // part_size)  # the short last one too
    failing = data.draw(st.integers(1, parts)) if parts else None
    s3 = _MultipartS3(part_size, frozenset({failing} if failing else set()))
    try:
        with MultipartWriter(s3, REF, "avro/binary", part_size, uploads_in_flight) as out:
            for piece in pieces:
                out.write(piece)
    except DependencyUnavailable as failure:
        assert failing is not None
        assert f"{REF.uri} (multipart upload upload-0, part {failing} of " in str(failure)
        assert "InternalError (HTTP 500)" in str(failure)
        assert REF.key not in s3.objects
        with pytest.raises(ValueError, match="closed"):
            out.write(b"more")
    else:
        assert failing is None  # no part: a single PutObject
        assert s3.objects[REF.key] == b"".join(pieces)
    assert s3.uploads == {}
    assert upload_threads() == []


@given(writes, part_sizes, in_flight, st.data())
def test_an_error_in_the_with_block_aborts_whatever_is_in_flight(
    pieces: list[bytes], part_size: int, uploads_in_flight: int, data: st.DataObject
) -> None:
    stop_after = data.draw(st.integers(0, len(pieces)))
    s3 = _MultipartS3(part_size)
    with (
        pytest.raises(RuntimeError, match="refused"),
        MultipartWriter(s3, REF, "avro/binary", part_size, uploads_in_flight) as out,
    ):
        for piece in pieces[:stop_after]:
            out.write(piece)
        raise RuntimeError("the merge refused a source")
    assert REF.key not in s3.objects
    assert s3.uploads == {}
    assert upload_threads() == []


@given(st.integers(0, 3), st.integers(0, 3), in_flight)
def test_a_completed_upload_leaves_none_of_its_keys_earlier_uploads_and_all_of_the_others(
    abandoned: int, others: int, uploads_in_flight: int
) -> None:
    s3 = _MultipartS3(4)
    for _ in range(abandoned):  # runs killed part-way: begun, a part sent, never completed
        begun = s3.create_multipart_upload(Bucket=REF.bucket, Key=REF.key, ContentType="")
        s3.upload_part(REF.bucket, REF.key, begun["UploadId"], 1, b"part")
    kept = {
        s3.create_multipart_upload(Bucket=REF.bucket, Key=f"{REF.key}.{n}", ContentType="")[
            "UploadId"
        ]
        for n in range(others)
    }
    with MultipartWriter(s3, REF, "avro/binary", 4, uploads_in_flight) as out:
        out.write(b"0123456789")

    assert s3.objects[REF.key] == b"0123456789"
    assert set(s3.uploads) == kept


@given(writes.filter(lambda pieces: sum(map(len, pieces)) > 0), part_sizes, in_flight, st.data())
def test_an_object_stored_otherwise_than_written_is_named_after_its_upload(
    pieces: list[bytes], part_size: int, uploads_in_flight: int, data: st.DataObject
) -> None:
    """The merge no longer reads its merged file back: the writer's check that the stored object
    is the bytes written (size and CRC-32 as S3 reports them) stands in for it."""
    alter = data.draw(st.sampled_from(["lose the last byte", "flip a bit"]))

    def stored(body: bytes) -> bytes:
        if not body:
            return body
        if alter == "lose the last byte":
            return body[:-1]
        return bytes([body[0] ^ 1]) + body[1:]

    s3 = _MultipartS3(part_size, stored=stored)
    with (
        pytest.raises(ObjectMismatch, match=f"{REF.uri} holds .* after its upload of"),
        MultipartWriter(s3, REF, "avro/binary", part_size, uploads_in_flight) as out,
    ):
        for piece in pieces:
            out.write(piece)
    assert s3.uploads == {}
    assert upload_threads() == []
