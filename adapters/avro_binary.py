"""Avro binary encoding of the lake's archival records, in one pass with the schema check.

Why not fastavro per record: its writer resolves every `["null", T]` union by trying the branches,
about 0.8 µs per nullable field, so a registration record (18 fields) cost ~15 µs to encode, more
than everything else the worker does. The lake's schemas use only a handful of shapes (string,
double, long, boolean, array of strings, map of strings, timestamp-millis, each optionally in a
`[null, T]` union), so each field here is one closure that checks the value strictly (the rules
of adapters/avro.py: a number where a string belongs is a reason, not a cast) and appends its
Avro bytes. The bytes are the Avro 1.11 binary encoding; tests/property/test_avro_binary.py
checks them against fastavro's own encoder and reads containers back with fastavro.reader.

A value that passes the check but cannot be encoded (a string with a lone surrogate, which the
stdlib JSON parser lets through) is a reason too, so that record is dead-lettered instead of
failing the whole batch at write time.

The container file (`container`) is written by hand from the pre-encoded records: fastavro's
header (schema, codec) and the Avro block layout: count, size, data (raw deflate or null), sync.
The sync marker is derived from the schema, so a replayed batch produces the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import fastavro
import orjson
from fastavro.write import LOGICAL_WRITERS

from domain.records import json_kind

MISSING: Any = object()

# Raw record bytes per container block before compression. Readers hold one block at a time;
# 64 KiB keeps that small and lets deflate see enough repetition (field names are not in the
# data, but emails, ids and dates repeat).
BLOCK_BYTES = 64 * 1024

# fastavro's own datetime -> millis (naive datetimes as local time, as fastavro has it).
timestamp_millis: Callable[[Any, Any], int] = LOGICAL_WRITERS["long-timestamp-millis"]
_pack_double = struct.Struct("<d").pack
_TRUE, _FALSE = b"\x01", b"\x00"
_EMPTY_BLOCKS = b"\x00"  # an array or map with no items: a zero count


def encode_long(value: int) -> bytes:
    """Zig-zag varint (Avro int and long)."""
    n = (value << 1) ^ (value >> 63)
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


# Lengths and small counts are looked up: the common case is a string shorter than 4 KiB.
_LONGS = tuple(encode_long(n) for n in range(4096))


def _long(value: int) -> bytes:
    return _LONGS[value] if 0 <= value < 4096 else encode_long(value)


def _text(value: str) -> bytes:
    data = value.encode("utf-8")
    size = len(data)
    return (_LONGS[size] if size < 4096 else encode_long(size)) + data


def json_text(value: Any) -> str:
    """A value as compact JSON text (the `extra`, map and envelope payload fields)."""
    try:
        return orjson.dumps(value).decode("utf-8")
    except TypeError:
        # orjson refuses integers beyond 64 bits; the stdlib keeps them exactly.
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


EXPECTED = {
    "string": "a string",
    "double": "a number",
    "long": "an integer",
    "boolean": "true or false",
    "strings": "an array of strings",
    "loose_map": "an object",
    "timestamp": "a timestamp",
}


class Unfit(Exception):
    """A value that does not fit its field; the message is the reason (names the field)."""


# A field writer: (value, parts) -> the value to archive; appends the value's Avro bytes.
FieldWriter = Callable[[Any, list[bytes]], Any]


def _string(name: str) -> FieldWriter:
    def write(value: Any, parts: list[bytes]) -> Any:
        if not isinstance(value, str):
            raise Unfit(f"field {name!r}: expected a string, got {json_kind(value)}")
        parts.append(_text(value))
        return value

    return write


def _double(name: str) -> FieldWriter:
    def write(value: Any, parts: list[bytes]) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Unfit(f"field {name!r}: expected a number, got {json_kind(value)}")
        number = float(value)
        parts.append(_pack_double(number))
        return number

    return write


def _long_field(name: str) -> FieldWriter:
    def write(value: Any, parts: list[bytes]) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
            raise Unfit(f"field {name!r}: expected an integer, got {json_kind(value)}")
        parts.append(encode_long(value))
        return value

    return write


def _boolean(name: str) -> FieldWriter:
    def write(value: Any, parts: list[bytes]) -> Any:
        if value is True:
            parts.append(_TRUE)
        elif value is False:
            parts.append(_FALSE)
        else:
            raise Unfit(f"field {name!r}: expected true or false, got {json_kind(value)}")
        return value

    return write


def _strings(name: str) -> FieldWriter:
    def write(value: Any, parts: list[bytes]) -> Any:
        if not isinstance(value, list):
            raise Unfit(f"field {name!r}: expected an array of strings, got {json_kind(value)}")
        if not value:
            parts.append(_EMPTY_BLOCKS)
            return value
        if not all(isinstance(item, str) for item in value):
            raise Unfit(f"field {name!r}: expected an array of strings, an item is not a string")
        parts.append(_long(len(value)))
        parts.extend(_text(item) for item in value)
        parts.append(_EMPTY_BLOCKS)
        return value

    return write


def write_string_map(mapping: Mapping[str, str], parts: list[bytes]) -> None:
    if mapping:
        parts.append(_long(len(mapping)))
        for key, item in mapping.items():
            parts.append(_text(key))
            parts.append(_text(item))
    parts.append(_EMPTY_BLOCKS)


def _loose_map(name: str) -> FieldWriter:
    def write(value: Any, parts: list[bytes]) -> Any:
        if not isinstance(value, dict):
            raise Unfit(f"field {name!r}: expected an object, got {json_kind(value)}")
        kept = {str(k): v if isinstance(v, str) else json_text(v) for k, v in value.items()}
        write_string_map(kept, parts)
        return kept

    return write


def _timestamp(name: str) -> FieldWriter:
    def write(value: Any, parts: list[bytes]) -> Any:
        if isinstance(value, datetime):
            parts.append(encode_long(timestamp_millis(value, None)))
            return value
        raise Unfit(f"field {name!r}: expected a timestamp, got {json_kind(value)}")

    return write


_WRITERS: dict[str, Callable[[str], FieldWriter]] = {
    "string": _string,
    "double": _double,
    "long": _long_field,
    "boolean": _boolean,
    "strings": _strings,
    "loose_map": _loose_map,
    "timestamp": _timestamp,
}


def field_writer(name: str, kind: str) -> FieldWriter:
    return _WRITERS[kind](name)


def union_branches(declared: Any) -> tuple[bytes, bytes] | None:
    """For a `[null, T]` / `[T, null]` union: (bytes of the null branch, bytes of the T branch)."""
    if not isinstance(declared, list):
        return None
    null_index = declared.index("null")
    return encode_long(null_index), encode_long(1 - null_index)


def default_bytes(schema: Mapping[str, Any], field_name: str, default: Any) -> bytes:
    """The Avro bytes of a field's default value, as fastavro encodes it (computed once)."""
    one_field = {
        "type": "record",
        "name": "DefaultOf",
        "fields": [f for f in schema["fields"] if f["name"] == field_name],
    }
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(one_field), {field_name: default})
    return buffer.getvalue()


