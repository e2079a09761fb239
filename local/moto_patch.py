"""Fingerprinted patches of moto's internals: the one way every emulator fix is applied.

moto's private methods are not an API. A replacement written against moto 5.2.5's
`Shard.get_records` is silently wrong for a moto whose method changed, so each method a fix
replaces is fingerprinted (the first 128 bits of the sha256 of its source) and a fix applies all
or nothing: when any method is gone or differs, nothing is patched, moto stays stock (slow or
racy, but working), the status names the method, and the fix's test fails so it is revisited.
Applying is process-wide and idempotent, under a lock (emulators start in several threads).

    FIX = MotoPatch(
        "kinesis put-path", __name__, _classes,
        replacements={"KinesisResponse.put_records": response_put_records},
        fingerprints={"KinesisResponse.put_records": "605c7b12968c94c8a781d6abc6c0c83a"},
    )
    FIX.apply()

`wrappers` instead of `replacements` build the new method from the original (a lock around it).
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import moto

# The moto every fix was written against (pyproject.toml pins it; tests check both).
PATCHED_MOTO_VERSION = "5.2.5"

Method = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class PatchStatus:
    applied: bool
    reason: str


def fingerprint(function: Method) -> str:
    """The first 128 bits of the sha256 of its source: enough to notice any change."""
    return hashlib.sha256(inspect.getsource(function).encode("utf-8")).hexdigest()[:32]


def _always(replacement: Method) -> Callable[[Method], Method]:
    return lambda _original: replacement


class MotoPatch:
    """Methods of moto's classes ("Class.method" keys), replaced only where each one's source
    is still the fingerprinted one; `classes()` imports them ("Class" -> the class)."""

    def __init__(
        self,
        what: str,
        module: str,
        classes: Callable[[], Mapping[str, type]],
        *,
        fingerprints: Mapping[str, str],
        replacements: Mapping[str, Method] | None = None,
        wrappers: Mapping[str, Callable[[Method], Method]] | None = None,
    ) -> None:
        builders: dict[str, Callable[[Method], Method]] = {
            qualified: _always(replacement)
            for qualified, replacement in (replacements or {}).items()
        }
        builders.update(wrappers or {})
        if set(builders) != set(fingerprints):
            raise ValueError(f"{what}: every replaced method needs a fingerprint, and only those")
        self.what = what
        self.module = module
        self.fingerprints = dict(fingerprints)
        self._classes = classes
        self._builders = builders
        # "Class.method" -> moto's own method, and the one put in its place.
        self.originals: dict[str, Method] = {}
        self.installed: dict[str, Method] = {}
        self._lock = threading.Lock()
        self._status: PatchStatus | None = None

    def check(self, classes: Mapping[str, type]) -> str | None:
        """Why the patch cannot apply to these classes, or None when it can."""
        for qualified, expected in self.fingerprints.items():
            owner, name = qualified.split(".")
            cls = classes.get(owner)
            current = cls.__dict__.get(name) if cls is not None else None
            if current is None:
                return f"moto {moto.__version__}: {qualified} is gone"
            if current is self.installed.get(qualified):
                continue
            if fingerprint(current) != expected:
                return (
                    f"moto {moto.__version__}: {qualified} differs from moto "
                    f"{PATCHED_MOTO_VERSION}'s; review {self.module}"
                )
        return None

    def apply_to(self, classes: Mapping[str, type]) -> PatchStatus:
        """Patches these classes if every method is the fingerprinted one (or ours already)."""
        problem = self.check(classes)
        if problem is not None:
            return PatchStatus(False, problem)
        for qualified, build in self._builders.items():
            owner, name = qualified.split(".")
            cls, current = classes[owner], classes[owner].__dict__[name]
            if current is self.installed.get(qualified):
                continue
            self.originals.setdefault(qualified, current)
            self.installed[qualified] = build(current)
            setattr(cls, name, self.installed[qualified])
        return PatchStatus(True, f"applied to moto {moto.__version__}")

    def apply(self) -> PatchStatus:
        """Patches moto (process-wide, idempotent, all or nothing). Never raises: if moto
        changed, the emulator still works and the status says why (logged as a warning)."""
        with self._lock:
            if self._status is not None and self._status.applied:
                return self._status
            try:
                classes = self._classes()
            except ImportError as error:  # moved in a future moto
                self._status = PatchStatus(False, f"moto {moto.__version__}: {error}")
            else:
                self._status = self.apply_to(classes)
            if not self._status.applied:
                logging.getLogger(self.module).warning(
                    "%s fix not applied: %s", self.what, self._status.reason
                )
            return self._status

    def status(self) -> PatchStatus:
        return self._status or PatchStatus(False, "not attempted")
