"""Known answers for the values other systems keep: if one of these changes, every downstream
consumer sees every record as new (dedupe ids), looks in the wrong place (lake keys) or reads
different bytes (Avro). Computed once from the code and written down here on purpose: a change
to a hash input, a key layout or the encoding must fail this file, not pass it silently.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from datetime import UTC, date, datetime

import fastavro

from adapters.avro import SCHEMA_DIR, AvroSchemas, load_schema, sync_marker
from adapters.canonical_json import orjson_canonical
from domain.records import (
    CodeAssignment,
    LakeKey,
    batch_object_name,
    canonical_json,
    dedupe_id,
    verdict_for,
)
from domain.scoring.records import dedupe_id as scored_record_dedupe_id

RECORD = {
    "type": "registration",
    "campaignId": "camp-1",
    "globalUserId": "g1",
    "email": "ana@example.com",
    "score": 0.5,
    "tags": ["a", "b"],
    "__meta": {"correlation": "c-1"},
    "dedupeId": "left out of its own hash",
}
CONTENT_ID = "badbb3f562c2c062533a800ed03fe5ea"


def test_the_content_dedupe_id_hashes_canonical_json_without_meta_or_its_own_id() -> None:
    content = {k: v for k, v in RECORD.items() if k not in ("__meta", "dedupeId")}
    assert canonical_json(content) == (
        b'{"campaignId":"camp-1","email":"ana@example.com","globalUserId":"g1",'
        b'"score":0.5,"tags":["a","b"],"type":"registration"}'
    )
    assert dedupe_id(RECORD) == CONTENT_ID
    assert dedupe_id(RECORD, orjson_canonical) == CONTENT_ID


def test_the_scored_record_dedupe_id() -> None:
    assert scored_record_dedupe_id("camp-1", "g1", 0.5) == "a6444bb737ef8ce1f7cacf9e911afe6f"


def test_the_verdict_dedupe_id_names_the_assignment() -> None:
    verdict = verdict_for(CodeAssignment("camp-1", "u" * 24, "g1", "CODE-1"))
    assert (verdict.campaign_id, verdict.count) == ("camp-1", 1)
    assert verdict.dedupe_id == "58c57d5b931340e787b6008bbc3579cd"
    assert (
        verdict.dedupe_id
        == hashlib.blake2b(b'["camp-1","g1","CODE-1"]', digest_size=16).hexdigest()
    )


def test_the_lake_key_of_a_batch() -> None:
    name = batch_object_name(
        "shardId-000000000007", "49590338271490256608559692538361571095921575989136588898"
    )
    assert LakeKey("registration", date(2026, 3, 14), name).key == (
        "avro/registration/2026/03/14/"
        "shardId-000000000007-49590338271490256608559692538361571095921575989136588898.avro"
    )
    assert batch_object_name("shardId-000000000007", "4959", 3) == "shardId-000000000007-4959-3"


BAN = {
    "type": "codeBan",
    "code": "X1",
    "campaignId": "camp-1",
    "dedupeId": "0123456789abcdef0123456789abcdef",
}
ARRIVED = datetime(2026, 3, 14, 12, 0, 0, 123000, tzinfo=UTC)
BAN_AVRO = bytes.fromhex(
    "0e636f646542616e"  # "codeBan"
    "403031323334353637383961626364656630313233343536373839616263646566"  # dedupeId
    "02f6d9bdc39d67"  # receivedAt: union branch 1, 1773489600123 ms
    "c4017b2274797065223a22636f646542616e222c22636f6465223a225831222c2263616d706169676e4964"
    "223a2263616d702d31222c226465647570654964223a2230313233343536373839616263646566303132"
    "33343536373839616263646566227d"  # payload: the record as compact JSON
)
CODE_BAN_SYNC = bytes.fromhex("afc609de90d7353780e9e70e1c89016d")


def test_the_avro_encoding_of_a_record() -> None:
    datum = AvroSchemas(codec="null").conform("codeBan", BAN, ARRIVED).unwrap()
    out = io.BytesIO()
    fastavro.schemaless_writer(out, AvroSchemas().schema("codeBan"), dict(datum))
    assert out.getvalue() == BAN_AVRO


def test_the_container_bytes_with_their_deterministic_sync_marker() -> None:
    assert sync_marker(load_schema(SCHEMA_DIR / "codeBan.avsc")) == CODE_BAN_SYNC
    schemas = AvroSchemas(codec="null")
    data = schemas.encode("codeBan", [schemas.conform("codeBan", BAN, ARRIVED).unwrap()])
    # The one block: count 1, size 148, the record, the sync marker.
    assert data.endswith(b"\x02\xa8\x02" + BAN_AVRO + CODE_BAN_SYNC)
    assert len(data) == 1040  # header: magic, dedupe keys, first arrival, codec, schema, sync
    assert hashlib.sha256(data).hexdigest() == (
        "81964d4fdb3bd3b3853aa21c6d3750125231b9dbac8162cb853701398d3a8e7c"
    )
    deflated = AvroSchemas().encode(
        "codeBan", [AvroSchemas().conform("codeBan", BAN, ARRIVED).unwrap()]
    )
    assert hashlib.sha256(deflated).hexdigest() == (
        "8aee4fd977db41eed1d2dbb9e2ea4bf544a2f7b05ebe783abfedcb8125f4e543"
    )


_WRITE_ONE = """
import hashlib, sys
from datetime import UTC, datetime
from adapters.avro import AvroSchemas
from tests.unit.test_contract_values import ARRIVED, BAN
schemas = AvroSchemas()
data = schemas.encode("codeBan", [schemas.conform("codeBan", BAN, ARRIVED).unwrap()])
sys.stdout.write(hashlib.sha256(data).hexdigest())
"""


def test_a_restarted_process_writes_the_same_bytes_whatever_its_hash_seed() -> None:
    """fastavro's parsed schema orders keys by set iteration: the header changed with
    PYTHONHASHSEED until adapters/avro.py sorted them."""
    digests = {
        subprocess.run(
            [sys.executable, "-c", _WRITE_ONE],
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert digests == {"8aee4fd977db41eed1d2dbb9e2ea4bf544a2f7b05ebe783abfedcb8125f4e543"}
