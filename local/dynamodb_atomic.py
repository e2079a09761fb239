"""The emulator's DynamoDB: one request at a time, so a conditional write is atomic as it is
in DynamoDB. Patched into moto the way local/emulator.py's Kinesis fix is (fingerprinted: if
moto's method changed, nothing is patched and the status says why; a test fails if the patch
stops applying).

Why: moto checks a ConditionExpression and then writes, with nothing between the two, and its
threaded server handles requests at once. The code inventory's model test
(tests/support/inventory_model.py, reservations racing in threads) saw one code in two live
reservations in 1 of 3 runs and in one full suite run; with requests serialised, 10 of 10 runs
passed. DynamoDB evaluates a condition and writes the item atomically, so the emulator must
too, or its tests prove nothing about concurrency. (A plain race of conditional PutItems on one
item did not reproduce it: the window is in moto's longer UpdateItem path.)
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
# sha256 of DynamoHandler.call_action's source in moto 5.2.5.
ORIGINAL_FINGERPRINT = "ce5f57cf83cde3400fa73a201929d18af92aaba2bb301d4d74609a1467b8daaf"


@dataclass(frozen=True, slots=True)
class DynamoFixStatus:
    applied: bool
    reason: str


_request_lock = threading.Lock()
_status_lock = threading.Lock()
_status: DynamoFixStatus | None = None


def _serialised(call_action: Callable[[Any], Any]) -> Callable[[Any], Any]:
    @functools.wraps(call_action)
    def call_action_one_at_a_time(self: Any) -> Any:
        with _request_lock:
            return call_action(self)

    call_action_one_at_a_time.__serialised__ = True  # type: ignore[attr-defined]
    return call_action_one_at_a_time


def apply_dynamodb_fix() -> DynamoFixStatus:
    """Serialises moto's DynamoDB requests (process-wide, idempotent). Never raises."""
    global _status
    with _status_lock:
        if _status is not None and _status.applied:
            return _status
        try:
            from moto.dynamodb.responses import DynamoHandler
        except ImportError as error:
            _status = DynamoFixStatus(False, f"moto.dynamodb.responses: {error}")
        else:
            current = DynamoHandler.__dict__.get("call_action")
            if current is None:
                _status = DynamoFixStatus(False, "DynamoHandler.call_action is gone")
            elif getattr(current, "__serialised__", False):
                _status = DynamoFixStatus(True, f"applied to moto {moto.__version__}")
            elif _fingerprint(current) != ORIGINAL_FINGERPRINT:
                _status = DynamoFixStatus(
                    False,
                    f"moto {moto.__version__}: DynamoHandler.call_action differs from moto "
                    f"{PATCHED_MOTO_VERSION}'s; review the fix in {__name__}",
                )
            else:
                DynamoHandler.call_action = _serialised(current)
                _status = DynamoFixStatus(True, f"applied to moto {moto.__version__}")
        if not _status.applied:
            log.warning("dynamodb emulator fix not applied: %s", _status.reason)
        return _status


def dynamodb_fix_status() -> DynamoFixStatus:
    return _status or DynamoFixStatus(False, "not attempted")


def _fingerprint(function: Callable[..., Any]) -> str:
    return hashlib.sha256(inspect.getsource(function).encode("utf-8")).hexdigest()
