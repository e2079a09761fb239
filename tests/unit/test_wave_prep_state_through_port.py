"""The wave status store and the reservation ledger go through the VersionedBlobs port (issue
19): any store with conditional writes holds them, and racing writers meet on its condition."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from adapters.aws.wave_prep import S3ReservationLedger, S3WaveStatusStore
from domain.codes import Reservation
from domain.wave_prep.status import Phase, WaveStatus
from tests.support.memory_objects import InMemoryObjectStore

BUCKET = "scoring"


def test_a_reservation_recorded_by_many_runs_at_once_is_the_first_one_for_all() -> None:
    blobs = InMemoryObjectStore()
    key = "c1/2026-12-01/m1/0"
    got: list[Reservation] = []
    barrier = threading.Barrier(8)

    def run(i: int) -> None:
        ledger = S3ReservationLedger(blobs, BUCKET)
        barrier.wait()
        got.append(ledger.record(Reservation(key, f"r{i}", (f"A{i}", f"B{i}"))))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(got)) == 1
    assert S3ReservationLedger(blobs, BUCKET).recorded(key) == got[0]


def test_of_two_triggers_from_the_same_status_version_one_writes_and_the_other_is_refused() -> None:
    store = S3WaveStatusStore(InMemoryObjectStore(), BUCKET)
    status = WaveStatus("c1", "2026-12-01", Phase.TRIGGERED, 1, datetime(2026, 12, 1, tzinfo=UTC))
    first = store.write(status, None)
    assert first is not None and store.write(status, None) is None
    later = status.fail(datetime(2026, 12, 1, 1, tzinfo=UTC), "boom")
    assert store.write(later, first) is not None
    assert store.write(later, first) is None  # the second writer read the same, now stale, version
    read = store.read("c1", "2026-12-01")
    assert read is not None and read[0].phase is Phase.FAILED
