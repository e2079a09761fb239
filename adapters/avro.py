"""Avro for the data lake (fastavro): the ten record types' schemas, conforming records to them,
and writing / reading Avro container files.

Schemas are the `.avsc` files in adapters/schemas/, one per record type, named by the type.
`AvroSchemas` is the domain's SchemaCheck: `conform` turns a decoded stream record into the
datum its schema archives, or says which field does not fit (never echoing values: they are
people's data). Rules of the archival shape (documented in docs/stream-workers.md):
- `receivedAt` is the stream's arrival time, given by the caller, not a record field;
- full schemas (registration, scoring, codeAssignment): named fields are type-checked strictly
  (a number where a string belongs is a reason, not a silent cast; ints are accepted for
  doubles); fields the schema does not name go to `extra` as JSON text; map-of-string fields
  (`__meta`, `date`) keep strings and hold other values as JSON text;
- envelope schemas (the other seven): `payload` is the whole record as JSON text.

`conform` also encodes the record (adapters/avro_binary.py: one pass, strict checks, no
fastavro union resolution) and returns an `EncodedRecord`; `encode` then writes the container
from those bytes. A record that cannot be encoded is a reason from `conform`, so it is
dead-lettered alone instead of failing its batch at write time.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, cast

import fastavro
from returns.result import Failure, Result, Success

from adapters.avro_binary import (
    MISSING,
    CompiledConform,
    EncodedRecord,
    FieldWriter,
    Unfit,
    compile_conform,
    container,
    default_bytes,
    encode_long,
    field_writer,
    json_text,
    sync_marker,
    timestamp_millis,
    unencodable_reason,
    union_branches,
)
from adapters.avro_container import lake_metadata
from domain.records import RECORD_TYPES

SCHEMA_DIR = Path(__file__).parent / "schemas"
# deflate: read by Athena/Glue and every Avro reader, in the stdlib (zlib), 5-10x smaller than
# null for this JSON-ish data; snappy would need another dependency.
DEFAULT_CODEC = "deflate"
RECEIVED_AT = "receivedAt"
EXTRA = "extra"
PAYLOAD = "payload"
_MISSING = MISSING


class SchemaError(ValueError):
    """A schema file is missing or not one this module can conform records to."""


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    kind: str  # string | double | long | boolean | strings (array) | loose_map | timestamp
    nullable: bool
    default: Any


@dataclass(frozen=True, slots=True)
class _Step:
    """How one field is checked and encoded, prepared once per schema."""

    name: str
    write: FieldWriter
    branches: tuple[bytes, bytes] | None  # a [null, T] union: the null and the T branch index
    default: Any  # MISSING when the field has none
    default_avro: bytes


@dataclass(frozen=True, slots=True)
class _Shape:
    record_type: str
    parsed: Any  # fastavro's parsed schema
    fields: tuple[_Field, ...]
    envelope: bool
    named: frozenset[str]  # computed once: conform looks every record key up in it
    steps: tuple[_Step, ...]
    sync: bytes
    conform: CompiledConform
    received_null: bytes  # receivedAt's bytes when the runtime gave no arrival time
    received_prefix: bytes  # its union branch before the millis


def load_schema(path: Path) -> dict[str, Any]:
    try:
        schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise SchemaError(f"no Avro schema file at {path}") from error
    except ValueError as error:
        raise SchemaError(f"Avro schema {path} is not JSON: {error}") from error
    return schema


class AvroSchemas:
    """The ten types' schemas: SchemaCheck for the workers, and the lake's Avro codec."""

    def __init__(
        self,
        schema_dir: Path = SCHEMA_DIR,
        codec: str = DEFAULT_CODEC,
        compression_level: int | None = None,
    ) -> None:
        self.codec = codec
        # None = zlib's default (6). See benchmarks/README.md for what level 1 saves and costs.
        self.compression_level = compression_level
        self._shapes: dict[str, _Shape] = {}
        for record_type in sorted(RECORD_TYPES):
            path = schema_dir / f"{record_type}.avsc"
            self._shapes[record_type] = _shape(record_type, load_schema(path), path)

    @property
    def record_types(self) -> frozenset[str]:
        return frozenset(self._shapes)

    def schema(self, record_type: str) -> Any:
        """fastavro's parsed schema for the type. Raises KeyError naming unknown types."""
        try:
            return self._shapes[record_type].parsed
        except KeyError:
            raise KeyError(f"no Avro schema for record type {record_type!r}") from None

    # --- SchemaCheck -------------------------------------------------------------------------

    def conform(
        self, record_type: str, record: Mapping[str, Any], received_at: datetime | None = None
    ) -> Result[Mapping[str, Any], str]:
        shape = self._shapes.get(record_type)
        if shape is None:
            return Failure(f"no schema for record type {record_type!r}")
        if shape.envelope:
            return _envelope(shape, record, received_at)
        return _conform_full(shape, record, received_at)

    # --- Avro container files ----------------------------------------------------------------

    def encode(self, record_type: str, records: Iterable[Mapping[str, Any]]) -> bytes:
        """Conformed records -> one Avro container file, in memory.

        Records that `conform` returned carry their Avro bytes and are not encoded again; any
        other mapping goes through fastavro.
        """
        records = records if isinstance(records, list | tuple) else list(records)
        # The records' dedupe keys in the header: the merge finds duplicates without reading
        # the data (adapters/avro_container.py).
        metadata = lake_metadata(records)
        if self.codec in ("null", "deflate") and all(
            type(record) is EncodedRecord and record.record_type == record_type
            for record in records
        ):
            shape = self._shape(record_type)
            return container(
                shape.parsed,
                self.codec,
                [record.avro for record in cast(Sequence[EncodedRecord], records)],
                sync=shape.sync,
                compression_level=self.compression_level,
                metadata=metadata,
            )
        buffer = io.BytesIO()
        self.write(buffer, record_type, records, metadata=metadata)
        return buffer.getvalue()

    def _shape(self, record_type: str) -> _Shape:
        try:
            return self._shapes[record_type]
        except KeyError:
            raise KeyError(f"no Avro schema for record type {record_type!r}") from None

    def write(
        self,
        out: IO[bytes],
        record_type: str,
        records: Iterable[Mapping[str, Any]],
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        """Conformed records -> an Avro container file written to `out` block by block."""
        fastavro.writer(
            out,
            self.schema(record_type),
            records,
            codec=self.codec,
            codec_compression_level=self.compression_level,
            metadata=dict(metadata or {}),
        )


def read_container(data: bytes | IO[bytes]) -> list[dict[str, Any]]:
    """All records of an Avro container file (for tests and small files)."""
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    return [dict(r) for r in fastavro.reader(stream) if isinstance(r, dict)]


def iter_container(stream: IO[bytes]) -> Iterator[dict[str, Any]]:
    for record in fastavro.reader(stream):
        if isinstance(record, dict):
            yield record


def container_schema(data: bytes) -> dict[str, Any]:
    """The writer schema stored in a container file's header."""
    schema: dict[str, Any] = fastavro.reader(io.BytesIO(data)).writer_schema  # type: ignore[assignment]
    return schema


# --- shapes ----------------------------------------------------------------------------------


def _shape(record_type: str, schema: dict[str, Any], path: Path) -> _Shape:
    try:
        parsed = fastavro.parse_schema(schema)
    except Exception as error:
        raise SchemaError(f"Avro schema {path} does not parse: {error}") from error
    fields = tuple(_field(record_type, f, path) for f in schema.get("fields", ()))
    names = {f.name for f in fields}
    if not {"type", "dedupeId", RECEIVED_AT} <= names:
        raise SchemaError(f"Avro schema {path} lacks type, dedupeId or receivedAt")
    steps = tuple(_step(schema, spec, f) for spec, f in zip(schema["fields"], fields, strict=True))
    received = next(step for step in steps if step.name == RECEIVED_AT)
    if received.branches is None:
        raise SchemaError(f"Avro schema {path}: receivedAt must be a [null, timestamp] union")
    compiled = compile_conform(
        record_type,
        [
            (step.name, spec.kind, step.branches, step.default, step.default_avro)
            for step, spec in zip(steps, fields, strict=True)
        ],
        named=frozenset(names),
        received_at_field=RECEIVED_AT,
        extra_field=None if PAYLOAD in names else EXTRA,
    )
    return _Shape(
        record_type,
        parsed,
        fields,
        envelope=PAYLOAD in names,
        named=frozenset(names),
        steps=steps,
        sync=sync_marker(schema),
        conform=compiled,
        received_null=received.branches[0],
        received_prefix=received.branches[1],
    )


def _step(schema: Mapping[str, Any], spec: Mapping[str, Any], field: _Field) -> _Step:
    has_default = field.default is not _MISSING
    return _Step(
        name=field.name,
        write=field_writer(field.name, field.kind),
        branches=union_branches(spec["type"]) if field.nullable else None,
        default=field.default,
        default_avro=default_bytes(schema, field.name, field.default) if has_default else b"",
    )


def _field(record_type: str, spec: Mapping[str, Any], path: Path) -> _Field:
    declared = spec["type"]
    nullable = isinstance(declared, list) and "null" in declared
    if isinstance(declared, list):
        others = [t for t in declared if t != "null"]
        if len(others) != 1:
            raise SchemaError(f"{path}: field {spec['name']!r}: only [null, T] unions supported")
        declared = others[0]
    kind = _kind(declared)
    if kind is None:
        raise SchemaError(f"{path}: field {spec['name']!r}: unsupported type {declared!r}")
    return _Field(spec["name"], kind, nullable, spec.get("default", _MISSING))


def _kind(declared: Any) -> str | None:
    if declared in ("string", "boolean"):
        return str(declared)
    if declared in ("double", "float"):
        return "double"
    if declared in ("long", "int"):
        return "long"
    if isinstance(declared, dict):
        if declared.get("logicalType") == "timestamp-millis":
            return "timestamp"
        if declared.get("type") == "array" and declared.get("items") == "string":
            return "strings"
        if declared.get("type") == "map" and declared.get("values") == "string":
            return "loose_map"
    return None


# --- conforming --------------------------------------------------------------------------------


def _envelope(
    shape: _Shape, record: Mapping[str, Any], received_at: datetime | None
) -> Result[Mapping[str, Any], str]:
    dedupe = record.get("dedupeId")
    if not isinstance(dedupe, str) or not dedupe:
        return Failure("missing required field 'dedupeId'")
    values = {
        "type": shape.record_type,
        "dedupeId": dedupe,
        RECEIVED_AT: received_at,
        PAYLOAD: _json_text(record),
    }
    return _conform_full(shape, values, received_at)


def _conform_full(
    shape: _Shape, record: Mapping[str, Any], received_at: datetime | None
) -> Result[Mapping[str, Any], str]:
    try:
        outcome = shape.conform(record, received_at, _received_avro(shape, received_at))
    except Unfit as unfit:
        return Failure(str(unfit))
    except UnicodeEncodeError:
        return Failure(unencodable_reason(record))
    if isinstance(outcome, str):
        return Failure(outcome)
    values, avro = outcome
    datum = EncodedRecord(values)
    datum.avro = avro
    datum.record_type = shape.record_type
    return Success(datum)


# receivedAt is the same for many records in a row (a batch's arrival times repeat to the
# millisecond): its encoding is kept for the last value seen instead of redone per record.
# One tuple, replaced whole: threads sharing it never see one value with another's bytes.
_last_received: list[tuple[datetime | None, bytes]] = [(None, b"")]


def _received_avro(shape: _Shape, received_at: datetime | None) -> bytes:
    if received_at is None:
        return shape.received_null
    seen, millis = _last_received[0]
    if seen is not received_at and seen != received_at:
        millis = encode_long(timestamp_millis(received_at, None))
        _last_received[0] = (received_at, millis)
    return shape.received_prefix + millis


_json_text = json_text
