"""Builders for stream-worker tests: raw Kinesis records and sample records of the ten types."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from domain.records import RecordType
from domain.streaming import IncomingRecord

ARRIVED = datetime(2026, 3, 14, 23, 59, 30, tzinfo=UTC)


def raw(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record).encode("utf-8")


def batch_of(
    datas: Iterable[bytes],
    *,
    stream: str = "vf1-input-stream",
    shard: str = "shardId-000000000000",
    first_sequence: int = 1000,
    arrived_at: datetime | None = ARRIVED,
) -> list[IncomingRecord]:
    return [
        IncomingRecord(
            stream=stream,
            shard_id=shard,
            sequence_number=str(first_sequence + i),
            partition_key=f"pk-{i}",
            data=data,
            arrived_at=arrived_at,
        )
        for i, data in enumerate(datas)
    ]


def sample_record(record_type: str, i: int = 0) -> dict[str, Any]:
    """A valid record of the type, with padded strings (the worker trims them)."""
    meta = {"correlation": f"corr-{i}", "date": "2026-03-14T23:59:00Z"}
    if record_type == RecordType.SCORING:
        return {
            "type": "scoring",
            "campaignId": " camp-1 ",
            "globalUserId": f"g{i}",
            "email": f"  fan{i}@example.com",
            "phone": "+14155550100",
            "firstName": "Ada ",
            "score": 0.5 + (i % 5) / 10,
            "band": "mid",
            "band_score": 0.9,
            "tags": [" unconfirmed "],
            "verdict": True,
            "hbase": "nyc",
            "__meta": meta,
        }
    if record_type == RecordType.REGISTRATION:
        return {
            "type": "registration",
            "campaignId": "camp-1",
            "globalUserId": f"g{i}",
            "email": f"fan{i}@example.com",
            "marketIds": ["m1", " m2"],
            "nudetect": {"score": 3, "scoreBand": "low"},
            "__meta": meta,
        }
    if record_type == RecordType.CODE_ASSIGNMENT:
        return code_assignment(i)
    return {"type": record_type, "id": f"{record_type}-{i}", "value": f" v{i} ", "__meta": meta}


def code_assignment(i: int = 0, **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "type": "codeAssignment",
        "date": {"created": "2026-03-01T00:00:00Z", "start": "2026-03-02T00:00:00Z"},
        "categoryId": "cat-1",
        "globalUserId": f"g{i}",
        "memberId": f"member-{i}",
        "marketId": "m1",
        "code": f"CODE{i:05d}",
        "__meta": {"correlation": f"corr-{i}"},
    }
    record.update(overrides)
    return {k: v for k, v in record.items() if v is not None}


def enriched_assignment(i: int = 0, campaign: str = "camp-1", **overrides: Any) -> dict[str, Any]:
    """A code assignment as transform_code_assignments puts it on the save-selection stream."""
    record = code_assignment(i, campaignId=campaign, userId=f"{i:024d}")
    record.update(overrides)
    return {k: v for k, v in record.items() if v is not None}
