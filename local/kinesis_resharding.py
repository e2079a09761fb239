"""Resharding in the embedded emulator as Kinesis does it (moto 5.2.5 gets it wrong).

What moto 5.2.5 does, and what Kinesis documents instead (each fixed here, each tested in
tests/integration/test_emulator_resharding.py against the documented behaviour):

- Puts go to a shard by hash key whether it is open or not (`Stream.get_shard_for_key` ignores
  `is_open`), and the ranges are read as half-open although Kinesis's are inclusive (a key equal
  to a shard's EndingHashKey finds no shard). Kinesis: a record goes to the one *open* shard
  whose [StartingHashKey, EndingHashKey] holds the MD5 of its partition key (or its
  ExplicitHashKey).
- SplitShard re-puts the parent's records through the stream, and MergeShards *copies* both
  parents' records into the child. Kinesis: a split or merge closes the parents and creates
  empty children; the parents keep their records (readable until retention expires). A consumer
  that follows lineage would read every copied record twice. MergeShards also accepts two shards
  that are not adjacent in one direction and builds the wrong range in the other.
- GetRecords on a closed shard read to its end still returns a NextShardIterator and never
  ChildShards. Kinesis: "If set to null, the shard has been closed and the requested iterator
  does not return any more data", and ChildShards "returned ... only when the end of the current
  shard is reached", each child naming all its parents (two for a merge).
- ListShards ignores ShardFilter (and ExclusiveStartShardId). Kinesis: AFTER_SHARD_ID,
  AT_TRIM_HORIZON, FROM_TRIM_HORIZON, AT_LATEST, AT_TIMESTAMP, FROM_TIMESTAMP. Nothing expires in
  the emulator, so the trim horizon is the stream's creation.

Applied the way the linear-lookup fix is (local/moto_patch.py): each replaced method's moto 5.2.5
source is fingerprinted, and if any differs nothing here is applied (stock moto, with a warning)
and `RESHARDING_FIX.status()` says why; a test fails in that case so the fix is revisited.
Shards record when they opened and closed (attributes this module sets on moto's Shard objects:
`opened_at`, `closed_at`), which the timestamp filters need.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from local.moto_patch import MotoPatch

log = logging.getLogger(__name__)


def _classes() -> dict[str, type]:
    from moto.kinesis.models import KinesisBackend, Stream
    from moto.kinesis.responses import KinesisResponse

    return {"Stream": Stream, "KinesisBackend": KinesisBackend, "KinesisResponse": KinesisResponse}


# --- shard bookkeeping ------------------------------------------------------------------------


def _opened_at(stream: Any, shard: Any) -> float:
    opened = getattr(shard, "opened_at", None)
    return float(opened) if opened is not None else stream.creation_datetime.timestamp()


def _closed_at(shard: Any) -> float | None:
    if shard.is_open:
        return None
    closed = getattr(shard, "closed_at", None)
    return float(closed) if closed is not None else 0.0


def _close(shard: Any, now: float) -> None:
    shard.is_open = False
    setattr(shard, "closed_at", now)  # noqa: B010


def _next_index(stream: Any) -> int:
    return int(max(s._shard_id for s in stream.shards.values())) + 1


def children_of(stream: Any, shard_id: str) -> list[Any]:
    """The shards whose parent (or adjacent parent) is `shard_id`."""
    return [
        s for s in stream.shards.values() if shard_id in (s.parent, s.adjacent_parent) and s.parent
    ]


def child_shards_json(stream: Any, shard_id: str) -> list[dict[str, Any]]:
    """GetRecords' ChildShards: each child with every parent it has (two for a merge)."""
    return [
        {
            "ShardId": child.shard_id,
            "ParentShards": [p for p in (child.parent, child.adjacent_parent) if p],
            "HashKeyRange": {
                "StartingHashKey": str(child.starting_hash),
                "EndingHashKey": str(child.ending_hash),
            },
        }
        for child in children_of(stream, shard_id)
    ]


# --- the replacements -------------------------------------------------------------------------


def get_shard_for_key(self: Any, partition_key: str, explicit_hash_key: str) -> Any:
    """The open shard whose inclusive hash range holds the key (Kinesis routes only to open
    shards; moto also routed to closed parents, and missed keys equal to an EndingHashKey)."""
    from moto.kinesis.exceptions import InvalidArgumentError
    from moto.utilities.utils import md5_hash

    if not isinstance(partition_key, str) or len(partition_key) > 256:
        raise InvalidArgumentError("partition_key")
    if explicit_hash_key:
        if not isinstance(explicit_hash_key, str):
            raise InvalidArgumentError("explicit_hash_key")
        key = int(explicit_hash_key)
        if not 0 <= key < 2**128:
            raise InvalidArgumentError("explicit_hash_key")
    else:
        key = int(md5_hash(partition_key.encode("utf-8")).hexdigest(), 16)
    for shard in self.shards.values():
        if shard.is_open and shard.starting_hash <= key <= shard.ending_hash:
            return shard
    return None


