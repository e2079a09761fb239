"""Whether a lake file's writer schema can be merged into its type's current schema: Avro's
schema resolution (the spec's "Schema Resolution"), as much of it as the merge needs. `same`
(canonical forms equal: blocks copy as stored), `resolve` (an older schema the current one
reads: records are decoded into it), or a MergeRefusal saying why not (adapters/lake_compactor.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import fastavro
from fastavro.schema import to_parsing_canonical_form

from domain.lake import MergeRefusal
from domain.records import DEDUPE_FIELD

SAME = "same"
RESOLVE = "resolve"


@dataclass(frozen=True, slots=True)
class CurrentSchema:
    """One type's current schema, prepared once."""

    text: bytes  # as written into merged headers
    parsed: Any
    canonical: str
    name: str
    projection: Any  # {dedupeId} only, for finding keys and record boundaries

    @classmethod
    def of(cls, raw: dict[str, Any]) -> CurrentSchema:
        parsed = fastavro.parse_schema(raw)
        name = _fullname(raw)
        projection = fastavro.parse_schema(
            {"type": "record", "name": name, "fields": [{"name": DEDUPE_FIELD, "type": "string"}]}
        )
        return cls(
            json.dumps(raw, separators=(",", ":")).encode("utf-8"),
            parsed,
            to_parsing_canonical_form(parsed),
            name,
            projection,
        )


def judge(current: CurrentSchema, writer_text: bytes, key: str) -> str | MergeRefusal:
    """`same` (canonical forms equal: blocks copy as they are), `resolve` (an older schema the
    current one reads: records are decoded into it), or why the file cannot be merged."""
    try:
        writer = json.loads(writer_text)
        parsed = fastavro.parse_schema(writer)
    except Exception as error:
        return MergeRefusal("unreadable", f"its writer schema does not parse: {error}", key)
    if to_parsing_canonical_form(parsed) == current.canonical:
        return SAME
    if not isinstance(writer, dict) or _fullname(writer) != current.name:
        return MergeRefusal(
            "foreign_schema",
            f"written with schema {_name_of(writer)!r}, not this type's {current.name!r}",
            key,
        )
    reader = json.loads(current.text)
    problem = _resolution_problem(writer, reader, current.name)
    if problem is not None:
        return MergeRefusal(
            "outdated_schema",
            f"written with a schema the current {current.name} schema cannot read: {problem}",
            key,
        )
    return RESOLVE


def _fullname(schema: Mapping[str, Any]) -> str:
    name = str(schema.get("name", ""))
    namespace = schema.get("namespace")
    return f"{namespace}.{name}" if namespace and "." not in name else name


def _name_of(schema: Any) -> str:
    return str(schema.get("name", schema.get("type"))) if isinstance(schema, dict) else str(schema)


_PROMOTIONS = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
    "bytes": {"string"},
}


_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


def _base(schema: Any) -> Any:
    """A primitive written as an object (`{"type": "long", "logicalType": ...}`) as its name:
    resolution works on the underlying type."""
    if isinstance(schema, dict) and schema.get("type") in _PRIMITIVES:
        return schema["type"]
    return schema


def _resolution_problem(writer: Any, reader: Any, where: str) -> str | None:
    writer, reader = _base(writer), _base(reader)
    if isinstance(writer, list):
        for branch in writer:
            problem = _resolution_problem(branch, reader, where)
            if problem is not None:
                return problem
        return None
    if isinstance(reader, list):
        if any(_resolution_problem(writer, branch, where) is None for branch in reader):
            return None
        return f"{where}: no branch of the union reads {_name_of(writer)!r}"
    if isinstance(writer, str) and isinstance(reader, str):
        if writer == reader or reader in _PROMOTIONS.get(writer, set()):
            return None
        return f"{where}: {writer} cannot be read as {reader}"
    if isinstance(writer, dict) and isinstance(reader, dict):
        kind = writer.get("type")
        if kind != reader.get("type"):
            return f"{where}: {kind} cannot be read as {reader.get('type')}"
        if kind == "record":
            written = {f["name"]: f for f in writer.get("fields", [])}
            for field in reader.get("fields", []):
                name = field["name"]
                if name in written:
                    problem = _resolution_problem(
                        written[name]["type"], field["type"], f"{where}.{name}"
                    )
                    if problem is not None:
                        return problem
                elif "default" not in field:
                    return f"{where}.{name} is not in the file and has no default"
            return None
        if kind == "array":
            return _resolution_problem(writer["items"], reader["items"], f"{where}[]")
        if kind == "map":
            return _resolution_problem(writer["values"], reader["values"], f"{where}{{}}")
        if kind == "enum":
            missing = set(writer.get("symbols", [])) - set(reader.get("symbols", []))
            if missing and "default" not in reader:
                return f"{where}: symbols {sorted(missing)} unknown to the current schema"
            return None
        if kind == "fixed":
            return None if writer.get("size") == reader.get("size") else f"{where}: fixed size"
        return None
    return f"{where}: {_name_of(writer)!r} cannot be read as {_name_of(reader)!r}"
