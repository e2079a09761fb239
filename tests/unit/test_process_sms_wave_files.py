"""processSmsWaveFiles over in-memory fakes: files, codes, status, attempts and scenario 4."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from returns.result import Failure, Success

from domain.wave_prep.fans import EligibleFan
from domain.wave_prep.status import Phase
from domain.workers.process_sms_wave_files import code_file_ref, market_details_ref
from tests.support.wave_world import BUCKET, CAMPAIGN, DATE_KEY, WaveWorld


def fan(i: int, score: float, *markets: str, **more: str) -> EligibleFan:
    fields = {"email": f"fan{i}@example.com", "phone": f"212555{i:04d}"} | more
    return EligibleFan(f"g{i:04d}", score, markets, user_id=f"u{i}", **fields)  # type: ignore[arg-type]


def many_fans(n: int) -> list[EligibleFan | str]:
    markets = ("m1", "m2", "m3")
    return [
        fan(i, (i * 7919 % 1000) / 1000, markets[i % 3], markets[(i + 1) % 3]) for i in range(n)
    ]


def test_a_wave_selects_within_capacity_and_writes_each_fan_once_with_a_code() -> None:
    world = WaveWorld(
        [
            ("m1", "New York", 5, "external"),
            ("m2", "London", 3, "TM"),
            ("m3", "Paris", 0, "external"),
        ],
        many_fans(40),
    )
    counts = world.run().unwrap()
    assert (counts.eligible, counts.selected, counts.waitlisted) == (40, 8, 32)
    zipped = world.zip_files()
    assert sorted(zipped) == sorted(
        f"{kind}/{m}.csv" for kind in ("sms", "email", "masterCodes") for m in ("m1", "m2", "m3")
    )
    master = [row for m in ("m1", "m2", "m3") for row in zipped[f"masterCodes/{m}.csv"]]
    assert len(master) == 8 and len({r["globalUserId"] for r in master}) == 8
    assert {r["code"] for r in zipped["masterCodes/m2.csv"]} == {"TM"}
    external = [r["code"] for r in zipped["masterCodes/m1.csv"]]
    assert external == world.inventory.reserved  # reserved once, used in placement order
    assert all(r["mobileNumber"].startswith("+1212555") for r in zipped["sms/m1.csv"])
    status = world.status.current(CAMPAIGN, DATE_KEY)
    assert status is not None and status.phase is Phase.FINISHED and status.attempts == 1
    doc = status.to_json()
    assert doc["path"] == world.zip_ref.uri
    assert doc["count"]["selected"] == 8
    assert [m["name"] for m in doc["count"]["markets"]] == ["New York", "London", "Paris"]
    assert counts.fans_read == counts.eligible + sum(counts.ineligible.values()) + counts.duplicates


def test_scenario_4_a_code_service_timeout_fails_attempt_1_and_attempt_2_resumes() -> None:
    world = WaveWorld(
        [("m1", "New York", 5, "external"), ("m2", "London", 4, "external")], many_fans(30)
    )
    world.inventory.fail_calls = {3}  # m1 in two batches of 3 and 2; m2's first call times out
    first = world.run(reserve_batch=3)
    assert isinstance(first, Failure) and first.failure().kind == "codes_unavailable"
    status = world.status.current(CAMPAIGN, DATE_KEY)
    assert status is not None and (status.phase, status.attempts) == (Phase.FAILED, 1)
    assert world.zip_ref not in world.store.objects
    kept = dict(world.ledger.reservations)
    assert sorted(kept) == [f"{CAMPAIGN}/{DATE_KEY}/m1/0", f"{CAMPAIGN}/{DATE_KEY}/m1/1"]

    second = world.run(reserve_batch=3)
    assert isinstance(second, Success)
    status = world.status.current(CAMPAIGN, DATE_KEY)
    assert status is not None and (status.phase, status.attempts) == (Phase.FINISHED, 2)
    assert second.unwrap().codes_reused == 5
    codes = world.inventory.reserved
    assert len(codes) == len(set(codes)) == 9  # nothing reserved twice
    zipped = world.zip_files()
    m1 = [r["code"] for r in zipped["masterCodes/m1.csv"]]
    assert m1 == [c for key in sorted(kept) for c in kept[key].codes]  # the same codes
    fans = Counter(r["globalUserId"] for m in ("m1", "m2") for r in zipped[f"masterCodes/{m}.csv"])
    assert len(fans) == 9 and set(fans.values()) == {1}


def test_a_third_trigger_is_refused_and_changes_nothing() -> None:
    world = WaveWorld([("m1", "NY", 2, "external")], many_fans(5))
    world.inventory.fail_calls = {1, 2}
    assert isinstance(world.run(), Failure)
    assert isinstance(world.run(), Failure)
    before = list(world.status.history)
    third = world.run()
    assert isinstance(third, Failure) and third.failure().kind == "attempts_exhausted"
    assert third.failure().attempt is None
    assert world.status.history == before and world.inventory.calls == 2


def test_a_trigger_while_one_runs_is_refused_unless_that_run_is_stale() -> None:
    world = WaveWorld([("m1", "NY", 2, "external")], many_fans(5))
    from domain.wave_prep.status import next_attempt

    running = next_attempt(None, CAMPAIGN, DATE_KEY, world.clock.now(), timedelta(minutes=15))
    assert not isinstance(running, str)
    world.status.write(running, None)  # type: ignore[arg-type]
    refused = world.run()
    assert isinstance(refused, Failure) and refused.failure().kind == "running"
    world.clock.at += timedelta(minutes=16)
    taken_over = world.run()
    assert isinstance(taken_over, Success) and taken_over.unwrap().attempt == 2


def test_markets_that_do_not_match_the_campaign_fail_naming_them_and_publish_nothing() -> None:
    world = WaveWorld([("m1", "NY", 2, "external")], many_fans(5))
    world.store.put_bytes(
        market_details_ref(BUCKET, CAMPAIGN, DATE_KEY),
        b"marketId,name,capacity\nm1,NY,2\nm9,Nowhere,3\n",
    )
    result = world.run()
    assert isinstance(result, Failure) and result.failure().kind == "markets_mismatch"
    assert "m9" in result.failure().message
    status = world.status.current(CAMPAIGN, DATE_KEY)
    assert status is not None and status.phase is Phase.FAILED and status.error
    assert "m9" in status.error
    assert world.zip_ref not in world.store.objects and world.inventory.calls == 0


def test_a_missing_market_file_and_fans_without_contact_are_reported() -> None:
    world = WaveWorld([("m1", "NY", 2, "external")], [fan(1, 0.5, "m1", email="", phone="")])
    counts = world.run().unwrap()
    assert counts.ineligible == {"no_phone_or_email": 1} and counts.selected == 0
    other = WaveWorld([("m1", "NY", 2, "external")], [])
    other.store.delete(market_details_ref(BUCKET, CAMPAIGN, DATE_KEY))
    missing = other.run()
    assert isinstance(missing, Failure) and missing.failure().kind == "markets_missing"


def test_an_uploaded_file_that_is_not_utf8_fails_naming_it() -> None:
    for kind, ref in [
        ("bad_markets", market_details_ref(BUCKET, CAMPAIGN, DATE_KEY)),
        ("bad_codes", code_file_ref(BUCKET, CAMPAIGN, DATE_KEY, "nonTmCodes")),
    ]:
        world = WaveWorld([("m1", "NY", 2, "external")], [fan(1, 0.5, "m1")])
        world.store.put_bytes(ref, b"code\n\xff\xfe\n")
        outcome = world.run()
        assert isinstance(outcome, Failure), kind
        assert outcome.failure().kind == kind
        assert f"{ref.uri}: not UTF-8 (byte 5)" in outcome.failure().message


def test_one_email_row_per_address_and_a_tm_code_wins() -> None:
    shared = "same@example.com"
    world = WaveWorld(
        [("m1", "NY", 2, "external"), ("m2", "LON", 2, "TM")],
        [
            fan(1, 0.9, "m1", email=shared),
            fan(2, 0.8, "m2", email=shared.upper()),
            fan(3, 0.7, "m1"),
        ],
    )
    world.run().unwrap()
    zipped = world.zip_files()
    assert [r["globalUserId"] for r in zipped["email/m2.csv"]] == ["g0002"]
    assert [r["globalUserId"] for r in zipped["email/m1.csv"]] == ["g0003"]
    assert len(zipped["masterCodes/m1.csv"]) == 2  # both still hold their codes


def test_uploaded_codes_are_used_and_cells_cannot_run_formulas() -> None:
    world = WaveWorld(
        [("m1", "NY", 2, "external"), ("m2", "LON", 1, "TM")],
        [fan(1, 0.9, "m1", first_name="=HYPERLINK(1)"), fan(2, 0.8, "m1"), fan(3, 0.7, "m2")],
    )
    world.store.put_bytes(
        code_file_ref(BUCKET, CAMPAIGN, DATE_KEY, "nonTmCodes"), b"code\nA1\nA2\n"
    )
    world.store.put_bytes(code_file_ref(BUCKET, CAMPAIGN, DATE_KEY, "tmCodes"), b"T1\n")
    world.run().unwrap()
    zipped = world.zip_files()
    assert [r["code"] for r in zipped["masterCodes/m1.csv"]] == ["A1", "A2"]
    assert [r["code"] for r in zipped["masterCodes/m2.csv"]] == ["T1"]
    assert zipped["sms/m1.csv"][0]["firstName"] == "'=HYPERLINK(1)"
    assert world.inventory.calls == 0


def test_too_few_uploaded_codes_fail_the_wave_before_anything_is_written() -> None:
    world = WaveWorld([("m1", "NY", 2, "external")], [fan(1, 0.9, "m1"), fan(2, 0.8, "m1")])
    world.store.put_bytes(code_file_ref(BUCKET, CAMPAIGN, DATE_KEY, "nonTmCodes"), b"A1\n")
    result = world.run()
    assert isinstance(result, Failure) and result.failure().kind == "not_enough_codes"
    assert world.zip_ref not in world.store.objects


def test_a_source_that_dies_mid_stream_fails_the_attempt_retryably() -> None:
    world = WaveWorld([("m1", "NY", 2, "external")], many_fans(10))
    world.source.fail_after = 4
    result = world.run()
    assert isinstance(result, Failure) and result.failure().retryable
    assert world.run().unwrap().selected == 2


def test_a_random_selection_is_reproducible_and_needs_a_salt() -> None:
    def chosen() -> list[str]:
        world = WaveWorld([("m1", "NY", 5, "external")], many_fans(30))
        world.run(random_selection=True).unwrap()
        return [r["globalUserId"] for r in world.zip_files()["masterCodes/m1.csv"]]

    assert chosen() == chosen()
    unsalted = WaveWorld([("m1", "NY", 5, "external")], many_fans(3))
    unsalted.campaign = type(unsalted.campaign)(CAMPAIGN)
    result = unsalted.run(random_selection=True)
    assert isinstance(result, Failure) and result.failure().kind == "no_salt"
