"""Avro for the data lake (fastavro): the ten record types' schemas, conforming records to them,
and writing / reading Avro container files.

Schemas are the `.avsc` files in adapters/schemas/, one per record type, named by the type.
`AvroSchemas` is the domain's SchemaCheck: `conform` turns a decoded stream record into the
datum its schema archives, or says which field does not fit. Rules of the archival shape
(documented in docs/stream-workers.md):
- `receivedAt` is the stream's arrival time, given by the caller, not a record field;
- full schemas (registration, scoring, codeAssignment): named fields are type-checked strictly
  (a number where a string belongs is a reason, not a silent cast; ints are accepted for
  doubles when the double holds them exactly); fields the schema does not name go to `extra`
  as JSON text; map-of-string fields (`__meta`, `date`) keep strings and hold other values as
  JSON text;
- envelope schemas (the other seven): `payload` is the whole record as JSON text.

The check is this module's own and not fastavro's validator, because a reason must never echo
the value (it may be an email): fastavro's says `Registration.email is <5>`. It also refuses a
string fastavro could not encode (a lone surrogate, which the stdlib JSON parser lets
through), so that record is dead-lettered alone instead of failing its batch at write time.
Then `encode` / `write` hand the checked datums to fastavro's writer, with a sync marker
derived from the schema: a replayed batch writes byte-identical objects (same ETag), where
fastavro's default marker is random per file.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import fastavro
from returns.result import Failure, Result, Success

from adapters.avro_container import lake_metadata
from adapters.json_codec import json_text
from domain.records import RECORD_TYPES, json_kind

SCHEMA_DIR = Path(__file__).parent / "schemas"
# deflate: read by Athena/Glue and every Avro reader, in the stdlib (zlib), 5-10x smaller than
# null for this JSON-ish data; snappy would need another dependency.
DEFAULT_CODEC = "deflate"
# Raw record bytes per container block before compression (fastavro's sync_interval). Readers
# hold one block at a time; 64 KiB keeps that small and lets deflate see enough repetition.
BLOCK_BYTES = 64 * 1024
RECEIVED_AT = "receivedAt"
EXTRA = "extra"
PAYLOAD = "payload"
_MISSING: Any = object()
# The largest integer a double holds exactly: beyond it `float(n)` silently rounds.
_DOUBLE_EXACT = 2**53
_LONG_RANGE = range(-(2**63), 2**63)


class SchemaError(ValueError):
    """A schema file is missing or not one this module can conform records to."""


class Unfit(Exception):
    """A value that does not fit its field; the message is the reason (names the field)."""


# A field check: the value as given -> the value to archive; raises Unfit.
Check = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    check: Check
    nullable: bool
    default: Any  # _MISSING when the field has none


@dataclass(frozen=True, slots=True)
class _Shape:
    record_type: str
    parsed: Any  # fastavro's parsed schema
    fields: tuple[_Field, ...]  # checked fields: all but receivedAt and extra
    envelope: bool
    has_extra: bool
    kept_out_of_extra: frozenset[str]  # names that never go to `extra`
    sync: bytes


def load_schema(path: Path) -> dict[str, Any]:
    try:
        schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise SchemaError(f"no Avro schema file at {path}") from error
    except ValueError as error:
        raise SchemaError(f"Avro schema {path} is not JSON: {error}") from error
    return schema


def sync_marker(schema: Mapping[str, Any]) -> bytes:
    """A container's 16-byte sync marker derived from its (unparsed) schema: deterministic, so a
    replayed batch writes byte-identical objects, unlike fastavro's random marker."""
    text = json.dumps(schema, sort_keys=True).encode("utf-8")
    return hashlib.blake2b(text, digest_size=16, person=b"avro-sync").digest()


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
        return self._shape(record_type).parsed

    def _shape(self, record_type: str) -> _Shape:
        try:
            return self._shapes[record_type]
        except KeyError:
            raise KeyError(f"no Avro schema for record type {record_type!r}") from None

    # --- SchemaCheck -------------------------------------------------------------------------

    def conform(
        self, record_type: str, record: Mapping[str, Any], received_at: datetime | None = None
    ) -> Result[Mapping[str, Any], str]:
        shape = self._shapes.get(record_type)
        if shape is None:
            return Failure(f"no schema for record type {record_type!r}")
        try:
            if shape.envelope:
                return Success(_envelope(shape, record, received_at))
            return Success(_datum(shape, record, received_at))
        except Unfit as unfit:
            return Failure(str(unfit))

    # --- Avro container files ----------------------------------------------------------------

    def encode(self, record_type: str, records: Iterable[Mapping[str, Any]]) -> bytes:
        """Conformed records -> one Avro container file, in memory, with the records' dedupe
        keys in its header (the merge finds duplicates without reading the data:
        adapters/avro_container.py)."""
        records = records if isinstance(records, list | tuple) else list(records)
        buffer = io.BytesIO()
        self.write(buffer, record_type, records, metadata=lake_metadata(records))
        return buffer.getvalue()

    def write(
        self,
        out: IO[bytes],
        record_type: str,
        records: Iterable[Mapping[str, Any]],
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        """Conformed records -> an Avro container file written to `out` block by block, with
        the type's deterministic sync marker; `metadata` goes into the header beside the
        schema and codec."""
        shape = self._shape(record_type)
        fastavro.writer(
            out,
            shape.parsed,
            records,
            codec=self.codec,
            codec_compression_level=self.compression_level,
            sync_interval=BLOCK_BYTES,
            sync_marker=shape.sync,
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


# --- conforming --------------------------------------------------------------------------------


def _envelope(
    shape: _Shape, record: Mapping[str, Any], received_at: datetime | None
) -> dict[str, Any]:
    dedupe = record.get("dedupeId")
    if not isinstance(dedupe, str) or not dedupe:
        raise Unfit("missing required field 'dedupeId'")
    return {
        "type": shape.record_type,
        "dedupeId": _checked_text("dedupeId", dedupe),
        RECEIVED_AT: received_at,
        PAYLOAD: _json_field(PAYLOAD, record),
    }


def _datum(
    shape: _Shape, record: Mapping[str, Any], received_at: datetime | None
) -> dict[str, Any]:
    datum: dict[str, Any] = {RECEIVED_AT: received_at}
    get = record.get
    for spec in shape.fields:
        value = get(spec.name)
        if value is None:
            if spec.nullable:
                datum[spec.name] = None
            elif spec.default is not _MISSING:
                datum[spec.name] = spec.default
            else:
                raise Unfit(f"missing required field {spec.name!r}")
        else:
            datum[spec.name] = spec.check(value)
    if shape.has_extra:
        # Most records hold only named fields: the key-set difference (in C) says so without a
        # Python loop; when some are left, they are taken in the record's order (a set's order
        # differs between processes, and so would the bytes).
        left = record.keys() - shape.kept_out_of_extra
        datum[EXTRA] = (
            {
                _checked_text(key, key): _json_field(key, item)
                for key, item in record.items()
                if key in left
            }
            if left
            else {}
        )
    return datum


def _surrogate(name: str) -> Unfit:
    return Unfit(f"field {name[:64]!r}: a string that is not valid Unicode (lone surrogate)")


def _checked_text(name: str, value: str) -> str:
    """The string, if UTF-8 can encode it (ASCII always can: the common case costs one C call)."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _surrogate(name) from None
    return value


def _json_field(name: str, value: Any) -> str:
    return _checked_text(name, json_text(value))


def _string(name: str) -> Check:
    def check(value: Any) -> Any:
        if type(value) is not str and not isinstance(value, str):
            raise Unfit(f"field {name!r}: expected a string, got {json_kind(value)}")
        return _checked_text(name, value)

    return check


def _double(name: str) -> Check:
    def check(value: Any) -> Any:
        if type(value) is float:
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Unfit(f"field {name!r}: expected a number, got {json_kind(value)}")
        if isinstance(value, int) and not -_DOUBLE_EXACT <= value <= _DOUBLE_EXACT:
            # float() would round it without a word (issue 6: silent change of a value).
            raise Unfit(f"field {name!r}: an integer too large for a double to hold exactly")
        return float(value)

    return check


def _long(name: str) -> Check:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or value not in _LONG_RANGE:
            raise Unfit(f"field {name!r}: expected an integer, got {json_kind(value)}")
        return value

    return check


def _boolean(name: str) -> Check:
    def check(value: Any) -> Any:
        if value is True or value is False:
            return value
        raise Unfit(f"field {name!r}: expected true or false, got {json_kind(value)}")

    return check


def _strings(name: str) -> Check:
    def check(value: Any) -> Any:
        if not isinstance(value, list):
            raise Unfit(f"field {name!r}: expected an array of strings, got {json_kind(value)}")
        for item in value:
            if not isinstance(item, str):
                raise Unfit(
                    f"field {name!r}: expected an array of strings, an item is not a string"
                )
            _checked_text(name, item)
        return value

    return check


def _loose_map(name: str) -> Check:
    def check(value: Any) -> Any:
        if not isinstance(value, dict):
            raise Unfit(f"field {name!r}: expected an object, got {json_kind(value)}")
        return {
            _checked_text(name, str(key)): _checked_text(name, item)
            if isinstance(item, str)
            else _json_field(name, item)
            for key, item in value.items()
        }

    return check


def _timestamp(name: str) -> Check:
    def check(value: Any) -> Any:
        if isinstance(value, datetime):
            return value
        raise Unfit(f"field {name!r}: expected a timestamp, got {json_kind(value)}")

    return check


_CHECKS: dict[str, Callable[[str], Check]] = {
    "string": _string,
    "double": _double,
    "long": _long,
    "boolean": _boolean,
    "strings": _strings,
    "loose_map": _loose_map,
    "timestamp": _timestamp,
}


# --- shapes ----------------------------------------------------------------------------------


def _shape(record_type: str, schema: dict[str, Any], path: Path) -> _Shape:
    try:
        parsed = _in_sorted_order(fastavro.parse_schema(schema))
    except Exception as error:
        raise SchemaError(f"Avro schema {path} does not parse: {error}") from error
    specs = schema.get("fields", ())
    names = {spec["name"] for spec in specs}
    if not {"type", "dedupeId", RECEIVED_AT} <= names:
        raise SchemaError(f"Avro schema {path} lacks type, dedupeId or receivedAt")
    received = next(spec for spec in specs if spec["name"] == RECEIVED_AT)
    if not isinstance(received["type"], list) or "null" not in received["type"]:
        raise SchemaError(f"Avro schema {path}: receivedAt must be a [null, timestamp] union")
    fields = tuple(_field(spec, path) for spec in specs if spec["name"] not in (RECEIVED_AT, EXTRA))
    return _Shape(
        record_type,
        parsed,
        fields,
        envelope=PAYLOAD in names,
        has_extra=EXTRA in names,
        # A record's own `receivedAt` is not the arrival time: it is kept, in `extra`.
        kept_out_of_extra=frozenset(names - {RECEIVED_AT}),
        sync=sync_marker(schema),
    )


def _in_sorted_order(value: Any) -> Any:
    """The parsed schema with every object's keys sorted.

    fastavro writes the container header's `avro.schema` as json.dumps of the schema it is
    given, and its parsed schema's key order follows set iteration, which changes with the
    process's hash seed: the same batch written by a restarted consumer had other header bytes
    (another ETag) though the records were the same. Sorted keys make the header a function of
    the schema alone (tests/unit/test_contract_values.py writes it under two hash seeds)."""
    if isinstance(value, dict):
        return {key: _in_sorted_order(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_in_sorted_order(item) for item in value]
    return value


def _field(spec: Mapping[str, Any], path: Path) -> _Field:
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
    return _Field(
        spec["name"], _CHECKS[kind](spec["name"]), nullable, spec.get("default", _MISSING)
    )


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
