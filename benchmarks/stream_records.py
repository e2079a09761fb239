"""Realistic input-stream records for the stream-consumer benchmark: the ten types, mixed.

The mix follows the input stream of a campaign: mostly registrations and scoring records, then
code assignments, and a tail of the seven envelope types. Compact UTF-8 JSON, as the project's
producers write it (orjson.dumps). One record in ten has padded strings (the worker trims them),
a few records carry fields the schemas do not name (kept in `extra`), and about 1 in 200 is
poison (not JSON, unknown type, a field of the wrong type), so the dead-letter path is exercised
too. Deterministic for a given seed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson

from domain.streaming import IncomingRecord

ARRIVED = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
_ENVELOPE_TYPES = (
    "campaignMapping",
    "codeBan",
    "codeReserve",
    "eventMapping",
    "secondaryListing",
    "attendanceScan",
    "fanlistEntry",
)
_FIRST = ("Ada", "Grace", "Linus", "Margaret", "José", "Zoë", "Håkon", "Mei", "Olu", "Priya")
_LAST = ("Lovelace", "Hopper", "Torvalds", "Hamilton", "García", "Müller", "Ng", "Okafor")
_LOCALES = ("en-us", "en-gb", "fr-fr", "de-de", "es-mx", "ja-jp")


_PADDED_RECORDS = 0.1


def _pad(rng: random.Random, text: str) -> str:
    # Called for 3-4 fields of a record: about one record in ten gets a padded field.
    return f" {text}  " if rng.random() < _PADDED_RECORDS / 3.5 else text


def _meta(rng: random.Random, i: int) -> dict[str, Any]:
    meta: dict[str, Any] = {"correlation": f"corr-{i:08d}", "date": "2026-03-14T11:59:58Z"}
    if rng.random() < 0.1:
        meta["row"] = i  # not a string: the schema keeps it as JSON text
    return meta


def registration(rng: random.Random, i: int) -> dict[str, Any]:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    record: dict[str, Any] = {
        "type": "registration",
        "campaignId": _pad(rng, f"camp-{i % 17}"),
        "globalUserId": f"g{i:09d}",
        "userId": f"{i:024d}",
        "memberId": f"member-{i}",
        "email": _pad(rng, f"{first.lower()}.{last.lower()}{i}@example.com"),
        "phone": "+1415555" + f"{i % 10000:04d}",
        "firstName": _pad(rng, first),
        "lastName": last,
        "locale": rng.choice(_LOCALES),
        "marketId": f"m{i % 40}",
        "marketIds": [f"m{i % 40}", _pad(rng, f"m{(i + 7) % 40}")],
        "createdAt": "2026-03-14T11:58:01Z",
        "__meta": _meta(rng, i),
    }
    if rng.random() < 0.3:
        record["nudetect"] = {"score": rng.randint(0, 100), "scoreBand": "low", "flags": ["vpn"]}
    return record


def scoring(rng: random.Random, i: int) -> dict[str, Any]:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    return {
        "type": "scoring",
        "campaignId": _pad(rng, f"camp-{i % 17}"),
        "globalUserId": f"g{i:09d}",
        "memberId": f"member-{i}",
        "email": _pad(rng, f"{first.lower()}{i}@example.com"),
        "phone": "+1415555" + f"{i % 10000:04d}",
        "phoneConfirmed": rng.random() < 0.8,
        "firstName": first,
        "lastName": _pad(rng, last),
        "marketId": f"m{i % 40}",
        "locale": rng.choice(_LOCALES),
        "score": round(rng.random(), 6),
        "band": rng.choice(("high", "mid", "low")),
        "band_score": rng.random(),
        "tags": ["unconfirmed"] if rng.random() < 0.2 else [],
        "verdict": rng.random() < 0.95,
        "__meta": _meta(rng, i),
    }


def code_assignment(rng: random.Random, i: int) -> dict[str, Any]:
    return {
        "type": "codeAssignment",
        "code": _pad(rng, f"CODE{i:07d}"),
        "globalUserId": f"g{i:09d}",
        "categoryId": f"cat-{i % 9}",
        "memberId": f"member-{i}",
        "marketId": f"m{i % 40}",
        "date": {"created": "2026-03-01T00:00:00Z", "start": "2026-03-02T00:00:00Z"},
        "__meta": _meta(rng, i),
    }


def envelope(rng: random.Random, i: int) -> dict[str, Any]:
    record_type = _ENVELOPE_TYPES[i % len(_ENVELOPE_TYPES)]
    return {
        "type": record_type,
        "id": f"{record_type}-{i}",
        "campaignId": f"camp-{i % 17}",
        "eventIds": [f"ev-{i % 300}", f"ev-{(i + 1) % 300}"],
        "value": _pad(rng, f"v{i}"),
        "count": rng.randint(0, 5000),
        "__meta": _meta(rng, i),
    }


def _poison(rng: random.Random, i: int) -> bytes:
    kind = i % 3
    if kind == 0:
        return b'{"type": "registration", "campaignId": '  # cut off: not JSON
    if kind == 1:
        return json.dumps({"type": "notATypeWeKeep", "i": i}).encode()
    return json.dumps({**scoring(rng, i), "score": "high"}).encode()  # fails its schema


def _exact(data: bytes) -> bytes:
    # orjson's bytes keep their ~4 KiB growth buffer allocated; data read off a stream (base64
    # decoded by the runtime) is exactly its size, and so is this copy.
    return bytes(memoryview(data))


def record_data(seed: int = 7) -> Iterator[bytes]:
    """An endless stream of raw record data (UTF-8 JSON), mixed as described above."""
    rng = random.Random(seed)
    i = 0
    while True:
        roll = rng.random()
        if roll < 0.005:
            yield _poison(rng, i)
        elif roll < 0.40:
            yield _exact(orjson.dumps(registration(rng, i)))
        elif roll < 0.70:
            yield _exact(orjson.dumps(scoring(rng, i)))
        elif roll < 0.85:
            yield _exact(orjson.dumps(code_assignment(rng, i)))
        else:
            yield _exact(orjson.dumps(envelope(rng, i)))
        i += 1


def batches(
    total: int, batch_size: int, *, seed: int = 7, shard: str = "shardId-000000000000"
) -> list[list[IncomingRecord]]:
    """`total` records in batches of `batch_size`, with increasing sequence numbers."""
    datas = record_data(seed)
    out: list[list[IncomingRecord]] = []
    for start in range(0, total, batch_size):
        out.append(
            [
                IncomingRecord(
                    stream="vf1-input-stream",
                    shard_id=shard,
                    sequence_number=str(49_000_000_000 + n),
                    partition_key=f"pk-{n % 97}",
                    data=next(datas),
                    arrived_at=ARRIVED,
                )
                for n in range(start, min(start + batch_size, total))
            ]
        )
    return out
