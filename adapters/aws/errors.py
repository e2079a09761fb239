"""botocore failures -> domain.streaming.DependencyUnavailable, naming what failed and how.

Used by the stream workers' AWS adapters (lake, SQS, DynamoDB). botocore has already retried
throttling and 5xx (the client's retry mode); what reaches here outlasted those retries, or is
a configuration fault (no such bucket / queue / table, access denied). Both must stop the
batch from being checkpointed, so both become DependencyUnavailable: the runtime replays, and
its retry budget turns a lasting fault into a loud exit instead of a skipped batch.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from domain.models import FailureKind, LookupFailure
from domain.streaming import DependencyUnavailable

AWS_ERRORS: tuple[type[Exception], ...] = (BotoCoreError, ClientError)
# The request itself is wrong: retrying it cannot help (DynamoDB's names for it).
INVALID_REQUEST = frozenset({"ValidationException", "SerializationException"})


# The resource a call names does not exist: a deployment fault, not an outage.
MISSING_RESOURCE = frozenset({"ResourceNotFoundException", "NoSuchBucket"})


def as_missing(failure: LookupFailure) -> LookupFailure:
    """`failure` as FailureKind.MISSING when its AWS error says the resource is not there (for
    ports whose callers must not retry a deployment fault as an outage); else unchanged."""
    if failure.kind == FailureKind.UNAVAILABLE and failure.detail in MISSING_RESOURCE:
        return LookupFailure(failure.what, FailureKind.MISSING, failure.detail)
    return failure


def error_code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "") or "ClientError")
    return type(error).__name__


def lookup_failure(what: str, error: Exception) -> LookupFailure:
    """A port's answer for a call that failed: invalid when the request was wrong, else
    unavailable (botocore has retried it); the detail is the error code."""
    code = error_code(error)
    kind = FailureKind.INVALID if code in INVALID_REQUEST else FailureKind.UNAVAILABLE
    return LookupFailure(what, kind, code)


def unavailable(dependency: str, error: Exception) -> DependencyUnavailable:
    if isinstance(error, ClientError):
        message = str(error.response.get("Error", {}).get("Message", "") or "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        detail = f"{error_code(error)} (HTTP {status}): {message}".strip().rstrip(":")
    else:
        detail = f"{type(error).__name__}: {error}"
    return DependencyUnavailable(dependency, detail)
