"""JSON through orjson that never changes a value: the stream workers' parser and encoder.

orjson is ~4x the stdlib's speed, but at the edges of JSON it is not the stdlib:
- `orjson.loads` reads an integer wider than 64 bits (`18446744073709551617`) as a float
  (`1.8446744073709552e+19`) without a word; the lake then archived the rounded number.
  `exact_loads` hands any text that may hold such an integer to the stdlib, which keeps it
  exactly. "May hold" is a run of 20 digits anywhere in the text (2**64 has 20 digits, so any
  shorter integer fits orjson's 64 bits), found with bytes.translate and `in`, both in C: ~1 µs
  for a 360-byte record, where a regular expression took 4-7 µs. A run inside a string (an id
  of 24 digits) or a long float only costs the slower parser, never a wrong value.
- `orjson.dumps` refuses integers beyond 64 bits and lone surrogates (TypeError): `exact_dumps`
  and `json_text` then use the stdlib, so the enriched record and the archived JSON text keep
  the exact digits. (A lone surrogate is the schema check's to refuse, see adapters/avro.py.)
- the stdlib parser recurses in C per nesting level and raises RecursionError (not a
  ValueError) near 1,000 levels, and it accepts NaN, Infinity and 1e400 (inf), which orjson
  refuses: a record's fate must not hang on whether it holds a 20-digit run, and a crafted
  record nested 1,000 deep once stopped a shard for good (issue 17). The stdlib path therefore
  refuses what orjson refuses and turns RecursionError into the same ValueError.
tests/unit/test_big_integers.py holds both paths to the same values; tests/unit/test_json_codec.py
holds every hostile nesting and size to ValueError.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import orjson

from domain.records import NestedTooDeep

_DIGITS = bytes(ord("d") if 0x30 <= byte <= 0x39 else ord(".") for byte in range(256))
_WIDE_RUN = b"d" * 20


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(digits: str) -> float:
    value = float(digits)
    if value in (math.inf, -math.inf):
        raise ValueError("a number beyond the range of a double")
    return value


def exact_loads(text: str) -> Any:
    """orjson.loads, or json.loads where the text may hold an integer beyond 64 bits.

    Raises ValueError (orjson.JSONDecodeError, json.JSONDecodeError, NestedTooDeep, and the
    stdlib's integer-digits limit are all ValueErrors) on text that is not JSON, and nothing
    else, however deep or large."""
    if _WIDE_RUN in text.encode("utf-8", "surrogatepass").translate(_DIGITS):
        try:
            return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
        except RecursionError:
            raise NestedTooDeep("JSON nested too deep to parse") from None
    return orjson.loads(text)


def exact_dumps(record: Mapping[str, Any]) -> bytes:
    """Compact JSON bytes of a record (domain.ports.RecordEncoder), integers kept exactly."""
    try:
        return orjson.dumps(record)
    except TypeError:
        return json_text(record).encode("utf-8", "surrogatepass")


def json_text(value: Any) -> str:
    """A value as compact JSON text (the lake's `extra`, map and envelope payload fields)."""
    try:
        return orjson.dumps(value).decode("utf-8")
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
