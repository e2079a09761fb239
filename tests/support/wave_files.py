"""Wave CSVs for tests and benchmarks, and an object store that crashes on its n-th write."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from domain.models import ObjectRef
from tests.support.memory_objects import InMemoryObjectStore

HEADER = ["globalUserId", "memberId", "marketId", "firstName", "lastName", "email",
          "mobileNumber", "doNotText", "locale"]  # fmt: skip


def fan(i: int) -> list[str]:
    return [f"g{i:07d}", f"m{i}", f"{i % 5 + 1}", "Ann, \"Jr\"", "Lee", f"fan{i}@example.org",
            f"+1201555{i % 10000:04d}", "false", "en-us"]  # fmt: skip


def wave_csv(rows: Sequence[Sequence[str]], header: Sequence[str] = HEADER, bom: bool = False,
             crlf: bool = True) -> bytes:  # fmt: skip
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n" if crlf else "\n").writerows([header, *rows])
    return (b"\xef\xbb\xbf" if bom else b"") + buffer.getvalue().encode()


def parse_csv(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


class Crash(Exception):
    """The process died here (a test stand-in for a killed Lambda)."""


class CrashingStore(InMemoryObjectStore):
    """Raises Crash on its `crash_at`-th mutating step (put, copy, delete, a writer's write)."""

    def __init__(self, crash_at: int | None = None) -> None:
        super().__init__()
        self.crash_at = crash_at
        self.steps = 0

    def _step(self) -> None:
        self.steps += 1
        if self.crash_at is not None and self.steps == self.crash_at:
            raise Crash(f"crashed at step {self.steps}")

    def put_bytes(self, ref: ObjectRef, data: bytes, content_type: str = "") -> None:
        self._step()
        super().put_bytes(ref, data, content_type)

    def put_versioned(
        self, ref: ObjectRef, data: bytes, expected_version: str | None
    ) -> str | None:
        self._step()
        return super().put_versioned(ref, data, expected_version)

    def copy(self, source: ObjectRef, target: ObjectRef) -> None:
        self._step()
        super().copy(source, target)

    def delete(self, ref: ObjectRef) -> None:
        self._step()
        super().delete(ref)

    @contextmanager
    def open_writer(self, ref: ObjectRef, content_type: str = "") -> Iterator[Any]:
        store = self

        class _W:
            def __init__(self, inner: Any) -> None:
                self.inner = inner

            def write(self, data: bytes | memoryview) -> int:
                store._step()
                return int(self.inner.write(data))

        with super().open_writer(ref, content_type) as inner:
            yield _W(inner)
