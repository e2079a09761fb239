"""The producer with several PutRecords calls in flight, against a thread-safe fake Kinesis
whose answers (throttled calls, entries failing inside a 200, dropped connections) depend only
on the entry and how often it was tried, so any thread schedule meets the same faults.

Properties: every record accounted for exactly (sent once, rejected, or stranded by position);
no entry resent after it landed; no call over a limit; never more calls in flight than allowed;
records of one partition key in different batches land in input order.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import defaultdict
from typing import Any

from botocore.exceptions import ClientError, EndpointConnectionError
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.aws.kinesis import KinesisRecordStream
from adapters.aws.kinesis_limits import MIB
from domain.backoff import Backoff
from domain.models import StreamRecord


def _unit(*parts: object) -> float:
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class ConcurrentFakeKinesis:
    """PutRecords with faults drawn from (seed, entry, attempt): the same for any schedule."""

    def __init__(self, seed: int, entry_failure: float, call_failure: float) -> None:
        self.seed, self.entry_failure, self.call_failure = seed, entry_failure, call_failure
        self.lock = threading.Lock()
        self.landed: list[bytes] = []
        self.tries: dict[bytes, int] = defaultdict(int)
        self.in_flight = self.most_in_flight = 0
        self.calls: list[tuple[int, int]] = []

    def put_records(self, *, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.calls.append(
                (len(Records), sum(len(e["Data"]) + len(e["PartitionKey"]) for e in Records))
            )
            first = Records[0]["Data"]
            call_fate = _unit(self.seed, "call", first, self.tries[first])
        time.sleep(0.0005)  # let other threads' calls overlap this one
        try:
            with self.lock:
                if call_fate < self.call_failure:
                    for entry in Records:
                        self.tries[entry["Data"]] += 1
                    if call_fate < self.call_failure / 2:
                        raise EndpointConnectionError(endpoint_url="http://kinesis")
                    raise ClientError(
                        {"Error": {"Code": "ProvisionedThroughputExceededException"},
                         "ResponseMetadata": {"HTTPStatusCode": 400}},
                        "PutRecords",
                    )  # fmt: skip
                results = []
                for entry in Records:
                    data = entry["Data"]
                    attempt = self.tries[data]
                    self.tries[data] += 1
                    if _unit(self.seed, data, attempt) < self.entry_failure:
                        results.append({"ErrorCode": "ProvisionedThroughputExceededException"})
                    else:
                        self.landed.append(data)
                        results.append({"SequenceNumber": str(len(self.landed)), "ShardId": "s"})
                return {"Records": results}
        finally:
            with self.lock:
                self.in_flight -= 1


@settings(max_examples=60)
@given(
    count=st.integers(0, 2_600),
    keys=st.integers(1, 40),
    seed=st.integers(0, 2**32),
    entry_failure=st.sampled_from([0.0, 0.05, 0.3, 0.9]),
    call_failure=st.sampled_from([0.0, 0.1, 0.5]),
    in_flight=st.integers(1, 8),
    retries=st.integers(0, 6),
)
def test_concurrent_puts_account_for_every_record_and_keep_each_keys_order(
    count: int,
    keys: int,
    seed: int,
    entry_failure: float,
    call_failure: float,
    in_flight: int,
    retries: int,
) -> None:
    records = [StreamRecord(f"fan{i % keys}", f"{i:08d}".encode()) for i in range(count)]
    fake = ConcurrentFakeKinesis(seed, entry_failure, call_failure)
    stream = KinesisRecordStream(
        fake,
        "fans",
        backoff=Backoff(0.0, 0.0, retries=retries, sleep=lambda _s: None),
        max_in_flight=in_flight,
    )
    outcome = stream.put_records(iter(records))

    landed = [int(data) for data in fake.landed]
    assert len(landed) == len(set(landed)) == outcome.sent  # each landed once
    assert set(landed).isdisjoint(outcome.stranded_at)
    assert sorted([*landed, *outcome.stranded_at]) == list(range(count))  # all accounted for
    assert outcome.stranded == len(outcome.stranded_at)
    assert outcome.calls == len(fake.calls)
    assert fake.most_in_flight <= in_flight
    assert all(1 <= n <= 500 and size <= 5 * MIB for n, size in fake.calls)
    # A key's records in different batches (500 a batch here) land in input order.
    last_batch_seen: dict[str, int] = {}
    for position in landed:
        key, batch = records[position].partition_key, position // 500
        assert last_batch_seen.get(key, -1) <= batch, f"{key}: batch {batch} overtook an earlier"
        last_batch_seen[key] = batch
