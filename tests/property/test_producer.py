"""The Kinesis producer under any pattern of per-entry failures and whole-call failures.

A hand-written fake Kinesis client, driven by hypothesis, answers each PutRecords call with:
throttling or a dropped connection (nothing lands), or a 200 in which an arbitrary subset of
entries failed. Properties: nothing lost, nothing duplicated, no entry resent after it
succeeded, stranded counted exactly, the input always drained, no call over a limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from adapters.aws.kinesis import KinesisPutFailed, KinesisRecordStream
from adapters.aws.kinesis_limits import MIB, rejection_reason
from domain.backoff import Backoff
from domain.models import StreamRecord

THROTTLED = "ProvisionedThroughputExceededException"


def throttling_error() -> ClientError:
    return ClientError(
        {
            "Error": {"Code": THROTTLED, "Message": "Rate exceeded for shard"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        "PutRecords",
    )


def server_error() -> ClientError:
    return ClientError(
        {"Error": {"Code": "InternalFailure"}, "ResponseMetadata": {"HTTPStatusCode": 500}},
        "PutRecords",
    )


class FakeKinesis:
    """Speaks boto3's put_records shape. `decide(entries)` says what each call does."""

    def __init__(self, decide: Any) -> None:
        self.decide = decide
        self.delivered: list[str] = []  # partition keys of entries that landed, in order
        self.attempts: dict[str, list[bool]] = {}  # key -> outcome of each time it was sent
        self.calls: list[tuple[int, int, int]] = []  # (entries, total bytes, largest entry)

    def put_records(self, *, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        sizes = [len(e["Data"]) + len(e["PartitionKey"].encode()) for e in Records]
        self.calls.append((len(Records), sum(sizes), max(sizes)))
        decision = self.decide(Records)
        if isinstance(decision, BaseException):
            for entry in Records:
                self.attempts.setdefault(entry["PartitionKey"], []).append(False)
            raise decision
        results: list[dict[str, str]] = []
        for index, entry in enumerate(Records):
            key = entry["PartitionKey"]
            failed = index in decision
            self.attempts.setdefault(key, []).append(not failed)
            if failed:
                results.append({"ErrorCode": THROTTLED, "ErrorMessage": "slow down"})
            else:
                self.delivered.append(key)
                results.append({"SequenceNumber": str(len(self.delivered)), "ShardId": "s-0"})
        return {"FailedRecordCount": len(decision), "Records": results}


SPECIAL_SIZES = st.sampled_from([MIB - 40, MIB + 1, 900_000, 3 * MIB // 2, 0])


@st.composite
def inputs(draw: st.DrawFn) -> list[StreamRecord]:
    """Up to 1,300 records with unique keys; a few near or over the 1 MiB limit, a few keyless."""
    count = draw(st.integers(0, 1_300))
    special = draw(st.dictionaries(st.integers(0, max(count - 1, 0)), SPECIAL_SIZES, max_size=8))
    keyless = draw(st.sets(st.integers(0, max(count - 1, 0)), max_size=2))
    records = []
    for i in range(count):
        size = special.get(i, 300)
        key = f"r{i}"
        if i in keyless:
            key = ""
        records.append(StreamRecord(key, key.encode().ljust(size, b"x")))
    return records


def call_behaviour(data: st.DataObject) -> Any:
    def decide(entries: list[dict[str, Any]]) -> Any:
        n = len(entries)
        return data.draw(
            st.one_of(
                st.just(frozenset()),  # all landed
                st.builds(throttling_error),
                st.builds(server_error),
                st.builds(lambda: EndpointConnectionError(endpoint_url="http://kinesis")),
                st.builds(lambda: ReadTimeoutError(endpoint_url="http://kinesis")),
                st.frozensets(st.integers(0, n - 1), max_size=n),  # some failed inside a 200
                st.just(frozenset(range(n))),  # all failed inside a 200
            ),
            label="call",
        )

    return decide


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=inputs(), retries=st.integers(0, 4), data=st.data())
def test_nothing_lost_nothing_duplicated_stranded_counted_exactly(
    records: list[StreamRecord], retries: int, data: st.DataObject
) -> None:
    fake = FakeKinesis(call_behaviour(data))
    slept: list[float] = []
    stream = KinesisRecordStream(
        fake,
        "fans",
        backoff=Backoff(0.01, 1.0, retries=retries, sleep=slept.append, random=lambda: 0.5),
        max_in_flight=1,  # the fake draws each call's fate from hypothesis: one thread
    )
    pulled = 0

    def source() -> Iterator[StreamRecord]:
        nonlocal pulled
        for record in records:
            pulled += 1
            yield record

    outcome = stream.put_records(source())

    # The whole input is consumed, even after a batch is stranded (callers' side effects finish).
    assert pulled == len(records)
    assert outcome.received == len(records)

    # Never duplicated, and nothing landed that was not given.
    assert len(fake.delivered) == len(set(fake.delivered))
    sendable = [r.partition_key for r in records if rejection_reason(r) is None]
    assert set(fake.delivered) <= set(sendable)
    assert outcome.sent == len(fake.delivered)

    # Rejected are exactly the records that can never be sent, each with a reason.
    unsendable = [r.partition_key for r in records if rejection_reason(r) is not None]
    assert [rej.partition_key for rej in outcome.rejected] == unsendable
    assert all(rej.reason for rej in outcome.rejected)

    # Stranded is exactly what did not land, named by position; zero means everything landed.
    assert outcome.stranded == len(sendable) - len(fake.delivered)
    stranded_keys = {records[i].partition_key for i in outcome.stranded_at}
    assert stranded_keys == set(sendable) - set(fake.delivered)
    if outcome.stranded == 0:
        assert sorted(fake.delivered) == sorted(sendable)

    # An entry is never sent again once it has succeeded.
    for key, tries in fake.attempts.items():
        assert tries.count(True) <= 1, key
        if True in tries:
            assert tries[-1] is True, f"{key} was resent after it succeeded"

    # No call over a limit.
    for entries, total, largest in fake.calls:
        assert 1 <= entries <= 500
        assert total <= 5 * MIB
        assert largest <= MIB

    assert outcome.calls == len(fake.calls)
    assert outcome.retries == len(slept)
    assert all(0 < s <= 0.5 for s in slept)
    event(f"stranded: {outcome.stranded > 0}")
    event(f"calls: {'many' if len(fake.calls) > 3 else len(fake.calls)}")
    event(f"over 500 records: {len(records) > 500}")


def test_resends_only_the_entries_that_failed_inside_a_200() -> None:
    script = iter([frozenset({1, 3}), frozenset({0}), frozenset()])
    fake = FakeKinesis(lambda entries: next(script))
    slept: list[float] = []
    stream = KinesisRecordStream(
        fake, "fans", backoff=Backoff(sleep=slept.append, random=lambda: 0.5)
    )
    outcome = stream.put_records(StreamRecord(f"r{i}", b"x") for i in range(5))
    assert [n for n, _, _ in fake.calls] == [5, 2, 1]
    assert fake.delivered == ["r0", "r2", "r4", "r3", "r1"]
    assert (outcome.sent, outcome.stranded, outcome.calls, outcome.retries) == (5, 0, 3, 2)
    # Both rounds made progress, so each retry waits from the start of the backoff curve.
    assert slept == [0.5 * 0.05, 0.5 * 0.05]


def test_budget_exhausted_strands_the_batch_and_everything_after_it() -> None:
    fake = FakeKinesis(lambda entries: throttling_error())
    stream = KinesisRecordStream(
        fake, "fans", backoff=Backoff(retries=2, sleep=lambda s: None), max_in_flight=1
    )
    records = [StreamRecord(f"r{i}", b"x") for i in range(1_200)] + [StreamRecord("", b"x")]
    outcome = stream.put_records(iter(records))
    assert (outcome.sent, outcome.stranded, len(outcome.rejected)) == (0, 1_200, 1)
    assert outcome.stranded_at == tuple(range(1_200))
    assert len(fake.calls) == 3  # the first batch, tried 1 + 2 times; later batches never sent


@pytest.mark.parametrize(
    ("code", "status"), [("ResourceNotFoundException", 400), ("AccessDeniedException", 400)]
)
def test_configuration_errors_raise_at_once_naming_the_stream(code: str, status: int) -> None:
    error = ClientError(
        {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutRecords"
    )
    fake = FakeKinesis(lambda entries: error)
    stream = KinesisRecordStream(fake, "fans", backoff=Backoff())
    with pytest.raises(KinesisPutFailed, match=f"'fans'.*{code}"):
        stream.put_records([StreamRecord("k", b"x")])
    assert len(fake.calls) == 1


def test_a_response_that_does_not_match_the_request_is_refused() -> None:
    class Short(FakeKinesis):
        def put_records(self, *, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
            return {"FailedRecordCount": 0, "Records": []}

    stream = KinesisRecordStream(Short(None), "fans", backoff=Backoff())
    with pytest.raises(KinesisPutFailed, match="0 results for 2 entries"):
        stream.put_records([StreamRecord("a", b"x"), StreamRecord("b", b"y")])
