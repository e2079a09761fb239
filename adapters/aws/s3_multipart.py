"""Complete-or-nothing writes to S3: MultipartWriter (below), what S3ObjectStore.open_writer
returns. S3 allows 10,000 parts: at 8 MiB that is ~78 GiB per object; pass a larger
`part_size` for more.
"""

from __future__ import annotations

import base64
import logging
import zlib
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime
from typing import Any

from adapters.aws.errors import AWS_ERRORS, unavailable
from domain.models import ObjectMismatch, ObjectRef
from domain.streaming import DependencyUnavailable

log = logging.getLogger(__name__)

MIB = 1024 * 1024
DEFAULT_PART_SIZE = 8 * MIB
MIN_PART_SIZE = 5 * MIB  # S3's floor for every part but the last
MAX_PARTS = 10_000
DEFAULT_UPLOADS_IN_FLIGHT = 2  # parts uploading at once while the next fills (MultipartWriter)
UPLOAD_THREAD_PREFIX = "s3-upload"


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

    Verified: each part carries the CRC-32 of its bytes, computed by botocore from the buffer
    sent (S3 refuses a part whose bytes arrive otherwise, and the complete call whose parts are
    not those), and once the object is complete a HEAD must report the size written and the
    checksum of those parts (S3's composite CRC-32: the CRC-32 of the parts' CRC-32s; a single
    PutObject's, the object's own), else ObjectMismatch, the object left for the caller to
    remove. botocore computed that CRC-32 of every part already (its default since 1.36), so
    the check costs one HEAD; it replaced the merge's GET of the whole merged file to count its
    records (docs/data-lake.md). The checksum is named (ChecksumAlgorithm), not given: given
    one, botocore no longer sends the body unsigned over HTTPS but SHA-256es every byte.

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
        # Uploaded parts' {"PartNumber", "ETag", "ChecksumCRC32"}, as they finish (in order once
        # finished).
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
                ChecksumAlgorithm="CRC32",
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
                # botocore computes it and S3 checks it (named, not given: a ChecksumCRC32 of
                # our own would have botocore SHA-256 every byte to sign the body over HTTPS).
                ChecksumAlgorithm="CRC32",
            )
        except DependencyUnavailable as failure:
            if self._failed is None:
                self._failed = failure  # the writer's thread raises it at its next write
            raise
        # S3 answers the part's CRC-32 as it received it; an emulator that does not, ours.
        checksum = str(answer.get("ChecksumCRC32") or _crc32(part))
        return {"PartNumber": number, "ETag": answer["ETag"], "ChecksumCRC32": checksum}

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
            body = bytes(self._buffer)
            answer = self._call(
                "PutObject",
                self.client.put_object,
                Body=body,
                ContentType=self.content_type,
                ChecksumAlgorithm="CRC32",
            )
            self._buffer.clear()
            self._verify(str(answer.get("ChecksumCRC32") or _crc32(body)), 1)
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
        composite = b"".join(base64.b64decode(p["ChecksumCRC32"]) for p in self.parts)
        self._verify(_crc32(composite), len(self.parts))

    def _verify(self, checksum: str, parts: int) -> None:
        """The complete object is the bytes written: its size and CRC-32 as S3 reports them
        (composite for a multipart object: S3 may add `-<parts>`)."""
        head = self._call("HeadObject", self.client.head_object, ChecksumMode="ENABLED")
        size = int(head.get("ContentLength", -1))
        stored, _, count = str(head.get("ChecksumCRC32") or "").partition("-")
        if size != self.written or stored != checksum or count not in ("", str(parts)):
            raise ObjectMismatch(
                f"{self.ref.uri} holds {size:,} bytes of CRC-32 {stored or 'none'}"
                f"{'-' + count if count else ''} after its upload of {self.written:,} bytes in "
                f"{parts} part(s) of CRC-32 {checksum}"
            )

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


def _crc32(data: bytes | bytearray) -> str:
    """S3's ChecksumCRC32: the big-endian CRC-32 in base64."""
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode("ascii")
