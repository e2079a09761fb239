"""The lake's `scoring` objects to wave fans with the compiled kernel (kernel/src/avro_fans.rs).

fastavro decodes every field of every record into a dict (~17-22 µs a record,
benchmarks/README.md "Wave prep"); a wave needs twelve fields. The kernel decodes a block's
records under the object's writer schema, reads those twelve and skips the others by their
type, and applies `fan_from_scoring` itself (adapters/aws/lake_fans.py: the reference; a
differential property test, tests/property/test_avro_fans.py, holds the two to the same fans
and Failures). The container's framing and deflate stay in Python (adapters/avro_container.py,
zlib), block by block from the store's chunks: never a whole object in memory.

`scoring_plan(schema)` compiles a writer schema for the kernel, or gives None for one it does
not read exactly as fastavro would (not a record, a recursive or unknown named type, a needed
field with a logical type or an enum, which fastavro turns into objects or text): such an
object is read by fastavro, so any schema the lake may hold is read.
"""

from __future__ import annotations

import importlib
import json
import zlib
from collections.abc import Iterator, Mapping
from typing import Any

from returns.result import Failure, Result, Success

from adapters.avro_container import (
    ChunkReader,
    Header,
    NotAnAvroFile,
    decompress,
    iter_blocks,
    read_header,
)
from domain.wave_prep.fans import EligibleFan

# The kernel's slots, in its order (kernel/src/avro_fans.rs).
SLOTS = (
    "campaignId",
    "globalUserId",
    "band_score",
    "score",
    "marketId",
    "memberId",
    "firstName",
    "lastName",
    "email",
    "phone",
    "locale",
    "verdict",
)
_SLOT = {name: i for i, name in enumerate(SLOTS)}
_PRIMITIVES = {
    "null": 0,
    "boolean": 1,
    "int": 2,
    "long": 3,
    "float": 4,
    "double": 5,
    "bytes": 6,
    "string": 7,
}
# The complex types' codes (kernel/src/avro_fans.rs, `ty_of`), after the primitives' 0-7.
_FIXED, _ENUM, _ARRAY, _MAP, _UNION, _RECORD = 8, 9, 10, 11, 12, 13
_NAMED = ("record", "enum", "fixed")
Plan = list[tuple[int, Any]]
_CODECS = ("null", "deflate")  # adapters/avro_container.decompress


def load_decoder() -> Any | None:
    """The compiled kernel when it is built with this decoder, else None (fastavro reads)."""
    try:
        module = importlib.import_module("scoring_kernel")
    except ImportError:
        return None
    return module if hasattr(module, "ScoringPlan") else None


class LakeObjectDamaged(ValueError):
    """An Avro object of the lake that cannot be read; the message names it and where."""


class _Unsupported(Exception):
    """A schema the kernel does not read exactly as fastavro: fastavro reads that object."""


def scoring_plan(schema: Any) -> Plan | None:
    """The kernel's plan for a writer schema (the header's, parsed JSON), or None."""
    try:
        if not isinstance(schema, Mapping) or schema.get("type") != "record":
            return None
        names: dict[str, Any] = {}
        full = _define(schema, "", names)  # left undefined: a field naming it is recursion
        namespace = full.rpartition(".")[0]
        plan: Plan = []
        seen: set[str] = set()
        for field in schema["fields"]:
            name = field["name"]
            if name in seen:
                return None
            seen.add(name)
            compiled = _compile(field["type"], names, namespace)
            slot = _SLOT.get(name, -1)
            if slot >= 0 and not _plain(field["type"], compiled):
                return None
            plan.append((slot, compiled))
        return plan
    except (_Unsupported, KeyError, TypeError, ValueError, AttributeError):
        return None


def _define(schema: Mapping[str, Any], namespace: str, names: dict[str, Any]) -> str:
    """A named type's full name (Avro's rules), reserved in `names` until compiled."""
    name = schema["name"]
    if "." not in name:
        space = schema.get("namespace", namespace) or ""
        name = f"{space}.{name}" if space else name
    if name in names or name in _PRIMITIVES:
        raise _Unsupported(f"type {name} defined twice")
    names[name] = None
    return str(name)


