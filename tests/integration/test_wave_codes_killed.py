"""generate_sms_wave_codes killed mid-issuing with the DynamoDB issuer and ledger on the emulator,
then run again (issue 17, item 3: QA found 602 codes 'issued' and held by nobody after a SIGKILL
25 s into a 6,000-fan wave). A crash at the n-th DynamoDB write stands for the kill."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.aws.clients import ClientFactory
from adapters.aws.dynamo_codes import (
    DynamoCodeIssuer,
    create_codes_table,
    iter_table_codes,
)
from adapters.aws.dynamo_ledger import DynamoOnceLedger
from adapters.clock import FixedClock
from adapters.code_generator import CodeGenerator
from domain.issued_codes import OnceIssuedCodes
from domain.models import ObjectRef
from domain.workers.generate_sms_wave_codes import GenerateInput, generate_sms_wave_codes
from tests.conftest import unique_name
from tests.support.memory_leases import MemoryLeases
from tests.support.wave_files import Crash, CrashingStore, fan, parse_csv, wave_csv

pytestmark = pytest.mark.integration

BUCKET = "vf-scoring"
PREFIX = "camp3_w2"
FANS = 40
CONFIG = {"generateOfferCode": True, "notifyDate": "2026-05-01", "productId": "p", "source": "vf"}


class KilledAt:
    """The DynamoDB client, dying at its n-th PutItem (every thread of the issuer's pool)."""

    def __init__(self, client: Any, at: int | None) -> None:
        self.client, self.at, self.puts = client, at, 0

    def put_item(self, **request: Any) -> Any:
        self.puts += 1
        if self.at is not None and self.puts >= self.at:
            raise Crash(f"killed at PutItem {self.puts}")
        return self.client.put_item(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


@pytest.mark.parametrize("kill_at", [1, 2, 7, 18, 33])
def test_a_run_killed_mid_issuing_leaves_no_code_issued_and_unheld(
    aws: ClientFactory, kill_at: int
) -> None:
    dynamodb = aws.client("dynamodb")
    table = unique_name("codes")
    create_codes_table(dynamodb, table)
    store = CrashingStore()
    wave = ObjectRef(BUCKET, f"smsWaves/csv/{PREFIX}.csv")
    store.objects[wave] = wave_csv([fan(i) for i in range(FANS)])
    leases = MemoryLeases(FixedClock(datetime(2026, 4, 1, tzinfo=UTC)))
    request = GenerateInput.parse({"waveFilePrefix": PREFIX, "config": CONFIG}).unwrap()

    def run(client: Any) -> Any:
        return generate_sms_wave_codes(
            request,
            store=store,
            issuer=DynamoCodeIssuer(client, table, CodeGenerator(), concurrency=4),
            ledger=OnceIssuedCodes(DynamoOnceLedger(dynamodb, table), "run"),
            leases=leases,
            bucket=BUCKET,
            chunk_rows=16,
        )

    with contextlib.suppress(Crash):
        run(KilledAt(dynamodb, kill_at)).unwrap()
    result = run(dynamodb).unwrap()
    out = parse_csv(store.objects[wave])
    assert [r["globalUserId"] for r in out] == [fan(i)[0] for i in range(FANS)]
    assert result.rows_out == FANS
    issued = {i["code"]["S"] for i in iter_table_codes(dynamodb, table)}
    assert issued == {r["code"] for r in out}  # every issued code held by its fan, no other
