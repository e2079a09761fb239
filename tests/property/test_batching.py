"""Batching within Kinesis limits: every record lands in exactly one place, no batch too big."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.aws.kinesis_limits import (
    KINESIS_LIMITS,
    MIB,
    Batch,
    BatchLimits,
    record_size,
    rejection_reason,
    split_batches,
)
from domain.models import RejectedRecord, StreamRecord


@st.composite
def limits(draw: st.DrawFn) -> BatchLimits:
    max_bytes = draw(st.integers(1, 200))
    return BatchLimits(
        max_records=draw(st.integers(1, 12)),
        max_bytes=max_bytes,
        max_record_bytes=draw(st.integers(1, max_bytes)),
        max_partition_key_chars=draw(st.integers(1, 6)),
    )


records_strategy = st.lists(
    st.builds(
        StreamRecord,
        partition_key=st.text(min_size=0, max_size=8),
        data=st.binary(max_size=220),
    ),
    max_size=120,
)


def flatten(batches: list[Batch]) -> tuple[list[StreamRecord], list[str]]:
    sent = [record for batch in batches for record in batch.records]
    rejected_keys = [reject.partition_key for batch in batches for reject in batch.rejected]
    return sent, rejected_keys


@given(records_strategy, limits())
def test_every_record_is_in_exactly_one_batch_or_rejected_in_order(
    records: list[StreamRecord], lim: BatchLimits
) -> None:
    batches = list(split_batches(records, lim))
    sent, rejected_keys = flatten(batches)
    expected_sent = [r for r in records if rejection_reason(r, lim) is None]
    expected_rejected = [r.partition_key for r in records if rejection_reason(r, lim) is not None]
    assert sent == expected_sent
    assert rejected_keys == expected_rejected


@given(records_strategy, limits())
def test_no_batch_exceeds_a_limit(records: list[StreamRecord], lim: BatchLimits) -> None:
    for batch in split_batches(records, lim):
        assert len(batch.records) <= lim.max_records
        assert batch.size_bytes == sum(record_size(r) for r in batch.records)
        assert batch.size_bytes <= lim.max_bytes
        for record in batch.records:
            assert record_size(record) <= lim.max_record_bytes
            assert 1 <= len(record.partition_key) <= lim.max_partition_key_chars
        assert batch.records or batch.rejected, "no empty batches"


@given(records_strategy, limits())
def test_batches_are_only_cut_when_a_limit_forces_it(
    records: list[StreamRecord], lim: BatchLimits
) -> None:
    """No needlessly small calls: each batch but the last is full by count, or the next record
    would not have fit by bytes, or a run of rejects forced the cut."""
    batches = list(split_batches(records, lim))
    for current, following in itertools.pairwise(batches):
        if not following.records:
            continue
        full_by_count = len(current.records) == lim.max_records
        full_by_bytes = current.size_bytes + record_size(following.records[0]) > lim.max_bytes
        cut_by_rejects = len(current.rejected) == lim.max_records
        assert full_by_count or full_by_bytes or cut_by_rejects


@given(st.integers(0, 60), limits())
def test_consumes_lazily_one_batch_ahead_at_most(count: int, lim: BatchLimits) -> None:
    pulled = 0

    def source() -> Iterator[StreamRecord]:
        nonlocal pulled
        for i in range(count):
            pulled += 1
            yield StreamRecord("k", bytes([i % 256]))

    batches = split_batches(source(), lim)
    first = next(batches, None)
    if first is None:
        assert count == 0
        return
    # A batch is cut when full, or on seeing the first record that does not fit (one ahead).
    assert pulled <= len(first.records) + len(first.rejected) + 1


def test_real_limits_cut_by_count_at_500() -> None:
    records = [StreamRecord(f"k{i}", b"x" * 10) for i in range(1_201)]
    sizes = [len(b.records) for b in split_batches(records)]
    assert sizes == [500, 500, 201]


def test_real_limits_cut_by_bytes_at_5_mib() -> None:
    one_mib_record = StreamRecord("k", b"x" * (MIB - 1))  # exactly 1 MiB with its key
    assert record_size(one_mib_record) == MIB
    batches = list(split_batches([one_mib_record] * 11))
    assert [len(b.records) for b in batches] == [5, 5, 1]
    assert all(b.size_bytes <= 5 * MIB for b in batches)


def test_record_over_1_mib_is_a_reject_with_a_reason_not_a_crash() -> None:
    records = [
        StreamRecord("ok", b"small"),
        StreamRecord("big", b"x" * MIB),  # 1 MiB of data + 3 key bytes
        StreamRecord("", b"no key"),
        StreamRecord("k" * 257, b"long key"),
        StreamRecord("é" * 10, b"x" * (MIB - 20)),  # key counted in UTF-8 bytes: exactly 1 MiB
    ]
    batches = list(split_batches(records, KINESIS_LIMITS))
    sent, _ = flatten(batches)
    assert [r.partition_key for r in sent] == ["ok", "é" * 10]
    reasons = {rej.partition_key: rej.reason for b in batches for rej in b.rejected}
    assert set(reasons) == {"big", "", "k" * 257}
    assert "1048579 bytes" in reasons["big"] and "1048576" in reasons["big"]
    assert "empty partition key" in reasons[""]
    assert "257 characters" in reasons["k" * 257]


def test_str_data_is_a_bug_and_raises_naming_the_record() -> None:
    with pytest.raises(TypeError, match=r"must be bytes.*'fan-1'"):
        list(split_batches([StreamRecord("fan-1", "text")]))  # type: ignore[arg-type]


def test_long_run_of_rejects_is_flushed_in_bounded_batches() -> None:
    lim = BatchLimits(max_records=3, max_bytes=10, max_record_bytes=5)
    records = [StreamRecord("k", b"x" * 50)] * 10
    batches = list(split_batches(records, lim))
    assert [len(b.rejected) for b in batches] == [3, 3, 3, 1]


def _plain_split(records: list[StreamRecord], lim: BatchLimits) -> list[Batch]:
    """split_batches as it was, one rejection_reason and record_size a record: the reference
    for the inline sizing of the common record."""
    batches: list[Batch] = []
    pending: list[StreamRecord] = []
    positions: list[int] = []
    rejected: list[RejectedRecord] = []
    size = 0
    for position, record in enumerate(records):
        reason = rejection_reason(record, lim)
        if reason is not None:
            rejected.append(RejectedRecord(record.partition_key, reason))
            if len(rejected) >= lim.max_records:
                batches.append(Batch(tuple(pending), size, tuple(rejected), tuple(positions)))
                pending, positions, size, rejected = [], [], 0, []
            continue
        if pending and size + record_size(record) > lim.max_bytes:
            batches.append(Batch(tuple(pending), size, tuple(rejected), tuple(positions)))
            pending, positions, size, rejected = [], [], 0, []
        pending.append(record)
        positions.append(position)
        size += record_size(record)
        if len(pending) >= lim.max_records:
            batches.append(Batch(tuple(pending), size, tuple(rejected), tuple(positions)))
            pending, positions, size, rejected = [], [], 0, []
    if pending or rejected:
        batches.append(Batch(tuple(pending), size, tuple(rejected), tuple(positions)))
    return batches


ascii_or_any_records = st.lists(
    st.builds(
        StreamRecord,
        partition_key=st.one_of(
            st.text(alphabet="abcXYZ019-_", max_size=8), st.text(min_size=0, max_size=8)
        ),
        data=st.binary(max_size=220),
    ),
    max_size=120,
)


@given(ascii_or_any_records, limits())
def test_batches_records_sizes_rejects_and_positions_equal_the_plain_loops(
    records: list[StreamRecord], lim: BatchLimits
) -> None:
    assert list(split_batches(records, lim)) == _plain_split(records, lim)
