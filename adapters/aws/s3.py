"""ObjectStore on S3: streaming reads, complete-or-nothing multipart writes.

Memory: reads hold one chunk (1 MiB) plus the longest line; writes hold at most
(uploads_in_flight + 1) parts: the parts uploading in the background and the one filling
(24 MiB with the defaults, 2 x 8 MiB; see MultipartWriter). A writer that fails part-way
ABORTS its multipart upload, so no partial object ever appears and no orphaned parts keep
costing storage. S3 allows 10,000 parts: at 8 MiB that is ~78 GiB
per object; pass a larger `part_size` for more.

Writes go through MultipartWriter (adapters/aws/s3_multipart.py), each part with its CRC-32 and
the object checked after its upload (a HEAD: size and checksum; ObjectMismatch); conditional writes
(`put_versioned`) through adapters/aws/s3_conditional.py.

`copy` keeps the source's ETag: CopyObject for a single-part source (S3 limits it to 5 GiB), and
part by part (UploadPartCopy, the source's own part sizes) for a multipart one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from botocore.exceptions import ClientError

from adapters.aws.errors import AWS_ERRORS, unavailable
from adapters.aws.s3_conditional import conditional_put, get_versioned, is_missing
from adapters.aws.s3_multipart import (
    DEFAULT_PART_SIZE,
    DEFAULT_UPLOADS_IN_FLIGHT,
    MIN_PART_SIZE,
    MultipartWriter,
)
from domain.models import ObjectInfo, ObjectNotFound, ObjectRef, OverlongLine

log = logging.getLogger(__name__)

MIB = 1024 * 1024
DEFAULT_CHUNK_SIZE = 1 * MIB
DEFAULT_MAX_LINE_BYTES = 64 * MIB
DEFAULT_CONTENT_TYPE = "application/octet-stream"
DELETE_BATCH = 1_000  # DeleteObjects takes at most 1,000 keys a call


def _line_or_overlong(line: bytes, limit: int) -> bytes | OverlongLine:
    """The line without its CR, or its length if that is over the limit."""
    if line.endswith(b"\r"):
        line = line[:-1]
    return OverlongLine(len(line)) if len(line) > limit else line


def _line_length(length: int, end: bytes) -> int:
    """A line's length without the CR of its CRLF (`end` is the line's last piece)."""
    return length - 1 if end.endswith(b"\r") else length


def _etag(answer: Any) -> str | None:
    """S3's ETag without its quotes (HeadObject and ListObjectsV2 both quote it)."""
    etag = answer.get("ETag")
    return None if etag is None else str(etag).strip('"')


def _part_count(head: Any) -> int:
    """How many parts an object was uploaded in: an ETag `md5-N` says N, a plain MD5 one."""
    etag = str(head.get("ETag", "")).strip('"')
    count = etag.rpartition("-")[2]
    return int(count) if "-" in etag and count.isdigit() else 1


