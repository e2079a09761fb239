"""One decoder of a Kinesis record for every runtime (Lambda, the poller, the KCL child).

Each runtime receives records in its own shape (a Lambda event entry, a boto3 GetRecords
record, a MultiLangDaemon JSON message); each shape is read here into `IncomingRecord`s, and
KPL-aggregated records are de-aggregated into their user records, numbered by
`sub_sequence_number` (0, 1, ...) under the Kinesis record's sequence number, as the KCL does.
Lake names and checkpoints already carry the sub-sequence number.

The KPL aggregation format (amazon-kinesis-producer's aggregation-format.md, also written by
the aws-kinesis-agg libraries): the 4 magic bytes `f3 89 9a c2`, a protobuf `AggregatedRecord`
    1: repeated string partition_key_table
    2: repeated string explicit_hash_key_table
    3: repeated Record records { 1: uint64 partition_key_index, 2: uint64
                                  explicit_hash_key_index, 3: bytes data, 4: repeated Tag tags }
and the 16-byte MD5 of the protobuf. A record with the magic whose checksum or protobuf is
wrong is handed on whole: its data still starts with the magic, and the workers dead-letter it
with its own reason (domain.records names it a corrupt KPL aggregate), never as "not UTF-8".

Why our own decoder instead of aws-kinesis-agg (PyPI): its last release is from 2022, it needs
protobuf (~2 MB, native code, for three fields) in every Lambda package, and it passes a record
whose checksum fails on as if it were a plain record, so a corrupt aggregate would be archived
or dead-lettered for the wrong reason. The wire format is small and frozen; the tests check this
decoder against records aws-kinesis-agg aggregates (tests/property/test_kinesis_records.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from domain.streaming import KPL_MAGIC, IncomingRecord

_log = logging.getLogger(__name__)

_DIGEST = 16


class CorruptAggregate(ValueError):
    """Data with the KPL magic that is not a well-formed aggregate."""


def _varint(buffer: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(buffer) or shift > 63:
            raise CorruptAggregate("truncated or overlong varint")
        byte = buffer[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def _fields(buffer: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) of a protobuf message: ints for varints, bytes for length-delimited;
    fixed-width fields are skipped (the format has none we read)."""
    fields: list[tuple[int, int | bytes]] = []
    at = 0
    while at < len(buffer):
        key, at = _varint(buffer, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(buffer, at)
            fields.append((number, value))
        elif wire == 2:
            size, at = _varint(buffer, at)
            if at + size > len(buffer):
                raise CorruptAggregate("a field runs past the end")
            fields.append((number, buffer[at : at + size]))
            at += size
        elif wire == 1:
            at += 8
        elif wire == 5:
            at += 4
        else:
            raise CorruptAggregate(f"wire type {wire} is not protobuf")
    if at != len(buffer):
        raise CorruptAggregate("a fixed-width field runs past the end")
    return fields


def deaggregate(data: bytes) -> list[tuple[str, bytes]]:
    """The user records (partition key, data) of a KPL aggregate; CorruptAggregate if it is
    not one (call it only on data that starts with KPL_MAGIC)."""
    body, digest = data[len(KPL_MAGIC) : -_DIGEST], data[-_DIGEST:]
    if len(data) < len(KPL_MAGIC) + _DIGEST or hashlib.md5(body).digest() != digest:  # noqa: S324
        raise CorruptAggregate("MD5 checksum does not match")
    keys: list[str] = []
    records: list[tuple[int, bytes]] = []
    for number, value in _fields(body):
        if number == 1 and isinstance(value, bytes):
            keys.append(value.decode("utf-8", "surrogateescape"))
        elif number == 3 and isinstance(value, bytes):
            key_index, payload = -1, None
            for inner, item in _fields(value):
                if inner == 1 and isinstance(item, int):
                    key_index = item
                elif inner == 3 and isinstance(item, bytes):
                    payload = item
            if payload is None:
                raise CorruptAggregate("a user record has no data")
            records.append((key_index, payload))
    if not records:
        raise CorruptAggregate("no user records")
    try:
        return [(keys[index], payload) for index, payload in records]
    except IndexError:
        raise CorruptAggregate("a partition key index is out of range") from None


def user_records(
    *,
    stream: str,
    shard_id: str,
    sequence_number: str,
    partition_key: str,
    data: bytes,
    arrived_at: datetime | None,
    sub_sequence_number: int = 0,
) -> list[IncomingRecord]:
    """One Kinesis record as the user records it holds (one, unless it is a KPL aggregate)."""
    if data.startswith(KPL_MAGIC):
        try:
            parts = deaggregate(data)
        except CorruptAggregate as corrupt:
            _log.warning(
                "%s/%s/%s: corrupt KPL aggregate (%s); handed on whole to be dead-lettered",
                stream,
                shard_id,
                sequence_number,
                corrupt,
            )
        else:
            return [
                IncomingRecord(
                    stream=stream,
                    shard_id=shard_id,
                    sequence_number=sequence_number,
                    partition_key=key,
                    data=payload,
                    arrived_at=arrived_at,
                    sub_sequence_number=sub,
                )
                for sub, (key, payload) in enumerate(parts)
            ]
    return [
        IncomingRecord(
            stream=stream,
            shard_id=shard_id,
            sequence_number=sequence_number,
            partition_key=partition_key,
            data=data,
            arrived_at=arrived_at,
            sub_sequence_number=sub_sequence_number,
        )
    ]


def base64_or_raw(text: Any) -> bytes:
    """Base64 data as bytes; data that is not base64 kept whole as its UTF-8 text, so the worker
    dead-letters it with its raw content instead of the runtime dropping it."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        return str(text).encode("utf-8", "surrogatepass")


# --- the three shapes -----------------------------------------------------------------------


def from_get_records(stream: str, shard_id: str, raw: Mapping[str, Any]) -> list[IncomingRecord]:
    """A record of a boto3 GetRecords answer (the poller)."""
    arrived = raw.get("ApproximateArrivalTimestamp")
    return user_records(
        stream=stream,
        shard_id=shard_id,
        sequence_number=str(raw["SequenceNumber"]),
        partition_key=str(raw["PartitionKey"]),
        data=bytes(raw["Data"]),
        arrived_at=arrived.astimezone(UTC) if arrived is not None else None,
    )


def from_lambda(stream: str, shard_id: str, kinesis: Mapping[str, Any]) -> list[IncomingRecord]:
    """The `kinesis` member of a Lambda event record (arrival in seconds, data base64)."""
    arrival = kinesis.get("approximateArrivalTimestamp")
    return user_records(
        stream=stream,
        shard_id=shard_id,
        sequence_number=str(kinesis["sequenceNumber"]),
        partition_key=str(kinesis.get("partitionKey", "")),
        data=base64_or_raw(kinesis["data"]),
        arrived_at=datetime.fromtimestamp(float(arrival), tz=UTC) if arrival is not None else None,
    )


def from_kcl(
    stream: str,
    shard_id: str,
    raw: Mapping[str, Any],
    arrivals: dict[int, datetime] | None = None,
) -> list[IncomingRecord]:
    """A MultiLangDaemon record (arrival in milliseconds, data base64). The KCL de-aggregates
    KPL records itself and sends subSequenceNumber; it is kept. `arrivals` caches arrival
    datetimes by millisecond (records of one batch mostly share a handful)."""
    arrived: datetime | None = None
    millis_value = raw.get("approximateArrivalTimestamp")
    if millis_value is not None:
        millis = int(millis_value)
        arrived = arrivals.get(millis) if arrivals is not None else None
        if arrived is None:
            arrived = datetime.fromtimestamp(millis / 1000.0, tz=UTC)
            if arrivals is not None:
                arrivals[millis] = arrived
    return user_records(
        stream=stream,
        shard_id=shard_id,
        sequence_number=str(raw["sequenceNumber"]),
        partition_key=str(raw["partitionKey"]),
        data=base64_or_raw(raw["data"]),
        arrived_at=arrived,
        sub_sequence_number=int(raw.get("subSequenceNumber") or 0),
    )
