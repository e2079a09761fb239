"""smsWaveScheduler (every 5 minutes): the waves whose notify time has come are triggered and
their send started, each exactly once, even when two schedulers run at the same moment.

For every `smsWaves/scheduled/{wave}_csv.json`:
- not JSON, not an object, no readable `notifyDate`, or no wave file `smsWaves/csv/{wave}.csv`
  -> `smsWaves/failed/{wave}_csv.json` (the config with `schedulerError: reason`), written
  create-only (once), and the scheduled config deleted: never looked at again;
- notifyDate still ahead -> left for a later run (`waiting`);
- due -> `smsWaves/triggered/{wave}_csv.json` written **create-only** (S3 `If-None-Match`: of two
  schedulers exactly one write succeeds), then the send started through the SendStarter port,
  then the scheduled config deleted.

Exactly once: the move is the conditional create. The start comes after it and is idempotent
by its name (Step Functions StartExecution with the same name and input on a STANDARD state
machine returns the running execution), so a scheduler that finds the triggered config already
there (the other scheduler's, or its own from a run that died before starting or deleting)
starts again: the same execution, never a second send. A start that fails leaves the scheduled
config in place, and the next run tries again. With a direct invoke (not idempotent) a repeated
start is refused by the sender's lease or sends nothing new (the once-ledger).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Protocol

from returns.result import Failure, Success

from domain.models import ObjectNotFound, ObjectRef
from domain.ports import (
    BlobListing,
    BlobMover,
    BlobReader,
    Clock,
    SendStarter,
    VersionedBlobs,
)
from domain.streaming import DependencyUnavailable
from domain.waves import parse_notify_date, wave_csv_key, wave_of_config_key

SCHEDULED_PREFIX = "smsWaves/scheduled/"
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class SchedulerStore(BlobListing, BlobReader, BlobMover, VersionedBlobs, Protocol):
    """What the scheduler touches: list, read, create-only writes, delete."""


def execution_name(wave: str) -> str:
    """A Step Functions execution name for the wave (1-80 of [A-Za-z0-9_-]), the same every
    time: the wave's name made safe, and a hash of the real one so two waves never share it."""
    digest = hashlib.sha256(wave.encode()).hexdigest()[:12]
    return f"sms-{_NAME_UNSAFE.sub('_', wave)[:60]}-{digest}"


@dataclass
class SchedulerResult:
    triggered: list[str] = field(default_factory=list)  # started by this run
    already: list[str] = field(default_factory=list)  # triggered by another scheduler first
    waiting: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    not_started: list[dict[str, str]] = field(default_factory=list)  # retried next run
    ignored: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "triggered": self.triggered,
            "alreadyTriggered": self.already,
            "waiting": self.waiting,
            "failed": self.failed,
            "notStarted": self.not_started,
            "ignored": self.ignored,
        }


def sms_wave_scheduler(
    *, store: SchedulerStore, starter: SendStarter, clock: Clock, bucket: str
) -> SchedulerResult:
    result = SchedulerResult()
    now = clock.now()
    for info in list(store.list_objects(bucket, SCHEDULED_PREFIX)):
        ref = info.ref
        wave = wave_of_config_key(ref.key)
        if wave is None or not ref.key.startswith(SCHEDULED_PREFIX):
            result.ignored += 1
            continue
        found = store.read_versioned(ref)
        if found is None:  # another scheduler moved it meanwhile
            continue
        data, _ = found
        problem, config = _check(store, bucket, wave, data)
        if problem is not None:
            _fail(store, bucket, wave, ref, data, problem)
            result.failed.append({"wave": wave, "reason": problem})
            continue
        notify = parse_notify_date(config.get("notifyDate")).unwrap()
        if notify > now:
            result.waiting += 1
            continue
        triggered = ObjectRef(bucket, f"smsWaves/triggered/{wave}_csv.json")
        won = store.put_versioned(triggered, data, None) is not None
        try:
            starter.start(wave)
        except DependencyUnavailable as error:
            result.not_started.append({"wave": wave, "reason": str(error)})
            continue
        _delete(store, ref)
        (result.triggered if won else result.already).append(wave)
    return result


def _check(
    store: BlobReader, bucket: str, wave: str, data: bytes
) -> tuple[str | None, Mapping[str, Any]]:
    try:
        config = json.loads(data)
    except ValueError:
        return "config is not JSON", {}
    if not isinstance(config, Mapping):
        return "config is not a JSON object", {}
    match parse_notify_date(config.get("notifyDate")):
        case Failure(reason):
            return reason, config
        case Success(_):
            pass
    if store.head(ObjectRef(bucket, wave_csv_key(wave))) is None:
        return f"the wave file {wave_csv_key(wave)} does not exist", config
    return None, config


def _fail(
    store: SchedulerStore, bucket: str, wave: str, ref: ObjectRef, data: bytes, reason: str
) -> None:
    try:
        body: Any = json.loads(data)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {"unreadableConfig": data[:2000].decode("utf-8", "replace")}
    body["schedulerError"] = reason
    target = ObjectRef(bucket, f"smsWaves/failed/{wave}_csv.json")
    store.put_versioned(target, json.dumps(body).encode(), None)  # once: create-only
    _delete(store, ref)


def _delete(store: BlobMover, ref: ObjectRef) -> None:
    with suppress(ObjectNotFound):  # the other scheduler deleted it first
        store.delete(ref)
