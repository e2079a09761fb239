"""The emulator's S3: whole-object writes one at a time, so a conditional PutObject
(`If-None-Match: *`, `If-Match: <ETag>`) is atomic as it is in S3. Patched into moto the way
local/dynamodb_atomic.py is (fingerprinted: if moto's methods changed, nothing is patched and
the status says why; a test fails if the patch stops applying).

Why: moto 5.2.5 honours both headers on PutObject (412 PreconditionFailed), but it looks the
key up, then parses the request's checksum, ACL, tags and lock settings, then stores the object,
with nothing holding other requests off in between, and its threaded server handles requests at
once. Two runs creating the same lease or checkpoint object (domain/scoring/lease.py) could
both be told they won. With that window widened (a slowed store), 8 racing creates of one key
had several winners; serialised, exactly one (tests/integration/test_emulator_s3_conditional.py).
S3 evaluates the condition and writes the object atomically, so the emulator must too, or the
tests of exclusive runs prove nothing. DeleteObject is held off the same way: a delete between
a conditional put's check and its write would be undone by it.

Only PutObject and DeleteObject: multipart parts and reads stay concurrent.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import moto

log = logging.getLogger(__name__)

PATCHED_MOTO_VERSION = "5.2.5"
# sha256 of each S3Response method's source in moto 5.2.5.
ORIGINAL_FINGERPRINTS = {
    "put_object": "992229be920b636393b52bbcb7d5e65bb74380d1c44f9c1c64e158aa4ce8673f",
    "delete_object": "1d979bff76a98aed2b8223a1deef09daff140dd74079994b65e48d7d3e7a4daf",
}


@dataclass(frozen=True, slots=True)
class S3FixStatus:
    applied: bool
    reason: str


_write_lock = threading.Lock()
_status_lock = threading.Lock()
_status: S3FixStatus | None = None


def serialised(method: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`method` run under the one write lock (public so a test can wrap a slowed original)."""

    @functools.wraps(method)
    def one_write_at_a_time(self: Any) -> Any:
        with _write_lock:
            return method(self)

    one_write_at_a_time.__serialised__ = True  # type: ignore[attr-defined]
    return one_write_at_a_time


def apply_s3_conditional_fix() -> S3FixStatus:
    """Serialises moto's PutObject and DeleteObject (process-wide, idempotent). Never raises."""
    global _status
    with _status_lock:
        if _status is not None and _status.applied:
            return _status
        _status = _apply()
        if not _status.applied:
            log.warning("s3 emulator fix not applied: %s", _status.reason)
        return _status


def _apply() -> S3FixStatus:
    try:
        from moto.s3.responses import S3Response
    except ImportError as error:
        return S3FixStatus(False, f"moto.s3.responses: {error}")
    methods = {name: S3Response.__dict__.get(name) for name in ORIGINAL_FINGERPRINTS}
    for name, current in methods.items():
        if current is None:
            return S3FixStatus(False, f"S3Response.{name} is gone")
        if getattr(current, "__serialised__", False):
            continue
        if _fingerprint(current) != ORIGINAL_FINGERPRINTS[name]:
            return S3FixStatus(
                False,
                f"moto {moto.__version__}: S3Response.{name} differs from moto "
                f"{PATCHED_MOTO_VERSION}'s; review the fix in {__name__}",
            )
    for name, current in methods.items():
        if current is not None and not getattr(current, "__serialised__", False):
            setattr(S3Response, name, serialised(current))
    return S3FixStatus(True, f"applied to moto {moto.__version__}")


def s3_conditional_fix_status() -> S3FixStatus:
    return _status or S3FixStatus(False, "not attempted")


def _fingerprint(function: Callable[..., Any]) -> str:
    return hashlib.sha256(inspect.getsource(function).encode("utf-8")).hexdigest()
