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
  answer is a dict of strings and ints, which orjson writes directly.
- **The entries stored in one loop** (`put_entries`): moto's backend.put_records goes through
  Stream.put_record, Shard.put_record and Record.__init__ for each entry (two datetime
  conversions, the shard id formatted anew, a look-up of Lambda mappings): ~60 % of the
  emulator's CPU for a 500-entry call, and why it took ~8,500 records/s on one shard. The loop
  makes the same Records (same fields, same sequence numbers, the same shard for each key, the
  same errors for oversized or too many entries, the same CloudWatch metrics), in one pass;
  the one difference: the entries of one call share one arrival time (moto stamped each
  entry, microseconds apart; Kinesis stamps the call's arrival).
  Those moto methods are fingerprinted too: if any changed, nothing here is patched. A stream
  with Lambda event-source mappings still goes through moto's own path.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import threading
import time
from base64 import b64decode
from binascii import a2b_base64
from collections.abc import Callable
from typing import Any

import orjson

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
# False: entries go through moto's backend.put_records as before the one-loop store (the
# baseline of benchmarks/bench_emulator.py; `python -m local.emulator --moto-put-store`).
store_in_one_loop = True
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


_EPOCH = datetime.datetime(1970, 1, 1)


def _arrival() -> tuple[datetime.datetime, float]:
    """(created_at_datetime, created_at) as moto's Record.__init__ sets them, to the same float."""
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    delta = now - _EPOCH
    return now, (delta.days * 86400) + (delta.seconds + (delta.microseconds / 1e6))


def _router(stream: Any) -> Callable[[Any, Any], Any]:
    """stream.get_shard_for_key for one call's entries. With local.kinesis_resharding's routing
    in place (open shards, inclusive ranges, the md5 of the key), a partition key is hashed
    here against the open shards listed once, instead of through two imports and a hex string
    a record; anything else (an explicit hash key, a key moto refuses) asks the stream."""
    from local import kinesis_resharding

    ask = stream.get_shard_for_key
    if type(stream).__dict__.get("get_shard_for_key") is not kinesis_resharding.get_shard_for_key:
        return ask  # type: ignore[no-any-return]
    open_shards = [(s.starting_hash, s.ending_hash, s) for s in stream.shards.values() if s.is_open]

    def route(key: Any, explicit: Any) -> Any:
        if explicit or not isinstance(key, str) or len(key) > 256:
            return ask(key, explicit)
        hashed = int.from_bytes(hashlib.md5(key.encode("utf-8"), usedforsecurity=False).digest())
        for low, high, shard in open_shards:
            if low <= hashed <= high:
                return shard
        return None

    return route


def put_entries(backend: Any, stream: Any, entries: list[dict[str, Any]]) -> list[dict[str, str]]:
    """What moto's KinesisBackend.put_records stores and answers for `entries`, in one loop
    (module docstring). The caller holds _put_lock (sequence numbers are max + 1)."""
    from moto.kinesis.exceptions import (
        RecordSizeExceedsLimit,
        TooManyRecords,
        TotalRecordsSizeExceedsLimit,
    )
    from moto.kinesis.models import Record

    if stream.lambda_event_source_mappings:  # moto invokes the functions record by record
        answer = backend.put_records(stream.arn, stream.stream_name, entries)
        return [
            {"SequenceNumber": str(r["SequenceNumber"]), "ShardId": r["ShardId"]}
            for r in answer["Records"]
        ]
    if len(entries) > 500:
        raise TooManyRecords
    sizes = [len(a2b_base64(e.get("Data", ""))) + len(e.get("PartitionKey", "")) for e in entries]
    if sum(sizes) > 5242880:
        raise TotalRecordsSizeExceedsLimit
    over = next((index for index, size in enumerate(sizes) if size > 1048576), None)
    if over is not None:
        raise RecordSizeExceedsLimit(position=over + 1)
    route = _router(stream)
    # One arrival time a call, as Kinesis stamps ApproximateArrivalTimestamp when the call
    # arrives (moto read the clock twice a record: a fifth of the store's CPU).
    arrived = _arrival()
    created_at_datetime, created_at = arrived
    new = Record.__new__  # BaseModel's: tracks the instance, as moto's constructor does
    shard_ids: dict[int, str] = {}
    results: list[dict[str, str]] = []
    for entry in entries:
        key, explicit = entry.get("PartitionKey"), entry.get("ExplicitHashKey")
        shard = route(key, explicit)
        records = shard.records
        sequence = (next(reversed(records)) if records else 0) + 1
        # moto's Record(key, data, sequence, explicit), the call's arrival time its clock.
        record = new(Record)
        record.partition_key = key
        record.data = entry.get("Data")
        record.sequence_number = sequence
        record.explicit_hash_key = explicit
        record.created_at_datetime = created_at_datetime
        record.created_at = created_at
        records[sequence] = record
        shard_id = shard_ids.get(id(shard))
        if shard_id is None:
            shard_id = shard_ids[id(shard)] = shard.shard_id
        results.append({"SequenceNumber": str(sequence), "ShardId": shard_id})
    backend._send_stream_metrics(
        stream.stream_name, incoming_bytes=sum(sizes), incoming_records=len(entries)
    )
    return results


def response_put_records(self: Any) -> str:
    """PutRecords: one parse of the body, per-shard limits if on, the entries stored in one
    loop (moto's checks included), a plain JSON answer."""
    request = orjson.loads(self.body)
    backend = self.kinesis_backend
    entries: list[dict[str, Any]] = request.get("Records", [])
    stream_arn, stream_name = request.get("StreamARN"), request.get("StreamName")
    with _put_lock:
        stream = backend.describe_stream(stream_arn=stream_arn, stream_name=stream_name)
        admitted = list(range(len(entries)))
        if _limits:
            now = _limits_clock()
            with _limits_lock:
                admitted = []
                for index, entry in enumerate(entries):
                    key = entry.get("PartitionKey", "")
                    shard = stream.get_shard_for_key(key, entry.get("ExplicitHashKey"))
                    size = len(b64decode(entry.get("Data", ""))) + len(key.encode())
                    if _admit(stream.stream_name, shard.shard_id, size, now):
                        admitted.append(index)
        chosen = [entries[i] for i in admitted]
        if store_in_one_loop:
            stored = put_entries(backend, stream, chosen)
        else:
            answer = backend.put_records(stream_arn, stream_name, chosen)
            stored = [
                {"SequenceNumber": str(r["SequenceNumber"]), "ShardId": r["ShardId"]}
                for r in answer["Records"]
            ]
    results: list[dict[str, str]] = [
        {"ErrorCode": THROTTLED, "ErrorMessage": "Rate exceeded for shard"} for _ in entries
    ]
    for index, result in zip(admitted, stored, strict=True):
        results[index] = result
    failed = len(entries) - len(admitted)
    return orjson.dumps({"FailedRecordCount": failed, "Records": results}).decode()


PATCHES: dict[str, Callable[..., Any]] = {"KinesisResponse.put_records": response_put_records}

# moto's methods put_entries does the work of (left in place, fingerprinted so that a moto
# whose put path changed gets no fast loop built for the old one).
MIRRORED = (
    "KinesisBackend.put_records",
    "KinesisBackend._send_stream_metrics",
    "Stream.put_record",
    "Shard.put_record",
    "Record.__init__",
)


def _unchanged(original: Callable[..., Any]) -> Callable[..., Any]:
    return original


# "Class.method" -> fingerprint() of the method replaced or mirrored, in moto 5.2.5.
ORIGINAL_FINGERPRINTS: dict[str, str] = {
    "KinesisResponse.put_records": "605c7b12968c94c8a781d6abc6c0c83a",
    "KinesisBackend.put_records": "9137f103f183093b19df4ea4dcfc45a2",
    "KinesisBackend._send_stream_metrics": "e80cb3cc13a5dc310e239529420f3b33",
    "Stream.put_record": "cafda0597b231b646bdce503bbf4bae8",
    "Shard.put_record": "e2d15174261bc63e98ffce9cab9a1038",
    "Record.__init__": "35a5af81a443c0b42c2790aefbedbc7c",
}


def _classes() -> dict[str, type]:
    from moto.kinesis.models import KinesisBackend, Record, Shard, Stream
    from moto.kinesis.responses import KinesisResponse

    return {
        "KinesisResponse": KinesisResponse,
        "KinesisBackend": KinesisBackend,
        "Stream": Stream,
        "Shard": Shard,
        "Record": Record,
    }


PUT_PATH_FIX = MotoPatch(
    "kinesis put-path",
    __name__,
    _classes,
    replacements=PATCHES,
    wrappers={name: _unchanged for name in MIRRORED},
    fingerprints=ORIGINAL_FINGERPRINTS,
)
