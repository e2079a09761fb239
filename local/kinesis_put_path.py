"""The emulator's Kinesis PutRecords: safe under concurrent calls, optionally throttled per
shard like real Kinesis. Patched into moto through local/moto_patch.py, as the linear-lookup
fix is (fingerprinted: if moto's method changed, nothing is patched and the status says why; a test
fails if the patch stops applying). Separate from local/kinesis_resharding.py, which patches
the shard map; this patches only the put path.

Why each piece exists:
- **One put at a time.** moto's Shard.put_record takes the shard's highest sequence number and
  adds one; two PutRecords calls handled at once by the threaded server can take the same
  number, and the second record overwrites the first in the shard's dict: a producer with four
  calls in flight lost 3 of 2,883 records on the emulator (never on Kinesis). Puts are
  serialised by one lock (reads are not affected).
- **Per-shard limit, opt-in** (`enable_shard_limits()`): no emulator throttles, so a producer
  that sends more than the shards take looks fine locally and fails in AWS. With the limit on,
  each shard takes 1,000 records and 1 MiB a second (a token bucket holding one second's worth);
  an entry past it fails inside the 200 with ProvisionedThroughputExceededException, as Kinesis
  answers.
- **One parse, a plain JSON answer.** moto parsed each request body three times and spent
  66 % of its server time in its response serialiser walking the 500 results (DESIGN.md); the
  answer is a dict of strings and ints, which json.dumps writes directly.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from adapters.aws.kinesis_limits import SHARD_BYTES_PER_SECOND, SHARD_RECORDS_PER_SECOND
from adapters.aws.kinesis_pacing import TokenBucket
from local.moto_patch import MotoPatch

log = logging.getLogger(__name__)

THROTTLED = "ProvisionedThroughputExceededException"

_put_lock = threading.Lock()
_limits_lock = threading.Lock()
_limits: dict[str, float] = {}  # empty: no limit
_buckets: dict[tuple[str, str], tuple[TokenBucket, TokenBucket]] = {}
throttled_entries = 0  # since the limit was last enabled
_limits_clock: Callable[[], float] = time.monotonic


def enable_shard_limits(
    records_per_second: float = SHARD_RECORDS_PER_SECOND,
    bytes_per_second: float = SHARD_BYTES_PER_SECOND,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Turns the per-shard limit on (process-wide) with fresh buckets, refilled by `clock`
    (a test that counts what one second's buckets let through stops it: on a loaded machine
    the calls take long enough to refill them, and the count would depend on the load)."""
    global throttled_entries, _limits_clock
    with _limits_lock:
        _limits.update(records=records_per_second, bytes=bytes_per_second)
        _buckets.clear()
        _limits_clock = clock
        throttled_entries = 0


def disable_shard_limits() -> None:
    global _limits_clock
    with _limits_lock:
        _limits.clear()
        _buckets.clear()
        _limits_clock = time.monotonic


def _admit(stream_name: str, shard_id: str, size: int, now: float) -> bool:
    """Whether the shard has room for one more entry of `size` bytes now (and takes it)."""
    global throttled_entries
    buckets = _buckets.get((stream_name, shard_id))
    if buckets is None:
        buckets = (TokenBucket(_limits["records"]), TokenBucket(_limits["bytes"]))
        _buckets[(stream_name, shard_id)] = buckets
    by_count, by_size = buckets
    by_count.refill(now)
    by_size.refill(now)
    if by_count.tokens < 1 or by_size.tokens < size:
        throttled_entries += 1
        return False
    by_count.take(1)
    by_size.take(size)
    return True


def response_put_records(self: Any) -> str:
    """PutRecords: one parse of the body, per-shard limits if on, moto's backend for the rest
    (its size checks included), a plain JSON answer."""
    from base64 import b64decode

    request = json.loads(self.body)
    backend = self.kinesis_backend
    entries: list[dict[str, Any]] = request.get("Records", [])
    stream_arn, stream_name = request.get("StreamARN"), request.get("StreamName")
    with _put_lock:
        admitted = list(range(len(entries)))
        if _limits:
            stream = backend.describe_stream(stream_arn=stream_arn, stream_name=stream_name)
            now = _limits_clock()
            with _limits_lock:
                admitted = []
                for index, entry in enumerate(entries):
                    key = entry.get("PartitionKey", "")
                    shard = stream.get_shard_for_key(key, entry.get("ExplicitHashKey"))
                    size = len(b64decode(entry.get("Data", ""))) + len(key.encode())
                    if _admit(stream.stream_name, shard.shard_id, size, now):
                        admitted.append(index)
        answer = backend.put_records(stream_arn, stream_name, [entries[i] for i in admitted])
    results: list[dict[str, Any]] = [
        {"ErrorCode": THROTTLED, "ErrorMessage": "Rate exceeded for shard"} for _ in entries
    ]
    for index, result in zip(admitted, answer["Records"], strict=True):
        results[index] = {
            "SequenceNumber": str(result["SequenceNumber"]),
            "ShardId": result["ShardId"],
        }
    failed = len(entries) - len(admitted)
    return json.dumps({"FailedRecordCount": failed, "Records": results})


PATCHES: dict[str, Callable[..., Any]] = {"KinesisResponse.put_records": response_put_records}

# "Class.method" -> fingerprint() of the method replaced, in moto 5.2.5.
ORIGINAL_FINGERPRINTS: dict[str, str] = {
    "KinesisResponse.put_records": "605c7b12968c94c8a781d6abc6c0c83a",
}


def _classes() -> dict[str, type]:
    from moto.kinesis.responses import KinesisResponse

    return {"KinesisResponse": KinesisResponse}


PUT_PATH_FIX = MotoPatch(
    "kinesis put-path",
    __name__,
    _classes,
    replacements=PATCHES,
    fingerprints=ORIGINAL_FINGERPRINTS,
)
