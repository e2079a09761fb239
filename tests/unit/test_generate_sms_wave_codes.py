"""generate_sms_wave_codes on in-memory fakes: codes in the wave CSV, rows accounted for,
bad input, an issuer outage mid-file, and re-runs after a crash at every step."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Result, Success

from adapters.clock import FixedClock
from domain.models import ObjectRef
from domain.workers.generate_sms_wave_codes import (
    GeneratedWave,
    GenerateFailure,
    GenerateInput,
    generate_sms_wave_codes,
)
from entrypoints.events import unwrap
from tests.support.memory_codes import IssuerFaults, MemoryCodeIssuer
from tests.support.memory_leases import MemoryLeases
from tests.support.memory_ledger import MemoryIssuedCodes
from tests.support.wave_files import HEADER, Crash, CrashingStore, fan, parse_csv, wave_csv

BUCKET = "vf-scoring"
T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)
WAVE = ObjectRef(BUCKET, "smsWaves/csv/camp1_w1.csv")
NORMALIZED = ObjectRef(BUCKET, "smsWaves/configs/camp1_w1.normalized.json")
CONFIG = {
    "generateOfferCode": True,
    "notifyDate": "2026-03-01T15:00:00-05:00",
    "productId": "prod-9",
    "source": "vf",
    "campaignId": "camp1",
    "categoryId": 7,
}


def request(config: dict[str, object] | None = None) -> GenerateInput:
    event = {"waveFilePrefix": "camp1_w1", "config": config or CONFIG}
    return GenerateInput.parse(event).unwrap()


def run(
    store: CrashingStore,
    issuer: MemoryCodeIssuer,
    ledger: MemoryIssuedCodes,
    chunk_rows: int = 3,
) -> Result[GeneratedWave, GenerateFailure]:
    return generate_sms_wave_codes(
        request(),
        store=store,
        issuer=issuer,
        ledger=ledger,
        leases=MemoryLeases(FixedClock(T0)),
        bucket=BUCKET,
        chunk_rows=chunk_rows,
    )


def test_every_fan_gets_a_code_and_the_config_its_window() -> None:
    store = CrashingStore()
    store.put_bytes(WAVE, wave_csv([fan(i) for i in range(7)], bom=True))
    issuer, ledger = MemoryCodeIssuer(), MemoryIssuedCodes()
    result = run(store, issuer, ledger).unwrap()
    assert result.to_json()["count"] == {"in": 7, "out": 7, "errors": 0, "errorsByReason": {}}
    rows = parse_csv(store.objects[WAVE])
    assert [r["globalUserId"] for r in rows] == [fan(i)[0] for i in range(7)]
    assert len({r["code"] for r in rows}) == 7
    assert rows[0]["firstName"] == 'Ann, "Jr"'  # quotes and commas survive
    config = json.loads(store.objects[NORMALIZED])
    assert "genCodes" not in config
    assert config["beginDate"] == "2026-02-28T20:00:00.000Z"
    assert config["endDate"] == "2027-03-01T20:00:00.000Z"
    assert config["codeCounts"]["out"] == 7
    # save_stats reads the codes issued from here (docs/stats.md)
    assert (config["codeCounts"]["issued"], config["codeCounts"]["kept"]) == (7, 0)
    (first, _), *_ = issuer.issued
    assert first.begin == datetime(2026, 2, 28, 20, tzinfo=UTC) and first.product_id == "prod-9"
    assert not [r for r in store.objects if r.key.startswith("smsWaves/generated/")]


def test_bad_rows_are_dropped_with_reasons_and_counted() -> None:
    store = CrashingStore()
    rows = [fan(1), fan(2), ["", "m3", "1", "a", "b", "c", "d", "false", "en"], fan(1), ["short"]]
    store.put_bytes(WAVE, wave_csv(rows) + b"\r\n\r\n")
    issuer = MemoryCodeIssuer(IssuerFaults(rejected={fan(2)[0]}))
    result = run(store, issuer, MemoryIssuedCodes(), chunk_rows=2).unwrap()
    assert (result.rows_in, result.rows_out, result.errors) == (5, 1, 4)
    assert result.errors_by_reason == {
        "issuer_rejected": 1,
        "missing_global_user_id": 1,
        "duplicate_fan": 1,
        "bad_row": 1,
    }
    assert [r["globalUserId"] for r in parse_csv(store.objects[WAVE])] == [fan(1)[0]]


def test_an_issuer_outage_mid_file_stops_the_run_and_the_rerun_reuses_the_codes() -> None:
    store = CrashingStore()
    original = wave_csv([fan(i) for i in range(10)])
    store.put_bytes(WAVE, original)
    ledger = MemoryIssuedCodes()
    down = MemoryCodeIssuer(IssuerFaults(unavailable_after=4))
    failed = run(store, down, ledger)
    assert isinstance(failed, Failure)
    assert failed.failure().kind == "issuer_unavailable" and failed.failure().retryable
    assert store.objects[WAVE] == original  # the old wave CSV survives
    assert json.loads(store.objects[NORMALIZED])["genCodes"] is True
    first_codes = {g: c.code for (_, g), c in ledger.entries.items()}
    assert len(first_codes) == 4
    back = MemoryCodeIssuer(prefix="NEW")
    result = run(store, back, ledger).unwrap()
    assert (result.reused, result.issued, result.rows_out) == (4, 6, 10)
    codes = {r["globalUserId"]: r["code"] for r in parse_csv(store.objects[WAVE])}
    assert all(codes[g] == c for g, c in first_codes.items())


def test_a_finished_wave_run_again_does_nothing_and_says_so() -> None:
    store = CrashingStore()
    store.put_bytes(WAVE, wave_csv([fan(i) for i in range(3)]))
    issuer, ledger = MemoryCodeIssuer(), MemoryIssuedCodes()
    run(store, issuer, ledger).unwrap()
    wave = store.objects[WAVE]
    again = run(store, issuer, ledger).unwrap()
    assert again.already_done and again.rows_out == 3
    assert issuer.calls == 3 and store.objects[WAVE] == wave


def test_without_generate_offer_code_nothing_is_touched() -> None:
    store = CrashingStore()
    result = generate_sms_wave_codes(
        request({**CONFIG, "generateOfferCode": False}),
        store=store, issuer=MemoryCodeIssuer(), ledger=MemoryIssuedCodes(), bucket=BUCKET,
        leases=MemoryLeases(FixedClock(T0)),
    ).unwrap()  # fmt: skip
    assert result.to_json()["generateOfferCode"] is False and not store.objects


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"config": CONFIG}, "waveFilePrefix"),
        ({"waveFilePrefix": "w", "config": "{not json"}, "config is not JSON"),
        (
            {"waveFilePrefix": "w", "config": {**CONFIG, "notifyDate": "next tuesday"}},
            "config.notifyDate is not an ISO 8601",
        ),
        ({"waveFilePrefix": "w", "config": {**CONFIG, "productId": ""}}, "config.productId"),
        ({"waveFilePrefix": "w", "config": {"notifyDate": "2026-01-01"}}, "generateOfferCode"),
        (["not", "an", "object"], "not a JSON object"),
    ],
)
def test_bad_input_names_the_field(event: object, reason: str) -> None:
    parsed = GenerateInput.parse(event)
    assert isinstance(parsed, Failure) and reason in parsed.failure()


def test_upload_service_and_step_functions_shapes_are_accepted() -> None:
    body = {"waveFilePrefix": "camp1_w1", "config": json.dumps(CONFIG)}
    assert isinstance(GenerateInput.parse(unwrap({"data": body})), Success)
    assert isinstance(GenerateInput.parse(unwrap({"Payload": body})), Success)
    assert isinstance(GenerateInput.parse(unwrap(json.dumps(body))), Success)


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"", "bad_csv"),
        (b"memberId,email\r\nm1,a@b.c\r\n", "missing_columns"),
        (wave_csv([fan(1)]) + b"\xff\xfe,bad\r\n", "bad_csv"),
    ],
)
def test_a_file_that_is_not_a_wave_fails_and_is_left_alone(data: bytes, kind: str) -> None:
    store = CrashingStore()
    store.put_bytes(WAVE, data)
    outcome = run(store, MemoryCodeIssuer(), MemoryIssuedCodes())
    assert isinstance(outcome, Failure) and outcome.failure().kind == kind
    assert store.objects[WAVE] == data
    assert "@" not in outcome.failure().message


def test_a_missing_wave_is_named() -> None:
    outcome = run(CrashingStore(), MemoryCodeIssuer(), MemoryIssuedCodes())
    assert isinstance(outcome, Failure) and outcome.failure().kind == "source_missing"
    assert WAVE.uri in outcome.failure().message


fans = st.lists(st.integers(0, 30), min_size=1, max_size=25)


@settings(max_examples=150)
@given(picks=fans, rejected=st.sets(st.integers(0, 30), max_size=4), crash=st.integers(1, 40),
       chunk=st.integers(1, 6))  # fmt: skip
def test_crash_at_any_step_and_rerun_each_fan_holds_exactly_one_code(
    picks: list[int], rejected: set[int], crash: int, chunk: int
) -> None:
    store = CrashingStore(crash_at=crash)
    rows = [fan(i) for i in picks]
    store.objects[WAVE] = wave_csv(rows)
    ledger = MemoryIssuedCodes()
    faults = IssuerFaults(rejected={fan(i)[0] for i in rejected})
    with contextlib.suppress(Crash):
        run(store, MemoryCodeIssuer(faults, prefix="A"), ledger, chunk_rows=chunk)
    store.crash_at = None
    result = run(store, MemoryCodeIssuer(faults, prefix="B"), ledger, chunk_rows=chunk).unwrap()
    out = parse_csv(store.objects[WAVE])
    gids = [r["globalUserId"] for r in out]
    assert len(gids) == len(set(gids))  # each fan once
    expected = [fan(i)[0] for i in dict.fromkeys(picks) if i not in rejected]
    assert gids == expected
    for row in out:  # the code in the wave is the one recorded before it was written
        assert ledger.entries[("camp1_w1", row["globalUserId"])].code == row["code"]
    assert result.rows_in == len(picks) == result.rows_out + result.errors
    assert list(out[0]) == [*HEADER, "code"] if out else True