class S3ObjectStore:
    """domain.ports.ObjectStore over a boto3 S3 client."""

    def __init__(
        self,
        client: Any,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        part_size: int = DEFAULT_PART_SIZE,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        list_page_size: int = 1000,
        uploads_in_flight: int = DEFAULT_UPLOADS_IN_FLIGHT,
    ) -> None:
        if uploads_in_flight < 0:
            raise ValueError(f"uploads_in_flight must be >= 0, got {uploads_in_flight}")
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be >= {MIN_PART_SIZE} bytes (S3), got {part_size}")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.client = client
        self.chunk_size = chunk_size
        self.part_size = part_size
        self.max_line_bytes = max_line_bytes
        self.list_page_size = list_page_size
        self.uploads_in_flight = uploads_in_flight

    # --- reads --------------------------------------------------------------------------------

    def _get(self, ref: ObjectRef, byte_range: str | None = None) -> Any:
        try:
            if byte_range is None:
                return self.client.get_object(Bucket=ref.bucket, Key=ref.key)
            return self.client.get_object(Bucket=ref.bucket, Key=ref.key, Range=byte_range)
        except ClientError as error:
            if is_missing(error):
                raise ObjectNotFound(ref) from error
            raise
        except AWS_ERRORS as error:
            # A timeout or dropped connection is an outage of S3, named with the object: raw,
            # a stream runtime took it for a bug instead of replaying the batch.
            raise unavailable(ref.uri, error) from error

    def iter_chunks(
        self, ref: ObjectRef, start: int = 0, end: int | None = None
    ) -> Iterator[bytes]:
        if start == 0 and end is None:
            body = self._get(ref)["Body"]
        elif end is not None and end <= start:
            return
        else:
            try:
                body = self._get(ref, f"bytes={start}-{'' if end is None else end - 1}")["Body"]
            except ClientError as error:
                # Asked past the object's end (S3 answers 416): there is nothing there to read.
                if str(error.response.get("Error", {}).get("Code", "")) == "InvalidRange":
                    return
                raise
        try:
            yield from body.iter_chunks(self.chunk_size)
        finally:
            # Closing returns the connection to the pool even if the consumer stops early.
            body.close()

    def iter_lines(self, ref: ObjectRef) -> Iterator[bytes | OverlongLine]:
        """Lines without their LF / CRLF ending. Bytes are as stored: a UTF-8 BOM stays on the
        first line (decoding and BOM handling are the parser's job). A final line without a
        newline is yielded; a trailing newline does not make an extra empty line.

        A line longer than `max_line_bytes` comes as an OverlongLine(length): the reader drops
        what it gathered of it and skips to the next newline, so memory stays at one chunk plus
        `max_line_bytes` however long the line (a 200 MB line with no newline once crashed the
        run: the caller now rejects that one row and goes on)."""
        limit = self.max_line_bytes
        partial: list[bytes] = []
        partial_size = 0
        skipped = -1  # >= 0 while skipping an over-long line: its length so far
        skipped_end = b""  # the last byte skipped (a CR there belongs to the line end)
        for chunk in self.iter_chunks(ref):
            lines = chunk.split(b"\n")
            tail = lines.pop()
            for line in lines:
                if skipped >= 0:
                    length = skipped + len(line)
                    yield OverlongLine(_line_length(length, line or skipped_end))
                    skipped = -1
                    continue
                if partial:
                    partial.append(line)
                    line = b"".join(partial)
                    partial, partial_size = [], 0
                yield _line_or_overlong(line, limit)
            if skipped >= 0:
                skipped += len(tail)
                skipped_end = tail[-1:] or skipped_end
            elif tail:
                partial.append(tail)
                partial_size += len(tail)
                if partial_size > limit + 1:  # +1: the CR of a CRLF may follow
                    skipped, skipped_end = partial_size, tail[-1:]
                    partial, partial_size = [], 0
        if skipped >= 0:
            yield OverlongLine(_line_length(skipped, skipped_end))
        elif partial:
            yield _line_or_overlong(b"".join(partial), limit)

    def read_bytes(self, ref: ObjectRef) -> bytes:
        body = self._get(ref)["Body"]
        try:
            data: bytes = body.read()
        finally:
            body.close()
        return data

    def head(self, ref: ObjectRef) -> ObjectInfo | None:
        try:
            answer = self.client.head_object(Bucket=ref.bucket, Key=ref.key)
        except ClientError as error:
            if is_missing(error):
                return None
            raise
        return ObjectInfo(
            ref, int(answer["ContentLength"]), answer.get("LastModified"), _etag(answer)
        )

    def list_objects(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": self.list_page_size}
        )
        for page in pages:
            for item in page.get("Contents", []):
                yield ObjectInfo(
                    ObjectRef(bucket, item["Key"]),
                    int(item["Size"]),
                    item.get("LastModified"),
                    _etag(item),
                )

    # --- writes -------------------------------------------------------------------------------

    def read_versioned(self, ref: ObjectRef) -> tuple[bytes, str] | None:
        return get_versioned(self.client, ref)

    def put_versioned(
        self, ref: ObjectRef, data: bytes, expected_version: str | None
    ) -> str | None:
        return conditional_put(self.client, ref, data, expected_version)

    def put_bytes(
        self, ref: ObjectRef, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> None:
        self.client.put_object(Bucket=ref.bucket, Key=ref.key, Body=data, ContentType=content_type)

    def abort_open_uploads(self, ref: ObjectRef) -> int:
        """Aborts every open multipart upload of `ref`'s key (the caller holds the object's
        lease: none is a live writer's). Best effort; the number aborted."""
        try:
            listed = self.client.list_multipart_uploads(Bucket=ref.bucket, Prefix=ref.key)
        except AWS_ERRORS:
            log.warning("could not list open uploads", extra={"uri": ref.uri})
            return 0
        aborted = 0
        for upload in listed.get("Uploads", []):
            if upload.get("Key") != ref.key:
                continue
            try:
                self.client.abort_multipart_upload(
                    Bucket=ref.bucket, Key=ref.key, UploadId=upload["UploadId"]
                )
            except AWS_ERRORS:
                log.warning("could not abort an abandoned upload", extra={"uri": ref.uri})
                continue
            aborted += 1
        if aborted:
            log.info("aborted abandoned multipart uploads", extra={"uri": ref.uri, "n": aborted})
        return aborted

    def open_writer(
        self, ref: ObjectRef, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> MultipartWriter:
        """A writer to use as a context manager: the object appears when the block ends without
        error, and not at all otherwise (see MultipartWriter)."""
        return MultipartWriter(
            self.client, ref, content_type, self.part_size, self.uploads_in_flight
        )

    def copy(self, source: ObjectRef, target: ObjectRef) -> None:
        """A server-side copy with the source's ETag. CopyObject gives a copy of a multipart
        object a new (single-part MD5) ETag, so such a source is copied part by part with its
        own part sizes (UploadPartCopy), which gives the copy the same ETag: the lake's move
        verifies every copy by size and ETag before it deletes the source."""
        try:
            head = self.client.head_object(Bucket=source.bucket, Key=source.key)
            parts = _part_count(head)
            copy_source = {"Bucket": source.bucket, "Key": source.key}
            if parts <= 1:
                self.client.copy_object(
                    Bucket=target.bucket, Key=target.key, CopySource=copy_source
                )
                return
            self._copy_parts(source, target, head, parts)
        except ClientError as error:
            if is_missing(error):
                raise ObjectNotFound(source) from error
            raise

    def _copy_parts(self, source: ObjectRef, target: ObjectRef, head: Any, parts: int) -> None:
        copy_source = {"Bucket": source.bucket, "Key": source.key}
        started = self.client.create_multipart_upload(
            Bucket=target.bucket, Key=target.key, ContentType=head.get("ContentType", "")
        )
        upload_id = started["UploadId"]
        try:
            done = []
            offset = 0
            for number in range(1, parts + 1):
                size = int(
                    self.client.head_object(
                        Bucket=source.bucket, Key=source.key, PartNumber=number
                    )["ContentLength"]
                )
                answer = self.client.upload_part_copy(
                    Bucket=target.bucket,
                    Key=target.key,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource=copy_source,
                    CopySourceRange=f"bytes={offset}-{offset + size - 1}",
                    # The parts must come from the version that was listed, not a rewrite.
                    CopySourceIfMatch=head["ETag"],
                )
                done.append({"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]})
                offset += size
            self.client.complete_multipart_upload(
                Bucket=target.bucket,
                Key=target.key,
                UploadId=upload_id,
                MultipartUpload={"Parts": done},
            )
        except BaseException:
            try:
                self.client.abort_multipart_upload(
                    Bucket=target.bucket, Key=target.key, UploadId=upload_id
                )
            except Exception:
                log.exception("could not abort multipart copy", extra={"uri": target.uri})
            raise

    def delete(self, ref: ObjectRef) -> None:
        """Idempotent: deleting a missing object is not an error (S3 semantics)."""
        self.client.delete_object(Bucket=ref.bucket, Key=ref.key)

    def delete_many(self, refs: Sequence[ObjectRef]) -> None:
        """DeleteObjects, up to 1,000 keys a call and bucket; a key S3 could not delete raises
        naming it (the call itself answers 200)."""
        by_bucket: dict[str, list[str]] = {}
        for ref in refs:
            by_bucket.setdefault(ref.bucket, []).append(ref.key)
        for bucket, keys in by_bucket.items():
            for start in range(0, len(keys), DELETE_BATCH):
                batch = [{"Key": key} for key in keys[start : start + DELETE_BATCH]]
                answer = self.client.delete_objects(
                    Bucket=bucket, Delete={"Objects": batch, "Quiet": True}
                )
                errors = answer.get("Errors") or []
                if errors:
                    first = errors[0]
                    raise RuntimeError(
                        f"could not delete {len(errors)} object(s) in s3://{bucket}, first "
                        f"{first.get('Key')!r}: {first.get('Code')} {first.get('Message')}"
                    )
