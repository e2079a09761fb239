"""Priming a local endpoint's KCL lease table: an explicit, local-only step before a cold start.

Why: a KCL 3 worker that finds its lease table empty waits a random 0-30 s (checking every
3 s) before it syncs shards into leases, so every cold start against a fresh emulator costs up
to half a minute. Lease rows already there skip that wait.

Correct for any lineage (issue 7: priming only the open shards of a split and merged stream made
the KCL take the children as the frontier and never read the parents, 3,747 of 5,000 records
lost): from TRIM_HORIZON every shard still holds unread records, so every shard gets a lease,
closed ones included, each naming all its parents (`parentShardId`, both for a merge); the KCL
then reads a child only once its parents' leases are checkpointed SHARD_END.

Only on a table this step creates, or one with no lease at all: the KCL deletes the leases of
finished parents, and re-adding one to a table in use would read its records a second time.
Not done for other initial positions when any shard is closed (a LATEST start has no use for
a closed parent, and the KCL's own sync is then right), nor against real AWS at all: the caller
passes the ClientFactory of a local endpoint, or nothing happens.
"""

from __future__ import annotations

import logging
from typing import Any

from adapters.aws.clients import ClientFactory

_log = logging.getLogger(__name__)


def _create_table(dynamodb: Any, table: str) -> bool:
    """Creates the lease table; False when it was already there."""
    try:
        dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "leaseKey", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "leaseKey", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except dynamodb.exceptions.ResourceInUseException:
        return False
    dynamodb.get_waiter("table_exists").wait(TableName=table)
    return True


def _lease(shard: dict[str, Any], listed: set[str], position: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "leaseKey": {"S": shard["ShardId"]},
        "checkpoint": {"S": position},
        "checkpointSubSequenceNumber": {"N": "0"},
        "leaseCounter": {"N": "0"},
        "ownerSwitchesSinceCheckpoint": {"N": "0"},
        "startingHashKey": {"S": shard["HashKeyRange"]["StartingHashKey"]},
        "endingHashKey": {"S": shard["HashKeyRange"]["EndingHashKey"]},
    }
    parents = sorted(
        p
        for p in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId"))
        if p and p in listed  # a parent trimmed by retention is no lease to wait for
    )
    if parents:
        item["parentShardId"] = {"SS": parents}
    return item


def prime_lease_table(
    dynamodb: Any, kinesis: Any, *, application: str, stream: str, position: str = "TRIM_HORIZON"
) -> int:
    """Creates the lease table with one unowned lease per shard (see the module docstring);
    returns the leases added (0 when the table was in use already, or priming cannot be right)."""
    created = _create_table(dynamodb, application)
    if not created and dynamodb.scan(TableName=application, Limit=1, Select="COUNT")["Count"]:
        _log.info("lease table %s is in use: not primed", application)
        return 0
    shards: list[dict[str, Any]] = []
    for page in kinesis.get_paginator("list_shards").paginate(StreamName=stream):
        shards.extend(page["Shards"])
    closed = [s for s in shards if s.get("SequenceNumberRange", {}).get("EndingSequenceNumber")]
    if closed and position != "TRIM_HORIZON":
        _log.info(
            "%s has closed shards and starts at %s: the KCL syncs its leases", stream, position
        )
        return 0
    listed = {s["ShardId"] for s in shards}
    added = 0
    for shard in shards:
        try:
            dynamodb.put_item(
                TableName=application,
                Item=_lease(shard, listed, position),
                ConditionExpression="attribute_not_exists(leaseKey)",
            )
            added += 1
        except dynamodb.exceptions.ConditionalCheckFailedException:
            pass  # a worker synced it meanwhile: its row wins
    return added


def prime_local_leases(aws: ClientFactory, *, application: str, stream: str) -> int:
    """prime_lease_table, only when every endpoint of `aws` is local (never against AWS)."""
    if not aws.options.all_endpoints_local:
        return 0
    added = prime_lease_table(
        aws.client("dynamodb"), aws.client("kinesis"), application=application, stream=stream
    )
    _log.info("lease table %s primed with %d leases", application, added)
    return added
