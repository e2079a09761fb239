"""Pacing a producer to its stream's shards: 1,000 records/s and 1 MiB/s each.

Why: a shard takes 1,000 records or 1 MiB a second and throttles the rest (per entry, inside a
200 answer). On a 4-shard stream the serial producer already sent 2.9x what the shards accept,
so most of a run's calls were resends, each costing CPU, a backoff sleep and a call slot. Pacing
holds a batch back until every shard it writes to has room, so a run moves at the shards' rate
with few throttled entries instead of retrying its way through throttling.

How: ListShards gives each open shard's hash-key range; a record goes to the shard whose range
holds the MD5 of its partition key (as a 128-bit integer), which is how Kinesis routes it. Each
shard has two rate schedules (domain/rate.py: records, bytes), each a token bucket holding at
most one second's worth and a one-second window that never holds more than a second's worth: a
batch goes at the earliest time every schedule it needs has room for it (for a batch larger
than a second's worth: a full bucket and an empty window, then the bucket pays it back), so the
rate over any stretch of time stays at the limit. Pacing runs at `headroom` (default 0.95) of
the limits: the server's clock and ours do not agree to the millisecond, and other producers
may share the stream.

Only this process's own traffic is counted: several producers writing one stream each need a
share of the limits (`headroom`). The shard map is read once, at the first batch; a resharded
stream needs a new pacer (a stale map paces wrongly but loses nothing: throttled entries are
still resent).
"""

from __future__ import annotations

import bisect
import hashlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapters.aws.kinesis_limits import (
    SHARD_BYTES_PER_SECOND,
    SHARD_RECORDS_PER_SECOND,
    record_size,
)
from domain.models import StreamRecord
from domain.rate import RateSchedule


def hash_key(partition_key: str) -> int:
    """The 128-bit hash key Kinesis routes a partition key by."""
    return int.from_bytes(
        hashlib.md5(partition_key.encode("utf-8"), usedforsecurity=False).digest(), "big"
    )


@dataclass
class TokenBucket:
    """`rate` tokens a second, at most `rate * burst_seconds` held; time from `now`. What the
    emulator's throttling shard counts (local/kinesis_put_path.py), as Kinesis does; the
    pacer's side is domain/rate.py's RateSchedule."""

    rate: float
    burst_seconds: float = 1.0
    tokens: float = field(init=False)
    stamp: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.tokens = self.capacity
        self.stamp = -1.0  # "never refilled": set at the first look

    @property
    def capacity(self) -> float:
        return self.rate * self.burst_seconds

    def refill(self, now: float) -> None:
        if self.stamp >= 0:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_needed(self, amount: float, now: float) -> float:
        """Seconds until `amount` (or a full bucket, if more) can be taken."""
        self.refill(now)
        need = min(amount, self.capacity)
        return max(0.0, (need - self.tokens) / self.rate)

    def take(self, amount: float) -> None:
        self.tokens -= amount


class ShardMap:
    """Open shards by hash-key range (from ListShards)."""

    def __init__(self, shard_ids: Sequence[str], starting_hash_keys: Sequence[int]) -> None:
        order = sorted(range(len(shard_ids)), key=lambda i: starting_hash_keys[i])
        self.shard_ids = [shard_ids[i] for i in order]
        self.starts = [starting_hash_keys[i] for i in order]

    @classmethod
    def from_client(cls, client: Any, stream_name: str) -> ShardMap:
        ids: list[str] = []
        starts: list[int] = []
        kwargs: dict[str, Any] = {"StreamName": stream_name}
        while True:
            answer = client.list_shards(**kwargs)
            for shard in answer.get("Shards", []):
                if "EndingSequenceNumber" in shard.get("SequenceNumberRange", {}):
                    continue  # closed: takes no more records
                ids.append(shard["ShardId"])
                starts.append(int(shard["HashKeyRange"]["StartingHashKey"]))
            token = answer.get("NextToken")
            if not token:
                break
            kwargs = {"NextToken": token}
        if not ids:
            raise ValueError(f"stream {stream_name!r} has no open shard")
        return cls(ids, starts)

    def shard_for(self, partition_key: str) -> str:
        return self.shard_ids[max(0, bisect.bisect_right(self.starts, hash_key(partition_key)) - 1)]


class ShardPacer:
    """Holds batches back to the shards' limits (module docstring). Thread-safe."""

    def __init__(
        self,
        shards: Callable[[], ShardMap],
        *,
        records_per_second: float = SHARD_RECORDS_PER_SECOND,
        bytes_per_second: float = SHARD_BYTES_PER_SECOND,
        headroom: float = 0.95,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 0 < headroom <= 1:
            raise ValueError(f"headroom must be in (0, 1], got {headroom}")
        self._load_shards = shards
        self._map: ShardMap | None = None
        self.records_per_second = records_per_second * headroom
        self.bytes_per_second = bytes_per_second * headroom
        self.clock, self.sleep = clock, sleep
        self._schedules: dict[str, tuple[RateSchedule, RateSchedule]] = {}
        self._lock = threading.Lock()
        self.waited_seconds = 0.0

    def _schedules_of(self, shard_id: str) -> tuple[RateSchedule, RateSchedule]:
        schedules = self._schedules.get(shard_id)
        if schedules is None:
            schedules = (
                RateSchedule(self.records_per_second, oversize="debt"),
                RateSchedule(self.bytes_per_second, oversize="debt"),
            )
            self._schedules[shard_id] = schedules
        return schedules

    def wait_for(self, records: Sequence[StreamRecord]) -> None:
        """Blocks until every shard `records` go to has room for them, having taken it.
        Batches are given their times in the order they ask (under the lock, which is not held
        while waiting)."""
        with self._lock:
            if self._map is None:
                self._map = self._load_shards()
            counts: Counter[str] = Counter()
            sizes: Counter[str] = Counter()
            for record in records:
                shard = self._map.shard_for(record.partition_key)
                counts[shard] += 1
                sizes[shard] += record_size(record)
            now = self.clock()
            at = now
            for shard, count in counts.items():
                by_count, by_size = self._schedules_of(shard)
                at = max(at, by_count.earliest(count, now), by_size.earliest(sizes[shard], now))
            for shard, count in counts.items():
                by_count, by_size = self._schedules_of(shard)
                by_count.take(count, at)
                by_size.take(sizes[shard], at)
            if at > now:
                self.waited_seconds += at - now
        if at > now:
            self.sleep(at - now)
