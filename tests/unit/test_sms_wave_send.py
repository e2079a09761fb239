"""sms_wave_send over hand-written fakes: the spreadsheet-saved wave file, the channels, every
answer a provider gives, the ledger's record, one sender per wave, the config's move."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from returns.result import Failure, Success

from domain.models import ObjectRef
from domain.once import EntryState
from domain.sms import Accepted, NoAnswer, OptedOut, Refused, SmsMessage, Throttled
from domain.waves import wave_csv_key
from domain.workers.sms_wave_send import (
    SendFailure,
    SendInput,
    SentWave,
    config_key,
    plan_sms_wave,
    sms_wave_send,
)
from entrypoints.events import unwrap
from tests.support.sms_fakes import BUCKET, SendWorld, fan, put_wave


def send(world: SendWorld, wave: str = "c1_w1", **options: Any) -> SentWave:
    result = sms_wave_send(SendInput(wave), ports=world.ports(), options=world.options(**options))
    assert isinstance(result, Success), result
    sent: SentWave = result.unwrap()
    return sent


def test_every_fan_is_texted_and_emailed_and_the_result_has_the_original_shape() -> None:
    world = SendWorld()
    put_wave(world.store, "c1_w1", [fan(n) for n in range(25)])
    sent = send(world)
    assert sent.to_json()["waveName"] == "c1_w1"
    count = sent.to_json()["count"]
    assert (count["total"], count["ok"], count["failed"]) == (25, 25, 0)
    assert count["detail"]["sms"] == {
        "sent": 25,
        "failed": 0,
        "skipped": 0,
        "opted_out": 0,
        "unknown": 0,
    }
    assert count["detail"]["email"]["sent"] == 25
    assert world.emails.batches == [10, 10, 5]
    assert len({r.dedupe_id for r in world.emails.sent}) == 25
    assert world.emails.sent[0].body["smsMessage"] == "Your code is C0"
    # the config moved to completed with the result
    assert ObjectRef(BUCKET, config_key("triggered", "c1_w1")) not in world.store.objects
    done = json.loads(world.store.objects[ObjectRef(BUCKET, config_key("completed", "c1_w1"))])
    assert done["sendResult"]["count"]["ok"] == 25


def test_a_spreadsheet_saved_file_reads_and_bad_rows_are_counted_with_their_row() -> None:
    world = SendWorld()
    body = (
        "\ufeffcode,doNotText,email,firstName,lastName,link,locale,marketId,globalUserId,"
        "mobileNumber,smsText\r\n"
        'C1,FALSE,a@example.com,"Smith, Jr.",X,,en,1,f1,+12125550101,"Hi, your code: C1"\r\n'
        "C2,TRUE,b@example.com,B,Y,,en,1,f2,+12125550102,Hi\r\n"
        "C3,FALSE,,C,Z,,en,1,f3,1.20156E+10,Hi\r\n"
        "C4,FALSE,d@example.com,D,W,,en,1,,+12125550104,Hi\r\n"
        "C5,maybe,e@example.com,E,V,,en,1,f5,+12125550105,Hi\r\n"
        "C6,FALSE,only,six,fields,here\r\n"
        "C7,false,g@example.com,G,U,,en,1,f7,+447911123456,Hi\r\n"
    ).encode()
    world.store.put_bytes(ObjectRef(BUCKET, wave_csv_key("w")), body)
    world.store.put_bytes(ObjectRef(BUCKET, config_key("triggered", "w")), b"{}")
    count = send(world, "w").to_json()["count"]
    assert count["total"] == 7
    assert count["rejected"] == [
        {"row": 4, "reason": "missing or unprintable globalUserId"},
        {"row": 5, "reason": "doNotText is not TRUE or FALSE"},
        {"row": 6, "reason": "wrong number of fields"},
    ]
    assert count["detail"]["sms"] == {
        "sent": 1,
        "failed": 1,
        "skipped": 2,
        "opted_out": 0,
        "unknown": 0,
    }
    assert count["reasons"]["sms:invalid_number"] == 1  # 1.20156E+10: never guessed
    assert count["reasons"]["sms:do_not_text"] == 1
    assert count["reasons"]["sms:international"] == 1
    assert list(world.gateway.delivered) == ["+12125550101"]  # type: ignore[union-attr]
    # ok: f1 (both), f2 (email), f7 (email); f3 nothing sent; three bad rows
    assert (count["ok"], count["failed"]) == (3, 4)


def test_international_numbers_are_texted_when_the_wave_allows_them() -> None:
    world = SendWorld()
    put_wave(world.store, "w", [fan(1, mobileNumber="447911123456")], {"allowIntlPhones": True})
    send(world, "w")
    assert list(world.gateway.delivered) == ["+447911123456"]  # type: ignore[union-attr]


def test_email_on_sms_failure_emails_only_fans_whose_text_did_not_go() -> None:
    world = SendWorld()
    rows = [fan(1), fan(2, mobileNumber=""), fan(3, doNotText="TRUE"), fan(4)]
    put_wave(world.store, "w", rows, {"channels": "email-on-sms-failure"})
    world.gateway.script = lambda m, _: (  # type: ignore[union-attr]
        OptedOut() if m.key.endswith("fan4") else __import__("domain.sms").sms.Accepted("id")
    )
    count = send(world, "w").to_json()["count"]
    assert sorted(r.body["email"] for r in world.emails.sent) == [
        "fan2@example.com",
        "fan3@example.com",
        "fan4@example.com",
    ]
    assert count["detail"]["sms"]["opted_out"] == 1
    assert count["detail"]["email"] == {
        "sent": 3,
        "failed": 0,
        "skipped": 1,
        "opted_out": 0,
        "unknown": 0,
    }


def test_a_bad_channels_option_fails_the_wave_naming_the_field() -> None:
    world = SendWorld()
    put_wave(world.store, "w", [fan(1)], {"channels": "sms-only"})
    result = sms_wave_send(SendInput("w"), ports=world.ports(), options=world.options())
    assert isinstance(result, Failure)
    assert "config.channels must be both | email-on-sms-failure" in str(result.failure())
    failed = json.loads(world.store.objects[ObjectRef(BUCKET, config_key("failed", "w"))])
    assert "config.channels" in failed["sendResult"]["reason"]
    assert not world.gateway.delivered  # type: ignore[union-attr]


def test_opted_out_refused_and_unanswered_texts_are_their_own_outcomes() -> None:
    world = SendWorld()
    put_wave(world.store, "w", [fan(n) for n in range(4)])

    def script(m: SmsMessage, _: int) -> Any:
        from domain.sms import Accepted

        return {
            "sms#w#fan0": OptedOut(),
            "sms#w#fan1": Refused("invalid_destination"),
            "sms#w#fan2": NoAnswer("timed out"),
        }.get(m.key, Accepted("id3"))

    world.gateway.script = script  # type: ignore[union-attr]
    sms = send(world, "w").to_json()["count"]["detail"]["sms"]
    assert sms == {"sent": 1, "failed": 1, "skipped": 0, "opted_out": 1, "unknown": 1}
    # a re-run sends nothing again and reports the same
    world.store.put_bytes(ObjectRef(BUCKET, config_key("triggered", "w")), b"{}")
    calls = len(world.gateway.calls)  # type: ignore[union-attr]
    again = send(world, "w", owner="run-2").to_json()["count"]["detail"]["sms"]
    assert again == sms
    assert len(world.gateway.calls) == calls  # type: ignore[union-attr]


def test_throttling_slows_down_and_retries_and_is_never_a_fans_failure() -> None:
    world = SendWorld()
    put_wave(world.store, "w", [fan(n) for n in range(5)])
    from domain.sms import Accepted

    world.gateway.script = lambda m, attempt: (  # type: ignore[union-attr]
        Throttled("ThrottlingException") if attempt < 3 else Accepted("id")
    )
    sms = send(world, "w").to_json()["count"]["detail"]["sms"]
    assert sms["sent"] == 5 and sms["failed"] == 0
    assert world.clock.t > 0  # the sender waited (fake clock): paused, not failed


def test_a_provider_that_keeps_throttling_stops_the_run_and_a_rerun_sends() -> None:
    world = SendWorld()
    put_wave(world.store, "w", [fan(1)])
    world.gateway.script = lambda m, a: Throttled("429")  # type: ignore[union-attr]
    result = sms_wave_send(
        SendInput("w"), ports=world.ports(), options=world.options(throttle_budget_seconds=30)
    )
    assert isinstance(result, Failure)
    failure: SendFailure = result.failure()
    assert (failure.kind, failure.retryable) == ("throttled", True)
    world.gateway.script = None  # type: ignore[union-attr]
    assert send(world, "w", owner="run-2").to_json()["count"]["detail"]["sms"]["sent"] == 1


def test_a_second_sender_of_the_same_wave_is_refused_naming_the_holder() -> None:
    world = SendWorld()
    put_wave(world.store, "w", [fan(1)])
    assert world.leases is not None
    held = world.leases.sharing("host-a/123/run-a").acquire("w")
    assert isinstance(held, Success)
    result = sms_wave_send(SendInput("w"), ports=world.ports(), options=world.options())
    assert isinstance(result, Failure)
    assert result.failure().kind == "busy"
    assert "host-a/123/run-a" in str(result.failure())
    assert not world.gateway.delivered  # type: ignore[union-attr]


def test_the_dry_run_counts_channels_parts_and_ucs2_and_sends_nothing() -> None:
    world = SendWorld()
    rows = [
        fan(1, smsText="a" * 160),
        fan(2, smsText="a" * 159 + "\u2019"),
        fan(3, smsText="hi", mobileNumber=""),
    ]
    put_wave(world.store, "w", rows, state="scheduled")
    plan = plan_sms_wave(
        SendInput("w"), store=world.store, options=world.options(rate_parts_per_second=2.0)
    )
    assert isinstance(plan, Success)
    assert plan.unwrap() | {} == {
        "waveName": "w",
        "channels": "both",
        "fans": {"sms": 2, "email": 3, "badRows": 0},
        "smsNotSent": {"skipped:no_number": 1},
        "partsPerText": {"1": 1, "3": 1},
        "totalParts": 4,
        "ucs2Texts": 1,
        "nonGsmCharacters": "\u2019",
        "rate": 2.0,
        "estimatedSeconds": 2.0,
        "emailNote": "every fan with an address is emailed",
    }
    assert not world.gateway.calls  # type: ignore[union-attr]


def test_no_phone_or_email_reaches_the_result() -> None:
    world = SendWorld()
    put_wave(world.store, "w", [fan(1), fan(2, mobileNumber="12")])
    world.gateway.script = lambda m, a: Refused("bad")  # type: ignore[union-attr]
    text = json.dumps(send(world, "w").to_json())
    assert "+1212" not in text and "example.com" not in text


def test_input_is_waveName() -> None:
    assert SendInput.parse({"waveName": " c1_w1 "}) == Success(SendInput("c1_w1"))
    # AWS wrappers (the upload service's {data}, Step Functions' Payload) are the runtime's
    assert SendInput.parse(unwrap({"data": {"waveName": "w"}})) == Success(SendInput("w"))
    assert isinstance(SendInput.parse({}), Failure)
    assert isinstance(SendInput.parse({"waveName": "a/b"}), Failure)


def test_a_run_near_the_end_of_its_time_stops_between_chunks_and_a_rerun_sends_the_rest() -> None:
    world = SendWorld()
    put_wave(world.store, "w", [fan(n) for n in range(25)])
    # 100 s left at the first two chunks, then 30: less than the 60 s a run keeps back.
    left = iter([100.0, 100.0, 30.0])
    ports = dataclasses.replace(world.ports(), time_left=lambda: next(left, 30.0))
    result = sms_wave_send(SendInput("w"), ports=ports, options=world.options(chunk_rows=10))
    assert isinstance(result, Failure)
    failure: SendFailure = result.failure()
    assert (failure.kind, failure.retryable) == ("out_of_time", True)
    assert failure.counts is not None and failure.counts.sms["sent"] == 20
    assert ObjectRef(BUCKET, config_key("triggered", "w")) in world.store.objects
    # The re-run's result is the wave's: the first run's 20 from the ledger's record, 5 sent now.
    rest = send(world, "w", owner="run-2").to_json()["count"]["detail"]["sms"]
    assert (rest["sent"], rest["unknown"]) == (25, 0)
    delivered = world.gateway.delivered  # type: ignore[union-attr]
    assert len(delivered) == 25 and set(delivered.values()) == {1}


def test_the_wave_summary_keeps_its_email_counts_through_the_log_masking() -> None:
    from adapters.logging import mask_value
    from tests.support.memory_scored_files import RecordingNotifier

    world = SendWorld()
    put_wave(world.store, "w", [fan(n) for n in range(3)])
    notifier = RecordingNotifier()
    ports = dataclasses.replace(world.ports(), notifier=notifier)
    assert isinstance(sms_wave_send(SendInput("w"), ports=ports, options=world.options()), Success)
    (summary,) = notifier.notifications
    logged = mask_value(dict(summary.fields))
    assert logged["texts"].startswith("sent 3")
    assert logged["emails"].startswith("sent 3")


def test_a_run_stopped_by_throttling_records_every_text_answered_before_it() -> None:
    """Outcomes are closed in groups: a stop flushes the group, so the texts already sent are
    DONE for the re-run, neither held nor unknown."""
    world = SendWorld()
    put_wave(world.store, "w", [fan(n) for n in range(6)])
    world.gateway.script = lambda m, a: (  # type: ignore[union-attr]
        Throttled("429") if m.key.endswith("fan5") else Accepted(f"id-{m.key}")
    )
    result = sms_wave_send(
        SendInput("w"), ports=world.ports(), options=world.options(throttle_budget_seconds=30)
    )
    assert isinstance(result, Failure) and result.failure().kind == "throttled"
    entries = world.ledger.read([f"sms#w#fan{n}" for n in range(5)])  # type: ignore[union-attr]
    assert {e.state for e in entries.values()} == {EntryState.DONE}
    world.gateway.script = None  # type: ignore[union-attr]
    rerun = send(world, "w", owner="run-2").to_json()["count"]["detail"]["sms"]
    assert (rerun["sent"], rerun["unknown"], rerun["skipped"]) == (6, 0, 0)


def test_the_same_fan_in_two_chunks_is_one_rejected_row_counted_once_and_texted_once() -> None:
    world = SendWorld()
    rows = [fan(n) for n in range(7)]
    rows.append(fan(2, mobileNumber="+12125559999"))  # row 8: fan2 again, in a later chunk
    rows.append(fan(8, mobileNumber=""))
    rows.append(fan(8, mobileNumber=""))  # row 10: an email-only fan again
    put_wave(world.store, "c1_w1", rows)
    count = send(world, chunk_rows=3).to_json()["count"]
    assert count["rejected"] == [
        {"row": 8, "reason": "the same globalUserId as an earlier row"},
        {"row": 10, "reason": "the same globalUserId as an earlier row"},
    ]
    assert (count["total"], count["ok"], count["failed"]) == (10, 8, 2)
    assert count["detail"]["sms"]["sent"] == 7
    assert count["detail"]["email"]["sent"] == 8
    assert len(world.gateway.calls) == 7  # type: ignore[union-attr]
    dry = plan_sms_wave(SendInput("c1_w1"), store=world.store, options=world.options())
    assert dry.unwrap()["fans"] == {"sms": 7, "email": 8, "badRows": 2}


def test_a_rerun_that_took_over_a_dead_holders_lease_takes_only_its_claims_over_at_once() -> None:
    """run-1 was killed holding the wave's lease, fan1 claimed and fan2 started; run-0, alive
    elsewhere, holds fan3's claim. The re-run at once (run-1 proven dead) texts fan1, leaves
    fan2 unknown and unsent, and still skips fan3: only the dead holder's claims are taken."""
    world = SendWorld()
    assert world.ledger is not None and world.leases is not None and world.gateway is not None
    put_wave(world.store, "c1_w1", [fan(n, email="") for n in range(5)])
    ttl = world.options().claim_ttl
    world.leases.sharing("run-1").acquire("c1_w1").unwrap()  # then kill -9: never released
    world.leases.kill("run-1")
    world.ledger.claim(["sms#c1_w1#fan1"], "run-1", ttl)
    world.ledger.start(world.ledger.claim(["sms#c1_w1#fan2"], "run-1", ttl)["sms#c1_w1#fan2"])
    world.ledger.claim(["sms#c1_w1#fan3"], "run-0", ttl)

    result = sms_wave_send(
        SendInput("c1_w1"), ports=world.ports(holder="run-2"), options=world.options("run-2")
    )

    counts = result.unwrap().to_json()["count"]
    assert counts["detail"]["sms"] == {
        "sent": 3,
        "failed": 0,
        "skipped": 1,
        "opted_out": 0,
        "unknown": 1,
    }
    assert counts["reasons"] == {
        "sms:held_by_another_run": 1,
        "sms:its run died after its attempt started": 1,
        "email:no_email": 5,
    }
    assert sorted(world.gateway.delivered) == ["+12125550000", "+12125550001", "+12125550004"]
    entries = world.ledger.read([f"sms#c1_w1#fan{n}" for n in (1, 2, 3)])
    assert [(e.state, e.owner) for e in entries.values()] == [
        (EntryState.DONE, "run-2"),
        (EntryState.UNKNOWN, "run-1"),
        (EntryState.CLAIMED, "run-0"),
    ]
