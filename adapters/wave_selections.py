"""Wave prep's selection ledger (domain.ports.WaveSelections) in the scoring bucket:
`wavePrep/{campaignId}/selected/{dateKey}.json`, `{campaignId, dateKey, fans: [globalUserId]}`:
fan ids only, no contact details. A later wave of the campaign lists the prefix and reads the
other date keys' entries (memory: one id per fan the campaign's waves selected).

Over any object store (S3, or the in-memory one in tests); AWS errors propagate (the wave fails
as a bug would, with FAILED written first).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import Any

from domain.models import ObjectNotFound, ObjectRef


def selection_key(campaign_id: str, date_key: str) -> str:
    return f"wavePrep/{campaign_id}/selected/{date_key}.json"


class StoredWaveSelections:
    def __init__(self, store: Any, bucket: str) -> None:
        self._store = store
        self._bucket = bucket

    def record(self, campaign_id: str, date_key: str, fan_ids: Sequence[str]) -> None:
        doc = {"campaignId": campaign_id, "dateKey": date_key, "fans": sorted(fan_ids)}
        ref = ObjectRef(self._bucket, selection_key(campaign_id, date_key))
        self._store.put_bytes(ref, json.dumps(doc, separators=(",", ":")).encode())

    def withdraw(self, campaign_id: str, date_key: str) -> None:
        ref = ObjectRef(self._bucket, selection_key(campaign_id, date_key))
        with contextlib.suppress(ObjectNotFound):
            self._store.delete(ref)

    def selected_elsewhere(self, campaign_id: str, date_key: str) -> frozenset[str]:
        own = selection_key(campaign_id, date_key)
        fans: set[str] = set()
        for info in self._store.list_objects(self._bucket, f"wavePrep/{campaign_id}/selected/"):
            if info.ref.key == own or not info.ref.key.endswith(".json"):
                continue
            doc = json.loads(self._store.read_bytes(info.ref))
            listed = doc.get("fans") if isinstance(doc, dict) else None
            if not isinstance(listed, list) or not all(isinstance(f, str) for f in listed):
                raise ValueError(f"{info.ref.uri}: not a wave selection ({{fans: [ids]}})")
            fans.update(listed)
        return frozenset(fans)