def split_shard(self: Any, shard_to_split: str, new_starting_hash_key: str) -> None:
    """Closes the parent and opens two empty children; the parent keeps its records."""
    from moto.kinesis.exceptions import InvalidArgumentError
    from moto.kinesis.models import Shard

    new_start = int(new_starting_hash_key)
    shard = self.shards[shard_to_split]
    if not shard.is_open:
        raise InvalidArgumentError(
            message=f"Shard {shard.shard_id} in stream {self.stream_name} under account "
            f"{self.account_id} has already been merged or split, and thus is not eligible "
            "for merging or splitting."
        )
    if not shard.starting_hash < new_start <= shard.ending_hash:
        raise InvalidArgumentError(
            message=f"NewStartingHashKey {new_start} used in SplitShard() on shard "
            f"{shard_to_split} in stream {self.stream_name} under account {self.account_id} "
            f"is not both greater than the shard's StartingHashKey {shard.starting_hash} and "
            f"at most its EndingHashKey {shard.ending_hash}."
        )
    now = time.time()
    index = _next_index(self)
    low = Shard(index, shard.starting_hash, new_start - 1, parent=shard.shard_id)
    high = Shard(index + 1, new_start, shard.ending_hash, parent=shard.shard_id)
    for child in (low, high):
        setattr(child, "opened_at", now)  # noqa: B010 (moto's Shard has no such attribute)
        self.shards[child.shard_id] = child
    _close(shard, now)


def merge_shards(self: Any, shard_to_merge: str, adjacent_shard_to_merge: str) -> None:
    """Closes both parents and opens one empty child over both ranges; nothing is copied.

    The child's ParentShardId is `shard_to_merge`, its AdjacentParentShardId the other one
    (as Kinesis names them)."""
    from moto.kinesis.exceptions import InvalidArgumentError
    from moto.kinesis.models import Shard

    first = self.shards[shard_to_merge]
    second = self.shards[adjacent_shard_to_merge]
    if not (first.is_open and second.is_open):
        closed = first if not first.is_open else second
        raise InvalidArgumentError(
            message=f"Shard {closed.shard_id} in stream {self.stream_name} under account "
            f"{self.account_id} has already been merged or split, and thus is not eligible "
            "for merging or splitting."
        )
    if first.ending_hash + 1 == second.starting_hash:
        low, high = first, second
    elif second.ending_hash + 1 == first.starting_hash:
        low, high = second, first
    else:
        raise InvalidArgumentError(
            message=f"Shards {shard_to_merge} and {adjacent_shard_to_merge} in stream "
            f"{self.stream_name} under account {self.account_id} are not an adjacent pair of "
            "shards eligible for merging"
        )
    now = time.time()
    child = Shard(
        _next_index(self),
        low.starting_hash,
        high.ending_hash,
        parent=first.shard_id,
        adjacent_parent=second.shard_id,
    )
    setattr(child, "opened_at", now)  # noqa: B010
    self.shards[child.shard_id] = child
    _close(first, now)
    _close(second, now)


def backend_get_records(
    self: Any, stream_arn: str | None, shard_iterator: str, limit: int | None
) -> tuple[str | None, list[Any], int]:
    """moto's GetRecords, with no next iterator once a closed shard is read to its end."""
    from moto.kinesis.utils import compose_shard_iterator, decompose_shard_iterator

    stream_name, shard_id, last_sequence_id = decompose_shard_iterator(shard_iterator)
    stream = self.describe_stream(stream_arn=stream_arn, stream_name=stream_name)
    shard = stream.get_shard(shard_id)
    records, last, millis_behind = shard.get_records(last_sequence_id, limit)
    if not shard.is_open and int(last) >= shard.get_max_sequence_number():
        return None, records, millis_behind
    return compose_shard_iterator(stream_name, shard, last), records, millis_behind


def response_get_records(self: Any) -> Any:
    """GetRecords' answer: at a closed shard's end, no NextShardIterator and its ChildShards."""
    from moto.core.responses import ActionResult
    from moto.kinesis.utils import decompose_shard_iterator

    stream_arn = self._get_param("StreamARN")
    shard_iterator = self._get_param("ShardIterator")
    limit = self._get_param("Limit")
    next_iterator, records, millis_behind = self.kinesis_backend.get_records(
        stream_arn, shard_iterator, limit
    )
    answer: dict[str, Any] = {
        "Records": [record.to_json() for record in records],
        "MillisBehindLatest": millis_behind,
    }
    if next_iterator is not None:
        answer["NextShardIterator"] = next_iterator
    else:
        stream_name, shard_id, _ = decompose_shard_iterator(shard_iterator)
        stream = self.kinesis_backend.describe_stream(
            stream_arn=stream_arn, stream_name=stream_name
        )
        answer["ChildShards"] = child_shards_json(stream, shard_id)
    return ActionResult(answer)


