"""Conditional writes on S3 (`If-None-Match: *` / `If-Match: <ETag>`): a claim or lease that
two runs race for has one winner; the loser's 412 PreconditionFailed (or 409
ConditionalRequestConflict, or 404 for an `If-Match` on an object deleted meanwhile) is the
answer None, any other failure a DependencyUnavailable. Used by S3ObjectStore.put_versioned and
the wave prep's stores (adapters/aws/wave_prep.py).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from adapters.aws.errors import AWS_ERRORS, error_code, unavailable
from domain.models import ObjectRef

MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def is_missing(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code", "")) in MISSING_CODES


_LOST_RACE_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})


def conditional_put(
    client: Any, ref: ObjectRef, body: bytes, expected_version: str | None
) -> str | None:
    """PutObject only over `expected_version` (an ETag), or only if absent (None): the new
    ETag, or None when another writer got there first."""
    condition = {"IfMatch": expected_version} if expected_version else {"IfNoneMatch": "*"}
    try:
        response = client.put_object(
            Bucket=ref.bucket, Key=ref.key, Body=body, ContentType="application/json", **condition
        )
    except ClientError as error:
        code = error_code(error)
        if code in _LOST_RACE_CODES or (expected_version and code in MISSING_CODES):
            return None
        raise unavailable(ref.uri, error) from error
    except AWS_ERRORS as error:
        raise unavailable(ref.uri, error) from error
    return str(response["ETag"])


def get_versioned(client: Any, ref: ObjectRef) -> tuple[bytes, str] | None:
    """The object's bytes and ETag (as S3 sends it, quoted), or None when there is none."""
    try:
        response = client.get_object(Bucket=ref.bucket, Key=ref.key)
        return response["Body"].read(), str(response["ETag"])
    except ClientError as error:
        if is_missing(error):
            return None
        raise unavailable(ref.uri, error) from error
    except AWS_ERRORS as error:
        raise unavailable(ref.uri, error) from error