def unencodable_reason(record: Mapping[str, Any]) -> str:
    """Why a record that passed the checks failed to encode: names the first field at fault."""
    for key, value in record.items():
        try:
            orjson.dumps(value)
            str(key).encode("utf-8")
        except (TypeError, UnicodeEncodeError):
            return f"field {str(key)[:64]!r}: a string that is not valid Unicode (lone surrogate)"
    return "a string that is not valid Unicode (lone surrogate)"


class EncodedRecord(dict[str, Any]):
    """A conformed archival record that also holds its Avro binary encoding.

    The lake writes `avro` into the container file instead of encoding the record again. It is a
    snapshot: the lake's records are immutable (LakeBatch holds tuples), so it never goes stale.
    """

    __slots__ = ("avro", "record_type")

    avro: bytes
    record_type: str


def container(
    schema: Any,
    codec: str,
    encoded: Iterable[bytes],
    *,
    sync: bytes,
    compression_level: int | None = None,
    metadata: Mapping[str, str] | None = None,
) -> bytes:
    """An Avro object container file from pre-encoded records (codec `null` or `deflate`).

    `sync` is the 16-byte marker (`sync_marker(schema)`: the same bytes for the same records);
    `metadata` goes into the header beside the schema and codec.
    """
    out = io.BytesIO()
    # The header exactly as fastavro writes it (magic, metadata with the schema and codec, sync).
    fastavro.writer(out, schema, [], codec=codec, sync_marker=sync, metadata=dict(metadata or {}))
    block: list[bytes] = []
    size = 0
    for record in encoded:
        block.append(record)
        size += len(record)
        if size >= BLOCK_BYTES:
            _write_block(out, block, codec, sync, compression_level)
            block, size = [], 0
    if block:
        _write_block(out, block, codec, sync, compression_level)
    return out.getvalue()


