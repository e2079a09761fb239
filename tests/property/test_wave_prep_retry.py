"""A wave prep that fails at any point and is triggered again: the second attempt finishes with
the selection a clean run makes, every selected fan once in the files, and no code reserved
twice (reservations recorded by the first attempt are reused, none is made again)."""

from __future__ import annotations

import io
import zipfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import given
from hypothesis import strategies as st
from returns.result import Failure, Success

from domain.models import ObjectRef
from domain.streaming import DependencyUnavailable
from domain.wave_prep.fans import EligibleFan
from tests.support.memory_objects import InMemoryObjectStore, MemoryWriter
from tests.support.wave_world import WaveWorld


class FlakyStore(InMemoryObjectStore):
    """Fails the next `fail_uploads` streaming writes part-way (an S3 outage mid-upload)."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_uploads = 0

    @contextmanager
    def open_writer(self, ref: ObjectRef, content_type: str = "") -> Iterator[MemoryWriter]:
        if self.fail_uploads:
            self.fail_uploads -= 1
            raise DependencyUnavailable("s3", "upload interrupted")
        with super().open_writer(ref, content_type) as writer:
            yield writer


MARKETS = [("m1", "A", 4, "external"), ("m2", "B", 3, "TM"), ("m3", "C", 5, "external")]

fans_strategy = st.lists(
    st.tuples(
        st.floats(0, 1),
        st.lists(st.sampled_from(["m1", "m2", "m3", "mx"]), min_size=1, max_size=3),
    ),
    max_size=40,
)


def world(fans: list[tuple[float, list[str]]]) -> WaveWorld:
    rows: list[EligibleFan | str] = [
        EligibleFan(f"g{i:03d}", score, tuple(markets), email=f"f{i}@example.com")
        for i, (score, markets) in enumerate(fans)
    ]
    return WaveWorld(list(MARKETS), rows, store=FlakyStore())


def placements(w: WaveWorld) -> dict[str, list[str]]:
    with zipfile.ZipFile(io.BytesIO(w.store.objects[w.zip_ref])) as archive:
        files = {m: archive.read(f"masterCodes/{m}.csv").decode() for m, *_ in MARKETS}
    return {m: [line.split(",")[0] for line in text.splitlines()[1:]] for m, text in files.items()}


@given(
    fans_strategy,
    st.sampled_from(["codes", "fans", "upload"]),
    st.integers(min_value=1, max_value=6),
    st.booleans(),
)
def test_a_failed_attempt_then_a_retry_gives_the_clean_runs_wave(
    fans: list[tuple[float, list[str]]], fault: str, at: int, order_by_preference: bool
) -> None:
    clean = world(fans)
    assert isinstance(clean.run(reserve_batch=2, order_by_preference=order_by_preference), Success)

    flaky = world(fans)
    if fault == "codes":
        flaky.inventory.fail_calls = {at}
    elif fault == "fans":
        flaky.source.fail_after = at
    else:
        flaky.store.fail_uploads = 1  # type: ignore[attr-defined]
    first = flaky.run(reserve_batch=2, order_by_preference=order_by_preference)
    if isinstance(first, Failure):
        assert first.failure().retryable and flaky.zip_ref not in flaky.store.objects
        second = flaky.run(reserve_batch=2, order_by_preference=order_by_preference)
        assert isinstance(second, Success) and second.unwrap().attempt == 2
    assert placements(flaky) == placements(clean)
    placed = Counter(g for ids in placements(flaky).values() for g in ids)
    assert set(placed.values()) <= {1}
    reserved = flaky.inventory.reserved
    assert len(reserved) == len(set(reserved))
    external = sum(len(placements(flaky)[m]) for m in ("m1", "m3"))
    assert len(reserved) == external  # nothing reserved beyond what the fans needed
