"""ObjectStore on S3: streaming reads, complete-or-nothing multipart writes.

Memory: reads hold one chunk (1 MiB) plus the longest line; writes hold at most
(uploads_in_flight + 1) parts: the parts uploading in the background and the one filling
(24 MiB with the defaults, 2 x 8 MiB; see MultipartWriter). A writer that fails part-way
ABORTS its multipart upload, so no partial object ever appears and no orphaned parts keep
costing storage. S3 allows 10,000 parts: at 8 MiB that is ~78 GiB
per object; pass a larger `part_size` for more.

Conditional writes (`put_versioned`, S3's `If-None-Match: *` / `If-Match: <ETag>`): a claim or
lease that two runs race for has one winner; the loser's 412 PreconditionFailed (or 409
ConditionalRequestConflict, or 404 for an `If-Match` on an object deleted meanwhile) is the
answer None, any other failure a DependencyUnavailable.

`copy` keeps the source's ETag: CopyObject for a single-part source (S3 limits it to 5 GiB), and
part by part (UploadPartCopy, the source's own part sizes) for a multipart one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from adapters.aws.errors import AWS_ERRORS, error_code, unavailable
from domain.models import ObjectInfo, ObjectNotFound, ObjectRef, OverlongLine
from domain.streaming import DependencyUnavailable

log = logging.getLogger(__name__)

MIB = 1024 * 1024
DEFAULT_CHUNK_SIZE = 1 * MIB
DEFAULT_PART_SIZE = 8 * MIB
MIN_PART_SIZE = 5 * MIB  # S3's floor for every part but the last
MAX_PARTS = 10_000
DEFAULT_UPLOADS_IN_FLIGHT = 2  # parts uploading at once while the next fills (MultipartWriter)
UPLOAD_THREAD_PREFIX = "s3-upload"
DEFAULT_MAX_LINE_BYTES = 64 * MIB
DEFAULT_CONTENT_TYPE = "application/octet-stream"

_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


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


def _is_missing(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code", "")) in _MISSING_CODES


_LOST_RACE_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})


def conditional_put(
    client: Any, ref: ObjectRef, body: bytes, expected_version: str | None
) -> str | None:
    """PutObject only over `expected_version` (an ETag), or only if absent (None): the new
    ETag, or None when another writer got there first."""
    condition = {"IfMatch": expected_version} if expected_version else {"IfNoneMatch": "*"}
    try:
        response = client.put_object(
            Bucket=ref.bucket, Key=ref.key, Body=body, ContentType="application/json", **condition
        )
    except ClientError as error:
        code = error_code(error)
        if code in _LOST_RACE_CODES or (expected_version and code in _MISSING_CODES):
            return None
        raise unavailable(ref.uri, error) from error
    except AWS_ERRORS as error:
        raise unavailable(ref.uri, error) from error
    return str(response["ETag"])


def get_versioned(client: Any, ref: ObjectRef) -> tuple[bytes, str] | None:
    """The object's bytes and ETag (as S3 sends it, quoted), or None when there is none."""
    try:
        response = client.get_object(Bucket=ref.bucket, Key=ref.key)
        return response["Body"].read(), str(response["ETag"])
    except ClientError as error:
        if _is_missing(error):
            return None
        raise unavailable(ref.uri, error) from error
    except AWS_ERRORS as error:
        raise unavailable(ref.uri, error) from error


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
            if _is_missing(error):
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
            if _is_missing(error):
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
            if _is_missing(error):
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


