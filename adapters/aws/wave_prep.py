"""Wave prep state in S3, written conditionally (S3 conditional writes; moto honours them):

- S3WaveStatusStore: `wavePrep/{campaignId}/status/{dateKey}.json`, the admin's status JSON.
  The first write uses `If-None-Match: *`, every later one `If-Match: <ETag read>`: two
  triggers racing for the same wave cannot both start (the loser gets 412 and is refused).
- S3ReservationLedger: `wavePrep/{campaignId}/reservations/{dateKey}/{marketId}/{batch}.json`,
  written once with `If-None-Match: *`; a concurrent run that reserved under the same key first
  wins, and its reservation is the one used (ours expires unused after 24 h).

Failures other than a failed precondition propagate as DependencyUnavailable (the wave fails,
retryably).
"""

from __future__ import annotations

import json
from typing import Any

from adapters.aws.s3_conditional import conditional_put, get_versioned
from adapters.logging import mask_value
from domain.codes import Reservation
from domain.models import ObjectRef
from domain.wave_prep.status import WaveStatus, status_from_json


def status_key(campaign_id: str, date_key: str) -> str:
    return f"wavePrep/{campaign_id}/status/{date_key}.json"


def reservation_object_key(key: str) -> str:
    campaign_id, rest = key.split("/", 1)
    return f"wavePrep/{campaign_id}/reservations/{rest}.json"


class S3WaveStatusStore:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def read(self, campaign_id: str, date_key: str) -> tuple[WaveStatus, str] | None:
        found = get_versioned(
            self._client, ObjectRef(self._bucket, status_key(campaign_id, date_key))
        )
        if found is None:
            return None
        raw, etag = found
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"not JSON ({exc})") from None
        return status_from_json(doc, campaign_id, date_key), etag

    def write(self, status: WaveStatus, expected_version: str | None) -> str | None:
        # Masked: an error message can quote a dependency's body ("cannot reserve for
        # jane@... +1312..."), and admins and buckets are no place for contacts.
        body = json.dumps(mask_value(status.to_json()), indent=2).encode()
        key = status_key(status.campaign_id, status.date_key)
        return conditional_put(self._client, ObjectRef(self._bucket, key), body, expected_version)


class S3ReservationLedger:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def recorded(self, key: str) -> Reservation | None:
        found = get_versioned(self._client, ObjectRef(self._bucket, reservation_object_key(key)))
        if found is None:
            return None
        doc = json.loads(found[0])
        return Reservation(key=doc["key"], reserve_id=doc["reserveId"], codes=tuple(doc["codes"]))

    def record(self, reservation: Reservation) -> Reservation:
        body = json.dumps(
            {
                "key": reservation.key,
                "reserveId": reservation.reserve_id,
                "codes": list(reservation.codes),
                "expiresAt": reservation.expires_at.isoformat() if reservation.expires_at else None,
            }
        ).encode()
        object_key = reservation_object_key(reservation.key)
        if conditional_put(self._client, ObjectRef(self._bucket, object_key), body, None) is None:
            earlier = self.recorded(reservation.key)
            if earlier is None:  # deleted between the two calls: nothing to defer to
                raise RuntimeError(f"reservation {reservation.key} vanished while recording")
            return earlier
        return reservation
