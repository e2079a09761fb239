"""The Lambda ordering rule: a shard stops at its first failure, reported with all after it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from domain.backoff import no_wait
from streams.lambda_kinesis import handle_kinesis_event
from tests.support.stream_fakes import ScriptedWorker, json_payloads, kinesis_event

shard_plans = st.lists(
    # (records in the shard, failure position as a fraction of it or None)
    st.tuples(st.integers(1, 30), st.one_of(st.none(), st.floats(0, 0.999))),
    min_size=1,
    max_size=4,
)


def _build(plans: list[tuple[int, float | None]]):  # type: ignore[no-untyped-def]
    shards = {f"shardId-{i:012d}": json_payloads(n) for i, (n, _) in enumerate(plans)}
    event, per_shard = kinesis_event(shards)
    failing: dict[str, int] = {}
    for (shard_id, sequences), (_n, fraction) in zip(per_shard.items(), plans, strict=True):
        if fraction is not None:
            failing[shard_id] = int(fraction * len(sequences))
    return event, per_shard, failing


@given(plans=shard_plans)
def test_reported_failures_are_exactly_the_failed_record_and_all_after_it(
    plans: list[tuple[int, float | None]],
) -> None:
    event, per_shard, failing = _build(plans)
    worker = ScriptedWorker(failing=frozenset(per_shard[s][p] for s, p in failing.items()))
    result = handle_kinesis_event(event, worker, chunk_size=1, backoff=no_wait(retries=1))
    expected = [
        sequence
        for shard_id, sequences in per_shard.items()
        if shard_id in failing
        for sequence in sequences[failing[shard_id] :]
    ]
    assert sorted(result.failed_sequence_numbers) == sorted(expected)
    # Everything before each failure was handled, once, in shard order; nothing after it.
    handled_expected = [
        sequence
        for shard_id, sequences in per_shard.items()
        for sequence in sequences[: failing.get(shard_id, len(sequences))]
    ]
    assert sorted(worker.handled) == sorted(handled_expected)
    assert len(worker.handled) == len(set(worker.handled))
    for sequences in per_shard.values():
        seen = [s for s in worker.handled if s in set(sequences)]
        assert seen == sorted(seen)


@given(plans=shard_plans, chunk=st.integers(1, 8))
def test_with_chunks_the_report_starts_at_the_failed_chunk(
    plans: list[tuple[int, float | None]], chunk: int
) -> None:
    event, per_shard, failing = _build(plans)
    worker = ScriptedWorker(failing=frozenset(per_shard[s][p] for s, p in failing.items()))
    result = handle_kinesis_event(event, worker, chunk_size=chunk, backoff=no_wait(retries=0))
    reported = set(result.failed_sequence_numbers)
    for shard_id, sequences in per_shard.items():
        if shard_id not in failing:
            assert reported.isdisjoint(sequences)
            continue
        start = failing[shard_id] // chunk * chunk
        # The failed record is reported, with everything after it; nothing handled is reported.
        assert [s for s in sequences if s in reported] == sequences[start:]
        assert set(sequences[:start]) <= set(worker.handled)
    assert reported.isdisjoint(worker.handled)