class MultipartWriter:
    """An object written part by part; small objects become a single PutObject on finish.

    Parts upload in the background while the caller fills the next one: otherwise a merge waits
    for each 8 MiB part on the network (some 0.1-0.3 s on S3), time it could spend reading and
    copying the next sources. `uploads_in_flight` parts go up at once on threads of the writer's
    own (0: each part in the caller's thread, as before); when all are busy, the write that fills
    the next part waits for one to finish. Memory: at most (uploads_in_flight + 1) x part_size
    (the parts on the wire and the one filling): 24 MiB with the defaults of 2 and 8 MiB.
    Measured (benchmarks/README.md, "S3 writer"): with 150 ms a part, 2 in flight write 64 MiB
    1.5-1.7x as fast as in-thread, 1 only ~1.05x (the upload, not the filling, is the slow
    side), 4 up to 2.1x for 40 MiB; the traced peak is the bound (25.6 MiB with 2). The
    client's connection pool (10 by default) must hold these uploads and whatever else uses the
    client meanwhile: the merge's 8 read-ahead GETs and 2 uploads fill it exactly.

    A part that fails (after botocore's own retries, the one retry layer) stops the writer at its
    next write or at close with a DependencyUnavailable naming the object and the part; the
    upload is then aborted. An abort (that, or an exception in the caller's with-block) waits only
    for the parts already on the wire, then AbortMultipartUpload: S3 may keep a part that was
    still arriving when the abort came, so the abort comes after them. Every exit joins the
    threads. The complete call goes after every part has its ETag, in part-number order.
    """

    def __init__(
        self,
        client: Any,
        ref: ObjectRef,
        content_type: str,
        part_size: int,
        uploads_in_flight: int = DEFAULT_UPLOADS_IN_FLIGHT,
    ) -> None:
        if uploads_in_flight < 0:
            raise ValueError(f"uploads_in_flight must be >= 0, got {uploads_in_flight}")
        self.client = client
        self.ref = ref
        self.content_type = content_type
        self.part_size = part_size
        self.uploads_in_flight = uploads_in_flight
        self.upload_id: str | None = None
        # Uploaded parts' {"PartNumber", "ETag"}, as they finish (in order once finished).
        self.parts: list[dict[str, Any]] = []
        self.written = 0
        self._buffer = bytearray()
        self._closed = False
        self._next_part = 1
        self._in_flight: dict[int, Future[dict[str, Any]]] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._failed: DependencyUnavailable | None = None  # the first part that failed

    def __enter__(self) -> MultipartWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: Any
    ) -> None:
        if kind is None:
            self.finish()
        else:
            self.abort_quietly()  # the block's error goes on, the upload does not

    @property
    def parts_in_flight(self) -> int:
        return len(self._in_flight)

    def write(self, data: bytes | memoryview) -> int:
        """Takes a copy of `data` (into the part filling, or a part of its own), never the
        caller's buffer: a view the caller reuses after this returns cannot change a part that
        is still uploading."""
        if self._closed:
            raise ValueError(f"writer for {self.ref.uri} is closed")
        if self._failed is not None:
            raise self._failed
        size = len(data)
        self.written += size
        view = memoryview(data)
        part: bytes | bytearray
        while view:
            room = self.part_size - len(self._buffer)
            if room == self.part_size and len(view) >= room:
                # A write of a whole part or more: its parts straight from the caller's bytes.
                part, view = bytes(view[:room]), view[room:]
            else:
                self._buffer += view[:room]
                view = view[room:]
                if len(self._buffer) < self.part_size:
                    break
                # The full buffer goes up as it is (no copy); a new one fills meanwhile.
                part, self._buffer = self._buffer, bytearray()
            self._send(part)
        return size

    def _call(self, what: str, operation: Callable[..., Any], **arguments: Any) -> Any:
        """One S3 call of this upload (botocore retries it); a failure names object and part."""
        try:
            return operation(Bucket=self.ref.bucket, Key=self.ref.key, **arguments)
        except AWS_ERRORS as error:
            raise unavailable(f"{self.ref.uri} ({what})", error) from error

    def _send(self, part: bytes | bytearray) -> None:
        number = self._next_part
        if number > MAX_PARTS:
            raise ValueError(
                f"{self.ref.uri}: more than {MAX_PARTS} parts of {self.part_size} bytes; "
                "use a larger part_size"
            )
        if self.upload_id is None:
            started = self._call(
                "CreateMultipartUpload",
                self.client.create_multipart_upload,
                ContentType=self.content_type,
            )
            self.upload_id = str(started["UploadId"])
        self._next_part += 1
        if self.uploads_in_flight == 0:
            self.parts.append(self._upload(number, part))
            return
        while len(self._in_flight) >= self.uploads_in_flight:
            self._collect(block=True)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=self.uploads_in_flight, thread_name_prefix=UPLOAD_THREAD_PREFIX
            )
        self._in_flight[number] = self._pool.submit(self._upload, number, part)

    def _upload(self, number: int, part: bytes | bytearray) -> dict[str, Any]:
        try:
            answer = self._call(
                f"multipart upload {self.upload_id}, part {number} of {len(part)} bytes",
                self.client.upload_part,
                UploadId=self.upload_id,
                PartNumber=number,
                Body=part,
            )
        except DependencyUnavailable as failure:
            if self._failed is None:
                self._failed = failure  # the writer's thread raises it at its next write
            raise
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def _collect(self, *, block: bool) -> None:
        """The finished uploads' ETags (waiting for one first when `block`); raises a failure."""
        if block:
            wait(self._in_flight.values(), return_when=FIRST_COMPLETED)
        for number, upload in sorted(self._in_flight.items()):
            if upload.done():
                del self._in_flight[number]
                self.parts.append(upload.result())

    def _stop_threads(self) -> None:
        """Waits for the parts on the wire (none is queued: at most one per thread) and joins
        the threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def finish(self) -> None:
        """Makes the object appear: one PutObject, or the last part, every part's answer, and
        CompleteMultipartUpload."""
        self._closed = True
        if self.upload_id is None:
            self._call(
                "PutObject",
                self.client.put_object,
                Body=bytes(self._buffer),
                ContentType=self.content_type,
            )
            self._buffer.clear()
            return
        try:
            if self._failed is not None:
                raise self._failed
            if self._buffer:
                part, self._buffer = self._buffer, bytearray()
                self._send(part)
            while self._in_flight:
                self._collect(block=True)
            self._stop_threads()
            self.parts.sort(key=lambda part: int(part["PartNumber"]))  # S3 requires the order
            abandoned = self._begun_before_this()
            self._call(
                "CompleteMultipartUpload",
                self.client.complete_multipart_upload,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": self.parts},
            )
        except BaseException:
            self.abort_quietly()
            raise
        self._reap(abandoned)

    def _begun_before_this(self) -> list[str]:
        """This key's other uploads, begun no later than this one and still open (listed while
        this one is too: its Initiated and theirs are the server's clock)."""
        try:
            listed = self.client.list_multipart_uploads(
                Bucket=self.ref.bucket, Prefix=self.ref.key
            ).get("Uploads", [])
        except AWS_ERRORS:
            log.warning("could not list abandoned uploads", extra={"uri": self.ref.uri})
            return []
        same_key = [u for u in listed if u.get("Key") == self.ref.key]
        began = next(
            (u.get("Initiated") for u in same_key if u["UploadId"] == self.upload_id), None
        )
        if not isinstance(began, datetime):
            return []
        # Not after this one: a writer that began later is spared (the emulator, whose uploads
        # all say the same Initiated, is then answered as if every other one began first).
        return [
            str(u["UploadId"])
            for u in same_key
            if u["UploadId"] != self.upload_id
            and isinstance(u.get("Initiated"), datetime)
            and u["Initiated"] <= began
        ]

    def _reap(self, abandoned: list[str]) -> None:
        """Aborts this key's uploads begun before this one and never completed. A writer killed
        part-way (a Lambda timeout, an OOM, kill -9) cannot abort its upload, whose parts stay
        billed and invisible until a lifecycle rule reaps them; a re-run of the same object
        finds them here. Once this upload is complete an earlier one is abandoned or late, and
        a late one completing now would put older bytes over these: aborted either way. Best
        effort: the object is complete whatever this finds."""
        for upload_id in abandoned:
            try:
                self.client.abort_multipart_upload(
                    Bucket=self.ref.bucket, Key=self.ref.key, UploadId=upload_id
                )
            except AWS_ERRORS:
                log.warning("could not abort an abandoned upload", extra={"uri": self.ref.uri})
                continue
            log.info("aborted an abandoned multipart upload", extra={"uri": self.ref.uri})

    def abort_quietly(self) -> None:
        """Aborts while another error is in flight: a failing abort must not hide that error.
        (An upload left behind is invisible as an object; a bucket lifecycle rule reaps it.)"""
        try:
            self.abort()
        except Exception:
            log.exception("could not abort multipart upload", extra={"uri": self.ref.uri})

    def abort(self) -> None:
        """Drops everything written; uploaded parts are discarded by S3."""
        self._closed = True
        self._buffer = bytearray()
        try:
            self._stop_threads()
        finally:
            self._in_flight.clear()
            if self.upload_id is not None:
                upload_id, self.upload_id = self.upload_id, None
                self.client.abort_multipart_upload(
                    Bucket=self.ref.bucket, Key=self.ref.key, UploadId=upload_id
                )
