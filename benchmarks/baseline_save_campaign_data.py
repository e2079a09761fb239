"""The archival path as it was before the speed-up, kept as the benchmark's baseline.

json.loads; a recursive trim; the stdlib canonical JSON for the dedupe id; the schema check
building each archival datum field by field; fastavro.writer encoding the datums per type per
batch. Same outcome as domain.workers.save_campaign_data (the benchmark checks the record
counts agree), none of its shortcuts. Not used outside benchmarks/.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import fastavro
import orjson

from adapters.avro import SCHEMA_DIR, load_schema
from domain.records import RECORD_TYPES
from domain.streaming import IncomingRecord

_MISSING = object()


def _trim(value: Any) -> Any:
    kind = type(value)
    if kind is str:
        return value.strip()
    if kind is dict:
        return {k: v.strip() if type(v) is str else _trim(v) for k, v in value.items()}
    if kind is list:
        return [v.strip() if type(v) is str else _trim(v) for v in value]
    return value


def _dedupe_id(record: Mapping[str, Any]) -> str:
    content = {k: v for k, v in record.items() if k != "__meta" and k != "dedupeId"}
    canonical = json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.blake2b(canonical.encode("utf-8"), digest_size=16).hexdigest()


def _json_text(value: Any) -> str:
    try:
        return orjson.dumps(value).decode("utf-8")
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


class _Shape:
    def __init__(self, schema: dict[str, Any]) -> None:
        self.parsed = fastavro.parse_schema(schema)
        self.fields: list[tuple[str, str, bool, Any]] = []
        for spec in schema["fields"]:
            declared = spec["type"]
            nullable = isinstance(declared, list) and "null" in declared
            if isinstance(declared, list):
                declared = next(t for t in declared if t != "null")
            kind = (
                declared
                if isinstance(declared, str)
                else "timestamp"
                if declared.get("logicalType")
                else "strings"
                if declared["type"] == "array"
                else "loose_map"
            )
            kind = {"float": "double", "int": "long"}.get(kind, kind)
            self.fields.append((spec["name"], kind, nullable, spec.get("default", _MISSING)))
        self.named = frozenset(name for name, *_ in self.fields)
        self.envelope = "payload" in self.named


def _check(name: str, kind: str, value: Any) -> tuple[Any] | str:
    if kind == "string" and isinstance(value, str):
        return (value,)
    if kind == "double" and isinstance(value, int | float) and not isinstance(value, bool):
        return (float(value),)
    if kind == "long" and isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    if kind == "boolean" and isinstance(value, bool):
        return (value,)
    if kind == "strings" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return (value,)
    if kind == "loose_map" and isinstance(value, dict):
        return ({str(k): v if isinstance(v, str) else _json_text(v) for k, v in value.items()},)
    return f"field {name!r} does not fit"


def _conform(
    shape: _Shape, record_type: str, record: dict[str, Any], at: datetime | None
) -> dict[str, Any] | str:
    if shape.envelope:
        return {
            "type": record_type,
            "dedupeId": record["dedupeId"],
            "receivedAt": at,
            "payload": _json_text(record),
        }
    datum: dict[str, Any] = {}
    for name, kind, nullable, default in shape.fields:
        if name == "receivedAt":
            datum[name] = at
            continue
        if name == "extra":
            continue
        value = record.get(name, _MISSING)
        if value is _MISSING or value is None:
            if nullable:
                datum[name] = None
            elif default is not _MISSING:
                datum[name] = default
            else:
                return f"missing required field {name!r}"
            continue
        checked = _check(name, kind, value)
        if isinstance(checked, str):
            return checked
        datum[name] = checked[0]
    if "extra" in shape.named:
        datum["extra"] = {
            k: _json_text(v) for k, v in record.items() if k not in shape.named or k == "receivedAt"
        }
    return datum


class BaselineSaveCampaignData:
    """One batch -> {lake key: Avro bytes} via `put`, dead letters counted."""

    name = "baseline_save_campaign_data"

    def __init__(self, put: Any) -> None:
        self._shapes = {
            t: _Shape(load_schema(SCHEMA_DIR / f"{t}.avsc")) for t in sorted(RECORD_TYPES)
        }
        self._put = put
        self.dead_lettered = 0

    def __call__(self, batch: Sequence[IncomingRecord]) -> int:
        parts: dict[str, list[dict[str, Any]]] = {}
        for incoming in batch:
            try:
                record = json.loads(incoming.data.decode("utf-8"))
            except ValueError:
                self.dead_lettered += 1
                continue
            kind = record.get("type") if isinstance(record, dict) else None
            if not isinstance(kind, str) or kind.strip() not in RECORD_TYPES:
                self.dead_lettered += 1
                continue
            record = _trim(record)
            if not record.get("dedupeId"):
                record["dedupeId"] = _dedupe_id(record)
            datum = _conform(self._shapes[kind.strip()], kind.strip(), record, incoming.arrived_at)
            if isinstance(datum, str):
                self.dead_lettered += 1
                continue
            parts.setdefault(kind.strip(), []).append(datum)
        first = batch[0]
        for record_type, datums in sorted(parts.items()):
            buffer = io.BytesIO()
            fastavro.writer(buffer, self._shapes[record_type].parsed, datums, codec="deflate")
            self._put(
                f"avro/{record_type}/{first.shard_id}-{first.sequence_number}.avro",
                buffer.getvalue(),
            )
        return sum(len(d) for d in parts.values())