def _lookup(name: str, names: dict[str, Any], namespace: str) -> Any:
    full = name if "." in name or not namespace else f"{namespace}.{name}"
    for candidate in (full, name):
        if candidate in names:
            found = names[candidate]
            if found is None:  # a type that holds itself: not flattened into a plan
                raise _Unsupported(f"recursive type {candidate}")
            return found
    raise _Unsupported(f"unknown type {name}")


def _compile(schema: Any, names: dict[str, Any], namespace: str) -> Any:
    if isinstance(schema, list):
        return (_UNION, [_compile(branch, names, namespace) for branch in schema])
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return (_PRIMITIVES[schema], None)
        return _lookup(schema, names, namespace)
    if not isinstance(schema, Mapping):
        raise _Unsupported("not a schema")
    kind = schema["type"]
    if kind == "array":
        return (_ARRAY, _compile(schema["items"], names, namespace))
    if kind == "map":
        return (_MAP, _compile(schema["values"], names, namespace))
    if kind not in _NAMED:
        return _compile(kind, names, namespace)  # {"type": "string"}, {"type": [...]}
    full = _define(schema, namespace, names)
    if kind == "fixed":
        compiled: Any = (_FIXED, int(schema["size"]))
    elif kind == "enum":
        compiled = (_ENUM, len(schema["symbols"]))
    else:
        inner = full.rpartition(".")[0]
        compiled = (_RECORD, [_compile(f["type"], names, inner) for f in schema["fields"]])
    names[full] = compiled
    return compiled


def _plain(schema: Any, compiled: Any) -> bool:
    """A needed field's type the kernel gives as fastavro does: no logical type on it (fastavro
    makes a datetime, UUID... of the value) and no enum (fastavro gives its symbol as text)."""
    if compiled[0] == _ENUM:
        return False
    if compiled[0] == _UNION:
        branches = schema if isinstance(schema, list) else schema["type"]
        return all(_plain(s, c) for s, c in zip(branches, compiled[1], strict=True))
    if isinstance(schema, Mapping):
        if "logicalType" in schema:
            return False
        if isinstance(schema["type"], (list, Mapping)):
            return _plain(schema["type"], compiled)
    return True


def kernel_fans(
    kernel: Any,
    key: str,
    chunks: Iterator[bytes],
    campaign_id: str,
    coded: set[str],
) -> Iterator[Result[EligibleFan, str]] | None:
    """One object's fans of `campaign_id` as `fan_from_scoring` gives them, or None when the
    kernel does not read its schema or codec (the caller reads it with fastavro). Damage:
    LakeObjectDamaged naming `key`, the block and the record."""
    reader = ChunkReader(chunks)
    try:
        header = read_header(reader)
        schema = json.loads(header.schema_text)
    except (NotAnAvroFile, ValueError) as error:
        reader.close()
        raise LakeObjectDamaged(f"lake object {key}: its header: {error}") from error
    # A codec other than the lake's (deflate) or null: fastavro's, with its own codecs.
    plan = scoring_plan(schema) if header.codec in _CODECS else None
    if plan is None:
        reader.close()
        return None
    return _fans(kernel.ScoringPlan(plan), key, reader, header, campaign_id, coded)


def _fans(
    plan: Any, key: str, reader: ChunkReader, header: Header, campaign_id: str, coded: set[str]
) -> Iterator[Result[EligibleFan, str]]:
    codec, number = header.codec, 0
    try:
        for block in iter_blocks(reader, header.sync):
            data = decompress(codec, block.data)
            yield from plan.fans(
                data, block.count, campaign_id, coded, EligibleFan, Success, Failure
            )
            number += 1
    except (NotAnAvroFile, ValueError, zlib.error) as error:
        raise LakeObjectDamaged(f"lake object {key}: block {number}: {error}") from error
    finally:
        reader.close()
