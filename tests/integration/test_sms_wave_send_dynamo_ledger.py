"""sms_wave_send on the DynamoDB once-ledger over HTTP (the embedded emulator): a wave's texts
are started and closed in transactions of up to 100, not with one conditional PutItem each
(~2.4 ms of botocore CPU a write, which bound a sender near 160 texts/s); a claim taken over
before its group started comes back in the cancellation and is not started."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from adapters.aws.clients import ClientFactory
from adapters.aws.dynamo_ledger import DynamoOnceLedger, create_ledger_table
from domain.once import EntryState
from domain.workers.sms_wave_send import SendInput, sms_wave_send
from tests.conftest import unique_name
from tests.support.memory_ledger import MemoryOnceLedger
from tests.support.sms_fakes import SendWorld, fan, put_wave

pytestmark = pytest.mark.integration
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
TTL = timedelta(seconds=30)


@pytest.fixture(scope="module")
def table(aws: ClientFactory) -> str:
    name = unique_name("ledger")
    create_ledger_table(aws.client("dynamodb"), name)
    return name


def _counting_client(aws: ClientFactory) -> tuple[Any, list[str]]:
    db = aws._new_client("dynamodb")
    calls: list[str] = []
    db.meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name), unique_id="count"
    )
    return db, calls


def test_a_waves_texts_are_started_and_closed_in_transactions_not_one_write_each(
    aws: ClientFactory, table: str
) -> None:
    fans = 250
    db, calls = _counting_client(aws)
    world = SendWorld()
    ledger = DynamoOnceLedger(db, table, clock=world.clock.now)
    world.ledger = cast(MemoryOnceLedger, ledger)  # the port's other implementation
    wave = unique_name("w")
    put_wave(world.store, wave, [fan(n, email="") for n in range(fans)])

    result = sms_wave_send(SendInput(wave), ports=world.ports(), options=world.options())

    assert result.unwrap().counts.sms["sent"] == fans
    assert world.gateway is not None and set(world.gateway.delivered.values()) == {1}
    # chunks of 200 and 50: claims 2 + 1, starts 2 + 1, closes 3 (groups of 100)
    assert "PutItem" not in calls
    assert calls.count("TransactWriteItems") == 9, calls
    keys = [f"sms#{wave}#fan{n}" for n in range(fans)]
    assert {e.state for e in ledger.read(keys).values()} == {EntryState.DONE}


def test_a_claim_taken_over_before_its_group_started_comes_back_as_it_is_and_is_not_started(
    aws: ClientFactory, table: str
) -> None:
    """Another sender whose clock runs a ttl ahead took one claim over: this sender's group
    start is cancelled for that key alone (ConditionalCheckFailed, its item in the reason),
    which is answered as it now is; the rest are sent again and started."""
    db, calls = _counting_client(aws)
    ledger = DynamoOnceLedger(db, table, clock=lambda: NOW)
    ahead = DynamoOnceLedger(db, table, clock=lambda: NOW + TTL)
    keys = [unique_name("sms") for _ in range(150)]
    claimed = ledger.claim(keys, "owner-a", TTL)
    taken = ahead.claim([keys[7]], "owner-b", TTL)[keys[7]]
    assert taken.held_by("owner-b")
    calls.clear()

    started = ledger.start_many(list(claimed.values()))

    assert started[keys[7]] == taken
    assert all(
        (started[k].state, started[k].owner) == (EntryState.STARTED, "owner-a")
        for k in keys
        if k != keys[7]
    )
    # 100 + 50 in two transactions; the one cancelled is sent again without the taken key
    assert calls == ["TransactWriteItems"] * 3
    assert ledger.read([keys[7]]) == {keys[7]: taken}
