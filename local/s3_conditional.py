"""The emulator's S3: whole-object writes one at a time, so a conditional PutObject
(`If-None-Match: *`, `If-Match: <ETag>`) is atomic as it is in S3. Patched into moto through
local/moto_patch.py, as local/dynamodb_atomic.py is (fingerprinted: if moto's methods changed,
nothing is patched and the status says why; a test fails if the patch stops applying).

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
import threading
from collections.abc import Callable
from typing import Any

from local.moto_patch import MotoPatch

_write_lock = threading.Lock()


def serialised(method: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`method` run under the one write lock (public so a test can wrap a slowed original)."""

    @functools.wraps(method)
    def one_write_at_a_time(self: Any) -> Any:
        with _write_lock:
            return method(self)

    return one_write_at_a_time


def _classes() -> dict[str, type]:
    from moto.s3.responses import S3Response

    return {"S3Response": S3Response}


S3_CONDITIONAL_FIX = MotoPatch(
    "s3 emulator",
    __name__,
    _classes,
    wrappers={"S3Response.put_object": serialised, "S3Response.delete_object": serialised},
    # fingerprint() of each S3Response method in moto 5.2.5.
    fingerprints={
        "S3Response.put_object": "992229be920b636393b52bbcb7d5e65b",
        "S3Response.delete_object": "1d979bff76a98aed2b8223a1deef09da",
    },
)
