"""generate_sms_wave_codes (issue 17): codes a wave file holds are kept, one run per wave, a kill
mid-issuing leaves no code issued and held by nobody, refusals before any write, one formula rule,
bad bytes and bad fan ids reported by row."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Result

from adapters.clock import FixedClock
from domain.models import ObjectRef
from domain.waves import parse_generation_config
from domain.workers.generate_sms_wave_codes import (
    GeneratedWave,
    GenerateFailure,
    GenerateInput,
    generate_sms_wave_codes,
)
from tests.support.memory_codes import IssuerFaults, MemoryCodeIssuer
from tests.support.memory_leases import MemoryLeases
from tests.support.memory_ledger import MemoryIssuedCodes
from tests.support.wave_files import HEADER, Crash, CrashingStore, fan, parse_csv, wave_csv

BUCKET = "vf-scoring"
PREFIX = "camp1_w1"
WAVE = ObjectRef(BUCKET, f"smsWaves/csv/{PREFIX}.csv")
T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)
CONFIG = {
    "generateOfferCode": True,
    "notifyDate": "2026-03-01T15:00:00Z",
    "productId": "prod-9",
    "source": "vf",
}


def request(config: dict[str, object] | None = None) -> GenerateInput:
    return GenerateInput.parse({"waveFilePrefix": PREFIX, "config": config or CONFIG}).unwrap()


def run(
    store: CrashingStore,
    issuer: MemoryCodeIssuer,
    ledger: MemoryIssuedCodes | None = None,
    leases: MemoryLeases | None = None,
    config: dict[str, object] | None = None,
    chunk_rows: int = 3,
) -> Result[GeneratedWave, GenerateFailure]:
    return generate_sms_wave_codes(
        request(config),
        store=store,
        issuer=issuer,
        ledger=ledger or MemoryIssuedCodes(),
        leases=leases or MemoryLeases(FixedClock(T0)),
        bucket=BUCKET,
        chunk_rows=chunk_rows,
    )


def coded(i: int, code: str) -> list[str]:
    return [*fan(i), code]


def test_codes_the_wave_file_holds_are_kept_and_tm_stays_tm() -> None:
    store = CrashingStore()
    rows = [coded(1, "0012345"), coded(2, "TM"), coded(3, ""), coded(4, " 0099 "), coded(2, "")]
    store.put_bytes(WAVE, wave_csv(rows, header=[*HEADER, "code"]))
    issuer = MemoryCodeIssuer()
    result = run(store, issuer).unwrap()
    out = {r["globalUserId"]: r["code"] for r in parse_csv(store.objects[WAVE])}
    assert out == {fan(1)[0]: "0012345", fan(2)[0]: "TM", fan(3)[0]: "CODE00000001",
                   fan(4)[0]: "0099"}  # fmt: skip
    assert issuer.calls == 1  # only the fan without a code
    assert (result.kept, result.issued, result.errors_by_reason) == (3, 1, {"duplicate_fan": 1})


def test_regenerate_codes_replaces_real_codes_but_tm_stays_tm() -> None:
    store = CrashingStore()
    store.put_bytes(WAVE, wave_csv([coded(1, "0012345"), coded(2, "TM")], [*HEADER, "code"]))
    result = run(store, MemoryCodeIssuer(), config={**CONFIG, "regenerateCodes": True}).unwrap()
    out = {r["globalUserId"]: r["code"] for r in parse_csv(store.objects[WAVE])}
    assert out == {fan(1)[0]: "CODE00000001", fan(2)[0]: "TM"}
    assert (result.kept, result.issued) == (1, 1)


def test_a_second_run_of_a_wave_is_refused_naming_who_holds_it_and_since_when() -> None:
    store = CrashingStore()
    store.put_bytes(WAVE, wave_csv([fan(1)]))
    leases = MemoryLeases(FixedClock(T0), seconds=600)
    leases.sharing("host-a/4242/abc").acquire(PREFIX).unwrap()  # the first run, still going
    issuer = MemoryCodeIssuer()
    refused = run(store, issuer, leases=leases)
    assert isinstance(refused, Failure)
    failure = refused.failure()
    assert (failure.kind, failure.retryable) == ("busy", False)
    assert "host-a/4242/abc" in failure.message and "since 2026-12-01T12:00:00Z" in failure.message
    assert issuer.calls == 0 and list(store.objects) == [WAVE]  # nothing issued, nothing written


def test_a_killed_runs_lease_is_taken_over_after_its_term() -> None:
    store = CrashingStore()
    store.put_bytes(WAVE, wave_csv([fan(1), fan(2)]))
    clock = FixedClock(T0)
    leases = MemoryLeases(clock, seconds=600)
    leases.sharing("killed/1/x").acquire(PREFIX).unwrap()  # never released: kill -9
    assert run(store, MemoryCodeIssuer(), leases=leases).failure().kind == "busy"
    clock.at = T0 + timedelta(seconds=600)
    assert run(store, MemoryCodeIssuer(), leases=leases).unwrap().rows_out == 2


@settings(max_examples=200)
@given(
    picks=st.lists(st.integers(0, 40), min_size=1, max_size=30),
    crash_at=st.integers(1, 30),
    chunk=st.integers(1, 8),
)
def test_a_kill_mid_issuing_then_a_rerun_leaves_every_fan_one_code_and_none_unheld(
    picks: list[int], crash_at: int, chunk: int
) -> None:
    """The issuer (the codes table) outlives the killed run; a crash at its n-th call stands for
    kill -9 between issuing a code and recording it (QA: 602 codes 'issued', held by nobody)."""
    store = CrashingStore()
    store.objects[WAVE] = wave_csv([fan(i) for i in picks])
    ledger, leases = MemoryIssuedCodes(), MemoryLeases(FixedClock(T0))

    def kill(call: int) -> None:
        if call == crash_at:
            raise Crash(f"killed at issuer call {call}")

    issuer = MemoryCodeIssuer(IssuerFaults(before_call=kill))
    with contextlib.suppress(Crash):
        run(store, issuer, ledger, leases, chunk_rows=chunk)
    issuer.faults.before_call = None
    run(store, issuer, ledger, leases, chunk_rows=chunk).unwrap()
    out = parse_csv(store.objects[WAVE])
    gids = [r["globalUserId"] for r in out]
    assert gids == [fan(i)[0] for i in dict.fromkeys(picks)]  # every fan, once
    issued = [code for _, code in issuer.issued]
    assert sorted(issued) == sorted(r["code"] for r in out)  # no code issued and unheld


def test_a_formula_in_a_wave_cell_is_neutralised_like_every_other_csv() -> None:
    store = CrashingStore()
    evil = fan(1)
    evil[3] = '=HYPERLINK("http://evil.example","click")'
    evil[4] = "@SUM(A1)"
    store.put_bytes(WAVE, wave_csv([evil]))
    run(store, MemoryCodeIssuer()).unwrap()
    (row,) = parse_csv(store.objects[WAVE])
    assert row["firstName"] == "'" + evil[3] and row["lastName"] == "'@SUM(A1)"
    assert row["mobileNumber"] == evil[6]  # a phone is a plain number: left as it is


@pytest.mark.parametrize("prefix", ["..", ".", "a\x00b", "wave\n1", "wave\n", "a\\b", "a/b"])
def test_a_bad_prefix_is_refused_naming_it(prefix: str) -> None:
    refused = GenerateInput.parse({"waveFilePrefix": prefix, "config": CONFIG})
    assert isinstance(refused, Failure) and "waveFilePrefix" in refused.failure()


def test_a_missing_wave_csv_is_refused_before_anything_is_written() -> None:
    store = CrashingStore()
    refused = run(store, MemoryCodeIssuer())
    assert refused.failure().kind == "source_missing" and not store.objects


def test_a_wave_without_global_user_id_is_refused_before_anything_is_written() -> None:
    store = CrashingStore()
    store.put_bytes(WAVE, b"memberId,code\r\nm1,\r\n")
    assert run(store, MemoryCodeIssuer()).failure().kind == "missing_columns"
    assert list(store.objects) == [WAVE]


far = st.one_of(
    st.datetimes(min_value=datetime(9998, 12, 1), max_value=datetime(9999, 12, 31, 23, 59)),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(1, 1, 3)),
)


@given(moment=far, as_date=st.booleans(), suffix=st.sampled_from(["", "Z", "+14:00", "-12:00"]))
def test_a_notify_date_at_the_ends_of_time_is_refused_naming_the_field(
    moment: datetime, as_date: bool, suffix: str
) -> None:
    text = moment.date().isoformat() if as_date else moment.isoformat() + suffix
    parsed = parse_generation_config({**CONFIG, "notifyDate": text})
    if isinstance(parsed, Failure):
        assert "notifyDate" in parsed.failure()
    else:  # inside the calendar: the normalized config can be written
        assert parsed.unwrap().normalized(generating=True)["endDate"]


@pytest.mark.parametrize("text", ["9999-12-31T23:00:00Z", "0001-01-01"])
def test_the_reported_far_notify_dates_are_refused(text: str) -> None:
    refused = parse_generation_config({**CONFIG, "notifyDate": text})
    assert isinstance(refused, Failure) and "config.notifyDate is out of range" in refused.failure()


def test_invalid_utf8_in_a_wave_is_reported_with_its_row() -> None:
    store = CrashingStore()
    good = wave_csv([fan(1), fan(2)])
    store.put_bytes(WAVE, good + b"g9,m9,1,Bj\xf6rn,Lee,x,+12015550000,false,en\r\n")
    failure = run(store, MemoryCodeIssuer()).failure()
    assert failure.kind == "bad_csv" and "data row 3" in failure.message, failure.message
    assert "line 4" in failure.message


def test_a_global_user_id_of_control_characters_is_rejected_with_its_row() -> None:
    store = CrashingStore()
    nul, tab, inner = fan(2), fan(3), fan(4)
    nul[0], tab[0], inner[0] = "\x00", " \t\x0b ", "g\x00x"
    store.put_bytes(WAVE, wave_csv([fan(1), nul, tab, inner]))
    result = run(store, MemoryCodeIssuer()).unwrap()
    assert (result.rows_in, result.rows_out) == (4, 1)
    assert result.rejected == ((2, "bad_global_user_id"), (3, "missing_global_user_id"),
                               (4, "bad_global_user_id"))  # fmt: skip


def test_a_chunk_slower_than_the_lease_stops_the_run_saying_the_lease_was_lost() -> None:
    """A Pacman chunk hangs past the lease's term (fake clock) and another run takes the wave
    over meanwhile: the stalled run records what it was issued (first record wins) but writes
    no rows, no staged CSV and no counts, and says it lost its lease."""
    store = CrashingStore()
    store.put_bytes(WAVE, wave_csv([fan(1), fan(2)]))
    clock = FixedClock(T0)
    leases = MemoryLeases(clock, seconds=600)

    def stall(call: int) -> None:
        if call == 1:
            clock.at = T0 + timedelta(seconds=601)
            leases.sharing("host-b/7/b").acquire(PREFIX).unwrap()

    issuer = MemoryCodeIssuer(IssuerFaults(before_call=stall))
    failure = run(store, issuer, leases=leases, chunk_rows=10).failure()
    assert failure.kind == "taken_over" and "lost its lease" in failure.message
    assert not [ref for ref in store.objects if ref.key.startswith("smsWaves/generated/")]
    assert store.objects[WAVE] == wave_csv([fan(1), fan(2)])


def test_issuing_gets_half_the_time_the_lease_has_left_so_no_chunk_outlives_it() -> None:
    """Every chunk's issuing deadline is half what the lease has left (keep() renews at half
    the term), so with a step as slow as its deadline the lease still holds at the next
    renewal: 600 s lease, each chunk's issuing taking 250 s."""
    store = CrashingStore()
    store.put_bytes(WAVE, wave_csv([fan(1), fan(2), fan(3)]))
    clock = FixedClock(T0)
    leases = MemoryLeases(clock, seconds=600)

    def slow(_call: int) -> None:
        clock.at += timedelta(seconds=250)

    issuer = MemoryCodeIssuer(IssuerFaults(before_call=slow))
    assert run(store, issuer, leases=leases, chunk_rows=1).unwrap().rows_out == 3
    assert issuer.deadlines == [300.0, 175.0, 300.0]