def _seconds(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


def filtered_shards(stream: Any, shard_filter: dict[str, Any] | None) -> list[Any]:
    """ListShards' ShardFilter, as the Kinesis API reference defines each type."""
    shards = sorted(stream.shards.values(), key=lambda s: s.shard_id)
    if not shard_filter:
        return shards
    kind = shard_filter.get("Type")
    if kind == "AFTER_SHARD_ID":
        after = str(shard_filter.get("ShardId") or "")
        return [s for s in shards if s.shard_id > after]
    if kind == "FROM_TRIM_HORIZON":
        return shards
    if kind == "AT_TRIM_HORIZON":
        # Open at the trim horizon; nothing expires here, so: the stream's first shards.
        return [s for s in shards if getattr(s, "opened_at", None) is None]
    if kind == "AT_LATEST":
        return [s for s in shards if s.is_open]
    if kind in ("AT_TIMESTAMP", "FROM_TIMESTAMP"):
        at = _seconds(shard_filter.get("Timestamp"))

        def open_since(shard: Any) -> bool:
            closed = _closed_at(shard)
            return closed is None or closed > at

        if kind == "FROM_TIMESTAMP":  # open at the timestamp or opened after it
            return [s for s in shards if open_since(s)]
        return [s for s in shards if _opened_at(stream, s) <= at and open_since(s)]
    from moto.kinesis.exceptions import InvalidArgumentError

    raise InvalidArgumentError(f"ShardFilter Type {kind!r} is not supported")


def response_list_shards(self: Any) -> Any:
    """ListShards with ShardFilter and ExclusiveStartShardId (moto ignored both)."""
    from moto.core.responses import ActionResult

    stream_arn = self._get_param("StreamARN")
    stream_name = self._get_param("StreamName")
    next_token = self._get_param("NextToken")
    max_results = self._get_param("MaxResults", 10000)
    shard_filter = self._get_param("ShardFilter")
    exclusive_start = self._get_param("ExclusiveStartShardId")
    if next_token:
        # The token names the stream and the last shard listed (shards are in id order);
        # Kinesis forbids StreamName beside NextToken, so the token must carry it.
        stream_name, _, after = base64.urlsafe_b64decode(next_token).decode().rpartition("/")
        stream = self.kinesis_backend.describe_stream(stream_arn=None, stream_name=stream_name)
        shards = [s for s in filtered_shards(stream, shard_filter) if s.shard_id > after]
    else:
        stream = self.kinesis_backend.describe_stream(
            stream_arn=stream_arn, stream_name=stream_name
        )
        shards = filtered_shards(stream, shard_filter)
    if exclusive_start:
        shards = [s for s in shards if s.shard_id > exclusive_start]
    page = shards[: int(max_results)]
    answer: dict[str, Any] = {"Shards": [s.to_json() for s in page]}
    if len(page) < len(shards):
        token = f"{stream.stream_name}/{page[-1].shard_id}".encode()
        answer["NextToken"] = base64.urlsafe_b64encode(token).decode()
    return ActionResult(answer)


PATCHES: dict[str, Callable[..., Any]] = {
    "Stream.get_shard_for_key": get_shard_for_key,
    "Stream.split_shard": split_shard,
    "Stream.merge_shards": merge_shards,
    "KinesisBackend.get_records": backend_get_records,
    "KinesisResponse.get_records": response_get_records,
    "KinesisResponse.list_shards": response_list_shards,
}

# "Class.method" -> fingerprint() of inspect.getsource() of the method replaced, in moto 5.2.5.
ORIGINAL_FINGERPRINTS: dict[str, str] = {
    "Stream.get_shard_for_key": "4ef3be70391e2a8c67b0ad1902a50e75",
    "Stream.split_shard": "be63bfceacc559680f712ec2fa35f736",
    "Stream.merge_shards": "b490bf5802c8a06b1b6559e0cff19992",
    "KinesisBackend.get_records": "15d3ac1f7c0c122981ad952292bc55d0",
    "KinesisResponse.get_records": "ff064b0a1a6eb9440472b92c832ad22c",
    "KinesisResponse.list_shards": "c7e38c9ccb044929295a600f564a5de8",
}


RESHARDING_FIX = MotoPatch(
    "kinesis resharding",
    __name__,
    _classes,
    replacements=PATCHES,
    fingerprints=ORIGINAL_FINGERPRINTS,
)
