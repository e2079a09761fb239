"""The switch every fault-injecting fake in tests/support/memory_*.py carries: `fail_next = n`
makes its next n calls fail transiently (raising DependencyUnavailable, or returning a
LookupFailure of kind "unavailable" where the port returns Results), to exercise replays."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Faults:
    """`fail_next = n`: the next n calls fail transiently; `calls` counts every call."""

    fail_next: int = 0
    calls: int = 0

    def tripped(self) -> bool:
        self.calls += 1
        if self.fail_next > 0:
            self.fail_next -= 1
            return True
        return False
