"""The emulator's DynamoDB: one request at a time, so a conditional write is atomic as it is
in DynamoDB. Patched into moto through local/moto_patch.py, as every emulator fix is
(fingerprinted: if moto's method changed, nothing is patched and the status says why; a test
fails if the patch stops applying).

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
import threading
from collections.abc import Callable
from typing import Any

from local.moto_patch import MotoPatch

_request_lock = threading.Lock()


def _serialised(call_action: Callable[[Any], Any]) -> Callable[[Any], Any]:
    @functools.wraps(call_action)
    def call_action_one_at_a_time(self: Any) -> Any:
        with _request_lock:
            return call_action(self)

    return call_action_one_at_a_time


def _classes() -> dict[str, type]:
    from moto.dynamodb.responses import DynamoHandler

    return {"DynamoHandler": DynamoHandler}


DYNAMODB_FIX = MotoPatch(
    "dynamodb emulator",
    __name__,
    _classes,
    wrappers={"DynamoHandler.call_action": _serialised},
    # fingerprint() of DynamoHandler.call_action in moto 5.2.5.
    fingerprints={"DynamoHandler.call_action": "ce5f57cf83cde3400fa73a201929d18a"},
)