def _write_block(
    out: io.BytesIO,
    records: Sequence[bytes],
    codec: str,
    sync: bytes,
    compression_level: int | None,
) -> None:
    data = b"".join(records)
    if codec == "deflate":
        # Avro's deflate is raw DEFLATE (RFC 1951): no zlib header, hence wbits -15.
        level = -1 if compression_level is None else compression_level
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
        data = compressor.compress(data) + compressor.flush()
    elif codec != "null":
        raise ValueError(f"codec {codec!r} is not written by hand; use null or deflate")
    out.write(encode_long(len(records)))
    out.write(encode_long(len(data)))
    out.write(data)
    out.write(sync)


def sync_marker(schema: Mapping[str, Any]) -> bytes:
    """A container's 16-byte sync marker derived from its (unparsed) schema: deterministic, so a
    replayed batch writes byte-identical objects (same ETag), unlike fastavro's random marker."""
    text = json.dumps(schema, sort_keys=True).encode("utf-8")
    return hashlib.blake2b(text, digest_size=16, person=b"avro-sync").digest()


# --- one generated function per schema -------------------------------------------------------
#
# The per-field closures above cost a Python call, attribute look-ups and a list append each;
# at 18 fields that is most of a record's time. `compile_conform` writes one straight-line
# function per schema instead (field names are inserted with repr(), never as code), with the
# same checks and reasons as the closures, which stay as its fallback for unusual values.

# (record, receivedAt, receivedAt's Avro bytes) -> (datum, Avro bytes) | reason; raises Unfit
# or UnicodeEncodeError for what it cannot take.
CompiledConform = Callable[[Mapping[str, Any], Any, bytes], "tuple[dict[str, Any], bytes] | str"]


def compile_conform(
    record_type: str,
    steps: Sequence[tuple[str, str, tuple[bytes, bytes] | None, Any, bytes]],
    *,
    named: frozenset[str],
    received_at_field: str,
    extra_field: str | None,
) -> CompiledConform:
    """(record, receivedAt, its Avro bytes) -> (datum, Avro bytes), or the reason it does not fit
    (a missing field); raises Unfit (a value of the wrong type, the reason as its message) or
    UnicodeEncodeError (a lone surrogate).

    `steps`: per schema field in order, (name, kind, union branch bytes or None, default value
    or MISSING, default's Avro bytes).
    """
    env: dict[str, Any] = {
        "MISSING": MISSING,
        "LONGS": _LONGS,
        "encode_long": encode_long,
        "pack_double": _pack_double,
        "json_text": json_text,
        "json_kind": json_kind,
        "write_string_map": write_string_map,
        "Unfit": Unfit,
        "NAMED": named,
        # Length tables with the union branch in front: one look-up and one concatenation
        # give a nullable string's branch, length and bytes.
        "T0": _LONGS,
        "T1": tuple(b"\x02" + size for size in _LONGS),
    }
    lines = [
        "def conform(record, received, received_avro):",
        "    get = record.get",
        "    p = []",
        "    ap = p.append",
    ]
    out_names: list[str] = []
    for index, (name, kind, branches, default, default_avro) in enumerate(steps):
        var = f"f{index}"
        out_names.append(f"{name!r}: {var}")
        quoted = repr(name)
        null_bytes, value_prefix = (branches[0], branches[1]) if branches else (None, b"")
        env[f"W{index}"] = field_writer(name, kind)
        env[f"D{index}"] = default
        if name == received_at_field:
            lines.append("    ap(received_avro)")
            lines.append(f"    {var} = received")
            continue
        if name == extra_field:
            # Most records hold only named fields: the key-set difference (in C) says so
            # without a Python loop; when some are left, they are taken in the record's order
            # (a set's order would differ between processes, and so would the bytes).
            lines += [
                "    left = record.keys() - NAMED_NO_RECEIVED",
                "    if left:",
                f"        {var} = {{k: json_text(v) for k, v in record.items() if k in left}}",
                "    else:",
                f"        {var} = {{}}",
            ]
            env["NAMED_NO_RECEIVED"] = named - {received_at_field}
            if branches:
                lines.append(f"    ap({value_prefix!r})")
            lines.append(f"    write_string_map({var}, p)")
            continue
        lines.append(f"    v = get({quoted})")
        lines.append("    if v is None:")
        if branches:
            lines += [f"        {var} = None", f"        ap({null_bytes!r})"]
        elif default is not MISSING:
            lines += [f"        {var} = D{index}", f"        ap({default_avro!r})"]
        else:
            lines.append(f"        return {f'missing required field {name!r}'!r}")
        lines.append("    else:")
        if kind == "string" and value_prefix in (b"", b"\x02"):
            table = "T1" if value_prefix else "T0"
            lines += [
                "        if type(v) is str:",
                "            b = v.encode()",
                "            n = len(b)",
                f"            ap({table}[n] + b if n < 4096"
                f" else {value_prefix!r} + encode_long(n) + b)",
                f"            {var} = v",
                "        else:",
            ]
            if value_prefix:
                lines.append(f"            ap({value_prefix!r})")
            lines.append(f"            {var} = W{index}(v, p)")
            continue
        if value_prefix:
            lines.append(f"        ap({value_prefix!r})")
        if kind == "string":
            lines += [
                "        if type(v) is str:",
                "            b = v.encode()",
                "            n = len(b)",
                "            ap(LONGS[n] if n < 4096 else encode_long(n))",
                "            ap(b)",
                f"            {var} = v",
                "        else:",
                f"            {var} = W{index}(v, p)",
            ]
        elif kind == "double":
            lines += [
                "        if type(v) is float:",
                "            ap(pack_double(v))",
                f"            {var} = v",
                "        else:",
                f"            {var} = W{index}(v, p)",
            ]
        elif kind == "boolean":
            lines += [
                "        if v is True:",
                "            ap(b'\\x01')",
                "        elif v is False:",
                "            ap(b'\\x00')",
                "        else:",
                f"            W{index}(v, p)",
                f"        {var} = v",
            ]
        elif kind == "strings":
            # Written item by item; anything but a plain str item rewinds to `mark` and lets
            # the closure decide (its reason, or str subclasses).
            lines += [
                "        mark = len(p)",
                "        if type(v) is list:",
                "            n = len(v)",
                "            if n:",
                "                ap(LONGS[n] if n < 4096 else encode_long(n))",
                "                for it in v:",
                "                    if type(it) is not str:",
                "                        break",
                "                    b = it.encode()",
                "                    m = len(b)",
                "                    ap(T0[m] + b if m < 4096 else encode_long(m) + b)",
                "                else:",
                "                    ap(b'\\x00')",
                f"                    {var} = v",
                "                    n = -1",
                "                if n != -1:",
                "                    del p[mark:]",
                f"                    {var} = W{index}(v, p)",
                "            else:",
                "                ap(b'\\x00')",
                f"                {var} = v",
                "        else:",
                f"            {var} = W{index}(v, p)",
            ]
        elif kind == "loose_map":
            lines += [
                "        mark = len(p)",
                "        if type(v) is dict:",
                f"            {var} = {{}}",
                "            n = len(v)",
                "            if n:",
                "                ap(LONGS[n] if n < 4096 else encode_long(n))",
                "            for k, x in v.items():",
                "                if type(k) is not str:",
                "                    break",
                "                if not isinstance(x, str):",
                "                    x = json_text(x)",
                f"                {var}[k] = x",
                "                b = k.encode()",
                "                m = len(b)",
                "                ap(T0[m] + b if m < 4096 else encode_long(m) + b)",
                "                b = x.encode()",
                "                m = len(b)",
                "                ap(T0[m] + b if m < 4096 else encode_long(m) + b)",
                "            else:",
                "                ap(b'\\x00')",
                "                n = -1",
                "            if n != -1:",
                "                del p[mark:]",
                f"                {var} = W{index}(v, p)",
                "        else:",
                f"            {var} = W{index}(v, p)",
            ]
        else:  # long, timestamps: the closure (rare here)
            lines.append(f"        {var} = W{index}(v, p)")
    lines.append("    return {" + ", ".join(out_names) + "}, b''.join(p)")
    code = compile("\n".join(lines), f"<avro conform {record_type}>", "exec")
    exec(code, env)  # noqa: S102 - our own generated source, names inserted with repr()
    conform: CompiledConform = env["conform"]
    return conform
